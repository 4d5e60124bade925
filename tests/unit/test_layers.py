"""The direction of imports (pyproject.toml [tool.importlinter], docs/architecture.md):
front ends -> services -> protocol -> shared contracts, checked on the real tree, and
proved able to fail on a tree that breaks it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")

needs_linter = pytest.mark.skipif(LINT is None, reason="import-linter is a test extra: pip install -e '.[test]'")


def lint(tree: Path) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contracts over the ``qa`` package found in ``tree``."""
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=120)


@needs_linter
def test_the_package_keeps_its_layers() -> None:
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@needs_linter
@pytest.mark.parametrize("module, line, names", [
    ("qa/config.py", "from qa import lab", "qa.config -> qa.lab"),             # config imports a service
    ("qa/cdr/normalise.py", "from qa.cases import checks", "qa.cdr.normalise -> qa.cases"),   # the old cycle
    ("qa/sip/__init__.py", "import qa.transport", "qa.sip -> qa.transport"),  # protocol reaching for I/O
    ("qa/cli/lab.py", "import qa.robot", "qa.cli.lab -> qa.robot"),            # front ends import each other
])
def test_an_import_against_the_layers_is_caught(tmp_path: Path, module: str, line: str, names: str) -> None:
    shutil.copytree(ROOT / "qa", tmp_path / "qa", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / module
    text = path.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(head + sep + line + "\n" + rest if sep else line + "\n" + text)
    proc = lint(tmp_path)
    assert proc.returncode != 0 and names in proc.stdout, proc.stdout[-3000:]


def _private_imports_across_packages() -> list[str]:
    """``from qa.X import _name`` where X is not the importing module's own package."""
    found = []
    for path in sorted((ROOT / "qa").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        own = parts[1] if len(parts) > 1 else parts[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qa.")):
                continue
            theirs = node.module.split(".")[1]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{a.name}"
                      for a in node.names if a.name.startswith("_") and not a.name.startswith("__")
                      and theirs != own]
    return found


def test_no_private_name_is_imported_across_packages() -> None:
    assert _private_imports_across_packages() == []


#: Past this many lines a module says at its top why it is one module ("Length: ...").
LONG_MODULE_LINES = 500


def test_a_long_module_says_why_it_is_one_module() -> None:
    unexplained = []
    for path in sorted((ROOT / "qa").rglob("*.py")):
        text = path.read_text()
        doc = "\n" + (ast.get_docstring(ast.parse(text)) or "")
        if text.count("\n") > LONG_MODULE_LINES and "\nLength: " not in doc:
            unexplained.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert unexplained == [], "say at the top why these are one module, or split them: " + ", ".join(unexplained)

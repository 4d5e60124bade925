"""Build the analyzer's hot modules with mypyc: ``python -m qa.native_build`` (``./bootstrap`` runs it).

What is compiled, where it goes and when it is used: :mod:`qa.compiled`. This module is
only the build (it needs the ``native`` extra: mypy and setuptools, and a C compiler).
"""

from __future__ import annotations

import ast
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from qa.compiled import HOT, MANIFEST, OUT, PACKAGE, PURE_ENV, digest, python_tag, status

__all__ = ["build", "sources_read"]


def sources_read(modules: Sequence[str] = HOT) -> list[str]:
    """The hot modules' files and every ``qa`` module they import (their types are
    compiled in), as paths relative to the directory holding ``qa/``."""
    seen: dict[str, None] = {}
    for name in modules:
        path = _module_file(name)
        seen[_rel(path)] = None
        for imported in _qa_imports(path):
            dep = _module_file(imported)
            if dep.is_file():
                seen[_rel(dep)] = None
    return sorted(seen)


def _module_file(name: str) -> Path:
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _qa_imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qa":
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.split(".")[0] == "qa"]
    return names


def build(out: Path = OUT, quiet: bool = True) -> Path:
    """Compile :data:`HOT` with mypyc into ``out``; return the manifest's path.

    Works on a copy of the package (mypyc writes its extensions beside the sources it
    compiles, where they would shadow later edits). Raises RuntimeError with mypyc's last
    lines when the build fails; ``out`` is then left as it was.
    """
    try:
        import mypy.version
    except ImportError:
        raise RuntimeError("mypyc is not installed (pip install -e '.[native]')") from None
    sources = sources_read()
    digests = {rel: digest(PACKAGE.parent / rel) for rel in sources}
    with tempfile.TemporaryDirectory(prefix="voipqa-mypyc-") as tmp:
        work = Path(tmp)
        shutil.copytree(PACKAGE, work / "qa", ignore=shutil.ignore_patterns(
            "_compiled", "__pycache__", "*.so", "*.pyc"))
        files = [str(Path(*name.split(".")).with_suffix(".py")) for name in HOT]
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", "--ignore-missing-imports", *files],
            cwd=work, capture_output=True, text=True, env={**os.environ, PURE_ENV: "1"}, check=False)
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise RuntimeError("mypyc failed: " + " | ".join(tail))
        if not quiet:
            print(done.stdout[-2000:], end="")
        staged = Path(tempfile.mkdtemp(prefix="_compiled.", dir=PACKAGE))
        try:
            extensions = _collect(work, staged)
            manifest = {"python": python_tag(), "mypy": mypy.version.__version__,
                        "modules": list(HOT), "sources": digests, "extensions": extensions}
            (staged / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            if out.exists():
                shutil.rmtree(out)
            staged.rename(out)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
    return out / MANIFEST


def _collect(work: Path, staged: Path) -> dict[str, str]:
    """Move the built extensions (one per hot module, and mypyc's shared library of
    the group, a top-level module) into ``staged``; return {module name: file name}."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    extensions: dict[str, str] = {}
    for name in HOT:
        built = work / Path(*name.split(".")).with_name(name.rsplit(".", 1)[1] + suffix)
        extensions[name] = f"{name}{suffix}"
        shutil.copy2(built, staged / extensions[name])
    for lib in work.glob(f"*__mypyc{suffix}"):
        name = lib.name[: -len(suffix)]
        extensions[name] = lib.name
        shutil.copy2(lib, staged / lib.name)
    return extensions


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m qa.native_build [status]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["status"]:
        print(status())
        return 0
    if args not in ([], ["build"]):
        print("usage: python -m qa.native_build [build|status]", file=sys.stderr)
        return 2
    try:
        path = build(quiet=True)
    except RuntimeError as exc:
        print(f"qa.native_build: {exc}", file=sys.stderr)
        return 1
    print(f"qa.native_build: built {len(HOT)} modules, {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

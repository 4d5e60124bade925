"""The analyzer's hot modules compiled with mypyc, used only when built from the source beside them.

Why: ``voipqa pcap check`` spends its time in a few typed, sans-I/O modules (:data:`HOT`:
the strict and lenient SIP readers, SDP, call correlation, the engine's loop). Compiled
with mypyc they run about 1.35x faster end to end on a lab capture, with the same report
(benchmarks/pcap_check.py; tests/unit/test_compiled.py compares the reports).

How it stays safe:

- **Optional.** ``python -m qa.native_build`` (run by ``./bootstrap`` when mypy and a C
  compiler are there) writes the extension modules to ``qa/_compiled/`` with a manifest.
  Without them, or with ``VOIPQA_PURE=1`` in the environment, every module is the pure
  Python one: nothing else changes.
- **Never stale.** The manifest holds the SHA-256 of every source the build read (the hot
  modules and the ``qa`` modules they import) and the interpreter's cache tag. At
  ``import qa`` (:func:`install`) all of them are compared with the files on disk; one
  edited file, another Python, and no compiled module is used at all — all or nothing,
  because a compiled module calls its compiled siblings directly. An edited ``.py`` is
  therefore never shadowed by an old ``.so``; :func:`status` says which is in use and why.
- **Not in the source tree's import path.** The ``.so`` files are not beside the ``.py``
  files (where Python would prefer them whatever their age); a meta path finder hands
  them out for the names in the manifest only.

This module imports nothing from ``qa`` (it runs inside ``import qa``).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path

__all__ = ["HOT", "install", "status"]

#: The modules compiled, in the order mypyc is given them.
HOT = (
    "qa.sip.strict",
    "qa.sip.lenient",
    "qa.sdp.model",
    "qa.sdp.strict",
    "qa.analysis.calls",
    "qa.analysis.sipevent",
    "qa.analysis.engine",
)
PACKAGE = Path(__file__).resolve().parent
OUT = PACKAGE / "_compiled"
MANIFEST = "manifest.json"
#: Set to anything but "" or "0" to run the pure Python modules whatever is built.
PURE_ENV = "VOIPQA_PURE"

_status = "pure Python: nothing compiled (python -m qa.native_build)"


def status() -> str:
    """One line: are the compiled modules in use, and if not, why not."""
    return _status


# -- at import time -------------------------------------------------------------------------
class _Finder:
    """Meta path finder for exactly the compiled modules of one manifest."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(self, name: str, path: object = None, target: object = None
                  ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(name)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(name, str(file))
        return importlib.util.spec_from_file_location(name, file, loader=loader)


def install(out: Path = OUT) -> bool:
    """Use the compiled modules when the manifest in ``out`` matches the sources on disk;
    sets :func:`status`. Called once by ``qa/__init__.py``; never raises."""
    global _status
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        _status = f"pure Python: {PURE_ENV} is set"
        return False
    try:
        manifest = json.loads((out / MANIFEST).read_text())
        why_not = _mismatch(manifest, out)
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        why_not = f"unreadable {out / MANIFEST} ({exc})"
    if why_not:
        _status = f"pure Python: compiled modules not used, {why_not} (python -m qa.native_build)"
        return False
    files = {name: out / file for name, file in manifest["extensions"].items()}
    sys.meta_path.insert(0, _Finder(files))  # type: ignore[arg-type]
    _status = f"compiled: {len(manifest['modules'])} modules by mypyc {manifest['mypy']}"
    return True


def _mismatch(manifest: dict, out: Path) -> str:
    """Why the build in ``out`` cannot be used here, or "" when it can."""
    if manifest["python"] != python_tag():
        return f"built for {manifest['python']}, this is {python_tag()}"
    if list(manifest["modules"]) != list(HOT):
        return "built for another list of modules"
    for rel, want in manifest["sources"].items():
        try:
            if digest(PACKAGE.parent / rel) != want:
                return f"{rel} changed since the build"
        except OSError:
            return f"{rel} is gone"
    for file in manifest["extensions"].values():
        if not (out / file).is_file():
            return f"{out / file} is missing"
    return ""


def python_tag() -> str:
    return f"{sys.implementation.cache_tag} {importlib.machinery.EXTENSION_SUFFIXES[0]}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

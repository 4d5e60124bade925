"""The mypyc-compiled analyzer modules: used only when built from the sources on disk, and
giving the report the pure Python modules give (qa/compiled.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa import compiled
from qa.capture import CaptureReader, PcapError
from qa.native_build import sources_read
from tests.corpus import CORPUS, require_corpus
from tests.unit.test_analysis_engine import build_call_pcap

ROOT = Path(__file__).resolve().parents[2]
BUILT = compiled.status().startswith("compiled")


def _fake_build(tmp_path: Path) -> Path:
    """A manifest as the build writes it, for today's sources, with stand-in files."""
    out = tmp_path / "_compiled"
    out.mkdir()
    extensions = {name: f"{name}.so" for name in compiled.HOT}
    for file in extensions.values():
        (out / file).write_bytes(b"")
    manifest = {"python": compiled.python_tag(), "mypy": "test", "modules": list(compiled.HOT),
                "sources": {rel: compiled.digest(ROOT / rel) for rel in sources_read()},
                "extensions": extensions}
    (out / compiled.MANIFEST).write_text(json.dumps(manifest))
    return out


def _edit_manifest(out: Path, change) -> None:
    manifest = json.loads((out / compiled.MANIFEST).read_text())
    change(manifest)
    (out / compiled.MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def saved_status():
    before, meta_path = compiled._status, list(sys.meta_path)
    yield
    compiled._status = before
    sys.meta_path[:] = meta_path


@pytest.mark.parametrize("change, why", [
    (lambda m: m["sources"].update({"qa/sip/strict.py": "0" * 64}), "qa/sip/strict.py changed since the build"),
    (lambda m: m["sources"].update({"qa/sip/gone.py": "0" * 64}), "qa/sip/gone.py is gone"),
    (lambda m: m.update(python="cpython-310 .so"), "built for cpython-310 .so"),
    (lambda m: m.update(modules=["qa.sip.strict"]), "built for another list of modules"),
])
def test_a_build_that_does_not_match_the_sources_is_never_used(tmp_path, saved_status, monkeypatch,
                                                               change, why):
    """An edited .py must run as edited: a stale compiled module would hide the edit."""
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    out = _fake_build(tmp_path)
    _edit_manifest(out, change)
    finders = len(sys.meta_path)
    assert compiled.install(out) is False
    assert why in compiled.status() and compiled.status().startswith("pure Python")
    assert len(sys.meta_path) == finders


def test_a_missing_extension_or_a_broken_manifest_means_pure_python(tmp_path, saved_status, monkeypatch):
    monkeypatch.delenv(compiled.PURE_ENV, raising=False)
    out = _fake_build(tmp_path)
    (out / "qa.sdp.model.so").unlink()
    assert compiled.install(out) is False and "qa.sdp.model.so is missing" in compiled.status()
    (out / compiled.MANIFEST).write_text("{not json")
    assert compiled.install(out) is False and "unreadable" in compiled.status()
    assert compiled.install(tmp_path / "nothing") is False


def test_a_matching_build_is_used_and_the_pure_switch_turns_it_off(tmp_path, saved_status, monkeypatch):
    out = _fake_build(tmp_path)
    monkeypatch.setenv(compiled.PURE_ENV, "1")
    assert compiled.install(out) is False and compiled.PURE_ENV in compiled.status()
    monkeypatch.delenv(compiled.PURE_ENV)
    assert compiled.install(out) is True
    finder = sys.meta_path[0]
    spec = finder.find_spec("qa.sip.strict")
    assert spec is not None and spec.origin == str(out / "qa.sip.strict.so")
    assert finder.find_spec("qa.sip.message") is None  # only the manifest's modules


def test_the_build_reads_the_hot_modules_and_what_they_import():
    read = sources_read()
    assert "qa/sip/strict.py" in read and "qa/analysis/engine.py" in read
    assert "qa/errors.py" in read and "qa/capture/model.py" in read  # types compiled in
    assert "qa/cli/__init__.py" not in read


def _readable(path: Path) -> bool:
    """Not one of the corpus files voipqa refuses at open (a NetMon file): one exit 2
    would end the run before the other files' reports."""
    try:
        CaptureReader(path)
    except PcapError:
        return False
    return True


def _require_build() -> None:
    if BUILT:
        return
    if os.environ.get("VOIPQA_REQUIRE_COMPILED"):
        pytest.fail(f"VOIPQA_REQUIRE_COMPILED is set but {compiled.status()}")
    pytest.skip(compiled.status())


def _run(args: list[str], pure: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    if pure:
        env[compiled.PURE_ENV] = "1"
    return subprocess.run([sys.executable, "-c", "import sys; from qa.cli import main; sys.exit(main())",
                           *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False)


def test_the_compiled_modules_are_the_ones_a_voipqa_process_runs():
    _require_build()
    code = "import qa.sip.strict as s, qa.analysis.engine as e; print(s.__file__, e.__file__)"
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    assert all(f.endswith(".so") and "_compiled" in f for f in out), out


def test_compiled_and_pure_python_write_the_same_report(tmp_path):
    """Same findings, calls and counts from both, on every corpus capture (the PROTOS
    malformed-SIP capture among them) and on a built call with malformed SIP and media."""
    _require_build()
    require_corpus("pcaps")
    captures = sorted(str(p) for p in (CORPUS / "pcaps").iterdir()
                      if p.suffix in (".pcap", ".pcapng", ".cap") and _readable(p))
    captures += [str(build_call_pcap(tmp_path / "bad.pcap", malformed=True)),
                 str(build_call_pcap(tmp_path / "ow.pcap", one_way=True, bye=False, digits=""))]
    reports = []
    for pure in (False, True):
        done = _run(["pcap", "check", "--json", "--all-findings", "--one-process", *captures], pure)
        assert done.returncode in (0, 1), done.stderr
        reports.append(done.stdout.splitlines())
    assert len(reports[0]) == len(captures)
    for path, fast, slow in zip(captures, *reports):
        assert fast == slow, f"{Path(path).name}: compiled and pure Python reports differ"

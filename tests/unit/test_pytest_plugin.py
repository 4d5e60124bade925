"""The pytest plugin's wiring without a lab (issue 12): the entry point registers it, its
options and fixtures are there, and run_load asks the load service for what it was given.
The calls against a real lab are tests/integration/test_pytest_plugin.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qa import pytest_plugin
from qa.paths import ROOT

FIXTURES = ("voipqa_env", "voipqa_lab", "place_call", "voipqa_capture", "run_load")


def test_the_entry_point_brings_the_options_and_the_fixtures(tmp_path):
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "voipqa", "-p", "no:cacheprovider",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in FIXTURES:
        assert f"{name} " in proc.stdout or f"{name} [" in proc.stdout, f"fixture {name} missing"
    helped = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60).stdout
    assert "--voipqa-env=ENV" in helped and "--voipqa-output=DIR" in helped


def test_the_entry_point_is_declared():
    assert 'voipqa = "qa.pytest_plugin"' in (ROOT / "pyproject.toml").read_text()


def test_run_load_asks_the_load_service_for_the_profile_and_keeps_runs_apart(monkeypatch, tmp_path):
    import qa.load.runner as runner

    asked = []

    class Outcome:
        signal = None
        result = {"verdict": "pass"}

    monkeypatch.setattr(runner, "run_load", lambda req, echo: asked.append(req) or Outcome())
    assert pytest_plugin.load_run("lab", tmp_path, "profiles/smoke.yaml", rate=5, duration=3) == {"verdict": "pass"}
    pytest_plugin.load_run("staging", tmp_path, "gate")
    first, second = asked
    assert (first.profile, first.env, first.rate, first.duration, first.workers) == ("profiles/smoke.yaml", "lab", 5, 3, 1)
    assert second.env == "staging" and first.output != second.output
    assert Path(first.output).parent == tmp_path / "load"

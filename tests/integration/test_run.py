"""`voipqa run` end to end: real lab, real SIPp, real Robot; and proof the smoke suite can fail."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from qa import lab
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED, ROOT

from tests.integration.cli import gone, voipqa

pytestmark = pytest.mark.integration
SMOKE = ROOT / "robot_suites" / "smoke.robot"




def test_smoke_passes_with_an_ephemeral_lab_and_writes_every_report(tmp_path):
    out = tmp_path / "out"
    proc = voipqa("run", str(SMOKE), "--output", str(out), lab_dir=tmp_path / "no-lab-here")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for name in ("output.xml", "log.html", "report.html", "xunit.xml", "calls.jsonl"):
        assert (out / name).is_file(), name
    assert "4 passed, 0 failed" in proc.stdout
    records = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    assert {r["case"] for r in records} == {"Authenticated Call Is Answered And Billed",
                                            "Wrong Password Is Rejected With 403",
                                            "Zero Balance Gets 402 And Never Reaches The Carrier",
                                            "Blocked Prefix Gets 403"}
    assert all(r["verdict"] == "pass" for r in records), records
    answered = next(r for r in records if r["case"].startswith("Authenticated"))
    assert answered["cdr"]["call_id"] == answered["call_id"]
    assert abs(answered["cdr"]["duration"] - answered["duration_s"]) <= 1.0
    assert answered["carrier"]["call_id"] == answered["call_id"]
    assert "not-the-password" not in (out / "log.html").read_text()
    assert "not-the-password" not in (out / "output.xml").read_text()
    # the run's own lab is gone: every process it started has ended
    state = json.loads((out / "lab" / "lab.json").read_text()) if (out / "lab" / "lab.json").exists() else None
    assert state is None


def test_smoke_fails_and_names_the_case_when_the_carriers_are_down(tmp_path):
    run_dir = tmp_path / "lab"
    state, _ = lab.up(run_dir, seed=DEFAULT_SEED, plan=DEFAULT_PLAN)
    try:
        for name in ("carrier-a", "carrier-b"):
            os.kill(state.processes[name], signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not all(gone(state.processes[n]) for n in ("carrier-a", "carrier-b")) and time.monotonic() < deadline:
            time.sleep(0.1)
        proc = voipqa("run", str(SMOKE), "--output", str(tmp_path / "out"), lab_dir=run_dir)
    finally:
        lab.down(run_dir)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "Authenticated Call Is Answered And Billed" in proc.stdout
    assert "FAIL" in proc.stdout
    records = [json.loads(line) for line in (tmp_path / "out" / "calls.jsonl").read_text().splitlines()]
    answered = next(r for r in records if r["case"].startswith("Authenticated"))
    assert answered["verdict"] == "fail"
    assert any(reason.startswith("customer:") or reason.startswith("carrier:") for reason in answered["reasons"])
    # the wire witness drew the failed call's ladder and the report links it
    ladder = tmp_path / "out" / answered["pcap"]["ladder"]
    assert ladder.is_file() and answered["call_id"] in ladder.read_text()
    assert "ladder of the call" in (tmp_path / "out" / "output.xml").read_text()


def test_unknown_suite_is_one_line_and_exit_2(tmp_path):
    proc = voipqa("run", "robot_suites/nope.robot", "--output", str(tmp_path / "o"), lab_dir=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "voipqa: error: suite robot_suites/nope.robot: no such file or directory"


def test_the_load_suite_runs_alone_after_the_other_cases_and_passes(tmp_path):
    """CI's load run: robot_suites/load beside the smoke suite. The load case (Execution
    exclusive) starts only when every other case has ended, and its report is linked."""
    from robot.api import ExecutionResult

    out = tmp_path / "out"
    proc = voipqa("run", str(SMOKE), str(ROOT / "robot_suites" / "load"), "--output", str(out),
                  lab_dir=tmp_path / "no-lab-here", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tests = list(ExecutionResult(str(out / "output.xml")).suite.all_tests)
    load = [t for t in tests if "load" in t.tags]
    others = [t for t in tests if "load" not in t.tags]
    assert len(load) == 1 and others and load[0].passed
    assert load[0].start_time >= max(t.end_time for t in others), "the load case ran beside other cases"
    assert list((out / "load").glob("*/load.html")), "the load report is in the run's output"


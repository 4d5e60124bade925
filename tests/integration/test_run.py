"""`voipqa run` end to end: real lab, real SIPp, real Robot; and proof the smoke suite can fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    # CI reads xunit.xml and the console: plain text there, the ladder named by its path
    xunit = (tmp_path / "out" / "xunit.xml").read_text()
    assert "*HTML*" not in xunit and "*HTML*" not in proc.stdout and "&lt;br&gt;" not in xunit
    assert f"ladder of the call: {answered['pcap']['ladder']}" in xunit
    assert [line.split()[0] for line in proc.stdout.splitlines() if "xunit.xml" in line] == ["xunit.xml"]


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



# -- SIGTERM / SIGINT end the run as Ctrl-C does: children stopped, reports written ---------
def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, their children...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def start_run(out: Path, lab_dir: Path, *, ignore_sigint: bool) -> subprocess.Popen:
    """``voipqa run`` on the smoke suite, one case at a time, as CI starts it: in the
    background, with SIGINT ignored when a shell would have ignored it."""
    def preexec() -> None:  # pragma: no cover - runs in the child
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    with open(out.parent / "run.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "qa.cli", "run", str(SMOKE), "--parallel", "1",
                                 "--output", str(out)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env=dict(os.environ, VOIPQA_LAB_DIR=str(lab_dir)), preexec_fn=preexec)


def wait_for_first_case(proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while "[  1/4]" not in log.read_text(errors="replace"):
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def running_second_case(proc: subprocess.Popen, log: Path) -> set[int]:
    """Wait until the first case ended and the second one's Robot process runs; the run's
    processes then (its lab included)."""
    wait_for_first_case(proc, log)
    deadline = time.monotonic() + 10
    while not any(" -m robot " in _cmdline(p) for p in descendants(proc.pid)):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    children = descendants(proc.pid)
    assert any("qa.lab.supervisor" in _cmdline(p) for p in children)  # the run's own lab
    return children


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_the_run_with_the_reports_of_the_finished_cases(tmp_path, signum, code):
    from robot.api import ExecutionResult

    out = tmp_path / "out"
    proc = start_run(out, tmp_path / "no-lab-here", ignore_sigint=signum == signal.SIGINT)
    try:
        children = running_second_case(proc, tmp_path / "run.log")
        os.kill(proc.pid, signum)
        assert proc.wait(timeout=90) == code, (tmp_path / "run.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    text = (tmp_path / "run.log").read_text()
    deadline = time.monotonic() + 5
    while not all(gone(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(p, _cmdline(p)) for p in children if not gone(p)] == [], text
    for name in ("output.xml", "log.html", "report.html", "xunit.xml", "calls.jsonl"):
        assert (out / name).is_file(), name + text
    tests = list(ExecutionResult(str(out / "output.xml")).suite.all_tests)
    assert tests and len(tests) < 4, [t.name for t in tests]  # the finished cases only
    assert tests[0].name == "Authenticated Call Is Answered And Billed" and tests[0].passed
    assert f'tests="{len(tests)}"' in (out / "xunit.xml").read_text()
    records = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    assert "Authenticated Call Is Answered And Billed" in {r["case"] for r in records}
    assert not (out / "parts").exists() and not (out / "lab" / "lab.json").exists()
    # the report paths are printed once (Robot's own "Report:" lines are not repeated)
    assert [line.split()[0] for line in text.splitlines() if "report.html" in line] == ["report.html"], text


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_sigkill_keeps_every_finished_call_and_the_lab_and_cases_die_with_the_run(tmp_path):
    out = tmp_path / "out"
    proc = start_run(out, tmp_path / "no-lab-here", ignore_sigint=False)
    try:
        children = running_second_case(proc, tmp_path / "run.log")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    records = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    assert "Authenticated Call Is Answered And Billed" in {r["case"] for r in records}
    lab_pids = {p for p in children if "qa.lab.supervisor" in _cmdline(p) or " -m robot " in _cmdline(p)}
    deadline = time.monotonic() + 30
    while not all(gone(p) for p in lab_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(gone(p) for p in lab_pids)
    lab.down(out / "lab")  # whatever else the kill left behind

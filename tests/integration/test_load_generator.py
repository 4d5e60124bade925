"""One real SippGenerator against a real ``sipp -sn uas -aa`` on 127.0.0.1 (qa.load.generator).

What a load run relies on and only a real SIPp can show: the rate changes live through
the control socket and the calls placed each second follow it; ``finish()`` lets the calls
in progress end and SIPp then exits by itself, even when ``finish()`` is called again (SIPp
3.6.1 cancels a graceful quit on a second ``q``); a SIPp that cannot start says why in its
own words. Everything is bounded: the UAS by ``-m``/``-timeout``, the UAC by the plan's
``-m``/``-timeout``, and both are killed by PID at the end whatever happened.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from typing import Any, Iterator

import pytest

from qa.load.generator import GeneratorError, Sample, SippGenerator
from qa.load.plan import worker_plan
from qa.load.profile import parse_profile
from qa.ports import AGENT_MEDIA_POOL, allocate_ports, allocate_udp_block
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_tool("sipp"), reason="sipp (Debian sip-tester) not installed: "
                       "the real SippGenerator cannot be exercised"),
]

HOLD_S = 1.0
CALL_TIMEOUT_S = 5.0
PHASES = ((30.0, 3), (60.0, 2))          # (calls/s, seconds): 3 s at 30, then 2 s at 60
TOLERANCE = 2                            # calls per second, after the first second


def _plan(target: str):
    profile = parse_profile({
        "kind": "load",
        "scenario": {"sipp": "uac_load", "destinations": [{"number": "15550001234"}], "hold": f"{HOLD_S}s",
                     "call_timeout": f"{CALL_TIMEOUT_S}s"},
        "rate": {"shape": "constant", "cps": 60, "duration": "5s"},
        "judging": {"window": "5s", "settle": "1s"},
    }, "generator-test.yaml")
    return worker_plan(profile, target=target, domain=target, accounts=[("loadgen", None)], total_sipps=1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, by PID (only the process this module started)."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=3)


@pytest.fixture(scope="module")
def uas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SIPp UAS answering every call (180, 200) for at most 30 s / 500 calls."""
    work = tmp_path_factory.mktemp("uas")
    port, control = allocate_ports(2, "127.0.0.1")
    media = allocate_udp_block(4, "127.0.0.1", AGENT_MEDIA_POOL)
    argv = ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-cp", str(control), "-ci", "127.0.0.1",
            "-mp", str(media), "-aa", "-nostdin", "-m", "500", "-timeout", "30s",
            "-trace_stat", "-stf", str(work / "stat.csv"), "-fd", "1"]
    with open(work / "sipp.out", "wb") as out:
        proc = subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not (work / "stat.csv").exists():                 # listening once its statistics start
            assert proc.poll() is None, (work / "sipp.out").read_text(errors="replace")[-300:]
            assert time.monotonic() < deadline, "the SIPp UAS did not start within 10 s"
            time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def run(uas: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Drive one SippGenerator through PHASES, polling once a second as a worker does, then
    finish() twice and wait (bounded) for SIPp to exit by itself."""
    gen = SippGenerator(_plan(uas), tmp_path_factory.mktemp("uac"), "w1/1")
    samples: list[Sample] = []
    try:
        gen.start()
        epoch, t0 = time.time(), time.monotonic()
        t = 0
        for rate, seconds in PHASES:
            gen.set_rate(rate)
            for _ in range(seconds):
                t += 1
                time.sleep(max(0.0, t0 + t - time.monotonic()))     # the worker's once-a-second pace
                samples.append(gen.poll(t, epoch))
        finished_at = time.monotonic()
        gen.finish()
        gen.finish()                                             # e.g. a drain message seen twice
        assert gen.proc is not None
        try:
            gen.proc.wait(timeout=HOLD_S + CALL_TIMEOUT_S + 5)
            exit_after = time.monotonic() - finished_at
        except subprocess.TimeoutExpired:
            exit_after = None
        gen.finish()                                             # after the exit: harmless
        samples.append(gen.poll(t + 1, epoch))
        yield {"samples": samples, "exit_after": exit_after, "returncode": gen.proc.returncode,
               "running": gen.running}
    finally:
        gen.kill()


def _created_by_second(samples: list[Sample]) -> dict[int, int]:
    out: dict[int, int] = {}
    for sample in samples:
        for sec, n in sample.created_at.items():
            out[sec] = out.get(sec, 0) + n
    return out


def test_calls_placed_each_second_follow_the_live_rate(run):
    created = _created_by_second(run["samples"])
    expected = [rate for rate, seconds in PHASES for _ in range(seconds)]   # 30, 30, 30, 60, 60
    last = len(expected)
    assert set(range(1, last + 1)) <= set(created) <= set(range(1, last + 2)), str(created)
    assert 0 < created[1] <= expected[0] + TOLERANCE, str(created)   # SIPp starts from rate 0 within it
    for sec in range(2, last + 1):
        assert abs(created[sec] - expected[sec - 1]) <= TOLERANCE, (sec, str(created))
    # between the last poll and finish() (milliseconds) at most a couple of calls more
    assert created.get(last + 1, 0) <= TOLERANCE, str(created)


def test_finish_lets_every_call_end_then_sipp_exits_by_itself(run):
    assert run["exit_after"] is not None, "SIPp did not exit after finish() (a second `q` cancels the first)"
    # it waited for the calls in progress (held HOLD_S) instead of quitting at once ...
    assert HOLD_S * 0.5 <= run["exit_after"] <= HOLD_S + CALL_TIMEOUT_S + 5
    assert run["returncode"] == 0 and not run["running"]
    samples = run["samples"]
    assert samples[-1].exited
    # ... so every call placed ended with its accounting line, none aborted
    created = sum(sum(s.created_at.values()) for s in samples)
    rows = [r for s in samples for r in s.rows]
    assert created == sum(s.created for s in samples) == len(rows)
    assert sum(s.aborted for s in samples) == 0
    assert all(r.code == 200 and r.duration_s is not None and r.duration_s >= HOLD_S for r in rows)
    assert samples[-1].concurrent == 0


def test_a_sipp_that_cannot_start_says_why_in_its_own_words(tmp_path):
    plan = dataclasses.replace(_plan("127.0.0.1:9"), scenario_xml="<scenario name='broken'><send>")
    gen = SippGenerator(plan, tmp_path, "w1/1")
    try:
        with pytest.raises(GeneratorError) as info:
            gen.start()
        message = str(info.value)
        assert message.startswith("SIPp w1/1 exited at start (code ")
        assert "Unable to load or parse" in message and "xml scenario file" in message
        assert "\n" not in message
        assert not gen.running
    finally:
        gen.kill()
    assert not (tmp_path / "calls.csv").exists()

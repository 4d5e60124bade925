"""The load engine without a network: SIPp's files as the generator reads them, the
master's aggregation into the run directory, the conductor's clock, the CDR check and
the runner's progress line.

SIPp's own files come from one recorded run (``tests/unit/data/load/sipp``: a ``sipp -sn uas
-aa`` answered one SippGenerator from ``worker_plan(load_profile("smoke"), ...)`` (``uac_load``,
hold 1 s) at 20 calls/s for ~3 s, then ``finish()``; ``polls.json`` holds the offsets the
generator had read at each of its live polls and what each poll returned), so replaying the
files cut at those offsets must give the very same deltas. ``calls_edge.log`` is hand-made:
a 486, a call with two 18x, lines that are not ours, a short line and a torn last line.
Everything else is written here through qa.load.model's writers and read back with its
readers.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from qa.cdr import open_source
from qa.cdr.normalise import CANONICAL_COLUMNS
from qa.load import cdrcheck, model
from qa.load.aggregate import LATE_S, Aggregator
from qa.load.conductor import DRAIN_MARGIN_S, READY_WAIT_S, Conductor
from qa.load.generator import CsvTail, Sample, SippGenerator, Tail, parse_call_line, report, start_second
from qa.load.model import CallRow, CsvAppender, Second, read_timeline
from qa.load.plan import worker_plan
from qa.load.profile import parse_profile
from qa.load.runner import _Progress

DATA = Path(__file__).parent / "data" / "load" / "sipp"
GOLDEN = json.loads((DATA / "polls.json").read_text())
COUNTS = sorted(DATA.glob("*_counts.csv"))[0].name
RECORDED_CALLS = 59


# ================================================================================ helpers
def profile(rate: dict[str, Any], *, criteria: dict[str, Any] | None = None, stop_on_break: bool = False,
            hold: str = "1s", call_timeout: str = "2s"):
    """A tiny profile: 2-s windows judged from the first second, one call enough to judge."""
    data: dict[str, Any] = {
        "kind": "load",
        "scenario": {"sipp": "uac_load", "destinations": [{"number": "15550001234"}],
                     "hold": hold, "call_timeout": call_timeout},
        "rate": rate,
        "judging": {"window": "2s", "settle": "0s", "min_calls": 1, "stop_on_break": stop_on_break},
    }
    if criteria:
        data["criteria"] = criteria
    return parse_profile(data, "engine-test.yaml")


CONSTANT = {"shape": "constant", "cps": 10, "duration": "10s"}


def call(n: int, *, code: int = 200, expect: int = 200, pdd: float | None = 50.0, setup: float | None = 100.0,
         duration: float | None = 1.0, t: int = 1, started: float = 1_700_000_000.0, from_user: str = "1001",
         to_user: str = "15550001234") -> CallRow:
    answered = 200 <= code < 300
    return CallRow(t=t, worker="w1/1", call_id=f"call-{n}@10.0.0.1", started=started + n * 0.01,
                   pdd_ms=pdd, setup_ms=setup if answered else None, duration_s=duration if answered else None,
                   code=code, expect=expect, from_user=from_user, to_user=to_user)


def rep(t: int, sipp: str, *, created: int = 0, rows: list[CallRow] | None = None, aborted: int = 0,
        abort_codes: dict[str, int] | None = None, final: bool = False, cpu: float = 0.0,
        allowance: float = 100.0, sent: int = 0, retrans: int = 0, concurrent: int = 0, host_cpu: float = 0.0,
        worker: str = "w1", created_at: dict[int, int] | None = None) -> dict[str, Any]:
    """One SIPp's second as the worker sends it (through the real ``generator.report``);
    ``created`` calls started in second ``t`` unless ``created_at`` says otherwise."""
    if created_at is None:
        created_at = {t: created} if created else {}
    sample = Sample(created=created, created_at=created_at,
                    concurrent=concurrent, aborted=aborted, abort_codes=dict(abort_codes or {}), sent=sent,
                    retransmissions=retrans, rows=list(rows or []), cpu_pct=cpu, allowance_pct=allowance)
    return report(sample, t=t, worker=worker, sipp=sipp, rate=10.0, host_cpu=host_cpu, worker_cpu=1.0, final=final)


def timeline(run_dir: Path) -> list[Second]:
    return model.read_timeline(run_dir / model.TIMELINE_FILE)


def events(run_dir: Path) -> list[dict[str, Any]]:
    return model.read_events(run_dir / model.EVENTS_FILE)


def named(run_dir: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in events(run_dir) if e["event"] == name]


# ================================================================================ parse_call_line
GOLDEN_LINE = "VQ1;1-21426@127.0.0.1;1004; 1008;1008;2024;200;loadgen;15550001234;200"
GOLDEN_EPOCH0 = 1796293033.970451       # the unix time of that SIPp's tick 0
EDGE_EPOCH0 = 1_699_999_995.0            # calls_edge.log's


def test_parse_call_line_reads_every_field_of_sipps_line():
    row = parse_call_line(GOLDEN_LINE, "w1/1", 7, GOLDEN_EPOCH0)
    assert row == CallRow(t=7, worker="w1/1", call_id="1-21426@127.0.0.1", started=pytest.approx(1796293034.974451),
                          pdd_ms=4.0, setup_ms=4.0, duration_s=pytest.approx(1.016), code=200, expect=200,
                          from_user="loadgen", to_user="15550001234")


def edge_lines() -> list[str]:
    return Tail(DATA / "calls_edge.log").lines()


def test_a_486_has_no_pdd_setup_or_duration_and_is_not_failed_when_expected():
    row = parse_call_line(edge_lines()[1], "w", 1, EDGE_EPOCH0)
    assert (row.call_id, row.code, row.expect) == ("edge-486@10.0.0.1", 486, 486)
    assert row.started == pytest.approx(1_700_000_000.0)
    assert (row.pdd_ms, row.setup_ms, row.duration_s) == (None, None, None)
    assert not row.answered and not row.failed


def test_pdd_is_the_first_of_several_18x():
    row = parse_call_line(edge_lines()[3], "w", 1, EDGE_EPOCH0)
    assert row.call_id == "edge-2x18@10.0.0.1"
    assert row.started == pytest.approx(1_700_000_001.0)
    assert row.pdd_ms == 120.0                      # 6120 - 6000, not the second 18x at 6300
    assert row.setup_ms == 450.0
    assert row.duration_s == pytest.approx(3.010)


def test_setup_and_duration_only_for_a_2xx():
    # a 200 tick recorded but a failure code: not answered, no talk time
    row = parse_call_line("VQ1;c;1000; 1100;1200;5000;503;u;n;200", "w", 1, 0.0)
    assert (row.pdd_ms, row.setup_ms, row.duration_s, row.code) == (100.0, None, None, 503)
    row = parse_call_line("VQ1;c;1000;;1300;2300;202;u;n;200", "w", 1, 0.0)
    assert (row.pdd_ms, row.setup_ms, row.duration_s) == (None, 300.0, 1.0)


def test_empty_code_is_0_and_empty_expect_is_200():
    row = parse_call_line("VQ1;c;1000;;;33000;;u;n;", "w", 1, 0.0)
    assert (row.code, row.expect) == (model.NO_ANSWER, 200)
    assert row.failed


@pytest.mark.parametrize("line", [
    "", "VQ0;5000",
    "2026-12-03\t10:15:41.720767\t1796292941.720767: some other SIPp log line",
    "VQ2;c;1000; 1100;1200;5000;200;u;n;200",                 # another format version
    "VQ1;c;1000;;1200;5000;200",                              # 7 fields
    "VQ1;c;1000; 1100;1200;5000;200;u;n;200;extra",            # 11 fields
    "VQ1;c;x; 1100;1200;5000;200;u;n;200",                    # not a tick
    "VQ1;c;1000;;;;486;u;n;486",                              # no end tick
])
def test_lines_that_are_not_a_complete_accounting_line_are_rejected(line):
    assert parse_call_line(line, "w", 1, 0.0) is None


def test_a_malformed_18x_tick_costs_one_line_not_the_second(tmp_path):
    gen, targets, _ = golden_generator(tmp_path)
    targets["log"].write_text("VQ0;1000\n"
                              "VQ1;bad@h;1000; 11x0;1200;5000;200;u;n;200\n"
                              + GOLDEN_LINE + "\n")
    sample = gen.poll(1)
    assert [r.call_id for r in sample.rows] == ["1-21426@127.0.0.1"]
    assert sample.created_at == {1: 1}


def test_the_edge_file_gives_exactly_its_two_call_lines():
    lines = edge_lines()
    assert len(lines) == 7                                    # the torn last line is held back
    rows = [r for r in (parse_call_line(line, "w", 1, EDGE_EPOCH0) for line in lines) if r is not None]
    assert [r.call_id for r in rows] == ["edge-486@10.0.0.1", "edge-2x18@10.0.0.1"]


def test_start_second_bins_a_call_by_when_it_started():
    epoch = 1_700_000_000.0                  # the run started 10 s after this SIPp
    assert start_second("VQ0;10300", epoch, epoch - 10) == 1
    assert start_second("VQ0;12500", epoch, epoch - 10) == 3
    assert start_second("VQ0;0", epoch, epoch - 10) == 1   # before the start: the first second
    assert start_second(GOLDEN_LINE, epoch, epoch - 10) is None
    assert start_second("VQ0;x", epoch, epoch - 10) is None


# ================================================================================ Tail / CsvTail
def test_tail_holds_a_torn_line_until_it_is_complete(tmp_path):
    path = tmp_path / "calls.log"
    tail = Tail(path)
    path.write_bytes(b"first\nsec")
    assert tail.lines() == ["first"]
    assert tail.lines() == []
    with open(path, "ab") as fh:
        fh.write(b"ond\nthi")
    assert tail.lines() == ["second"]
    with open(path, "ab") as fh:
        fh.write(b"rd\n")
    assert tail.lines() == ["third"]
    assert tail.lines() == []


def test_tail_reads_appended_data_once(tmp_path):
    path = tmp_path / "calls.log"
    tail = Tail(path)
    path.write_text("a\nb\n")
    assert tail.lines() == ["a", "b"]
    with open(path, "a") as fh:
        fh.write("c\n")
    assert tail.lines() == ["c"]
    assert tail.lines() == []


def test_tail_of_a_file_that_appears_later(tmp_path):
    path = tmp_path / "later.log"
    tail = Tail(path)
    assert tail.lines() == []
    path.write_text("x\n")
    assert tail.lines() == ["x"]


def test_tail_keeps_a_character_split_between_two_writes(tmp_path):
    path = tmp_path / "calls.log"
    tail = Tail(path)
    path.write_bytes("caf".encode() + "é".encode()[:1])
    assert tail.lines() == []
    with open(path, "ab") as fh:
        fh.write("é".encode()[1:] + b"\n")
    assert tail.lines() == ["café"]


def test_csv_tail_gives_the_newest_complete_row_by_header(tmp_path):
    path = tmp_path / "stat.csv"
    tail = CsvTail(path)
    assert tail.last() is None                                # not there yet
    path.write_text("A;B;C;\n1;2")                            # header + a torn row
    assert tail.last() is None
    with open(path, "a") as fh:
        fh.write(";3;\n4;5;6;\n7;8;9;\n")
    assert tail.last() == {"A": "7", "B": "8", "C": "9", "": ""}
    assert tail.last() is None                                # nothing new
    with open(path, "a") as fh:
        fh.write("10;11;12;\n")
    assert tail.last()["A"] == "10"


def test_csv_tail_waits_for_a_torn_header(tmp_path):
    path = tmp_path / "stat.csv"
    tail = CsvTail(path)
    path.write_text("TotalCall")
    assert tail.last() is None
    with open(path, "a") as fh:
        fh.write("Created;CurrentCall\n5;2\n")
    assert tail.last() == {"TotalCallCreated": "5", "CurrentCall": "2"}


# ================================================================================ SippGenerator.poll (golden)
class _RecordedSipp:
    """Stands for the recorded SIPp process: the pid in the golden counts file's name, running."""

    pid = int(COUNTS.split("_")[-2])

    @staticmethod
    def poll() -> None:
        return None


def golden_generator(tmp_path: Path) -> tuple[SippGenerator, dict[str, Path], dict[str, Path]]:
    """A SippGenerator reading files in ``tmp_path`` where SIPp would write them (no SIPp)."""
    plan = worker_plan(profile(CONSTANT), target="127.0.0.1:5060", domain="127.0.0.1:5060",
                       accounts=[("loadgen", None)], total_sipps=1)
    gen = SippGenerator(plan, tmp_path, "w1/1")
    files = gen.build_agent().trace_files(tmp_path)
    gen._stat, gen._log = CsvTail(files["stat"]), Tail(files["logs"])
    gen.proc = _RecordedSipp()  # type: ignore[assignment]  # the recorded SIPp: its pid names its counts file
    targets = {"stat": files["stat"], "log": files["logs"], "counts": tmp_path / COUNTS}
    sources = {"stat": DATA / "stat.csv", "log": DATA / "calls.log", "counts": DATA / COUNTS}
    return gen, targets, sources


def replay(tmp_path: Path) -> tuple[SippGenerator, dict[str, Path], list[tuple[dict, Sample]]]:
    gen, targets, sources = golden_generator(tmp_path)
    out = []
    for recorded in GOLDEN["polls"]:
        for name, offset in recorded["offsets"].items():
            targets[name].write_bytes(sources[name].read_bytes()[:offset])
        out.append((recorded, gen.poll(recorded["t"], GOLDEN["run_epoch"])))
    return gen, targets, out


def test_poll_replays_the_recorded_run_with_the_same_deltas(tmp_path):
    _, _, polls = replay(tmp_path)
    for recorded, sample in polls:
        got = {"created": sample.created, "created_at": {str(k): v for k, v in sample.created_at.items()},
               "concurrent": sample.concurrent, "aborted": sample.aborted, "sent": sample.sent,
               "retransmissions": sample.retransmissions, "rows": len(sample.rows)}
        assert got == {k: recorded[k] for k in got}, recorded["t"]
        assert all(row.t == recorded["t"] for row in sample.rows)


def test_golden_run_counts_every_call_once_in_the_second_it_started(tmp_path):
    _, _, polls = replay(tmp_path)
    samples = [s for _, s in polls]
    rows = [r for s in samples for r in s.rows]
    assert sum(s.created for s in samples) == RECORDED_CALLS          # SIPp's statistics
    assert sum(sum(s.created_at.values()) for s in samples) == RECORDED_CALLS   # the start lines
    assert len(rows) == len({r.call_id for r in rows}) == RECORDED_CALLS
    # 20 calls/s: the start lines place ~20 calls in each of seconds 1..3, whatever the
    # phase of SIPp's own statistics rows
    per_second = {}
    for s in samples:
        for sec, n in s.created_at.items():
            per_second[sec] = per_second.get(sec, 0) + n
    assert sorted(per_second) == [1, 2, 3] and all(18 <= n <= 21 for n in per_second.values())
    # 3 messages per call (INVITE, ACK, BYE), none retransmitted on loopback
    assert sum(s.sent for s in samples) == 3 * RECORDED_CALLS
    assert sum(s.retransmissions for s in samples) == 0


def test_golden_rows_are_answered_calls_held_one_second(tmp_path):
    _, _, polls = replay(tmp_path)
    rows = [r for _, s in polls for r in s.rows]
    epoch = GOLDEN["run_epoch"]
    for row in rows:
        assert (row.code, row.expect, row.from_user, row.to_user) == (200, 200, "loadgen", "15550001234")
        assert row.answered and not row.failed
        assert 0.0 <= row.pdd_ms <= row.setup_ms < 50.0
        assert 1.0 <= row.duration_s < 1.2                     # smoke: hold 1 s (+ BYE)
        assert epoch < row.started < epoch + 3.5


def test_a_poll_without_a_new_statistics_row_keeps_the_last_concurrent_count(tmp_path):
    gen, targets, sources = golden_generator(tmp_path)
    second = GOLDEN["polls"][1]
    for name, offset in second["offsets"].items():
        targets[name].write_bytes(sources[name].read_bytes()[:offset])
    held = second["concurrent"]
    assert gen.poll(2, GOLDEN["run_epoch"]).concurrent == held > 0
    again = gen.poll(3, GOLDEN["run_epoch"])              # SIPp has not written its next row yet
    assert (again.concurrent, again.created, again.sent, again.rows) == (held, 0, 0, [])


def bump(text: str, changes: dict[str, int]) -> str:
    """SIPp's CSV text plus one more row: the last row with some counters raised."""
    lines = text.rstrip("\n").split("\n")
    header, row = lines[0].split(";"), lines[-1].split(";")
    for name, n in changes.items():
        i = header.index(name)
        row[i] = str(int(row[i]) + n)
    return text + ";".join(row) + "\n"


def test_poll_names_abort_reasons_and_counts_retransmissions(tmp_path):
    gen, targets, _ = replay(tmp_path)
    targets["stat"].write_text(bump(targets["stat"].read_text(), {
        "FailedCall(C)": 7, "FailedTimeoutOnRecv(C)": 3, "FailedMaxUDPRetrans(C)": 1,
        "FailedUnexpectedMessage(C)": 1, "FailedOutboundCongestion(C)": 1, "DeadCallMsgs(C)": 4}))
    targets["counts"].write_text(bump(targets["counts"].read_text(), {
        "1_INVITE_Sent": 6, "1_INVITE_Retrans": 5, "130_BYE_Sent": 4, "130_BYE_Retrans": 2}))
    sample = gen.poll(5, GOLDEN["run_epoch"])
    assert sample.aborted == 7
    assert sample.abort_codes == {"timeout": 3, "retrans": 1, "unexpected": 1, "congestion": 1, "other": 1}
    assert sample.dead_msgs == 4
    assert (sample.sent, sample.retransmissions) == (10, 7)
    assert (sample.created, sample.rows) == (0, [])
    # and nothing is counted twice on the next poll
    again = gen.poll(6, GOLDEN["run_epoch"])
    assert (again.aborted, again.sent, again.retransmissions, again.abort_codes) == (0, 0, 0, {})

    out = report(sample, t=5, worker="w1", sipp="w1/1", rate=20.0, host_cpu=0.0, worker_cpu=0.0)
    assert (out["completed"], out["failed"], out["aborted"]) == (7, 7, 7)
    assert (out["timeouts"], out["unexpected"], out["outbound_congestion"]) == (4, 1, 1)
    assert out["codes"] == {"timeout": 3, "retrans": 1, "unexpected": 1, "congestion": 1, "other": 1}


def test_poll_without_the_run_epoch_counts_new_calls_in_the_poll_second(tmp_path):
    gen, targets, sources = golden_generator(tmp_path)
    targets["log"].write_bytes(sources["log"].read_bytes()[:GOLDEN["polls"][1]["offsets"]["log"]])
    sample = gen.poll(9)
    assert sample.created_at == {9: 39}           # the 39 start lines of seconds 1 and 2
    assert len(sample.rows) == 19


def test_poll_reads_the_counts_file_of_its_own_sipp(tmp_path):
    gen, targets, sources = golden_generator(tmp_path)
    live = tmp_path / "uac_load_12345_counts.csv"
    stale = tmp_path / "uac_load_9999_counts.csv"           # a SIPp of an earlier run in the same workdir
    stale.write_bytes(sources["counts"].read_bytes()[:GOLDEN["polls"][0]["offsets"]["counts"]])
    live.write_bytes(sources["counts"].read_bytes())

    class _Proc:                                             # our SIPp, already exited
        pid = 12345

        @staticmethod
        def poll() -> int:
            return 0

    gen.proc = _Proc()  # type: ignore[assignment]
    assert gen.poll(1).sent == 3 * RECORDED_CALLS


# ================================================================================ generator.report
def test_report_counts_codes_answered_and_failed_by_what_each_destination_expects():
    rows = [call(1), call(2),                                   # 200 expected 200
            call(3, code=486, expect=486, pdd=None),           # busy, as this destination should be
            call(4, code=200, expect=486),                     # answered where 486 was expected
            call(5, code=503, pdd=None),                       # 503 where 200 was expected
            call(6, code=0, pdd=None)]                         # no final response
    out = report(Sample(rows=rows, aborted=2, abort_codes={"timeout": 2}), t=3, worker="w1", sipp="w1/1",
                 rate=10.0, host_cpu=12.0, worker_cpu=3.0)
    assert out["codes"] == {"200": 3, "486": 1, "503": 1, "0": 1, "timeout": 2}
    assert out["answered"] == 3
    assert out["failed"] == 3 + 2                               # calls 4, 5, 6 and the two aborted
    assert out["completed"] == len(rows) + 2
    assert (out["t"], out["sipp"], out["worker"], out["final"]) == (3, "w1/1", "w1", False)


@pytest.mark.parametrize("ms, key", [(57.6, 58), (99.4, 99), (123.4, 120), (999.0, 1000), (1234.0, 1200),
                                     (12_345.0, 12_000)])
def test_report_histograms_use_locusts_rounding(ms, key):
    out = report(Sample(rows=[call(1, pdd=ms, setup=ms)]), t=1, worker="w", sipp="s", rate=1.0,
                 host_cpu=0.0, worker_cpu=0.0)
    assert out["pdd"] == out["setup"] == {str(key): 1}
    assert key == model.round_ms(ms)


def test_report_histograms_leave_out_calls_without_a_time():
    rows = [call(1, pdd=40.0, setup=80.0), call(2, pdd=41.0, setup=80.4), call(3, code=486, expect=486, pdd=None)]
    out = report(Sample(rows=rows), t=1, worker="w", sipp="s", rate=1.0, host_cpu=0.0, worker_cpu=0.0)
    assert out["pdd"] == {"40": 1, "41": 1}
    assert out["setup"] == {"80": 2}


def test_report_carries_the_calls_as_calls_csv_text():
    rows = [call(1), call(2, code=486, expect=486, pdd=None)]
    out = report(Sample(rows=rows), t=1, worker="w", sipp="s", rate=1.0, host_cpu=0.0, worker_cpu=0.0)
    back = [CallRow.from_row(v) for v in csv.reader(out["calls"].splitlines())]
    assert [(r.call_id, r.code, r.expect, r.setup_ms) for r in back] == \
        [("call-1@10.0.0.1", 200, 200, 100.0), ("call-2@10.0.0.1", 486, 486, None)]
    empty = report(Sample(), t=1, worker="w", sipp="s", rate=1.0, host_cpu=0.0, worker_cpu=0.0)
    assert empty["calls"] == "" and empty["completed"] == 0


# ================================================================================ Aggregator
def test_two_sipps_of_one_second_are_summed_and_written_once_both_reported(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 20.0)
    agg.add(rep(1, "a", created=10))
    agg.add(rep(1, "b", created=10))
    assert [s.t for s in agg.flush(1)] == [1]
    agg.add(rep(2, "a", created=10, rows=[call(1), call(2, code=503)], sent=30, retrans=1, concurrent=7,
                cpu=40.0, allowance=50.0, host_cpu=30.0, aborted=1, abort_codes={"timeout": 1}))
    assert agg.flush(2) == []                                   # b has not reported second 2 yet
    agg.add(rep(2, "b", created=9, rows=[call(3)], sent=20, retrans=2, concurrent=5, cpu=60.0, allowance=100.0,
                host_cpu=70.0, worker="w2"))
    written = agg.flush(2)
    assert [s.t for s in written] == [2]
    second = timeline(tmp_path)[-1]
    assert (second.t, second.offered_cps, second.created, second.concurrent) == (2, 20.0, 19, 12)
    assert (second.completed, second.answered, second.failed, second.aborted) == (4, 2, 2, 1)
    assert (second.sent, second.retransmissions, second.timeouts) == (50, 3, 1)
    assert second.codes == {"200": 2, "503": 1, "timeout": 1}
    # the busiest SIPp relative to what it may use: 40 % of a 50 % quota beats 60 % of a core
    assert (second.sipp_cpu_max, second.sipp_cpu_allowance) == (40.0, 50.0)
    assert second.host_cpu_max == 70.0
    assert (second.sipps, second.workers) == (2, 2)
    assert agg.flush(5) == []                                   # written once


def test_cpu_takes_the_busiest_relative_to_its_allowance_whatever_the_order(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 1.0)
    agg.add(rep(1, "b", cpu=60.0, allowance=100.0))
    agg.add(rep(1, "a", cpu=40.0, allowance=50.0))
    agg.add(rep(1, "c", cpu=20.0, allowance=25.0 * 4))
    (second,) = agg.flush(1)
    assert (second.sipp_cpu_max, second.sipp_cpu_allowance) == (40.0, 50.0)


def test_a_missing_reporter_delays_the_second_by_late_s_then_it_is_written(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 20.0)
    for sipp in ("a", "b"):
        agg.add(rep(1, sipp, created=10))
    agg.flush(1)
    agg.add(rep(2, "a", created=10))
    for now in range(2, 2 + LATE_S):
        assert agg.flush(now) == [], now
    (second,) = agg.flush(2 + LATE_S)
    assert (second.t, second.created, second.sipps) == (2, 10, 1)


def test_a_late_report_is_added_to_the_next_open_second_and_nothing_is_lost(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 20.0)
    sent = 0
    for sipp in ("a", "b"):
        agg.add(rep(1, sipp, created=10, rows=[call(int(sipp == "b"))]))
        sent += 10
    agg.flush(1)
    agg.add(rep(2, "a", created=10, rows=[call(2)]))
    sent += 10
    agg.flush(2 + LATE_S)                                       # second 2 written without b
    agg.add(rep(2, "b", created=11, rows=[call(3), call(4)]))   # b's second 2 arrives late
    sent += 11
    agg.add(rep(3, "a", created=10))
    sent += 10
    (third,) = agg.flush(3 + LATE_S)
    assert (third.t, third.created, third.completed, third.sipps) == (3, 21, 2, 2)
    agg.close()
    rows = timeline(tmp_path)
    assert [s.t for s in rows] == [1, 2, 3]
    assert sum(s.created for s in rows) == sent
    assert sum(s.completed for s in rows) == len(list(model.iter_calls(tmp_path / model.CALLS_FILE))) == 5
    assert (agg.totals.created, agg.totals.completed) == (sent, 5)


def test_calls_created_are_counted_in_the_second_they_started(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 20.0)
    agg.add(rep(1, "a", created=20, created_at={1: 20}))
    agg.flush(1)
    # SIPp's statistics said 25 for second 2, but 5 of those calls started in second 1,
    # already written: they go to the oldest open second instead of vanishing
    agg.add(rep(2, "a", created=25, created_at={1: 5, 2: 20}))
    agg.add(rep(3, "a", created=0, created_at={3: 20}))
    agg.close()
    assert [(s.t, s.created) for s in timeline(tmp_path)] == [(1, 20), (2, 25), (3, 20)]


def test_a_sipp_that_sent_its_final_report_is_no_longer_waited_for(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 0.0)
    agg.add(rep(1, "a"))
    agg.add(rep(1, "b", final=True))
    agg.flush(1)
    agg.add(rep(2, "a"))
    assert [s.t for s in agg.flush(2)] == [2]


def test_calls_land_in_calls_csv_and_histograms_give_exact_percentiles(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 20.0)
    a_rows = [call(i, setup=100.0, pdd=30.0) for i in range(9)] + [call(9, setup=1000.0, pdd=600.0)]
    b_rows = [call(10 + i, setup=200.0, pdd=None, from_user="1002") for i in range(10)]
    agg.add(rep(1, "a", rows=a_rows))
    agg.add(rep(1, "b", rows=b_rows))
    agg.flush(1)
    agg.close()
    calls = list(model.iter_calls(tmp_path / model.CALLS_FILE))
    assert sorted(c.call_id for c in calls) == sorted(r.call_id for r in a_rows + b_rows)
    assert {c.from_user for c in calls} == {"1001", "1002"}
    (hist,) = model.read_histograms(tmp_path / model.HISTOGRAMS_FILE)
    assert hist.t == 1
    assert hist.setup == {100: 9, 200: 10, 1000: 1}
    assert hist.pdd == {30: 9, 600: 1}
    (second,) = timeline(tmp_path)
    assert (second.setup_p50, second.setup_p95, second.setup_p99) == (200.0, 200.0, 1000.0)
    assert (second.pdd_p50, second.pdd_p95, second.pdd_p99) == (30.0, 600.0, 600.0)


def test_close_flushes_every_open_second(tmp_path):
    agg = Aggregator(tmp_path, offered=lambda t: 5.0)
    for sipp in ("a", "b"):
        agg.add(rep(1, sipp, created=5))
    agg.flush(1)
    agg.add(rep(2, "a", created=5, rows=[call(1)]))
    agg.add(rep(3, "a", created=5, rows=[call(2)]))
    assert agg.flush(2) == []
    agg.close()
    rows = timeline(tmp_path)
    assert [(s.t, s.created) for s in rows] == [(1, 10), (2, 5), (3, 5)]
    assert len(model.read_histograms(tmp_path / model.HISTOGRAMS_FILE)) == 3
    assert len(list(model.iter_calls(tmp_path / model.CALLS_FILE))) == 2


# ================================================================================ Conductor
class Clock:
    def __init__(self, now: float = 5_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def conductor(tmp_path: Path, prof, sipps: int = 2) -> tuple[Conductor, list[tuple[str, dict]], Clock]:
    sent: list[tuple[str, dict]] = []
    clock = Clock()
    c = Conductor(tmp_path, prof, total_sipps=sipps, send=lambda kind, data: sent.append((kind, data)),
                  clock=clock)
    return c, sent, clock


def started(c: Conductor, clock: Clock, sipps: list[str]) -> float:
    for sipp in sipps:
        c.ready(sipp)
    c.tick()
    assert c.state == "running"
    return clock.now


def rates(sent: list[tuple[str, dict]]) -> list[float]:
    return [data["per_sipp"] for kind, data in sent if kind == "voipqa:rate"]


def test_conductor_waits_until_every_sipp_is_ready(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    c.tick()
    c.ready("w1/1")
    clock.now += 5
    c.tick()
    assert (c.state, sent) == ("waiting", [])
    c.ready("w2/1")
    c.tick()
    assert c.state == "running"
    assert sent == [("voipqa:start", {}), ("voipqa:rate", {"per_sipp": 5.0, "total": 10.0})]
    (start,) = named(tmp_path, "start")
    assert (start["t"], start["sipps"], start["duration_s"]) == (0.0, 2, 10.0)


def test_conductor_sends_each_seconds_rate_split_over_the_sipps_and_changes_at_the_step(tmp_path):
    prof = profile({"shape": "step", "start_cps": 10, "step_cps": 10, "step_duration": "2s", "steps": 2})
    c, sent, clock = conductor(tmp_path, prof, sipps=2)
    t0 = started(c, clock, ["a", "b"])
    for t in (1, 2, 3):
        for sipp in ("a", "b"):
            c.on_report(rep(t, sipp, created=5 if t <= 2 else 10))
        clock.now = t0 + t
        c.tick()
    assert rates(sent) == [5.0, 5.0, 10.0, 10.0]                # seconds 0, 1 | 2, 3
    assert all(d["total"] == 2 * d["per_sipp"] for k, d in sent if k == "voipqa:rate")
    assert [(s.t, s.offered_cps, s.created) for s in timeline(tmp_path)] == [(1, 10.0, 10), (2, 10.0, 10),
                                                                              (3, 20.0, 20)]


def test_conductor_sends_a_ramps_mean_rate_of_the_coming_second(tmp_path):
    prof = profile({"shape": "ramp", "from_cps": 0, "to_cps": 40, "duration": "4s"})
    c, sent, clock = conductor(tmp_path, prof, sipps=4)
    t0 = started(c, clock, ["a", "b", "c", "d"])
    clock.now = t0 + 1.0
    c.tick()
    clock.now = t0 + 1.6                                        # a late tick: the coming second's rate
    c.tick()
    assert rates(sent) == [1.25, 3.75, 6.25]                    # 5, 15, 25 calls/s over 4 SIPps


def test_conductor_drains_at_the_shapes_end_and_the_end_event_is_the_loads_length(tmp_path):
    prof = profile({"shape": "constant", "cps": 10, "duration": "4s"})
    c, sent, clock = conductor(tmp_path, prof, sipps=2)
    t0 = started(c, clock, ["a", "b"])
    for t in (1, 2, 3, 4):
        for sipp in ("a", "b"):
            c.on_report(rep(t, sipp, created=5))
        clock.now = t0 + t
        c.tick()
    assert c.state == "draining"
    assert sent[-1] == ("voipqa:drain", {})
    assert len(rates(sent)) == 4                                # seconds 0..3, none after the end
    clock.now = t0 + 5.5
    c.on_report(rep(5, "a", final=True, rows=[call(1)]))
    c.tick()
    assert not c.done                                           # b's final report is still due
    c.on_report(rep(5, "b", final=True, rows=[call(2)]))
    c.tick()
    assert c.done
    (drain,) = named(tmp_path, "drain")
    assert (drain["t"], drain["reason"]) == (4.0, "the profile's time is over")
    (end,) = named(tmp_path, "end")
    assert (end["t"], end["reason"], end["calls"], end["drain_s"]) == (4.0, "the profile's time is over", 40, 1.5)
    assert [s.t for s in timeline(tmp_path)] == [1, 2, 3, 4, 5]
    assert len(list(model.iter_calls(tmp_path / model.CALLS_FILE))) == 2
    assert c.tick() == [] and len(named(tmp_path, "end")) == 1  # done stays done


def test_a_drain_without_every_final_report_ends_after_hold_call_timeout_and_margin(tmp_path):
    prof = profile({"shape": "constant", "cps": 10, "duration": "2s"}, hold="1s", call_timeout="2s")
    c, sent, clock = conductor(tmp_path, prof, sipps=2)
    t0 = started(c, clock, ["a", "b"])
    for sipp in ("a", "b"):
        c.on_report(rep(1, sipp, created=5))
    clock.now = t0 + 2
    c.tick()
    assert c.state == "draining"
    c.on_report(rep(3, "a", final=True))
    limit = 1 + 2 + DRAIN_MARGIN_S
    clock.now = t0 + 2 + limit - 0.5
    c.tick()
    assert not c.done
    clock.now = t0 + 2 + limit + 0.5
    c.tick()
    assert c.done
    (timeout,) = named(tmp_path, "drain-timeout")
    assert timeout["missing"] == ["b"]
    assert named(tmp_path, "end")[0]["t"] == 2.0


def test_request_stop_while_running_drains_with_the_reason(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=1)
    t0 = started(c, clock, ["a"])
    c.on_report(rep(1, "a", created=10))
    clock.now = t0 + 1
    c.tick()
    clock.now = t0 + 2.25
    c.request_stop("interrupted")
    assert c.state == "draining" and sent[-1] == ("voipqa:drain", {})
    c.request_stop("interrupted again")                        # a second signal changes nothing
    assert [e["reason"] for e in named(tmp_path, "stop-requested")] == ["interrupted"]
    assert named(tmp_path, "drain")[0]["reason"] == "interrupted"
    c.on_report(rep(3, "a", final=True))
    clock.now = t0 + 3
    c.tick()
    assert c.done
    (end,) = named(tmp_path, "end")
    assert (end["t"], end["reason"]) == (2.25, "interrupted")


def test_request_stop_before_the_start_ends_the_run_without_load(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    c.ready("a")
    c.request_stop("interrupted")
    assert c.done and sent == []
    assert named(tmp_path, "end")[0]["reason"] == "interrupted"


def test_stop_on_break_ends_a_run_whose_window_breaks(tmp_path):
    prof = profile({"shape": "constant", "cps": 10, "duration": "20s"}, criteria={"failed_pct_max": 1.0},
                   stop_on_break=True)
    c, sent, clock = conductor(tmp_path, prof, sipps=1)
    t0 = started(c, clock, ["a"])
    for t in (1, 2):
        c.on_report(rep(t, "a", created=10, rows=[call(10 * t + i, code=503, pdd=None) for i in range(10)]))
        clock.now = t0 + t
        c.tick()
    assert c.state == "draining" and sent[-1] == ("voipqa:drain", {})
    (brk,) = named(tmp_path, "break")
    assert (brk["start"], brk["end"], brk["criteria"]) == (0, 2, ["failed_pct_max"])
    assert named(tmp_path, "drain")[0]["reason"] == "a criterion broke at 10 calls/s (t=0-2 s)"
    c.on_report(rep(3, "a", final=True))
    clock.now = t0 + 3
    c.tick()
    assert c.done and named(tmp_path, "end")[0]["t"] == 2.0


def test_without_a_break_the_same_run_goes_on(tmp_path):
    prof = profile({"shape": "constant", "cps": 10, "duration": "20s"}, criteria={"failed_pct_max": 1.0},
                   stop_on_break=True)
    c, sent, clock = conductor(tmp_path, prof, sipps=1)
    t0 = started(c, clock, ["a"])
    for t in (1, 2, 3, 4):
        c.on_report(rep(t, "a", created=10, rows=[call(10 * t + i) for i in range(10)]))
        clock.now = t0 + t
        c.tick()
    assert c.state == "running" and named(tmp_path, "break") == []


def test_no_sipp_able_to_start_ends_the_run(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    c.on_error("SIPp w1/1 exited at start (code 1): Unable to load or parse 'x.xml' xml scenario file", "w1")
    c.tick()
    assert c.state == "waiting"
    c.on_error("SIPp w2/1 exited at start (code 1): Unable to load or parse 'x.xml' xml scenario file", "w2")
    c.tick()
    assert c.done and sent == []
    assert len(named(tmp_path, "generator-error")) == 2
    reason = named(tmp_path, "stop-requested")[0]["reason"]
    assert reason.startswith("no SIPp could start: SIPp w2/1 exited at start") and "Unable to load" in reason
    assert named(tmp_path, "end")[0]["reason"] == reason


def test_nothing_ready_after_the_wait_ends_the_run(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    clock.now += READY_WAIT_S + 1
    c.tick()
    assert c.done and sent == []
    assert named(tmp_path, "stop-requested")[0]["reason"] == "no SIPp could start: none was ready"


def test_some_ready_after_the_wait_starts_with_those(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    c.ready("a")
    clock.now += READY_WAIT_S + 1
    c.tick()
    assert c.state == "running" and sent[0] == ("voipqa:start", {})
    partial = named(tmp_path, "start-partial")[0]
    assert (partial["ready"], partial["expected"]) == (1, 2)


def test_after_a_partial_start_the_running_sipps_are_asked_for_the_whole_rate(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    c.ready("a")
    c.on_error("SIPp w2/1 exited at start (code 1): no such file", "w2")
    clock.now += READY_WAIT_S + 1
    c.tick()
    assert c.state == "running"
    c.on_report(rep(1, "a", created=10))
    clock.now += 1
    c.tick()
    offered = timeline(tmp_path)[0].offered_cps
    assert rates(sent)[-1] * len(c.ready_sipps) == offered == 10.0


def test_every_sipp_stopping_while_running_drains(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    t0 = started(c, clock, ["a", "b"])
    c.on_error("SIPp a died", "w1")
    c.on_error("SIPp b died", "w2")
    clock.now = t0 + 1
    c.tick()
    assert c.state == "draining"
    assert named(tmp_path, "drain")[0]["reason"] == "every SIPp stopped: SIPp b died"


def test_the_first_second_waits_for_every_sipp_that_said_it_was_ready(tmp_path):
    c, sent, clock = conductor(tmp_path, profile(CONSTANT), sipps=2)
    t0 = started(c, clock, ["a", "b"])
    c.on_report(rep(1, "a", created=5))
    clock.now = t0 + 1.01
    c.tick()
    c.on_report(rep(1, "b", created=5))
    clock.now = t0 + 2.01
    c.tick()
    first = timeline(tmp_path)[0]
    assert (first.t, first.sipps, first.created) == (1, 2, 10)


# ================================================================================ cdrcheck
def cdr_db(path: Path, rows: list[dict[str, Any]]) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE voipqa_cdr ({', '.join(f'{c} {_sql_type(c)}' for c in CANONICAL_COLUMNS)})")
        db.executemany(f"INSERT INTO voipqa_cdr VALUES ({', '.join('?' * len(CANONICAL_COLUMNS))})",
                       [tuple(r.get(c) for c in CANONICAL_COLUMNS) for r in rows])
    return path


def _sql_type(column: str) -> str:
    if column in ("start_time", "answer_time", "end_time", "duration"):
        return "REAL"
    return "INTEGER" if column == "sip_code" else "TEXT"


def cdr_of(row: CallRow) -> dict[str, Any]:
    answer = row.answered_at
    return {"call_id": row.call_id, "from_user": row.from_user, "to_user": row.to_user, "account": row.from_user,
            "start_time": row.started, "answer_time": answer, "end_time": row.ended,
            "duration": row.duration_s or 0.0, "sip_code": row.code}


def load_run(tmp_path: Path) -> tuple[Path, list[CallRow], set[str], Path]:
    """80 calls over seconds 1..8: every 10th busy as expected; the answered calls among the
    first 30 have no CDR (27 of them); the last 50 all have theirs."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows = []
    for i in range(80):
        busy = i % 10 == 9
        rows.append(call(i, t=1 + i // 10, code=486 if busy else 200, expect=486 if busy else 200,
                         pdd=None if busy else 40.0, duration=1.0 + (i % 7) * 0.5))
    out = CsvAppender(run_dir / model.CALLS_FILE, CallRow.COLUMNS)
    out.write_text(model.call_rows_text(rows))
    out.close()
    missing = {r.call_id for r in rows[:30] if r.answered}
    db = cdr_db(tmp_path / "cdr.db", [cdr_of(r) for r in rows if r.call_id not in missing])
    return run_dir, rows, missing, db


def test_cdr_check_counts_missing_cdrs_and_the_seconds_they_cost(tmp_path):
    run_dir, rows, missing, db = load_run(tmp_path)
    result = cdrcheck.check(run_dir, open_source(f"sqlite:///{db}"), describe="sqlite:///cdr.db")
    assert len(missing) == 27
    assert (result["checked"], result["answered"], result["missing"]) == (80, 72, 27)
    assert (result["duplicate"], result["mismatched"]) == (0, 0)
    assert result["loss_pct"] == 37.5
    lost = sum(r.duration_s for r in rows if r.call_id in missing)
    assert result["billable_seconds_lost"] == pytest.approx(lost)
    assert result["by_second"] == {"1": [9, 9], "2": [9, 9], "3": [9, 9], "4": [9, 0], "5": [9, 0],
                                   "6": [9, 0], "7": [9, 0], "8": [9, 0]}
    assert len(result["examples"]) == cdrcheck.EXAMPLES == 20
    assert {e["kind"] for e in result["examples"]} == {"missing"}
    assert {e["call_id"] for e in result["examples"]} <= missing
    assert result["source"] == "sqlite:///cdr.db"
    assert model.read_json(run_dir / model.CDR_FILE) == json.loads(json.dumps(result))


def test_cdr_check_in_batches_gives_the_same_answer(tmp_path):
    run_dir, _, _, db = load_run(tmp_path)
    whole = cdrcheck.check(run_dir, open_source(f"sqlite:///{db}"))
    batched = cdrcheck.check(run_dir, open_source(f"sqlite:///{db}"), batch=2)
    assert batched == whole


def test_cdr_check_with_every_cdr_present_loses_nothing(tmp_path):
    run_dir, rows, _, _ = load_run(tmp_path)
    db = cdr_db(tmp_path / "all.db", [cdr_of(r) for r in rows])
    result = cdrcheck.check(run_dir, open_source(f"sqlite:///{db}"))
    assert (result["missing"], result["loss_pct"], result["billable_seconds_lost"], result["examples"]) == \
        (0, 0.0, 0.0, [])


def test_cdr_check_without_a_source_is_skipped(tmp_path):
    result = cdrcheck.check(tmp_path, None)
    assert result == {"checked": 0, "skipped": "the environment has no CDR source", "source": None}
    assert model.read_json(tmp_path / model.CDR_FILE) == result


# ================================================================================ runner._Progress
def test_progress_reads_only_complete_new_timeline_rows_and_sums_totals(tmp_path):
    progress = _Progress(tmp_path, duration_s=10.0)
    assert progress.update() is None and progress.started_at() is None
    writer = CsvAppender(tmp_path / model.TIMELINE_FILE, Second.columns())
    writer.write(Second(t=1, offered_cps=10.0, created=10, answered=8, failed=1, concurrent=9,
                        setup_p95=120.0).to_row())
    writer.write(Second(t=2, offered_cps=10.0, created=11, answered=9, failed=0, concurrent=12).to_row())
    writer.flush()
    line = progress.update()
    assert (line["t"], line["achieved_cps"], line["concurrent"], line["setup_p95"]) == (2, 11, 12, None)
    assert (line["created"], line["answered"], line["failed"]) == (21, 17, 1)
    assert progress.update() is None                            # nothing new
    with open(tmp_path / model.TIMELINE_FILE, "a") as fh:       # a torn row: the master is mid-write
        text = ",".join(Second(t=3, created=7, answered=7).to_row())
        fh.write(text[:5])
        fh.flush()
        assert progress.update() is None
        fh.write(text[5:] + "\n")
    line = progress.update()
    assert (line["t"], line["created"], line["answered"]) == (3, 28, 24)
    assert "0:03 (-0:07)" in progress.describe(line)


def test_progress_finds_the_start_event(tmp_path):
    progress = _Progress(tmp_path, duration_s=10.0)
    model.append_event(tmp_path / model.EVENTS_FILE, 0.0, "worker-joined", worker="w1")
    assert progress.started_at() is None
    model.append_event(tmp_path / model.EVENTS_FILE, 0.0, "start", sipps=1)
    assert progress.started_at() is not None
    assert 0.0 <= progress.clock() < 5.0


def test_a_long_run_keeps_only_what_its_live_judge_needs_in_memory(tmp_path):
    """An 8-hour soak must not grow with its length: without stop_on_break no second stays in
    memory; with it, the longest judged window and some slack."""
    agg = Aggregator(tmp_path, lambda t: 10.0, keep_s=5)
    for t in range(1, 50):
        agg.add({"t": t, "sipp": "w1/1", "worker": "w1", "created": 10, "completed": 10, "answered": 10})
        agg.flush(t, everything=True)
    assert [s.t for s in agg.written] == [45, 46, 47, 48, 49] and len(agg.histograms) == 5
    assert len(read_timeline(tmp_path / "timeline.csv")) == 49, "the files keep every second"

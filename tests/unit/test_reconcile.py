"""Three-way reconciliation: each discrepancy kind from hand-made records and CDRs, and the seconds."""

from __future__ import annotations

from typing import Any, Iterable

import pytest

from qa.cases import checks
from qa.cdr.reconcile import KINDS, reconcile
from qa.record import CallRecord

T0 = 1_700_000_000.0


class ListSource:
    """Canonical rows held in memory: what a real source returns after normalisation."""

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self.data = list(rows)

    def rows(self, call_id: str) -> list[dict[str, Any]]:
        return [r for r in self.data if r["call_id"] == call_id]

    def rows_for(self, call_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        return {cid: found for cid in call_ids if (found := self.rows(cid))}

    def rows_in_window(self, start: float, end: float) -> list[dict[str, Any]]:
        return [r for r in self.data if start <= (r.get("start_time") or 0) <= end]


class RowsOnly:
    """A minimal third-party source: only ``rows(call_id)``."""

    def __init__(self, source: ListSource) -> None:
        self.source = source

    def rows(self, call_id: str) -> list[dict[str, Any]]:
        return self.source.rows(call_id)


def call(cid: str, code: int = 200, seconds: float | None = 3.0, frm: str = "1001", to: str = "1555000100",
         at: float = 0.0) -> CallRecord:
    answered = 200 <= code < 300
    return CallRecord(case=cid, call_id=cid, from_=frm, to=to, started=T0 + at,
                      answered=T0 + at + 0.1 if answered else None,
                      ended=T0 + at + 0.1 + (seconds or 0) if answered else T0 + at + 0.05,
                      final_code=code, duration_s=seconds if answered else None)


def cdr(cid: str, code: int = 200, duration: float = 3.0, frm: str = "1001", to: str = "1555000100",
        account: str | None = "1001", carrier: str | None = "carrier-a", at: float = 0.0) -> dict[str, Any]:
    return {"call_id": cid, "from_user": frm, "to_user": to, "account": account, "start_time": T0 + at,
            "answer_time": T0 + at + 0.1 if code == 200 else None, "end_time": T0 + at + duration,
            "duration": duration, "sip_code": code, "sip_reason": None, "carrier": carrier}


def leg(cid: str, code: int = 200, duration: float = 3.0, at: float = 0.0) -> dict[str, Any]:
    return cdr(cid, code, duration, account=None, at=at)


def only(result, cid):
    return next(c for c in result.calls if c.call_id == cid)


def kinds(result, cid):
    return [p.kind for p in only(result, cid).problems]


def test_a_clean_run_reconciles():
    records = [call("ans"), call("zero", 402, frm="1002"), call("auth", 403)]
    platform = ListSource([cdr("ans", duration=3.4), cdr("zero", 402, 0.0, frm="1002", account="1002", carrier=None)])
    result = reconcile(records, platform, ListSource([leg("ans", duration=3.1)]))
    assert result.ok and [c.status for c in result.calls] == ["ok", "ok", "ok"]
    assert result.totals() == {"calls": 3, "ok": 3, **{k: 0 for k in KINDS}, "orphans": 0, "carrier_orphans": 0,
                               "not_placed": 0}
    s = result.seconds
    assert (s.customer_answered, s.billed, s.lost, s.over_billed) == (3.0, 3.4, 0.0, 0.0)


def test_missing_cdr_loses_the_answered_seconds():
    result = reconcile([call("ans", seconds=4.25)], ListSource(), ListSource([leg("ans")]))
    assert kinds(result, "ans") == ["missing", "carrier_saw_unrouted"]
    assert only(result, "ans").status == "missing"
    assert result.seconds.lost_missing == result.seconds.lost == 4.25
    assert not result.ok


def test_a_failed_call_may_have_no_cdr_but_not_a_billable_one():
    result = reconcile([call("busy", 486)], ListSource([cdr("busy", 486, duration=12.0)]))
    assert kinds(result, "busy") == ["billed_but_failed"]
    problem = only(result, "busy").problems[0]
    assert (problem.field, problem.customer, problem.platform) == ("duration", 0.0, 12.0)
    assert result.seconds.over_billed == 12.0 and result.seconds.lost == 0.0


def test_duplicate_billable_rows_are_billed_twice():
    result = reconcile([call("ans")], ListSource([cdr("ans"), cdr("ans", duration=2.9)]))
    assert kinds(result, "ans") == ["duplicate"]
    assert result.seconds.over_billed == 2.9 and result.seconds.billed == 3.0


def test_two_rows_for_a_failed_call_are_duplicates():
    rows = [cdr("rej", 503, 0.0), cdr("rej", 503, 0.0)]
    assert kinds(reconcile([call("rej", 503)], ListSource(rows)), "rej") == ["duplicate"]


def test_mismatched_fields_name_the_field_and_both_values():
    record = call("ans", frm="1001", to="+1555000100")
    row = cdr("ans", frm="1004", to="1555000100", account="1004", duration=3.0)
    problems = only(reconcile([record], ListSource([row])), "ans").problems
    assert [(p.kind, p.field, p.customer, p.platform) for p in problems] == [
        ("mismatched", "from_user", "1001", "1004"), ("mismatched", "account", "1001", "1004")]


def test_failed_call_with_the_wrong_code():
    result = reconcile([call("blk", 403)], ListSource([cdr("blk", 402, 0.0, carrier=None)]))
    (problem,) = only(result, "blk").problems
    assert (problem.kind, problem.field, problem.customer, problem.platform) == ("mismatched", "sip_code", 403, 402)


@pytest.mark.parametrize("billed, lost, over, ok", [
    (3.0, 0.0, 0.0, True), (2.0, 0.0, 0.0, True), (4.0, 0.0, 0.0, True),    # ±1 s is within tolerance
    (1.5, 1.5, 0.0, False), (5.25, 0.0, 2.25, False), (0.0, 3.0, 0.0, False),
])
def test_duration_tolerance_and_under_and_over_billing(billed, lost, over, ok):
    result = reconcile([call("ans", seconds=3.0)], ListSource([cdr("ans", duration=billed)]))
    assert result.ok is ok
    assert (result.seconds.lost_under_billed, result.seconds.over_billed) == (lost, over)
    if not ok:
        assert only(result, "ans").problems[0].field == "duration"


def test_tolerance_is_a_parameter():
    assert not reconcile([call("ans", seconds=3.0)], ListSource([cdr("ans", duration=3.4)]), tolerance_s=0.25).ok


def test_billed_duration_is_also_judged_against_the_carrier():
    result = reconcile([call("ans", seconds=3.0)], ListSource([cdr("ans", duration=3.0)]),
                       ListSource([leg("ans", duration=6.0)]))
    (problem,) = only(result, "ans").problems
    assert (problem.kind, problem.field, problem.carrier) == ("mismatched", "duration", 6.0)
    assert "carrier measured 6.00" in problem.detail


def test_carrier_saw_a_call_the_platform_has_no_cdr_of():
    result = reconcile([call("ghost", 403)], ListSource(), ListSource([leg("ghost", 403, 0.0)]))
    assert kinds(result, "ghost") == ["carrier_saw_unrouted"]


def test_platform_routed_but_carrier_never_saw():
    result = reconcile([call("ans")], ListSource([cdr("ans")]), ListSource())
    (problem,) = only(result, "ans").problems
    assert problem.kind == "routed_carrier_never_saw" and "carrier-a" in problem.detail
    # a failed call the platform stopped before routing (no carrier named) needs no carrier CDR
    assert reconcile([call("zero", 402)], ListSource([cdr("zero", 402, 0.0, carrier=None)]), ListSource()).ok


def test_failover_carrier_legs_use_the_answering_one():
    carrier = ListSource([leg("ans", 503, 0.0), leg("ans", 200, 3.0)])
    result = reconcile([call("ans")], ListSource([cdr("ans")]), carrier)
    assert result.ok and only(result, "ans").carrier_duration_s == 3.0 and only(result, "ans").carrier_rows == 2


def test_without_a_carrier_source_the_carrier_is_not_checked():
    result = reconcile([call("ans")], ListSource([cdr("ans")]))
    assert result.ok and not result.carrier_checked and only(result, "ans").carrier_rows is None


def test_orphans_are_cdrs_in_the_run_window_no_customer_placed():
    platform = ListSource([cdr("ans"), cdr("stranger", duration=7.0, at=1.0), cdr("yesterday", at=-86400)])
    carrier = ListSource([leg("ans"), leg("stranger-leg", at=2.0)])
    result = reconcile([call("ans")], platform, carrier)
    assert [r["call_id"] for r in result.orphans] == ["stranger"]
    assert [r["call_id"] for r in result.carrier_orphans] == ["stranger-leg"]
    assert result.seconds.orphan_billed == 7.0 and not result.ok
    assert reconcile([call("ans")], platform, carrier, find_orphans=False).ok


def test_calls_never_placed_are_listed_not_judged():
    result = reconcile([CallRecord(case="no-sipp"), call("ans")], ListSource([cdr("ans")]))
    assert result.not_placed == ["no-sipp"] and result.ok and len(result.calls) == 1


def test_a_rows_only_source_still_reconciles_without_orphans():
    platform = ListSource([cdr("ans"), cdr("stranger", at=1.0)])
    result = reconcile([call("ans")], RowsOnly(platform))
    assert result.ok and result.orphans == []


def test_billed_seconds_lost_over_a_run():
    records = [call("missing", seconds=3.0), call("short", seconds=4.0, at=1), call("long", seconds=2.0, at=2),
               call("twice", seconds=3.0, at=3), call("busy", 486, at=4), call("fine", seconds=10.0, at=5)]
    platform = ListSource([cdr("short", duration=2.5, at=1), cdr("long", duration=4.0, at=2),
                           cdr("twice", duration=3.0, at=3), cdr("twice", duration=3.0, at=3),
                           cdr("busy", 486, duration=1.5, at=4), cdr("fine", duration=10.4, at=5)])
    result = reconcile(records, platform)
    s = result.seconds
    assert s.customer_answered == 3.0 + 4.0 + 2.0 + 3.0 + 10.0
    assert (s.lost_missing, s.lost_under_billed, s.lost) == (3.0, 1.5, 4.5)
    assert s.over_billed == 2.0 + 3.0 + 1.5
    assert s.billed == 2.5 + 4.0 + 3.0 + 10.4
    assert [only(result, c).status for c in ("missing", "short", "long", "twice", "busy", "fine")] == [
        "missing", "mismatched", "mismatched", "duplicate", "billed_but_failed", "ok"]
    data = result.to_dict()
    assert data["seconds"]["lost"] == 4.5 and data["totals"]["mismatched"] == 2


@pytest.mark.parametrize("record, row", [
    (call("a"), cdr("a")), (call("a"), None), (call("a"), cdr("a", duration=1.0)),
    (call("a", 486), cdr("a", 486, 5.0)), (call("a", 486), cdr("a", 486, 0.0)), (call("a", 403), cdr("a", 402, 0)),
    (call("a", frm="1001"), cdr("a", frm="1002", account=None)), (call("a", to="+1555000100"), cdr("a")),
])
def test_agrees_with_the_case_runner_rule(record, row):
    """The per-call rule of qa.cases.checks and the reconciliation judge a single CDR alike."""
    record.cdr = None if row is None else row | {"count": 1}
    result = reconcile([record], ListSource([row] if row else []))
    assert (checks.platform_cdr(record) == []) == result.ok


def test_json_shape_is_stable():
    data = reconcile([call("ans")], ListSource([cdr("ans")])).to_dict()
    assert list(data) == ["ok", "tolerance_s", "carrier_checked", "window", "totals", "seconds", "calls",
                          "orphans", "carrier_orphans", "not_placed"]
    assert list(data["seconds"]) == ["customer_answered", "billed", "lost_missing", "lost_under_billed",
                                     "over_billed", "orphan_billed", "lost"]
    assert list(data["calls"][0]) == ["status", "case", "call_id", "final_code", "answered", "customer_duration_s",
                                      "platform_rows", "carrier_rows", "platform_duration_s", "carrier_duration_s",
                                      "billed_lost_s", "over_billed_s", "problems"]

"""Three-way reconciliation of a run: what the customers saw, what the carrier saw, what
the platform billed (issue 3; DESIGN §6).

Per call (joined on the Call-ID):

* ``missing`` — an answered call without a platform CDR (revenue lost);
* ``duplicate`` — more than one billable CDR for an answered call (or rows for a failed one);
* ``mismatched`` — from/to/account/SIP code differ, or the billed duration is more than
  the tolerance away from what the customer or the carrier measured;
* ``billed_but_failed`` — a failed call with billable seconds;
* ``carrier_saw_unrouted`` — the carrier has the call but the platform has no CDR of it;
* ``routed_carrier_never_saw`` — the platform says it routed (answered, or names a
  carrier) but the carrier never saw the INVITE. A failed call whose case passed is not
  one: the case expected that failure (e.g. a 503 with every carrier down, where the
  platform names the carrier it last tried and nobody answered).

Only calls are reconciled: a record whose request was not an INVITE (a REGISTER case)
has no CDR to find, so it is left out (``Reconciliation.not_calls`` counts them).

For the run: ``orphans`` — platform CDRs in the run's time window whose Call-ID no
customer placed — and the seconds: billed seconds lost (answered seconds with no CDR,
plus under-billing beyond the tolerance) and over-billed seconds (over-billing beyond
the tolerance, failed calls billed, duplicate rows). Pure given the rows: the sources are
asked once per run (``rows_for``) and everything else is arithmetic.

The per-call rule of the case runner (``qa.cases.checks.platform_cdr``) judges one joined
CDR and returns sentences for a verdict; this module needs the same judgement as data
(which field, which values, how many seconds) over a whole run, so it shares the
tolerance and the dialled-number rule with it rather than parsing its sentences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from qa.cdr.source import BatchCdrSource, CdrSource
from qa.record import DURATION_TOLERANCE_S, CallRecord

Row = dict[str, Any]

#: Problem kinds, most serious first: a call's status is the first kind it has.
KINDS = ("missing", "duplicate", "billed_but_failed", "mismatched", "carrier_saw_unrouted",
         "routed_carrier_never_saw")

#: Slack around the run's first INVITE and last hang-up when looking for orphan CDRs.
WINDOW_SLACK_S = 2.0


@dataclass(frozen=True)
class Problem:
    """One disagreement of one call; ``field`` is the CDR column when one is at fault."""

    kind: str
    detail: str
    field: str | None = None
    customer: Any = None
    platform: Any = None
    carrier: Any = None


@dataclass
class CallResult:
    """One customer call against its platform and carrier CDRs."""

    case: str
    call_id: str
    final_code: int | None
    answered: bool
    customer_duration_s: float | None
    platform_rows: int
    carrier_rows: int | None  # None: no carrier source, not checked
    platform_duration_s: float | None = None
    carrier_duration_s: float | None = None
    billed_lost_s: float = 0.0
    over_billed_s: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        kinds = {p.kind for p in self.problems}
        return next((k for k in KINDS if k in kinds), "ok")


@dataclass
class Seconds:
    """The money view of the run, in seconds."""

    customer_answered: float = 0.0
    billed: float = 0.0
    lost_missing: float = 0.0
    lost_under_billed: float = 0.0
    over_billed: float = 0.0
    orphan_billed: float = 0.0

    @property
    def lost(self) -> float:
        return self.lost_missing + self.lost_under_billed


@dataclass
class Reconciliation:
    """The whole run: per-call results, orphan CDRs, totals and seconds."""

    calls: list[CallResult]
    orphans: list[Row]
    carrier_orphans: list[Row]
    seconds: Seconds
    tolerance_s: float
    carrier_checked: bool
    window: tuple[float, float] | None
    not_placed: list[str] = field(default_factory=list)  # cases whose call never got a Call-ID
    not_calls: int = 0  # records that were not calls (REGISTER...): nothing to bill

    @property
    def ok(self) -> bool:
        return not self.orphans and not self.carrier_orphans and all(c.status == "ok" for c in self.calls)

    def totals(self) -> dict[str, int]:
        counts = {"calls": len(self.calls), "ok": sum(c.status == "ok" for c in self.calls)}
        counts |= {k: sum(any(p.kind == k for p in c.problems) for c in self.calls) for k in KINDS}
        return counts | {"orphans": len(self.orphans), "carrier_orphans": len(self.carrier_orphans),
                         "not_placed": len(self.not_placed)}

    def to_dict(self) -> dict[str, Any]:
        """The stable ``--json`` shape (documented in qa/cli/cdr.py)."""
        secs = asdict(self.seconds) | {"lost": self.seconds.lost}
        return {
            "ok": self.ok,
            "tolerance_s": self.tolerance_s,
            "carrier_checked": self.carrier_checked,
            "window": {"start": self.window[0], "end": self.window[1]} if self.window else None,
            "totals": self.totals(),
            "seconds": {k: round(v, 3) for k, v in secs.items()},
            "calls": [_call_dict(c) for c in self.calls],
            "orphans": [_brief(r) for r in self.orphans],
            "carrier_orphans": [_brief(r) for r in self.carrier_orphans],
            "not_placed": list(self.not_placed),
        }


def _call_dict(call: CallResult) -> dict[str, Any]:
    return {"status": call.status} | asdict(call)


BRIEF_COLUMNS = ("call_id", "from_user", "to_user", "account", "start_time", "duration", "sip_code", "carrier")


def _brief(row: Row) -> dict[str, Any]:
    return {k: row.get(k) for k in BRIEF_COLUMNS}


# -- the rules ------------------------------------------------------------------------------
def answered(record: CallRecord) -> bool:
    return record.final_code is not None and 200 <= record.final_code < 300


def is_call(record: CallRecord) -> bool:
    """An INVITE (or a record that does not say): REGISTERs and the like are not billed."""
    method = (record.customer or {}).get("method")
    return method in (None, "INVITE")


def expected_failure(record: CallRecord) -> bool:
    """A failed call whose case passed: the case expected this failure."""
    return not answered(record) and record.verdict == "pass"


def customer_seconds(record: CallRecord) -> float | None:
    """What the customer measured: the record's duration, or answer to hang-up."""
    if record.duration_s is not None:
        return float(record.duration_s)
    if record.answered is not None and record.ended is not None:
        return max(0.0, record.ended - record.answered)
    return None


def same_number(dialled: str | None, billed: str | None) -> bool:
    """The dialled number and the billed one agree (the platform may strip +/00/prefixes).

    The rule of ``qa.cases.checks``: equal, or the dialled number ends with the billed one.
    """
    return dialled is None or billed is None or dialled == billed or str(dialled).endswith(str(billed))


def _billable(row: Row) -> bool:
    code = row.get("sip_code")
    return (code is not None and 200 <= code < 300) or bool(row.get("duration"))


def _carrier_answer(rows: list[Row]) -> Row | None:
    """The carrier leg that answered (failover leaves earlier failed legs), else the last."""
    return next((r for r in rows if (r.get("sip_code") or 0) // 100 == 2), rows[-1] if rows else None)


def _parties(record: CallRecord, cdr: Row) -> list[Problem]:
    out = []
    if record.from_ and cdr.get("from_user") not in (None, record.from_):
        out.append(Problem("mismatched", f"CDR from {cdr['from_user']}, customer called from {record.from_}",
                           "from_user", record.from_, cdr["from_user"]))
    if not same_number(record.to, cdr.get("to_user")):
        out.append(Problem("mismatched", f"CDR to {cdr['to_user']}, customer dialled {record.to}",
                           "to_user", record.to, cdr["to_user"]))
    if record.from_ and cdr.get("account") not in (None, record.from_):
        out.append(Problem("mismatched", f"CDR billed account {cdr['account']}, the caller is {record.from_}",
                           "account", record.from_, cdr["account"]))
    code = cdr.get("sip_code")
    if code is not None and record.final_code is not None and code != record.final_code:
        out.append(Problem("mismatched", f"CDR says {code}, the customer got {record.final_code}",
                           "sip_code", record.final_code, code))
    return out


class _Judge:
    """Judges one call against its rows: problems and the seconds lost or over-billed."""

    def __init__(self, tolerance_s: float) -> None:
        self.tol = tolerance_s

    def call(self, record: CallRecord, platform: list[Row], carrier: list[Row] | None) -> CallResult:
        result = CallResult(case=record.case, call_id=str(record.call_id), final_code=record.final_code,
                            answered=answered(record), customer_duration_s=customer_seconds(record),
                            platform_rows=len(platform),
                            carrier_rows=None if carrier is None else len(carrier))
        leg = _carrier_answer(carrier or [])
        result.carrier_duration_s = leg.get("duration") if leg else None
        if result.answered:
            self._answered(record, platform, result)
        else:
            self._failed(record, platform, result)
        if carrier is not None and not expected_failure(record):
            self._routing(platform, carrier, result)
        return result

    def _answered(self, record: CallRecord, platform: list[Row], result: CallResult) -> None:
        measured = result.customer_duration_s
        billable = [r for r in platform if _billable(r)]
        if not billable:
            result.billed_lost_s = measured or 0.0
            result.problems.append(Problem("missing", f"answered call ({_s(measured)} s) has no platform CDR",
                                           customer=measured))
            return
        cdr, extra = billable[0], billable[1:]
        if extra:
            over = sum(r.get("duration") or 0.0 for r in extra)
            result.over_billed_s += over
            result.problems.append(Problem("duplicate", f"{len(billable)} billable CDRs for one call "
                                                        f"({_s(over)} s billed twice)", platform=len(billable)))
        result.platform_duration_s = billed = cdr.get("duration") or 0.0
        result.problems += _parties(record, cdr)
        self._duration(measured, billed, result)

    def _duration(self, measured: float | None, billed: float, result: CallResult) -> None:
        if measured is not None and abs(billed - measured) > self.tol:
            if billed < measured:
                result.billed_lost_s += measured - billed
            else:
                result.over_billed_s += billed - measured
            result.problems.append(Problem("mismatched", f"CDR duration {_s(billed)} s, customer measured "
                                                         f"{_s(measured)} s (±{self.tol:g} s)",
                                           "duration", measured, billed, result.carrier_duration_s))
        theirs = result.carrier_duration_s
        if theirs is not None and abs(billed - theirs) > self.tol:
            result.problems.append(Problem("mismatched", f"CDR duration {_s(billed)} s, carrier measured "
                                                         f"{_s(theirs)} s (±{self.tol:g} s)",
                                           "duration", measured, billed, theirs))

    def _failed(self, record: CallRecord, platform: list[Row], result: CallResult) -> None:
        if len(platform) > 1:
            result.problems.append(Problem("duplicate", f"{len(platform)} CDRs for one failed call",
                                           platform=len(platform)))
        for row in platform:
            if row.get("duration"):
                result.over_billed_s += row["duration"]
                result.problems.append(Problem("billed_but_failed", f"failed call ({record.final_code}) billed "
                                                                    f"{_s(row['duration'])} s", "duration",
                                               0.0, row["duration"]))
        if platform:
            result.problems += _parties(record, platform[0])

    @staticmethod
    def _routing(platform: list[Row], carrier: list[Row], result: CallResult) -> None:
        routed = any(_billable(r) or r.get("carrier") for r in platform)
        if carrier and not platform:
            result.problems.append(Problem("carrier_saw_unrouted", "the carrier has the call, the platform has "
                                                                   "no CDR of it", carrier=len(carrier)))
        elif routed and not carrier:
            names = sorted({r.get("carrier") for r in platform if r.get("carrier")})
            result.problems.append(Problem("routed_carrier_never_saw", "the platform routed the call"
                                           + (f" to {', '.join(names)}" if names else "")
                                           + " but the carrier never saw it", platform=len(platform)))


def _s(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


# -- the run ----------------------------------------------------------------------------------
def _fetch(source: CdrSource, call_ids: list[str]) -> dict[str, list[Row]]:
    if isinstance(source, BatchCdrSource):
        return source.rows_for(call_ids)
    return {cid: rows for cid in call_ids if (rows := source.rows(cid))}


def total_seconds(calls: list[CallResult], orphans: list[Row]) -> Seconds:
    """The run's seconds from its calls: lost = no CDR + under-billed; over = the rest."""
    return Seconds(
        customer_answered=sum(c.customer_duration_s or 0.0 for c in calls if c.answered),
        billed=sum(c.platform_duration_s or 0.0 for c in calls),
        lost_missing=sum(c.billed_lost_s for c in calls if c.status == "missing"),
        lost_under_billed=sum(c.billed_lost_s for c in calls if c.status != "missing"),
        over_billed=sum(c.over_billed_s for c in calls),
        orphan_billed=sum(r.get("duration") or 0.0 for r in orphans),
    )


def run_window(records: Iterable[CallRecord], slack_s: float = WINDOW_SLACK_S) -> tuple[float, float] | None:
    """From the first INVITE to the last hang-up of the run, with some slack."""
    starts = [r.started for r in records if r.started is not None]
    ends = [t for r in records for t in (r.ended, r.answered, r.started) if t is not None]
    if not starts:
        return None
    return min(starts) - slack_s, max(ends) + slack_s


def _orphans(source: CdrSource | None, window: tuple[float, float] | None, known: set[str]) -> list[Row]:
    if source is None or window is None or not isinstance(source, BatchCdrSource):
        return []
    return [r for r in source.rows_in_window(*window) if r.get("call_id") not in known]


def reconcile(records: Iterable[CallRecord], platform: CdrSource, carrier: CdrSource | None = None,
              tolerance_s: float = DURATION_TOLERANCE_S, find_orphans: bool = True,
              known_call_ids: Iterable[str] = ()) -> Reconciliation:
    """Reconcile the customer records of a run with the platform's (and carrier's) CDRs.

    ``platform`` and ``carrier`` must give canonical rows (``qa.cdr.open_source``,
    ``qa.cdr.carrier_source``); with ``carrier=None`` the carrier checks are skipped.
    A record seen twice (same Call-ID) counts once, the last one winning.
    ``known_call_ids`` are the run's other calls (its load runs, checked by their own
    report): their CDRs are not orphans. Records that are not calls are left out.
    """
    placed: dict[str, CallRecord] = {}
    not_placed: list[str] = []
    not_calls = 0
    for record in records:
        if not is_call(record):
            not_calls += 1
        elif record.call_id:
            placed[record.call_id] = record
        else:
            not_placed.append(record.case)
    ids = list(placed)
    platform_rows = _fetch(platform, ids)
    carrier_rows = _fetch(carrier, ids) if carrier is not None else None
    judge = _Judge(tolerance_s)
    calls = [judge.call(rec, platform_rows.get(cid, []),
                        None if carrier_rows is None else carrier_rows.get(cid, []))
             for cid, rec in placed.items()]
    window = run_window(placed.values())
    known = set(ids) | set(known_call_ids)
    orphans = _orphans(platform, window, known) if find_orphans else []
    carrier_orphans = _orphans(carrier, window, known) if find_orphans else []
    return Reconciliation(calls=calls, orphans=orphans, carrier_orphans=carrier_orphans,
                          seconds=total_seconds(calls, orphans),
                          tolerance_s=tolerance_s, carrier_checked=carrier is not None, window=window,
                          not_placed=not_placed, not_calls=not_calls)

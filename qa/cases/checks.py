"""Judging a call: pure functions from a CallRecord (and an expectation) to reasons.

Each check returns the reasons it disagrees, each naming the witness that disagreed
(customer, carrier, platform, wire), or an empty list. The case runner folds them into
the record's verdict; the Robot keywords and pytest helpers raise on them. One place
decides what "right" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qa.cases.record import CallRecord

#: How far apart two witnesses' durations may be (DESIGN: CDR duration within ±1 s).
DURATION_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class Expectation:
    """What a case expects of its call. ``None`` means "not judged"."""

    final_code: int | None = 200
    carrier_sees: bool | None = None
    duration_tolerance_s: float = DURATION_TOLERANCE_S


def final_code(record: CallRecord, expected: int) -> list[str]:
    """The customer got the expected final response."""
    if record.final_code == expected:
        return []
    got = record.final_code if record.final_code is not None else "no final response"
    return [f"customer: final response {got}, expected {expected}"]


def carrier_saw(record: CallRecord, expected: bool) -> list[str]:
    """The carrier did (or did not) receive the INVITE."""
    if expected and record.carrier is None:
        return ["carrier: never saw the INVITE"]
    if not expected and record.carrier is not None:
        return [f"carrier: saw the INVITE (answered {record.carrier_code}) that the platform should have stopped"]
    return []


def _close(a: float | None, b: float | None, tolerance: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= tolerance


def platform_cdr(record: CallRecord, tolerance: float = DURATION_TOLERANCE_S) -> list[str]:
    """The platform billed what the customer saw: code, parties, duration.

    An answered call needs exactly one CDR whose duration is within ``tolerance`` of
    the customer's; a failed call may have a row but no billable seconds.
    """
    cdr = record.cdr
    answered = record.final_code is not None and 200 <= record.final_code < 300
    if cdr is None:
        return ["platform: no CDR for an answered call"] if answered else []
    reasons: list[str] = []
    if cdr.get("count", 1) != 1:
        reasons.append(f"platform: {cdr.get('count')} CDRs for one call")
    code = cdr.get("sip_code")
    if code is not None and record.final_code is not None and int(code) != record.final_code:
        reasons.append(f"platform: CDR says {code}, the customer got {record.final_code}")
    reasons += _cdr_parties(record, cdr)
    duration = cdr.get("duration")
    if answered and not _close(float(duration or 0), record.duration_s, tolerance):
        reasons.append(f"platform: CDR duration {_fmt(duration)} s, customer measured "
                       f"{_fmt(record.duration_s)} s (tolerance ±{tolerance:g} s)")
    if not answered and duration:
        reasons.append(f"platform: failed call billed {_fmt(duration)} s")
    return reasons


def _cdr_parties(record: CallRecord, cdr: dict[str, Any]) -> list[str]:
    reasons = []
    if record.from_ and cdr.get("from_user") not in (None, record.from_):
        reasons.append(f"platform: CDR from {cdr.get('from_user')}, customer called from {record.from_}")
    if record.to and cdr.get("to_user") not in (None, record.to) and not str(record.to).endswith(str(cdr.get("to_user"))):
        reasons.append(f"platform: CDR to {cdr.get('to_user')}, customer dialled {record.to}")
    return reasons


def carrier_duration(record: CallRecord, tolerance: float = DURATION_TOLERANCE_S) -> list[str]:
    """The carrier measured the same call length as the customer."""
    if record.carrier is None or record.final_code != 200 or record.duration_s is None:
        return []
    theirs = record.carrier.get("duration_s")
    if theirs is None or _close(float(theirs), record.duration_s, tolerance):
        return []
    return [f"carrier: measured {_fmt(theirs)} s, customer {_fmt(record.duration_s)} s"]


def _fmt(value: Any) -> str:
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return str(value)


def judge(record: CallRecord, expect: Expectation) -> CallRecord:
    """Fold every applicable check into the record's verdict and reasons."""
    reasons: list[str] = []
    if expect.final_code is not None:
        reasons += final_code(record, expect.final_code)
    if expect.carrier_sees is not None:
        reasons += carrier_saw(record, expect.carrier_sees)
    reasons += platform_cdr(record, expect.duration_tolerance_s)
    reasons += carrier_duration(record, expect.duration_tolerance_s)
    record.reasons = reasons
    record.verdict = "fail" if reasons else "pass"
    return record

"""Assertion keywords over a call record: one per witness, plus the whole verdict."""

from __future__ import annotations

from robot.api.deco import keyword
from robot.utils import timestr_to_secs

from qa.cases import CallRecord, checks


def _assert(reasons: list[str], record: CallRecord) -> None:
    if reasons:
        raise AssertionError(f"call {record.call_id} ({record.case}): " + "; ".join(reasons))


class WitnessKeywords:
    """What the customer, the carrier and the platform saw of a call."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    @keyword
    def call_should_pass(self, call: CallRecord) -> None:
        """Every witness agrees with the case's expectations (the record's verdict)."""
        _assert(call.reasons if call.verdict != "pass" else [], call)

    @keyword
    def final_response_should_be(self, call: CallRecord, code: int) -> None:
        """The customer got final response ``code``."""
        _assert(checks.final_code(call, int(code)), call)

    @keyword
    def call_should_be_answered(self, call: CallRecord) -> None:
        """The customer got 200 OK."""
        _assert(checks.final_code(call, 200), call)

    @keyword
    def carrier_should_have_seen_call(self, call: CallRecord) -> None:
        """The INVITE reached the carrier."""
        _assert(checks.carrier_saw(call, True), call)

    @keyword
    def carrier_should_not_have_seen_call(self, call: CallRecord) -> None:
        """The platform stopped the call before the carrier."""
        _assert(checks.carrier_saw(call, False), call)

    @keyword
    def platform_cdr_should_match_call(self, call: CallRecord, tolerance: str = "1s") -> None:
        """The platform's CDR has this Call-ID once, with the right parties, code and duration."""
        if call.cdr is None and call.final_code == 200:
            _assert(["platform: no CDR for an answered call"], call)
        _assert(checks.platform_cdr(call, timestr_to_secs(tolerance)), call)

    @keyword
    def platform_should_have_no_billable_cdr(self, call: CallRecord) -> None:
        """A failed call bills nothing."""
        if call.cdr and float(call.cdr.get("duration") or 0) > 0:
            _assert([f"platform: failed call billed {call.cdr.get('duration')} s"], call)

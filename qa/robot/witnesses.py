"""Assertion keywords over a call record: one per witness fact, plus the whole verdict.

Each keyword is one line over a rule in ``qa.cases.checks``; a failure names the
witness that disagreed (customer, carrier, platform, wire) and the values.
"""

from __future__ import annotations

from pathlib import Path

from robot.api import logger
from robot.api.deco import keyword
from robot.utils import timestr_to_secs

from qa.cases import CallRecord, checks


def _assert(reasons: list[str], record: CallRecord) -> None:
    """Fail with every check that failed: this keyword's, then the others the record's
    verdict already holds (a case stops at its first failing keyword, and the root cause
    is often another witness). The first line is cut only between checks."""
    if not reasons:
        return
    others = [r for r in record.reasons if r not in reasons] if record.verdict == "fail" else []
    raise AssertionError(checks.failure_message(reasons + others) + f"\ncall {record.call_id} ({record.case})")


def _codes(text: str | int) -> list[int]:
    return [int(c) for c in str(text).replace(",", " ").split()]


class WitnessKeywords:
    """What the customer, the carrier and the platform saw of a call."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    @keyword
    def call_should_pass(self, call: CallRecord) -> None:
        """Every witness agrees with the case's expectations (the record's verdict)."""
        _assert(call.reasons if call.verdict != "pass" else [], call)

    # --- customer
    @keyword
    def final_response_should_be(self, call: CallRecord, code: int) -> None:
        """The customer got final response ``code``."""
        _assert(checks.final_code(call, int(code)), call)

    @keyword
    def final_response_should_be_one_of(self, call: CallRecord, *codes: str) -> None:
        """The customer got one of ``codes`` (e.g. 408 480)."""
        _assert(checks.final_one_of(call, [c for text in codes for c in _codes(text)]), call)

    @keyword
    def final_response_should_arrive_within(self, call: CallRecord, limit: str) -> None:
        """The final response came within ``limit`` of the first INVITE."""
        _assert(checks.final_within(call, timestr_to_secs(limit)), call)

    @keyword
    def final_response_should_arrive_between(self, call: CallRecord, low: str, high: str) -> None:
        """The final response came from ``low`` to ``high`` after the first INVITE (an INVITE
        timer window: too early is a regression too)."""
        _assert(checks.final_within(call, timestr_to_secs(high), timestr_to_secs(low)), call)

    @keyword
    def call_should_be_answered(self, call: CallRecord) -> None:
        """The customer got 200 OK."""
        _assert(checks.final_code(call, 200), call)

    @keyword
    def challenges_should_be(self, call: CallRecord, count: int) -> None:
        """The platform challenged the request ``count`` times (401/407)."""
        _assert(checks.challenges(call, int(count)), call)

    @keyword
    def answered_codec_should_be(self, call: CallRecord, codec: str) -> None:
        """The SDP answer the customer received leads with ``codec``."""
        _assert(checks.answered_codec(call, codec), call)

    @keyword
    def answer_should_offer(self, call: CallRecord, codec: str) -> None:
        """The SDP answer lists ``codec`` (e.g. telephone-event)."""
        _assert(checks.answer_offers(call, codec), call)

    @keyword
    def call_should_have_been_ended_by(self, call: CallRecord, who: str) -> None:
        """``caller`` or ``callee`` (the platform or carrier) sent the BYE."""
        _assert(checks.ended_by(call, who), call)

    @keyword
    def call_duration_should_be_at_most(self, call: CallRecord, limit: str) -> None:
        """The answered call lasted no longer than ``limit``."""
        _assert(checks.duration_at_most(call, timestr_to_secs(limit)), call)

    @keyword
    def call_duration_should_be_between(self, call: CallRecord, low: str, high: str) -> None:
        """The answered call lasted from ``low`` to ``high``: a timer case asserts a window,
        so a timer that fires early fails as surely as one that never fires."""
        _assert(checks.duration_at_most(call, timestr_to_secs(high), timestr_to_secs(low)), call)

    @keyword
    def setup_time_should_be_at_least(self, call: CallRecord, limit: str) -> None:
        """The 200 OK came no sooner than ``limit`` after the INVITE."""
        _assert(checks.setup_at_least(call, timestr_to_secs(limit)), call)

    @keyword
    def post_dial_delay_should_be_at_most(self, call: CallRecord, limit: str) -> None:
        """Ringing started within ``limit`` of the INVITE."""
        _assert(checks.pdd_at_most(call, timestr_to_secs(limit)), call)

    @keyword
    def record_route_should_contain(self, call: CallRecord, text: str) -> None:
        """A Record-Route the customer received contains ``text``."""
        _assert(checks.record_route_contains(call, text), call)

    @keyword
    def response_header_should_be(self, call: CallRecord, name: str, value: str) -> None:
        """The final response carried ``name: value`` (e.g. Min-SE 90 on a 422)."""
        _assert(checks.response_header(call, name, value), call)

    @keyword
    def replayed_request_should_be_challenged(self, call: CallRecord) -> None:
        """The platform challenged the request that replayed old credentials (stale nonce)."""
        _assert(checks.rechallenged(call), call)

    @keyword
    def secrets_should_not_appear_in_artefacts(self, call: CallRecord) -> None:
        """No password of the environment appears in this case's traces or call records."""
        env = self.ctx.connect()
        paths = [Path(call.customer["workdir"])] if call.customer.get("workdir") else []
        paths.append(self.ctx.session.writer.path)
        _assert(checks.secrets_absent(call, [p for p in env.accounts.values() if p], paths), call)

    # --- carrier
    @keyword
    def carrier_should_have_seen_call(self, call: CallRecord) -> None:
        """The INVITE reached the carrier."""
        _assert(checks.carrier_saw(call, True), call)

    @keyword
    def carrier_should_not_have_seen_call(self, call: CallRecord) -> None:
        """The platform stopped the call before the carrier."""
        _assert(checks.carrier_saw(call, False), call)

    @keyword
    def carrier_should_have_heard_dtmf(self, call: CallRecord, digits: str) -> None:
        """The carrier heard exactly ``digits``, in order."""
        _assert(checks.dtmf_heard(call, str(digits)), call)

    @keyword
    def carrier_should_have_received_rtp_payload_types(self, call: CallRecord, *types: str) -> None:
        """The carrier received RTP with exactly these payload types."""
        _assert(checks.carrier_payload_types(call, [c for text in types for c in _codes(text)]), call)

    @keyword
    def carrier_should_have_received_request_over(self, call: CallRecord, transport: str) -> None:
        """The platform relayed the INVITE to the carrier over ``transport``."""
        _assert(checks.carrier_transport(call, transport), call)

    @keyword
    def carrier_should_have_received_header(self, call: CallRecord, name: str, value: str) -> None:
        """The INVITE at the carrier carried ``name: value`` (the platform's X-headers)."""
        _assert(checks.carrier_header(call, name, str(value)), call)

    @keyword
    def carrier_should_have_been_asked_for(self, call: CallRecord, number: str) -> None:
        """The carrier was asked for ``number`` (after the platform's normalisation)."""
        _assert(checks.carrier_called_number(call, str(number)), call)

    @keyword
    def carrier_should_say_call_ended_by(self, call: CallRecord, who: str) -> None:
        """The carrier's CDR says who ended the call: caller, carrier, cancel or timeout."""
        _assert(checks.carrier_ended_by(call, who), call)

    @keyword
    def call_should_have_been_answered_by_carrier(self, call: CallRecord, name: str) -> None:
        """Carrier ``name`` handled the call (failover)."""
        _assert(checks.carrier_name(call, name), call)

    @keyword
    def carrier_duration_should_match_call(self, call: CallRecord, tolerance: str = "1s") -> None:
        """The carrier measured the customer's call length within ``tolerance``."""
        _assert(checks.carrier_duration(call, timestr_to_secs(tolerance)), call)

    # --- platform
    @keyword
    def platform_cdr_should_match_call(self, call: CallRecord, tolerance: str = "1s") -> None:
        """The platform's CDR has this Call-ID once, with the right parties, code and duration."""
        if call.cdr is None and call.final_code == 200:
            _assert(["platform: no CDR for an answered call"], call)
        _assert(checks.platform_cdr(call, timestr_to_secs(tolerance)), call)

    @keyword
    def platform_cdr_should_have_code(self, call: CallRecord, code: int) -> None:
        """The platform's CDR carries SIP code ``code``."""
        _assert(checks.cdr_code(call, int(code)), call)

    @keyword
    def platform_cdr_end_reason_should_be(self, call: CallRecord, reason: str) -> None:
        """The platform's CDR says why the call ended (e.g. session-expired, media-timeout).

        Asserted where the platform records an end reason (the lab's ``end_reason``); a CDR
        source without that column is logged as a warning, not failed: it cannot say.
        """
        if call.cdr is not None and "end_reason" not in call.cdr:
            logger.warn(f"platform CDRs have no end_reason column: end reason {reason} not asserted "
                        f"(call {call.call_id})")
            return
        _assert(checks.cdr_end_reason(call, reason), call)

    @keyword
    def platform_should_have_no_billable_cdr(self, call: CallRecord) -> None:
        """A failed call bills nothing."""
        if call.cdr and float(call.cdr.get("duration") or 0) > 0:
            _assert([f"platform: billed {call.cdr.get('duration')} s for a call that should bill nothing "
                     f"(customer got {call.final_code})"], call)

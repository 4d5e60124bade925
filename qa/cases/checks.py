"""Judging a call: pure functions from a CallRecord (and an expectation) to reasons.

Each check returns the reasons it disagrees, each naming the witness that disagreed
(customer, carrier, platform, wire), or an empty list. The case runner folds them into
the record's verdict; the Robot keywords and pytest helpers raise on them. One place
decides what "right" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import BadInput
from qa.record import DURATION_TOLERANCE_S, CallRecord

#: What the wire witness expects of an answered call's RTP (``Expectation.media``):
#: ``both`` RTP each way on negotiated payload types; ``early`` as well RTP from the carrier
#: before the 2xx (early media, RFC 3960); ``any`` not judged, for a case whose point is the
#: absence of media. ``None`` (the default) is ``both`` when the customer sends RTP, else
#: only the payload types are judged (test customers often send no media).
MEDIA_EXPECTATIONS = ("both", "early", "any")

#: Characters of a failure's first line. ``voipqa run``'s summary shows the first 160
#: characters of a case's first line, and a case with a ladder link gets ``*HTML* `` before
#: it and ``<br>`` after it (12 more): so a first line of 148 is never cut mid-word there.
#: Every check follows in full, one per line.
HEADLINE_CHARS = 148


@dataclass(frozen=True)
class Expectation:
    """What a case expects of its call. ``None`` means "not judged"."""

    final_code: int | None = 200
    carrier_sees: bool | None = None
    duration_tolerance_s: float = DURATION_TOLERANCE_S
    check_cdr: bool = True  # False for requests that are not calls (REGISTER)
    media: str | None = None  # one of MEDIA_EXPECTATIONS, judged by the wire witness after the run

    def __post_init__(self) -> None:
        if self.media is not None and self.media not in MEDIA_EXPECTATIONS:
            raise BadInput(f"media expectation {self.media!r} is not one of {', '.join(MEDIA_EXPECTATIONS)}")

    def to_json(self, media: str | None = None) -> dict[str, object]:
        """The record's ``expect``: what the verdict was judged against, so a record explains
        itself (a passing 403 is a 403 the case asked for). ``media`` is what the wire
        witness expects once defaults are applied (``None``: not judged)."""
        return {"final_code": self.final_code, "carrier_sees": self.carrier_sees, "cdr": self.check_cdr,
                "media": media if media is not None else self.media}


def failure_message(reasons: list[str], limit: int = HEADLINE_CHARS) -> str:
    """Every failing check, readable at a glance: a first line of at most ``limit``
    characters cut only between checks, ending "(+N more)" when some did not fit, then
    every check in full, one per line. A summary that shows the first line never cuts a
    word; the report shows the rest."""
    if not reasons:
        return ""
    headline = _headline(reasons, limit)
    if len(reasons) == 1 and headline == reasons[0]:
        return headline
    return headline + "\n" + "\n".join(f"- {r}" for r in reasons)


def reasons_of(message: str) -> tuple[list[str], list[str]]:
    """The checks in a :func:`failure_message` (or in any one-line message), and the
    message's other lines (context such as the call's id), so more checks can be added."""
    lines = message.splitlines()
    listed = [line[2:] for line in lines[1:] if line.startswith("- ")]
    context = [line for line in lines[1:] if not line.startswith("- ")]
    return (listed or lines[:1]), context


def _headline(reasons: list[str], limit: int) -> str:
    shown: list[str] = []
    for i, reason in enumerate(reasons):
        more = len(reasons) - i - 1
        tail = f" (+{more} more)" if more else ""
        line = "; ".join(shown + [reason]) + tail
        if len(line) > limit:
            break
        shown.append(reason)
    more = len(reasons) - len(shown)
    if not shown:  # the first check alone is too long: cut it between words
        suffix = f"… (+{more - 1} more)" if more > 1 else "…"
        cut = reasons[0][:limit - len(suffix)].rsplit(" ", 1)[0]
        return cut + suffix
    return "; ".join(shown) + (f" (+{more} more)" if more else "")


def final_code(record: CallRecord, expected: int) -> list[str]:
    """The customer got the expected final response."""
    if record.final_code == expected:
        return []
    why = _customer(record, "problem") or _customer(record, "error")
    if record.final_code is None:
        seen = [str(code) for code in _customer(record, "provisional", []) or []]
        said = "; ".join(([f"received only {', '.join(seen)}"] if seen else []) + ([why] if why else []))
        return [f"customer: no final response{f' ({said})' if said else ''}, expected {expected}"]
    after = f" ({why})" if why else ""
    return [f"customer: final response {record.final_code}{after}, expected {expected}"]


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
    if expect.check_cdr:
        reasons += platform_cdr(record, expect.duration_tolerance_s)
        reasons += carrier_duration(record, expect.duration_tolerance_s)
    record.reasons = record.reasons + reasons  # keep what the runner found (no call placed, …)
    record.verdict = "fail" if record.reasons else "pass"
    return record


# --- checks the catalogue's keywords assert one at a time -------------------------------

def _customer(record: CallRecord, key: str, default: Any = None) -> Any:
    return (record.customer or {}).get(key, default)


def challenges(record: CallRecord, expected: int) -> list[str]:
    """The platform challenged the request exactly ``expected`` times (RFC 3261 §22.1)."""
    got = _customer(record, "challenges")
    return [] if got == expected else [f"customer: challenged {got} times, expected {expected}"]


def answered_codec(record: CallRecord, codec: str) -> list[str]:
    """The SDP answer's first codec is ``codec`` (case-insensitive)."""
    got = record.answered_codec
    if got is not None and got.lower() == codec.lower():
        return []
    return [f"customer: answer carries {got or 'no codec'}, expected {codec}"]


def answer_offers(record: CallRecord, codec: str) -> list[str]:
    """The SDP answer lists ``codec`` among its formats (e.g. telephone-event)."""
    got = [c.lower() for c in _customer(record, "answered_codecs", []) or []]
    if codec.lower() in got:
        return []
    return [f"customer: answer lists {', '.join(got) or 'no codecs'}, not {codec}"]


def dtmf_heard(record: CallRecord, digits: str) -> list[str]:
    """The carrier heard exactly ``digits``, in order."""
    if record.carrier is None:
        return ["carrier: never saw the call, so heard no digits"]
    got = record.dtmf_heard or ""
    return [] if got == digits else [f"carrier: heard DTMF {got!r}, customer sent {digits!r}"]


def carrier_payload_types(record: CallRecord, expected: list[int]) -> list[str]:
    """The RTP the carrier received used only the negotiated payload types."""
    if record.carrier is None:
        return ["carrier: never saw the call"]
    got = sorted(int(pt) for pt in record.carrier.get("rtp_payload_types_in") or [])
    return [] if got == sorted(expected) else [f"carrier: received RTP payload types {got}, expected {sorted(expected)}"]


def carrier_transport(record: CallRecord, transport: str) -> list[str]:
    """The platform relayed the INVITE to the carrier over ``transport``."""
    got = (record.carrier or {}).get("transport")
    return [] if str(got).lower() == transport.lower() else [f"carrier: INVITE arrived over {got}, expected {transport}"]


def carrier_header(record: CallRecord, name: str, value: str) -> list[str]:
    """The INVITE the carrier received carried header ``name: value``."""
    headers = {k.lower(): v for k, v in ((record.carrier or {}).get("x_headers") or {}).items()}
    got = headers.get(name.lower())
    return [] if got == value else [f"carrier: {name} was {got!r}, expected {value!r}"]


def carrier_name(record: CallRecord, name: str) -> list[str]:
    """The call was answered by carrier ``name``."""
    got = (record.carrier or {}).get("carrier")
    return [] if got == name else [f"carrier: call handled by {got or 'no carrier'}, expected {name}"]


def carrier_called_number(record: CallRecord, number: str) -> list[str]:
    """The carrier was asked for ``number`` (the Request-URI, which the platform normalises;
    the To header keeps what the customer dialled, RFC 3261 §8.1.1.2)."""
    carrier = record.carrier or {}
    got = carrier.get("ruri") or carrier.get("to")
    return [] if got == number else [f"carrier: asked for {got!r}, expected {number!r}"]


def ended_by(record: CallRecord, who: str) -> list[str]:
    """``caller`` or ``callee`` sent the BYE (the platform's BYE counts as callee)."""
    got = _customer(record, "bye_by")
    return [] if got == who else [f"customer: call ended by {got or 'nobody'}, expected {who}"]


def _window(low: float | None, high: float) -> str:
    return f"at most {high:g} s" if low is None else f"between {low:g} and {high:g} s"


def _inside(value: float | None, low: float | None, high: float) -> bool:
    return value is not None and (low is None or value >= low) and value <= high


def duration_at_most(record: CallRecord, seconds: float, at_least: float | None = None) -> list[str]:
    """The answered call lasted no longer than ``seconds`` (and, with ``at_least``, no
    shorter: a timer that fires early is as wrong as one that never fires)."""
    if _inside(record.duration_s, at_least, seconds):
        return []
    return [f"customer: call lasted {_fmt(record.duration_s)} s, expected {_window(at_least, seconds)}"]


def final_within(record: CallRecord, seconds: float, at_least: float | None = None) -> list[str]:
    """The final response came within ``seconds`` of the first INVITE (and, with
    ``at_least``, not before: an INVITE timer shorter than configured is a regression)."""
    final_at = record.answered or _customer(record, "final_at") or record.ended
    took = None if record.started is None or final_at is None else final_at - record.started
    if _inside(took, at_least, seconds):
        return []
    return [f"customer: final response after {_fmt(took)} s, expected {_window(at_least, seconds).replace('at most', 'within')}"]


def final_one_of(record: CallRecord, codes: list[int]) -> list[str]:
    """The final response is one of ``codes``."""
    if record.final_code in codes:
        return []
    return [f"customer: final response {record.final_code}, expected one of {', '.join(map(str, codes))}"]


def cdr_code(record: CallRecord, code: int) -> list[str]:
    """The platform's CDR carries SIP code ``code``."""
    if record.cdr is None:
        return [f"platform: no CDR, expected one with code {code}"]
    got = record.cdr.get("sip_code")
    return [] if got is not None and int(got) == code else [f"platform: CDR says {got}, expected {code}"]


def cdr_end_reason(record: CallRecord, reason: str) -> list[str]:
    """The platform's CDR says why the call ended (the lab's ``end_reason``: caller-bye,
    callee-bye, media-timeout, session-expired, max-duration)."""
    if record.cdr is None:
        return [f"platform: no CDR, expected one ended by {reason}"]
    if "end_reason" not in record.cdr:
        return [f"platform: the CDR has no end_reason column, expected {reason}"]
    got = record.cdr.get("end_reason")
    return [] if got == reason else [f"platform: CDR end reason {got}, expected {reason}"]


def record_route_contains(record: CallRecord, text: str) -> list[str]:
    """A Record-Route the customer received contains ``text`` (e.g. transport=tls)."""
    routes = _customer(record, "record_route", []) or []
    if any(text.lower() in r.lower() for r in routes):
        return []
    return [f"customer: Record-Route {routes or 'absent'} lacks {text!r}"]


def response_header(record: CallRecord, name: str, value: str) -> list[str]:
    """The final response carried header ``name`` with ``value``."""
    headers = {k.lower(): v for k, v in (_customer(record, "final_headers", {}) or {}).items()}
    got = headers.get(name.lower())
    return [] if got is not None and str(got).split(";")[0].strip() == str(value) else [
        f"customer: final response {name} was {got!r}, expected {value!r}"]


def rechallenged(record: CallRecord) -> list[str]:
    """A request replaying earlier credentials was challenged again (stale nonce)."""
    if _customer(record, "rechallenged"):
        return []
    return [f"customer: replayed credentials got {_customer(record, 'replay_code')}, expected a new challenge"]


def secrets_absent(record: CallRecord, secrets: list[str], paths: list[Path]) -> list[str]:
    """No secret appears in the case's artefacts (traces, call records)."""
    leaks = []
    for path in paths:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for file in files:
            text = file.read_text(errors="replace")
            if any(secret and secret in text for secret in secrets):
                leaks.append(str(file))
    return [f"reports: a password appears in {', '.join(leaks)}"] if leaks else []


def setup_at_least(record: CallRecord, seconds: float) -> list[str]:
    """The 200 OK came no sooner than ``seconds`` after the INVITE (a late answer is measured)."""
    setup = record.setup_ms
    if setup is not None and setup >= seconds * 1000:
        return []
    return [f"customer: setup time {_fmt(None if setup is None else setup / 1000)} s, expected at least {seconds:g} s"]


def pdd_at_most(record: CallRecord, seconds: float) -> list[str]:
    """Ringing (the first 18x) came within ``seconds`` of the INVITE: post-dial delay."""
    pdd = record.pdd_ms
    if pdd is not None and pdd <= seconds * 1000:
        return []
    return [f"customer: post-dial delay {_fmt(None if pdd is None else pdd / 1000)} s, expected at most {seconds:g} s"]


def carrier_ended_by(record: CallRecord, who: str) -> list[str]:
    """The carrier's CDR says the call ended by ``who`` (caller, carrier, cancel, timeout)."""
    got = (record.carrier or {}).get("ended_by")
    return [] if got == who else [f"carrier: call ended by {got}, expected {who}"]

"""Findings: one thing wrong in a capture, the severity table, and a bounded sink.

A :class:`Finding` carries exactly the keys of the stable JSON contract
(``docs/pcap-json.md``): ``frame, time, call_id, severity, rule, reason, offset``.

Severity table (what makes ``voipqa pcap check`` exit 1 is any ``error``):

=========================  ========  ===========================================================
rule (prefix)              severity  meaning
=========================  ========  ===========================================================
``sip.*`` / ``sdp.*``      error     malformed SIP (RFC 3261 §25) / SDP (RFC 8866 §9) as the
                                     strict checkers say (their own ``warning`` stays a warning)
``sip.unreadable``         error     a datagram that looks like SIP but cannot be read at all
capture reader's rules     reader's  damage the capture reader found (``pcap.truncated``, ...)
``analysis.internal-error`` error    a frame the engine could not analyse (a bug; never expected)
``call.failed``            warning   INVITE final 4xx/5xx/6xx other than 401/407 (challenges,
                                     RFC 3261 §22) and 487 after CANCEL (§9.1)
``call.no-final``          warning   INVITE without any final response in the capture
``call.no-bye``            warning   answered call (2xx) without a BYE in the capture
``call.cseq-mismatch``      error     a response whose CSeq number or method differs from the
                                     request of its transaction (Via branch + CSeq method,
                                     RFC 3261 §8.2.6.2, §17.1.3)
``sip.retransmissions``    info      a call had retransmitted requests/responses (§17)
``rtp.one-way``            error     answered sendrecv call, media seen in one direction only
``rtp.loss``               error     stream loss > 5 % (warning above 1 %), RFC 3550 §6.4.1
``rtp.sequence``           warning   out-of-order / duplicate / jumped sequence numbers
``rtp.payload-type``       warning   payload type on the wire not listed by both sides' SDP
``rtp.mos``                warning   estimated MOS (ITU-T G.107) below 3.6
=========================  ========  ===========================================================
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

__all__ = ["SEVERITIES", "RULES", "Finding", "FindingSink", "is_malformed"]

#: Severities, most severe first.
SEVERITIES = ("error", "warning", "info")

#: rule -> default severity (rules not listed keep the severity they are created with).
RULES: dict[str, str] = {
    "sip.unreadable": "error",
    "analysis.internal-error": "error",
    "call.failed": "warning",
    "call.no-final": "warning",
    "call.no-bye": "warning",
    "call.cseq-mismatch": "error",
    "sip.retransmissions": "info",
    "rtp.one-way": "error",
    "rtp.loss": "error",
    "rtp.sequence": "warning",
    "rtp.payload-type": "warning",
    "rtp.mos": "warning",
}

_CALL_RULES = ("call.", "rtp.", "sip.retransmissions")


@dataclass(slots=True)
class Finding:
    """One finding: the frame it is about (1-based, as Wireshark counts), capture time
    (seconds since the epoch), Call-ID (``None`` if none), severity, stable rule id,
    the sentence a user reads, and the byte offset in the frame's payload (``None``
    when the finding is about a call or stream rather than a byte)."""

    frame: int | None
    time: float | None
    call_id: str | None
    severity: str
    rule: str
    reason: str
    offset: int | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def is_malformed(finding: Finding) -> bool:
    """True for a malformed-message finding (what tshark's second opinion is compared with)."""
    return (finding.severity == "error" and finding.rule.startswith(("sip.", "sdp."))
            and not finding.rule.startswith(_CALL_RULES))


@dataclass
class FindingSink:
    """Bounded findings: at most ``per_rule`` kept per rule, the rest only counted.

    Totals by severity cover every finding, kept or not, so the exit code never
    depends on the cap.
    """

    per_rule: int = 200
    findings: list[Finding] = field(default_factory=list)
    kept: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    by_severity: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)

    def add(self, finding: Finding) -> bool:
        """Record ``finding``; True when it was kept (not only counted)."""
        self.by_severity[finding.severity] += 1
        self.by_rule[finding.rule] += 1
        if self.kept[finding.rule] >= self.per_rule:
            self.dropped[finding.rule] += 1
            return False
        self.kept[finding.rule] += 1
        self.findings.append(finding)
        return True

    def emit(self, frame: int | None, time: float | None, call_id: str | None, rule: str,
             reason: str, *, severity: str | None = None, offset: int | None = None) -> Finding:
        """Build a finding (severity from :data:`RULES` unless given) and add it."""
        finding = Finding(frame, time, call_id, severity or RULES.get(rule, "error"), rule,
                          reason, offset)
        self.add(finding)
        return finding

    @property
    def errors(self) -> int:
        return self.by_severity["error"]

"""What the Python customer witnessed: the SIPp customer's fields plus transport evidence.

:class:`CustomerResult` extends :class:`qa.sipp.traces.CallResult` (DESIGN §6 customer
fields), so the case runner can take its call fields from either customer the same way.
:class:`TlsReport` is plain data; the handshakes that fill it live in :mod:`qa.customer.tls`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.sipp.traces import CallResult

__all__ = ["CustomerResult", "TlsReport"]

TLS_ERRORS = ("expired", "hostname-mismatch", "untrusted", "handshake", "refused")


def _days(n: int) -> str:
    return f"{n} day" if abs(n) == 1 else f"{n} days"


@dataclass
class TlsReport:
    """One TLS connection attempt to the platform (RFC 8446; RFC 5922 §7 for SIP over TLS).

    ``error`` is ``None`` when the chain and the server name verified, else one of
    :data:`TLS_ERRORS`. Certificate fields are filled even when verification failed
    (from a second, non-verifying handshake); ``days_to_expiry`` is negative once the
    certificate has expired. ``str(report)`` is the one line that goes into reports.
    """

    ok: bool
    error: str | None = None
    detail: str = ""
    host: str = ""
    port: int = 0
    server_name: str = ""
    subject: str = ""
    issuer: str = ""
    san: list[str] = field(default_factory=list)
    not_before: str | None = None        # ISO 8601, UTC
    not_after: str | None = None
    days_to_expiry: int | None = None
    protocol: str | None = None          # "TLSv1.3"
    cipher: str | None = None

    def cert_names(self) -> str:
        """The names the certificate is valid for (SAN DNS/IP entries, else the subject)."""
        names = [n.split(":", 1)[-1] for n in self.san if n.startswith(("DNS:", "IP Address:"))]
        return ", ".join(names) or self.subject or "unknown"

    def _expiry(self) -> str:
        if self.days_to_expiry is None:
            return "expiry unknown"
        return f"expires in {_days(self.days_to_expiry)}"

    def __str__(self) -> str:
        day = (self.not_after or "?")[:10]
        if self.ok:
            return f"ok: {self.protocol or 'TLS'}, {self._expiry()}"
        if self.error == "expired":
            ago = _days(-self.days_to_expiry) if self.days_to_expiry is not None else "? days"
            return f"certificate expired {ago} ago (not after {day})"
        if self.error == "hostname-mismatch":
            return (f"server name {self.server_name} does not match certificate "
                    f"({self.cert_names()})")
        if self.error == "untrusted":
            return f"certificate not trusted ({self.detail}); {self._expiry()}"
        if self.error == "refused":
            return f"cannot connect to {self.host}:{self.port}: {self.detail}"
        return f"TLS handshake failed: {self.detail}"


@dataclass
class CustomerResult(CallResult):
    """A call (or registration) placed by the Python customer (:mod:`qa.customer.client`).

    Beyond the :class:`CallResult` fields: the Record-Route of the 2xx (RFC 3261 §12.1.2),
    the top Via this customer sent (its transport is the one used on the wire), the TLS
    report, and the outcome of replaying old credentials: ``rechallenged`` (the platform
    answered the replay with 401/407), ``stale`` (that challenge said ``stale=true``,
    RFC 2617 §3.2.1), ``replay_code`` (the replay's final response).
    """

    record_route: list[str] = field(default_factory=list)
    via_sent: str = ""
    tls: TlsReport | None = None
    rechallenged: bool | None = None
    stale: bool | None = None
    replay_code: int | None = None
    replay_call_id: str | None = None
    error: str | None = None             # why the customer gave up (timeout, transport), if it did
    media_sent: str | None = None        # the RTP it sent once answered ("PCMU (PT 0): 50 packets, 1.00 s"), or why none

"""Toll fraud: calls an intruder places at someone else's expense.

Unauthenticated INVITEs to international and premium numbers (with a real customer's
number spoofed in From), the same carrying a P-Asserted-Identity (RFC 3325 §9: only a
trusted peer may assert one), an INVITE with valid credentials from outside the
allow-list, and an authenticated call forging the identity headers the platform hands the
carrier. None may reach the carrier or be billed, and the forged identity must never
reach the carrier. Judged by the replies and, where the environment has them, by the
carrier's and the platform's CDRs for the attack's Call-IDs.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from qa.security.auth import challenge_round, invite_request
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget
from qa.security.wire import Reply, SipSocket

#: the header the lab's platform tells its carrier whom to bill with (lab/kamailio.cfg)
ACCOUNT_HEADER = "X-VoipQA-Account"
#: seconds the witnesses get to write their CDR lines (the lab's writer: under 250 ms)
WITNESS_DELAY_S = 1.5


@dataclass
class Attempt:
    check: str
    what: str
    number: str
    call_id: str = ""
    reply: str = "no answer"
    status: int | None = None
    carrier: list[dict[str, object]] = field(default_factory=list)
    billed: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"check": self.check, "what": self.what, "number": self.number, "call_id": self.call_id,
                "reply": self.reply, "carrier_rows": len(self.carrier), "billed_rows": self.billed}


def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    numbers = target.settings.numbers
    victim = target.customer
    attempts: list[Attempt] = []
    source = target.take_source()
    with SipSocket(target.host, target.port, "udp", local=source, timeout=2.0) as sock:
        for number in [*numbers.international, *numbers.premium]:
            attempts.append(_unauthenticated(sock, target, victim, number, [], "unauthenticated",
                                             f"no credentials, From {victim} spoofed"))
            attempts.append(_unauthenticated(sock, target, victim, number,
                                             [("P-Asserted-Identity", f"<sip:{victim}@{target.domain}>")],
                                             "asserted-identity", f"P-Asserted-Identity {victim}, no credentials"))
    if target.settings.outside_source:
        attempts.append(_outside(target, victim, numbers.international[0]))
    forged = _forged_identity(target, victim, numbers.reject)
    attempts.append(forged)
    time.sleep(WITNESS_DELAY_S)
    for a in attempts:
        a.carrier = target.carrier_rows([a.call_id]) if a.call_id else []
        a.billed = len(target.billed_rows([a.call_id])) if a.call_id and a.check != "forged-identity" else 0
    result.call_ids = [a.call_id for a in attempts if a.call_id]
    result.evidence = {"source": source, "outside_source": target.settings.outside_source,
                       "carrier_witness": target.has_carrier_witness, "billing_witness": target.has_billing_witness,
                       "attempts": [a.to_dict() for a in attempts]}
    for name in ("unauthenticated", "asserted-identity", "outside-allow-list"):
        _judge_reached(result, name, [a for a in attempts if a.check == name])
    _judge_forged(result, target, forged)
    log("toll-fraud: " + ", ".join(f"{a.check} {a.number}: {a.reply}" for a in attempts))


def _unauthenticated(sock: SipSocket, target: SecurityTarget, victim: str, number: str,
                     extra: list[tuple[str, str]], check: str, what: str) -> Attempt:
    request = invite_request(sock, target, victim, number, extra)
    reply = sock.exchange(request)
    return _attempt(check, what, number, str(request.call_id), reply)


def _outside(target: SecurityTarget, victim: str, number: str) -> Attempt:
    """Valid credentials, but from an address the allow-list refuses."""
    source = str(target.settings.outside_source)
    try:
        with SipSocket(target.host, target.port, "udp", local=source, timeout=2.0) as sock:
            request = invite_request(sock, target, victim, number)
            rnd = challenge_round(sock, request, victim, target.accounts[victim])
            call_id, reply = str(request.call_id), rnd.answer
    except OSError as exc:
        return Attempt("outside-allow-list", f"from {source}: cannot send ({exc})", number)
    return _attempt("outside-allow-list", f"valid credentials from {source}, outside the allow-list",
                    number, call_id, reply)


def _forged_identity(target: SecurityTarget, victim: str, number: str) -> Attempt:
    """An authenticated call that claims to be somebody else towards the carrier."""
    forged = f"forged-{secrets.token_hex(3)}"
    source = target.take_source()
    with SipSocket(target.host, target.port, "udp", local=source, timeout=3.0) as sock:
        # the X- header alone: an asserted identity is the asserted-identity check's
        request = invite_request(sock, target, victim, number, [(ACCOUNT_HEADER, forged)])
        rnd = challenge_round(sock, request, victim, target.accounts[victim])
    attempt = _attempt("forged-identity", f"authenticated as {victim}, claiming {forged}", number,
                       str(request.call_id), rnd.answer)
    attempt.what += f" [{forged}]"
    return attempt


def _attempt(check: str, what: str, number: str, call_id: str, reply: Reply | None) -> Attempt:
    return Attempt(check, what, number, call_id, reply.line() if reply else "no answer",
                   reply.status if reply else None)


def _judge_reached(result: AttackResult, name: str, attempts: list[Attempt]) -> None:
    if not attempts:
        return
    bad = [a for a in attempts if a.carrier or a.billed or (a.status is not None and a.status < 400 and a.status != 100)]
    result.check(name, not bad,
                 "; ".join(f"{a.what} to {a.number}: {_how(a)}" for a in bad) if bad else
                 f"{len(attempts)} attempts refused ({', '.join(sorted({a.reply for a in attempts}))}), "
                 "none reached the carrier or was billed")


def _how(a: Attempt) -> str:
    parts = [a.reply]
    if a.carrier:
        parts.append(f"reached the carrier ({len(a.carrier)} CDR rows)")
    if a.billed:
        parts.append(f"billed ({a.billed} CDR rows)")
    return ", ".join(parts)


def _judge_forged(result: AttackResult, target: SecurityTarget, forged: Attempt) -> None:
    token = forged.what.rsplit("[", 1)[-1].rstrip("]")
    if not target.has_carrier_witness:
        result.evidence["forged_identity"] = "not judged: the environment has no carrier CDRs"
        return
    if not forged.carrier:
        result.check("forged-identity", False, f"the authenticated call never reached the carrier ({forged.reply}): "
                                               "cannot tell what identity it carried")
        return
    headers = [(k, v) for row in forged.carrier for k, v in _x_headers(row).items()]
    seen = [f"{k}: {v}" for k, v in headers if token in str(v)]
    result.check("forged-identity", not seen,
                 "the carrier received the forged identity: " + "; ".join(seen) if seen else
                 "the carrier never saw the forged identity (" + ", ".join(
                     f"{k}: {v}" for k, v in headers if k.lower() == ACCOUNT_HEADER.lower()) + ")")


def _x_headers(row: dict[str, object]) -> dict[str, object]:
    """The X- headers the carrier recorded for a call (its CDR's ``x_headers``)."""
    value = row.get("x_headers")
    return value if isinstance(value, dict) else {}

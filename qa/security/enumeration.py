"""Extension enumeration: can a scanner (``svwar``) tell which users exist?

For REGISTER, INVITE and OPTIONS, a user the platform has and one it has not must get
the same answer: the same status, the same headers apart from what every message varies
(tags, branches, Call-ID, nonce), and about the same delay. Asked twice: without
credentials (the first response), and with a wrong password (the answer to the
challenge: 403 for both, never 404 for the one that does not exist; RFC 3261 §26.3.2.4).
Each kind of question comes from its own address, so the few failed authentications
this costs never add up to a ban that would answer for the platform.
"""

from __future__ import annotations

import secrets
import statistics

from qa.security.auth import challenge_round, invite_request, register_request
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget
from qa.security.wire import Reply, SipSocket

#: samples per user for the timing comparison (unauthenticated, so they cost no failure)
SAMPLES = 5
#: headers every response varies by itself (or the scan already judges: Server)
VARYING = frozenset({"via", "from", "to", "call-id", "cseq", "content-length", "date", "server",
                     "user-agent", "www-authenticate", "proxy-authenticate", "contact"})
WRONG_PASSWORD = "voipqa-wrong-password"


def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    existing = target.customer
    missing = _missing_user(target)
    questions: list[dict[str, object]] = []
    for method in ("REGISTER", "INVITE", "OPTIONS"):
        questions.append(_ask(target, method, existing, missing, credentials=False))
        log(f"enumeration: {method} without credentials: {questions[-1]['verdict']}")
    for method in ("REGISTER", "INVITE"):
        questions.append(_ask(target, method, existing, missing, credentials=True))
        log(f"enumeration: {method} with a wrong password: {questions[-1]['verdict']}")
    result.evidence = {"existing_user": existing, "missing_user": missing, "questions": questions}
    for q in questions:
        result.check(str(q["name"]), not q["differences"],
                     f"{existing} (exists) and {missing} (does not) are told apart: " + "; ".join(q["differences"])  # type: ignore[arg-type]
                     if q["differences"] else f"same answer for both ({q['verdict']})")


def _missing_user(target: SecurityTarget) -> str:
    """A user that looks like the existing ones (same length, digits when they are) but is none."""
    template = target.customer
    while True:
        candidate = (str(secrets.randbelow(10 ** len(template))).zfill(len(template)) if template.isdigit()
                     else "u" + secrets.token_hex(4))
        if candidate not in target.accounts:
            return candidate


def _ask(target: SecurityTarget, method: str, existing: str, missing: str, *, credentials: bool) -> dict[str, object]:
    source = target.take_source()
    samples = 1 if credentials else SAMPLES
    replies: dict[str, list[Reply | None]] = {existing: [], missing: []}
    with SipSocket(target.host, target.port, "udp", local=source, timeout=1.5) as sock:
        for _ in range(samples):
            for user in (existing, missing):
                replies[user].append(_question(sock, target, method, user, credentials))
    name = f"{method.lower()}{'-wrong-password' if credentials else ''}"
    differences = compare(replies[existing], replies[missing], target.settings.timing_tolerance_ms)
    first = replies[existing][0]
    return {"name": name, "source": source, "samples": samples,
            "existing": [_show(r) for r in replies[existing]], "missing": [_show(r) for r in replies[missing]],
            "differences": differences, "verdict": first.line() if first else "no answer"}


def _question(sock: SipSocket, target: SecurityTarget, method: str, user: str, credentials: bool) -> Reply | None:
    if method == "REGISTER":
        request = register_request(sock, target, user, expires=60)
    elif method == "INVITE":
        request = invite_request(sock, target, user, target.settings.numbers.reject)
    else:
        request = sock.request("OPTIONS", f"sip:{user}@{target.domain}", from_user=user, domain=target.domain,
                               to_user=user)
    if not credentials:
        return sock.exchange(request)
    return challenge_round(sock, request, user, WRONG_PASSWORD).answer


def _show(reply: Reply | None) -> dict[str, object]:
    if reply is None:
        return {"reply": "no answer"}
    return {"reply": reply.line(), "ms": round(reply.elapsed_ms, 2), "headers": shape(reply)}


def shape(reply: Reply) -> list[str]:
    """The response's headers as a scanner compares them: names, and values where they do not vary."""
    out = []
    for name, value in reply.response.headers:
        out.append(name.lower() if name.lower() in VARYING else f"{name.lower()}: {value}")
    return sorted(out)


def compare(a: list[Reply | None], b: list[Reply | None], tolerance_ms: float) -> list[str]:
    """What tells the two users apart (empty: nothing)."""
    diffs: list[str] = []
    codes_a = sorted({r.line() if r else "no answer" for r in a})
    codes_b = sorted({r.line() if r else "no answer" for r in b})
    if codes_a != codes_b:
        diffs.append(f"status {'/'.join(codes_a)} vs {'/'.join(codes_b)}")
        return diffs
    shapes_a = {tuple(shape(r)) for r in a if r}
    shapes_b = {tuple(shape(r)) for r in b if r}
    if shapes_a != shapes_b:
        only = sorted(set().union(*shapes_a) ^ set().union(*shapes_b)) if shapes_a and shapes_b else []
        diffs.append("headers differ: " + (", ".join(only[:4]) or "in order"))
    times_a = [r.elapsed_ms for r in a if r]
    times_b = [r.elapsed_ms for r in b if r]
    if times_a and times_b:
        gap = abs(statistics.median(times_a) - statistics.median(times_b))
        if gap > tolerance_ms:
            diffs.append(f"median answer time {statistics.median(times_a):.1f} ms vs "
                         f"{statistics.median(times_b):.1f} ms (tolerance {tolerance_ms:g} ms)")
    return diffs

"""Single challenge: every request is challenged once, and a nonce serves one request.

RFC 3261 §22 lets a server re-challenge; a platform that answers a wrong password with
another challenge hands an online cracker unlimited guesses per transaction, and one that
accepts a nonce twice lets anyone who saw one request replay it (RFC 2617 §4.5, §4.9;
RFC 7616 §5.5 on nonce reuse). The attack: the customer's own REGISTER and an INVITE,
each replayed verbatim with its Authorization in a new transaction, then a wrong answer
to a challenge. The algorithms the platform offers (MD5, SHA-256 of RFC 8760) are
reported.
"""

from __future__ import annotations

from qa.security.auth import challenge_round, invite_request, register_request, unregister
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget
from qa.security.wire import SipSocket, fresh
from qa.sip import parse_digest_challenge

WRONG_PASSWORD = "voipqa-wrong-password"


def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    user, password = target.customer, target.accounts[target.customer]
    source = target.take_source()
    evidence: dict[str, object] = {"account": user, "source": source}
    with SipSocket(target.host, target.port, "udp", local=source, timeout=1.5) as sock:
        # REGISTER: accepted once, then replayed as it was
        first = challenge_round(sock, register_request(sock, target, user), user, password)
        evidence["register"] = first.outcome
        if first.challenge is not None:
            header = first.challenge.response.headers.get("WWW-Authenticate") or ""
            evidence["algorithms"] = parse_digest_challenge(header).get("algorithm", "MD5")
        if first.outcome != "accepted" or first.request is None:
            result.error = f"the customer's own REGISTER with its password was not accepted ({first.outcome})"
            return
        replay = sock.exchange(fresh(first.request))
        evidence["register_replay"] = replay.line() if replay else "no answer"
        result.check("register-replay", replay is None or not 200 <= replay.status < 300,
                     f"a replayed REGISTER (same nonce) got {replay.line() if replay else 'no answer'}")
        # INVITE: the carrier refuses the number at once; a replay must not reach it again
        invite = challenge_round(sock, invite_request(sock, target, user, target.settings.numbers.reject), user,
                                 password)
        evidence["invite"] = invite.outcome
        if invite.request is not None:
            replayed = fresh(invite.request)
            result.call_ids.append(str(replayed.call_id))
            again = sock.exchange(replayed, timeout=3.0)
            evidence["invite_replay"] = again.line() if again else "no answer"
            result.check("invite-replay", again is None or again.status in (401, 403, 407),
                         f"a replayed INVITE (same nonce) got {again.line() if again else 'no answer'}"
                         + (" (the nonce was accepted again)" if again and again.status not in (401, 403, 407)
                            else " (the nonce was refused)"))
        # a wrong answer: refused, not challenged again
        wrong = challenge_round(sock, register_request(sock, target, user), user, WRONG_PASSWORD)
        evidence["wrong_password"] = wrong.outcome
        again_challenged = wrong.answer is not None and wrong.answer.status in (401, 407)
        result.check("second-challenge", wrong.challenge is not None and not again_challenged
                     and wrong.outcome != "accepted",
                     "a wrong answer was challenged again (401/407): unlimited guesses per transaction"
                     if again_challenged else f"a wrong answer got {wrong.outcome}")
    unregister(target, target.customer_source, user)
    log(f"single-challenge: register replay {evidence['register_replay']}, "
        f"invite replay {evidence.get('invite_replay')}, wrong answer {evidence['wrong_password']}")
    result.evidence = evidence

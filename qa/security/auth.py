"""Digest authentication as an intruder exercises it (RFC 3261 §22, RFC 2617): the
exchanges the enumeration, brute-force and single-challenge attacks are made of.

One REGISTER round = an unauthenticated REGISTER, its 401, the REGISTER again with
credentials; what comes back says whether the guess was right (2xx), wrong (403), or
whether the platform has stopped talking to this source (silence, 403/429/503 instead of
a challenge).
"""

from __future__ import annotations

from dataclasses import dataclass

from qa.security.target import SecurityTarget
from qa.security.wire import Reply, SipSocket, with_credentials
from qa.sip import Request

CHALLENGES = (401, 407)


@dataclass(frozen=True)
class Round:
    """One challenge-and-answer round: the challenge (None: no 401/407 came) and the answer."""

    challenge: Reply | None
    answer: Reply | None
    request: Request | None = None      # the request that carried the credentials

    @property
    def outcome(self) -> str:
        if self.challenge is None:
            return "blocked" if self.answer is None else f"refused before auth ({self.answer.line()})"
        if self.answer is None:
            return "no answer to the credentials"
        if 200 <= self.answer.status < 300:
            return "accepted"
        return self.answer.line()


def register_request(sock: SipSocket, target: SecurityTarget, user: str, *, expires: int = 60) -> Request:
    return sock.request("REGISTER", f"sip:{target.domain}", from_user=user, domain=target.domain,
                        extra=[("Expires", str(expires))])


def invite_request(sock: SipSocket, target: SecurityTarget, user: str, number: str,
                   extra: list[tuple[str, str]] | None = None) -> Request:
    return sock.request("INVITE", f"sip:{number}@{target.domain}", from_user=user, domain=target.domain,
                        to_user=number, extra=extra)


def challenge_round(sock: SipSocket, request: Request, user: str, password: str) -> Round:
    """Send ``request``; answer a 401/407 with (user, password); return both replies."""
    first = sock.exchange(request)
    if first is None or first.status not in CHALLENGES:
        return Round(None, first)
    second_request = with_credentials(request, first.response, user, password)
    return Round(first, sock.exchange(second_request), second_request)


def unregister(target: SecurityTarget, source: str, user: str) -> None:
    """Remove what an accepted REGISTER bound (Expires: 0), best effort."""
    try:
        with SipSocket(target.host, target.port, "udp", local=source, timeout=1.0) as sock:
            challenge_round(sock, register_request(sock, target, user, expires=0), user, target.accounts[user])
    except OSError:
        pass

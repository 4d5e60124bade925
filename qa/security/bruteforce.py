"""Password brute force: an online dictionary attack on one account (``svcrack`` style).

REGISTER rounds from one address, one guess each, up to ``security.brute_force_tries``.
The defence holds when the platform stops answering that address (or refuses it
before the challenge) after a few failures, and then refuses even the right password
from it; the dictionary must never find a password. The environment's own passwords are
also held to the seed's rule (at least 12 characters, 3 of lower/upper/digit/symbol):
a weak one is reported by user, never shown.
"""

from __future__ import annotations

import re

from qa.security.auth import Round, challenge_round, register_request, unregister
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget
from qa.security.wire import SipSocket

#: what online crackers try first (svcrack's default and the top of public leak lists)
COMMON = ("1234", "12345", "123456", "password", "0000", "1111", "admin", "secret", "voip", "sip",
          "1234567", "12345678", "pass", "qwerty", "abc123", "letmein", "test", "changeme", "welcome", "111111")
#: silent rounds in a row that mean the platform stopped answering this address
SILENT_ROUNDS = 2


def dictionary(user: str, tries: int) -> list[str]:
    """``tries`` guesses for ``user``: derived from the name first, then common passwords."""
    derived = [user, user + user, user + "123", "123" + user, user[::-1], f"{user}1234"]
    out: list[str] = []
    for word in derived + list(COMMON):
        if word not in out:
            out.append(word)
    while len(out) < tries:
        out.append(f"{user}{len(out):03d}")
    return out[:tries]


def weak(password: str) -> str | None:
    """Why ``password`` is weak (the seed's rule), or None."""
    if len(password) < 12:
        return "shorter than 12 characters"
    classes = sum(bool(re.search(rx, password)) for rx in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        return "fewer than 3 of lower case, upper case, digits, symbols"
    return None


def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    user = target.customer
    source = target.take_source()
    guesses = dictionary(user, target.settings.brute_force_tries)
    tried: list[dict[str, object]] = []
    found: str | None = None
    blocked_after: int | None = None
    silent = 0
    with SipSocket(target.host, target.port, "udp", local=source, timeout=1.0) as sock:
        for guess in guesses:
            rnd = challenge_round(sock, register_request(sock, target, user), user, guess)
            tried.append({"guess": len(tried) + 1, "outcome": rnd.outcome})
            if rnd.outcome == "accepted":
                found = guess
                break
            silent = silent + 1 if rnd.challenge is None else 0
            if silent >= SILENT_ROUNDS:
                blocked_after = len(tried) - SILENT_ROUNDS
                break
        log(f"brute-force: {len(tried)} guesses from {source}: "
            + (f"blocked after {blocked_after}" if blocked_after is not None else "never blocked"))
        real = challenge_round(sock, register_request(sock, target, user), user, target.accounts[user])
    if real.outcome == "accepted" or found:
        unregister(target, target.customer_source, user)
    result.evidence = {"account": user, "source": source, "guesses": len(tried), "tried": tried,
                       "blocked_after": blocked_after, "right_password_from_attacker": real.outcome}
    _judge(target, result, user, found, blocked_after, real, len(tried))


def _judge(target: SecurityTarget, result: AttackResult, user: str, found: str | None,
           blocked_after: int | None, real: Round, tried: int) -> None:
    result.check("password-not-found", found is None,
                 f"the dictionary found {user}'s password after {tried} guesses" if found else
                 f"none of {tried} guesses was {user}'s password")
    locked = blocked_after is not None and real.outcome != "accepted"
    result.check("lockout", locked,
                 f"the attacker's address was blocked after {blocked_after} failed guesses, "
                 f"then even the right password was refused ({real.outcome})" if locked else
                 f"{tried} failed guesses from one address and it was still answered; the right password "
                 f"then got: {real.outcome}")
    weak_ones = {u: why for u, p in target.accounts.items() if (why := weak(p))}
    result.evidence["weak_passwords"] = weak_ones
    result.check("weak-passwords", not weak_ones,
                 "weak passwords: " + "; ".join(f"{u}: {why}" for u, why in sorted(weak_ones.items())) if weak_ones
                 else f"all {len(target.accounts)} passwords of the environment pass the rule "
                      f"(12+ characters, 3 classes)")

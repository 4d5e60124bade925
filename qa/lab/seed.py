"""lab/seed.yaml: the reference platform's accounts, blocked prefixes, allow-list, carriers.

Validated strictly and by hand so every problem is one line naming the file and the field
(``lab/seed.yaml: accounts[1].balance: not a number``); unknown keys are errors.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qa.errors import ConfigError

ALGORITHMS = {"priority": "8", "round-robin": "4", "hash-callid": "0"}

_USER_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")
_DIGITS_RE = re.compile(r"^[0-9]{1,32}$")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_SAFE_TEXT_RE = re.compile(r"^[^\x00-\x1f'\"\\]{0,128}$")


@dataclass(frozen=True)
class Account:
    """A customer. ``deny``: destination prefixes refused (403); ``allow_only``: when
    non-empty, every destination outside these prefixes is refused (403)."""

    user: str
    password: str
    balance: float
    name: str | None = None
    deny: tuple[str, ...] = ()
    allow_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class BlockedPrefix:
    prefix: str
    reason: str | None = None


@dataclass(frozen=True)
class Carrier:
    """A mock carrier; ``set`` is its dispatcher set (1: normal traffic, 2: the
    destinations under ``routing.set2_prefixes``, kept apart for failover cases)."""

    name: str
    priority: int = 0
    set: int = 1


@dataclass(frozen=True)
class Seed:
    domain: str
    accounts: tuple[Account, ...]
    blocked_prefixes: tuple[BlockedPrefix, ...]
    allow_list: tuple[str, ...]
    carriers: tuple[Carrier, ...]
    algorithm: str = "priority"
    set2_prefixes: tuple[str, ...] = ()
    pike_window_s: int = 2
    pike_max_requests: int = 3000
    ban_s: int = 60
    fr_timer_s: float = 5.0
    fr_inv_timer_s: float = 30.0
    probe_interval_s: int = 2
    dialog_timeout_s: int = 7200
    media_timeout_s: int = 10
    min_se_s: int = 90
    workers: int = 1
    path: str = field(default="lab/seed.yaml", compare=False)

    def account(self, user: str) -> Account | None:
        return next((a for a in self.accounts if a.user == user), None)


class _Checker:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)

    def fail(self, fld: str, problem: str) -> ConfigError:
        return ConfigError(self.path, fld, problem)

    def mapping(self, value: Any, fld: str, allowed: set[str], required: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(fld, "must be a mapping")
        for key in value:
            if key not in allowed:
                name = f"{fld}.{key}" if fld else str(key)
                raise self.fail(name, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required):
            if key not in value:
                name = f"{fld}.{key}" if fld else key
                raise self.fail(name, "missing")
        return value

    def listing(self, value: Any, fld: str, *, min_len: int = 0) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(fld, "must be a list")
        if len(value) < min_len:
            raise self.fail(fld, f"needs at least {min_len} entr{'y' if min_len == 1 else 'ies'}")
        return value

    def number(self, value: Any, fld: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(fld, "not a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(fld, "not a finite number")
        return float(value)

    def integer(self, value: Any, fld: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(fld, "not an integer")
        if not lo <= value <= hi:
            raise self.fail(fld, f"must be between {lo} and {hi}")
        return value

    def positive(self, value: Any, fld: str, lo: float, hi: float) -> float:
        number = self.number(value, fld)
        if not lo <= number <= hi:
            raise self.fail(fld, f"must be between {lo:g} and {hi:g}")
        return number

    def text(self, value: Any, fld: str, regex: re.Pattern[str] | None = None, what: str = "") -> str:
        if isinstance(value, bool):
            raise self.fail(fld, "not a string")
        if isinstance(value, int):
            value = str(value)  # YAML reads 1001 as a number; digits are fine either way
        if not isinstance(value, str):
            raise self.fail(fld, "not a string")
        if regex is not None and not regex.match(value):
            raise self.fail(fld, f"invalid {what or 'value'}: {value!r}")
        if regex is None and not _SAFE_TEXT_RE.match(value):
            raise self.fail(fld, "must be at most 128 characters without quotes, backslashes or control characters")
        return value


#: names a carrier may not take: they are keys of lab.json ports/processes already
RESERVED_NAMES = frozenset({"sip", "sip_tls", "sip_tls_expired", "rtpengine_ng", "rtp_min", "rtp_max",
                            "kamailio", "rtpengine", "supervisor"})

_TOP = {"domain", "accounts", "blocked_prefixes", "allow_list", "carriers", "routing",
        "antiflood", "timers", "workers"}


def parse_seed(data: Any, path: Path | str = "lab/seed.yaml") -> Seed:
    """Validate already-loaded YAML data; raise ConfigError naming the first bad field."""
    c = _Checker(path)
    if data is None:
        raise c.fail("", "empty file")
    top = c.mapping(data, "", _TOP, {"domain", "accounts", "carriers"})

    domain = c.text(top["domain"], "domain", _DOMAIN_RE, "domain name")

    accounts: list[Account] = []
    seen: set[str] = set()
    for i, raw in enumerate(c.listing(top["accounts"], "accounts", min_len=1)):
        fld = f"accounts[{i}]"
        acc = c.mapping(raw, fld, {"user", "password", "balance", "name", "deny", "allow_only"},
                        {"user", "password", "balance"})
        user = c.text(acc["user"], f"{fld}.user", _USER_RE, "user name")
        if user in seen:
            raise c.fail(f"{fld}.user", f"duplicate user {user!r}")
        seen.add(user)
        password = acc["password"]
        if not isinstance(password, str) or not password:
            raise c.fail(f"{fld}.password", "must be a non-empty string")
        password = c.text(password, f"{fld}.password")
        balance = c.number(acc["balance"], f"{fld}.balance")
        name = c.text(acc["name"], f"{fld}.name") if acc.get("name") is not None else None
        deny = _prefix_list(c, acc.get("deny"), f"{fld}.deny")
        allow_only = _prefix_list(c, acc.get("allow_only"), f"{fld}.allow_only")
        accounts.append(Account(user, password, balance, name, deny, allow_only))

    prefixes: list[BlockedPrefix] = []
    seen_p: set[str] = set()
    for i, raw in enumerate(c.listing(top.get("blocked_prefixes", []) or [], "blocked_prefixes")):
        fld = f"blocked_prefixes[{i}]"
        if isinstance(raw, (str, int)) and not isinstance(raw, bool):
            raw = {"prefix": raw}
        bp = c.mapping(raw, fld, {"prefix", "reason"}, {"prefix"})
        prefix = c.text(bp["prefix"], f"{fld}.prefix", _DIGITS_RE, "prefix (digits only)")
        if prefix in seen_p:
            raise c.fail(f"{fld}.prefix", f"duplicate prefix {prefix!r}")
        seen_p.add(prefix)
        reason = c.text(bp["reason"], f"{fld}.reason") if bp.get("reason") is not None else None
        prefixes.append(BlockedPrefix(prefix, reason))

    allow: list[str] = []
    for i, raw in enumerate(c.listing(top.get("allow_list", ["127.0.0.0/8"]), "allow_list", min_len=1)):
        fld = f"allow_list[{i}]"
        if not isinstance(raw, str):
            raise c.fail(fld, "not a CIDR string")
        try:
            net = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise c.fail(fld, f"not a CIDR: {raw!r}") from None
        allow.append(str(net))

    carriers: list[Carrier] = []
    seen_c: set[str] = set()
    for i, raw in enumerate(c.listing(top["carriers"], "carriers", min_len=1)):
        fld = f"carriers[{i}]"
        if isinstance(raw, str):
            raw = {"name": raw}
        cr = c.mapping(raw, fld, {"name", "priority", "set"}, {"name"})
        name = c.text(cr["name"], f"{fld}.name", _NAME_RE, "carrier name (a-z, 0-9, -, _)")
        if name in seen_c or name in RESERVED_NAMES:
            raise c.fail(f"{fld}.name", f"duplicate or reserved name {name!r}")
        seen_c.add(name)
        prio = c.integer(cr.get("priority", 0), f"{fld}.priority", 0, 1000)
        dset = c.integer(cr.get("set", 1), f"{fld}.set", 1, 2)
        carriers.append(Carrier(name, prio, dset))
    if not any(cr.set == 1 for cr in carriers):
        raise c.fail("carriers", "needs at least one carrier in set 1 (normal traffic)")

    extra: dict[str, Any] = {}
    if "routing" in top:
        r = c.mapping(top["routing"], "routing", {"algorithm", "set2_prefixes"}, set())
        if "algorithm" in r:
            alg = r["algorithm"]
            if alg not in ALGORITHMS:
                raise c.fail("routing.algorithm", f"must be one of {', '.join(ALGORITHMS)}")
            extra["algorithm"] = alg
        extra["set2_prefixes"] = _prefix_list(c, r.get("set2_prefixes"), "routing.set2_prefixes")
        if extra["set2_prefixes"] and not any(cr.set == 2 for cr in carriers):
            raise c.fail("routing.set2_prefixes", "no carrier is in set 2")
    if "antiflood" in top:
        a = c.mapping(top["antiflood"], "antiflood", {"window_s", "max_requests", "ban_s"}, set())
        if "window_s" in a:
            extra["pike_window_s"] = c.integer(a["window_s"], "antiflood.window_s", 1, 60)
        if "max_requests" in a:
            extra["pike_max_requests"] = c.integer(a["max_requests"], "antiflood.max_requests", 1, 10_000_000)
        if "ban_s" in a:
            extra["ban_s"] = c.integer(a["ban_s"], "antiflood.ban_s", 1, 86400)
    if "timers" in top:
        t = c.mapping(top["timers"], "timers",
                      {"fr_timer_s", "fr_inv_timer_s", "probe_interval_s", "dialog_timeout_s",
                       "media_timeout_s", "min_se_s"}, set())
        if "fr_timer_s" in t:
            extra["fr_timer_s"] = c.positive(t["fr_timer_s"], "timers.fr_timer_s", 0.5, 60)
        if "fr_inv_timer_s" in t:
            extra["fr_inv_timer_s"] = c.positive(t["fr_inv_timer_s"], "timers.fr_inv_timer_s", 1, 600)
        if "probe_interval_s" in t:
            extra["probe_interval_s"] = c.integer(t["probe_interval_s"], "timers.probe_interval_s", 1, 3600)
        if "dialog_timeout_s" in t:
            extra["dialog_timeout_s"] = c.integer(t["dialog_timeout_s"], "timers.dialog_timeout_s", 10, 86400)
        if "media_timeout_s" in t:
            extra["media_timeout_s"] = c.integer(t["media_timeout_s"], "timers.media_timeout_s", 2, 3600)
        if "min_se_s" in t:
            # RFC 4028 §4: Min-SE is never below 90 s
            extra["min_se_s"] = c.integer(t["min_se_s"], "timers.min_se_s", 90, 3600)
    if "workers" in top:
        extra["workers"] = c.integer(top["workers"], "workers", 1, 64)

    return Seed(domain=domain, accounts=tuple(accounts), blocked_prefixes=tuple(prefixes),
                allow_list=tuple(allow), carriers=tuple(carriers), path=str(path), **extra)


def _prefix_list(c: _Checker, value: Any, fld: str) -> tuple[str, ...]:
    """An optional list of digit prefixes (YAML may read them as numbers); no duplicates."""
    if value is None:
        return ()
    out: list[str] = []
    for i, raw in enumerate(c.listing(value, fld)):
        prefix = c.text(raw, f"{fld}[{i}]", _DIGITS_RE, "prefix (digits only)")
        if prefix in out:
            raise c.fail(f"{fld}[{i}]", f"duplicate prefix {prefix!r}")
        out.append(prefix)
    return tuple(out)


def load_seed(path: Path | str) -> Seed:
    """Read and validate a seed file (ConfigError on any problem, including YAML syntax)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(p, "", "no such file") from None
    except OSError as exc:
        raise ConfigError(p, "", f"unreadable: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(p, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    return parse_seed(data, _display(p))


def _display(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)

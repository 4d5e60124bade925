"""lab/seed.yaml: the reference platform's accounts, blocked prefixes, allow-list, carriers,
and the settings of its load shape.

Validated strictly and by hand so every problem is one line naming the file and the field
(``lab/seed.yaml: accounts[1].balance: not a number``); unknown keys are errors.

Shapes: the lab starts ``functional`` (the default: one Kamailio worker, the catalogue's
accounts, priority routing) or ``load`` (``voipqa lab up --shape load``): the seed's
``load_shape`` section overrides workers, memory, anti-flood, routing and rtpengine
control timeouts, and adds the load accounts. :func:`shaped` turns the parsed seed into
the one a shape runs, so rendering and DB creation never need to know about shapes and
the functional lab stays exactly what it was.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from qa.errors import BadInput, ConfigError

#: the shapes a lab starts in; the first is the default
SHAPES = ("functional", "load")

#: how Kamailio writes accounting rows (seed ``accounting``); the first is the default.
#: ``queued``: one writer process (lab/kamailio.cfg, ACCOUNTING); ``direct``: every
#: process writes SQLite itself, which loses rows under load ("database is locked"):
#: kept so voipqa can show it catches the loss.
ACCOUNTING_MODES = ("queued", "direct")

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
class LoadShape:
    """``load_shape:`` of the seed: what changes for stress/load/soak runs. ``None`` =
    the functional value. ``accounts`` exist only in the load shape, so a load run never
    spends or flips a balance a catalogue case relies on."""

    accounts: tuple[Account, ...]
    workers: int | None = None
    shm_mb: int | None = None
    pkg_mb: int | None = None
    media_ports: int | None = None
    algorithm: str | None = None
    pike_window_s: int | None = None
    pike_max_requests: int | None = None
    ban_s: int | None = None
    rtpengine_tout_ms: int | None = None
    rtpengine_retries: int | None = None
    rtpengine_disable_s: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The Seed fields this shape sets (accounts excluded)."""
        return {f: getattr(self, f) for f in _SHAPE_FIELDS if getattr(self, f) is not None}


_SHAPE_FIELDS = ("workers", "shm_mb", "pkg_mb", "media_ports", "algorithm", "pike_window_s",
                 "pike_max_requests", "ban_s", "rtpengine_tout_ms", "rtpengine_retries", "rtpengine_disable_s")


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
    accounting: str = "queued"         # ACCOUNTING_MODES; both shapes
    # the functional shape's values of what load_shape may change (the functional lab
    # has always run with these: Kamailio -m 64 and its default private memory, 400
    # media ports = ~100 concurrent calls, rtpengine module timeouts 1000 ms x 2, 5 s)
    shm_mb: int = 64
    pkg_mb: int | None = None          # None: Kamailio's built-in default (8 MB in 5.6)
    media_ports: int = 400
    rtpengine_tout_ms: int = 1000
    rtpengine_retries: int = 2
    rtpengine_disable_s: int = 5
    load_shape: LoadShape | None = None
    shape: str = "functional"          # set by shaped()
    load_users: tuple[str, ...] = ()   # the accounts that came from load_shape (shaped "load")
    path: str = field(default="lab/seed.yaml", compare=False)

    def account(self, user: str) -> Account | None:
        return next((a for a in self.accounts if a.user == user), None)


def check_shape(shape: object) -> str:
    """The shape name, or one line of BadInput listing the shapes."""
    if not isinstance(shape, str) or shape not in SHAPES:
        raise BadInput(f"unknown lab shape {shape!r} (shapes: {', '.join(SHAPES)})")
    return shape


def shaped(seed: Seed, shape: str) -> Seed:
    """The seed as a lab of ``shape`` runs it. ``functional`` is the seed unchanged (the
    same rendered config and DB as ever); ``load`` applies ``load_shape`` and adds its
    accounts to the ones of the catalogue."""
    check_shape(shape)
    if shape == "functional":
        return seed
    ls = seed.load_shape
    if ls is None:
        raise ConfigError(seed.path, "load_shape", "missing: this seed has no load shape (see lab/seed.yaml)")
    return replace(seed, **ls.overrides(), accounts=seed.accounts + ls.accounts, shape=shape,
                   load_users=tuple(a.user for a in ls.accounts))


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
        "antiflood", "timers", "workers", "accounting", "load_shape"}


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
        extra.update(_antiflood(c, top["antiflood"], "antiflood"))
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
    if "accounting" in top:
        if top["accounting"] not in ACCOUNTING_MODES:
            raise c.fail("accounting", f"must be one of {', '.join(ACCOUNTING_MODES)}")
        extra["accounting"] = top["accounting"]
    if "load_shape" in top:
        extra["load_shape"] = _load_shape(c, top["load_shape"], seen)

    return Seed(domain=domain, accounts=tuple(accounts), blocked_prefixes=tuple(prefixes),
                allow_list=tuple(allow), carriers=tuple(carriers), path=str(path), **extra)


_LOAD_PASSWORD_FORBIDDEN = re.compile(r"[\s;,\[\]=]")


def _load_shape(c: _Checker, raw: Any, catalogue_users: set[str]) -> LoadShape:
    """``load_shape:``; every setting optional (absent: the functional value), accounts required."""
    ls = c.mapping(raw, "load_shape", {"workers", "shm_mb", "pkg_mb", "media_ports", "routing", "antiflood",
                                       "rtpengine", "accounts"}, {"accounts"})
    out: dict[str, Any] = {}
    if "workers" in ls:
        out["workers"] = c.integer(ls["workers"], "load_shape.workers", 1, 64)
    if "shm_mb" in ls:
        out["shm_mb"] = c.integer(ls["shm_mb"], "load_shape.shm_mb", 64, 16384)
    if "pkg_mb" in ls:
        out["pkg_mb"] = c.integer(ls["pkg_mb"], "load_shape.pkg_mb", 8, 1024)
    if "media_ports" in ls:
        ports = c.integer(ls["media_ports"], "load_shape.media_ports", 40, 9000)
        if ports % 4:
            raise c.fail("load_shape.media_ports", "must be a multiple of 4 (RTP+RTCP on both legs of a call)")
        out["media_ports"] = ports
    if "routing" in ls:
        r = c.mapping(ls["routing"], "load_shape.routing", {"algorithm"}, set())
        if "algorithm" in r:
            if r["algorithm"] not in ALGORITHMS:
                raise c.fail("load_shape.routing.algorithm", f"must be one of {', '.join(ALGORITHMS)}")
            out["algorithm"] = r["algorithm"]
    if "antiflood" in ls:
        out.update(_antiflood(c, ls["antiflood"], "load_shape.antiflood"))
    if "rtpengine" in ls:
        r = c.mapping(ls["rtpengine"], "load_shape.rtpengine", {"timeout_ms", "retries", "disable_s"}, set())
        for key, name, lo, hi in (("timeout_ms", "rtpengine_tout_ms", 50, 60_000),
                                  ("retries", "rtpengine_retries", 0, 10),
                                  ("disable_s", "rtpengine_disable_s", 0, 3600)):
            if key in r:
                out[name] = c.integer(r[key], f"load_shape.rtpengine.{key}", lo, hi)
    return LoadShape(accounts=_load_accounts(c, ls["accounts"], catalogue_users), **out)


#: Kamailio's pike keeps its per-window limit in 16 bits (``struct ip_tree.max_hits`` is an
#: unsigned short): 200000 silently becomes 3392, which bans a load generator at ~450 calls/s.
PIKE_MAX_REQUESTS = 65535


def _antiflood(c: _Checker, raw: Any, fld: str) -> dict[str, int]:
    """``antiflood`` (top level or in ``load_shape``) as Seed/LoadShape fields."""
    a = c.mapping(raw, fld, {"window_s", "max_requests", "ban_s"}, set())
    out: dict[str, int] = {}
    for key, name, lo, hi in (("window_s", "pike_window_s", 1, 60),
                              ("max_requests", "pike_max_requests", 1, PIKE_MAX_REQUESTS),
                              ("ban_s", "ban_s", 1, 86400)):
        if key in a:
            out[name] = c.integer(a[key], f"{fld}.{key}", lo, hi)
    return out


def _load_accounts(c: _Checker, raw: Any, catalogue_users: set[str]) -> tuple[Account, ...]:
    """The load accounts: users apart from the catalogue's, positive balances, passwords
    of >= 12 characters mixing classes and safe inside a SIPp CSV injection field."""
    accounts: list[Account] = []
    seen: set[str] = set()
    for i, item in enumerate(c.listing(raw, "load_shape.accounts", min_len=1)):
        fld = f"load_shape.accounts[{i}]"
        acc = c.mapping(item, fld, {"user", "password", "balance", "name"}, {"user", "password", "balance"})
        user = c.text(acc["user"], f"{fld}.user", _USER_RE, "user name")
        if user in catalogue_users:
            raise c.fail(f"{fld}.user", f"{user!r} is a catalogue account (accounts[]): load accounts are apart")
        if user in seen:
            raise c.fail(f"{fld}.user", f"duplicate user {user!r}")
        seen.add(user)
        password = _load_password(c, acc["password"], f"{fld}.password")
        balance = c.number(acc["balance"], f"{fld}.balance")
        if balance <= 0:
            raise c.fail(f"{fld}.balance", "must be > 0 (a load account must be able to call)")
        name = c.text(acc["name"], f"{fld}.name") if acc.get("name") is not None else None
        accounts.append(Account(user, password, balance, name))
    return tuple(accounts)


def _load_password(c: _Checker, value: Any, fld: str) -> str:
    if not isinstance(value, str):
        raise c.fail(fld, "must be a string")
    password = c.text(value, fld)
    if len(password) < 12:
        raise c.fail(fld, "must be at least 12 characters")
    classes = sum(bool(re.search(rx, password)) for rx in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        raise c.fail(fld, "must mix at least 3 of: lower case, upper case, digits, symbols")
    if _LOAD_PASSWORD_FORBIDDEN.search(password):
        # SIPp reads it from a CSV field "[authentication username=U password=P]"
        raise c.fail(fld, "must not contain spaces, ';', ',', '[', ']' or '='")
    return password


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

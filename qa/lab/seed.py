"""lab/seed.yaml: the reference platform's accounts, blocked prefixes, allow-list, carriers,
and the settings of its load shape.

Validated strictly, with pydantic models read like every other user file
(:mod:`qa.validation`), so every problem is one line naming the file and the field
(``lab/seed.yaml: accounts[1].balance: not a number``); unknown keys are errors. The models
are the file; what the lab uses are the frozen dataclasses (:class:`Seed` ...) made from them.

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
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from qa.errors import BadInput, ConfigError
from qa.validation import (
    FieldError,
    FileModel,
    at_least,
    first_duplicate,
    integer_in,
    load_yaml_mapping,
    number,
    number_in,
    one_of,
    text,
    validate_file,
)

#: the shapes a lab starts in; the first is the default
SHAPES = ("functional", "load")

#: how Kamailio writes accounting rows (seed ``accounting``); the first is the default.
#: ``queued``: one writer process (lab/kamailio.cfg, ACCOUNTING); ``direct``: every
#: process writes SQLite itself, which loses rows under load ("database is locked"):
#: kept so voipqa can show it catches the loss.
ACCOUNTING_MODES = ("queued", "direct")

ALGORITHMS = {"priority": "8", "round-robin": "4", "hash-callid": "0"}

#: the lab's defences (seed ``defences``), each on unless the seed turns it off; what each
#: does is in lab/seed.yaml. ``voipqa security`` proves every one of them: with one off,
#: the attack it stops must fail (tests/integration/test_security.py).
DEFENCES = ("antiflood", "auth_ban", "uniform_auth_replies", "single_challenge", "sanity",
            "require_auth", "hide_version", "modern_tls", "strip_identity")

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
    defences: frozenset[str] = frozenset(DEFENCES)   # the ones that are on
    auth_ban_failures: int = 5         # failed authentications from one source before its ban
    auth_ban_window_s: int = 60        # ... counted over this many seconds
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


# -- the file, as pydantic models ---------------------------------------------------------------
#: names a carrier may not take: they are keys of lab.json ports/processes already
RESERVED_NAMES = frozenset({"sip", "sip_tls", "sip_tls_expired", "rtpengine_ng", "rtp_min", "rtp_max",
                            "kamailio", "rtpengine", "supervisor"})

#: Kamailio's pike keeps its per-window limit in 16 bits (``struct ip_tree.max_hits`` is an
#: unsigned short): 200000 silently becomes 3392, which bans a load generator at ~450 calls/s.
PIKE_MAX_REQUESTS = 65535

_LOAD_PASSWORD_FORBIDDEN = re.compile(r"[\s;,\[\]=]")


def _yaml_text(value: Any) -> str:
    """Text; YAML reads 1001 as a number, and digits are fine either way."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else text(value)


def _matching(regex: re.Pattern[str], what: str) -> BeforeValidator:
    def check(value: Any) -> str:
        value = _yaml_text(value)
        if not regex.match(value):
            raise ValueError(f"invalid {what}: {value!r}")
        return value
    return BeforeValidator(check)


def _safe_text(value: Any) -> str:
    """Text that goes into SQL and Kamailio's config as it is: short, nothing to escape."""
    value = _yaml_text(value)
    if not _SAFE_TEXT_RE.match(value):
        raise ValueError("must be at most 128 characters without quotes, backslashes or control characters")
    return value


def _password(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return _safe_text(value)


def _load_password(value: Any) -> str:
    """>= 12 characters mixing classes, and safe inside a SIPp CSV injection field."""
    if not isinstance(value, str):
        raise ValueError("must be a string")  # noqa: TRY004
    password = _safe_text(value)
    if len(password) < 12:
        raise ValueError("must be at least 12 characters")
    classes = sum(bool(re.search(rx, password)) for rx in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        raise ValueError("must mix at least 3 of: lower case, upper case, digits, symbols")
    if _LOAD_PASSWORD_FORBIDDEN.search(password):
        # SIPp reads it from a CSV field "[authentication username=U password=P]"
        raise ValueError("must not contain spaces, ';', ',', '[', ']' or '='")
    return password


def _can_call(balance: float) -> float:
    if balance <= 0:
        raise ValueError("must be > 0 (a load account must be able to call)")
    return balance


def _cidr(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a CIDR string")  # noqa: TRY004
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"not a CIDR: {value!r}") from None


def _multiple_of_4(ports: int | None) -> int | None:
    if ports is not None and ports % 4:
        raise ValueError("must be a multiple of 4 (RTP+RTCP on both legs of a call)")
    return ports


def _none_is_empty(value: Any) -> Any:
    return () if value is None else value


def _unique(key: str, problem: str, *at: str) -> AfterValidator:
    """No two entries with the same ``key`` (the entry itself when ""); ``problem`` is said,
    with the value, of the second one (``accounts[1].user: duplicate user '1001'``)."""
    def check(items: tuple[Any, ...]) -> tuple[Any, ...]:
        values = [getattr(item, key) if key else item for item in items]
        if (i := first_duplicate(values)) is not None:
            raise FieldError(problem.format(values[i]), i, *at)
        return items
    return AfterValidator(check)


def _given_mapping(value: Any) -> Any:
    if value is None:  # ``load_shape:`` with nothing under it is a mistake, not "no load shape"
        raise ValueError("must be a mapping")
    return value


def _named(key: str, kinds: tuple[type, ...]) -> BeforeValidator:
    """An entry written as its bare name or prefix (``- carrier-a``) is ``{key: it}``."""
    def check(value: Any) -> Any:
        return {key: value} if isinstance(value, kinds) and not isinstance(value, bool) else value
    return BeforeValidator(check)


def _not_reserved(name: str) -> str:
    if name in RESERVED_NAMES:
        raise ValueError(f"duplicate or reserved name {name!r}")
    return name


User = Annotated[str, _matching(_USER_RE, "user name")]
Prefix = Annotated[str, _matching(_DIGITS_RE, "prefix (digits only)")]
SafeText = Annotated[str, BeforeValidator(_safe_text)]
Prefixes = Annotated[tuple[Prefix, ...], BeforeValidator(_none_is_empty), _unique("", "duplicate prefix {!r}")]


class AccountFile(FileModel):
    user: User
    password: Annotated[str, BeforeValidator(_password)]
    balance: Annotated[float, BeforeValidator(number)]
    name: SafeText | None = None
    deny: Prefixes = ()
    allow_only: Prefixes = ()


class BlockedPrefixFile(FileModel):
    prefix: Prefix
    reason: SafeText | None = None


class CarrierFile(FileModel):
    name: Annotated[str, _matching(_NAME_RE, "carrier name (a-z, 0-9, -, _)"), AfterValidator(_not_reserved)]
    priority: Annotated[int, integer_in(0, 1000)] = 0
    set: Annotated[int, integer_in(1, 2)] = 1


# Below, None is "not in the file": the Seed's (functional) value applies. An explicit null
# is refused by the field's check, as any other value that is not of its kind.
class LoadRoutingFile(FileModel):
    algorithm: Annotated[str | None, one_of(ALGORITHMS)] = None


class RoutingFile(LoadRoutingFile):
    set2_prefixes: Prefixes = ()


class AntifloodFile(FileModel):
    """``antiflood:`` (top level or in ``load_shape``); named as the Seed fields it sets."""

    pike_window_s: Annotated[int | None, integer_in(1, 60)] = Field(None, alias="window_s")
    pike_max_requests: Annotated[int | None, integer_in(1, PIKE_MAX_REQUESTS)] = Field(None, alias="max_requests")
    ban_s: Annotated[int | None, integer_in(1, 86400)] = None


Flag = Annotated[bool, Field(strict=True)]   # true/false only (not "yes", not 1)


class DefencesFile(FileModel):
    """``defences:``: each defence on (true, the default) or off (false), and the auth ban's limits."""

    antiflood: Flag = True
    auth_ban: Flag = True
    uniform_auth_replies: Flag = True
    single_challenge: Flag = True
    sanity: Flag = True
    require_auth: Flag = True
    hide_version: Flag = True
    modern_tls: Flag = True
    strip_identity: Flag = True
    auth_ban_failures: Annotated[int | None, integer_in(1, 1000)] = None
    auth_ban_window_s: Annotated[int | None, integer_in(1, 86400)] = None

    def settings(self) -> dict[str, Any]:
        """The Seed fields this section sets."""
        on = frozenset(name for name in DEFENCES if getattr(self, name))
        limits = self.model_dump(include={"auth_ban_failures", "auth_ban_window_s"}, exclude_unset=True)
        return {"defences": on} | limits


class TimersFile(FileModel):
    fr_timer_s: Annotated[float | None, number_in(0.5, 60)] = None
    fr_inv_timer_s: Annotated[float | None, number_in(1, 600)] = None
    probe_interval_s: Annotated[int | None, integer_in(1, 3600)] = None
    dialog_timeout_s: Annotated[int | None, integer_in(10, 86400)] = None
    media_timeout_s: Annotated[int | None, integer_in(2, 3600)] = None
    min_se_s: Annotated[int | None, integer_in(90, 3600)] = None   # RFC 4028 §4: Min-SE is never below 90 s


class RtpengineFile(FileModel):
    """The Kamailio rtpengine module's control timeouts, named as the Seed fields they set."""

    rtpengine_tout_ms: Annotated[int | None, integer_in(50, 60_000)] = Field(None, alias="timeout_ms")
    rtpengine_retries: Annotated[int | None, integer_in(0, 10)] = Field(None, alias="retries")
    rtpengine_disable_s: Annotated[int | None, integer_in(0, 3600)] = Field(None, alias="disable_s")


class LoadAccountFile(FileModel):
    """A load account: apart from the catalogue's (checked by :class:`SeedFile`), able to call."""

    user: User
    password: Annotated[str, BeforeValidator(_load_password)]
    balance: Annotated[float, BeforeValidator(number), AfterValidator(_can_call)]
    name: SafeText | None = None


class LoadShapeFile(FileModel):
    """``load_shape:``; every setting optional (absent: the functional value), accounts required."""

    workers: Annotated[int | None, integer_in(1, 64)] = None
    shm_mb: Annotated[int | None, integer_in(64, 16384)] = None
    pkg_mb: Annotated[int | None, integer_in(8, 1024)] = None
    media_ports: Annotated[int | None, integer_in(40, 9000), AfterValidator(_multiple_of_4)] = None
    routing: LoadRoutingFile = LoadRoutingFile()
    antiflood: AntifloodFile = AntifloodFile()
    rtpengine: RtpengineFile = RtpengineFile()
    accounts: Annotated[tuple[LoadAccountFile, ...], at_least(1), _unique("user", "duplicate user {!r}", "user")]


class SeedFile(FileModel):
    """The whole file; lab/seed.yaml describes every key."""

    domain: Annotated[str, _matching(_DOMAIN_RE, "domain name")]
    accounts: Annotated[tuple[AccountFile, ...], at_least(1), _unique("user", "duplicate user {!r}", "user")]
    blocked_prefixes: Annotated[tuple[Annotated[BlockedPrefixFile, _named("prefix", (str, int))], ...],
                                BeforeValidator(_none_is_empty),
                                _unique("prefix", "duplicate prefix {!r}", "prefix")] = ()
    allow_list: Annotated[tuple[Annotated[str, BeforeValidator(_cidr)], ...], at_least(1)] = ("127.0.0.0/8",)
    carriers: Annotated[tuple[Annotated[CarrierFile, _named("name", (str,))], ...], at_least(1),
                        _unique("name", "duplicate or reserved name {!r}", "name")]
    routing: RoutingFile = RoutingFile()
    antiflood: AntifloodFile = AntifloodFile()
    timers: TimersFile = TimersFile()
    workers: Annotated[int | None, integer_in(1, 64)] = None
    accounting: Annotated[str | None, one_of(ACCOUNTING_MODES)] = None
    defences: DefencesFile = DefencesFile()
    load_shape: Annotated[LoadShapeFile | None, BeforeValidator(_given_mapping)] = None

    @model_validator(mode="after")
    def _across_sections(self) -> SeedFile:
        """Rules that tie two sections together, reported on the field a user would change."""
        if not any(c.set == 1 for c in self.carriers):
            raise FieldError("needs at least one carrier in set 1 (normal traffic)", "carriers")
        if self.routing.set2_prefixes and not any(c.set == 2 for c in self.carriers):
            raise FieldError("no carrier is in set 2", "routing", "set2_prefixes")
        catalogue = {a.user for a in self.accounts}
        for i, account in enumerate(self.load_shape.accounts if self.load_shape else ()):
            if account.user in catalogue:
                raise FieldError(f"{account.user!r} is a catalogue account (accounts[]): load accounts are apart",
                                 "load_shape", "accounts", i, "user")
        return self


# -- loading ------------------------------------------------------------------------------------
def parse_seed(data: Any, path: Path | str = "lab/seed.yaml") -> Seed:
    """Validate already-loaded YAML data; raise ConfigError naming the first bad field."""
    f = validate_file(SeedFile, data, path)
    settings = _written(f.routing, f.antiflood, f.timers) | f.model_dump(include={"workers", "accounting"},
                                                                         exclude_unset=True)
    settings |= f.defences.settings()
    return Seed(domain=f.domain, accounts=tuple(_account(a) for a in f.accounts),
                blocked_prefixes=tuple(BlockedPrefix(b.prefix, b.reason) for b in f.blocked_prefixes),
                allow_list=f.allow_list, carriers=tuple(Carrier(c.name, c.priority, c.set) for c in f.carriers),
                load_shape=_load_shape(f.load_shape) if f.load_shape else None, path=str(path), **settings)


def _load_shape(ls: LoadShapeFile) -> LoadShape:
    """What ``load_shape`` changes, by the Seed field names (:meth:`LoadShape.overrides`)."""
    return LoadShape(accounts=tuple(_account(a) for a in ls.accounts),
                     **_written(ls.routing, ls.antiflood, ls.rtpengine),
                     **ls.model_dump(include={"workers", "shm_mb", "pkg_mb", "media_ports"}, exclude_unset=True))


def _account(a: AccountFile | LoadAccountFile) -> Account:
    rules = (a.deny, a.allow_only) if isinstance(a, AccountFile) else ((), ())
    return Account(a.user, a.password, a.balance, a.name, *rules)


def _written(*sections: FileModel) -> dict[str, Any]:
    """The settings the sections write (by the Seed field names); what they leave out keeps its default."""
    return {k: v for section in sections for k, v in section.model_dump(exclude_unset=True).items()}


def load_seed(path: Path | str) -> Seed:
    """Read and validate a seed file (ConfigError on any problem, including YAML syntax)."""
    shown = _display(Path(path))
    return parse_seed(load_yaml_mapping(shown, "domain:, accounts:, carriers:, ..."), shown)


def _display(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)

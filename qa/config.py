"""Environments (docs/environments.md): where the platform under test is and how to judge it.

This module is what an environment *is*: the file format and the :class:`Environment`
value. Where one comes from (the running lab's state, a file whose CDR source is opened)
is :mod:`qa.environments`, a service: config sits below the services and imports none.

``lab`` is the built-in environment, made from the running native lab's state file;
``environments/<name>.yaml`` points the same suites at another platform
(``voipqa run --env staging``). The file is validated with pydantic and every problem is
one line naming the file and the field (``environments/staging.yaml: target.ports.tls:
not a port number``); unknown keys are errors. Passwords come from environment variables
(``password_env``) and live here and nowhere else: logs and reports get them masked.
The documented example is ``environments/example-staging.yaml``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, ValidationError, field_validator,
                      model_validator)

from qa.errors import BadInput, ConfigError
from qa.paths import ROOT
from qa.record import CDR_COLUMNS
from qa.validation import load_yaml_mapping, pydantic_problem

if TYPE_CHECKING:  # the sources are made by qa.environments (a service); config only names them
    from qa.cdr.source import CdrSource

MASK = "******"
ENV_DIR = "environments"
_ENV_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PasswordInFileWarning(UserWarning):
    """An environment file holds a password itself instead of naming an env var."""


# -- the file, as pydantic models -------------------------------------------------------------
def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("not a port number")
    return value


Port = Annotated[int, BeforeValidator(_port)]
EnvVar = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
Number = Annotated[str, Field(pattern=r"^\+?[0-9]{3,32}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PortsFile(_Strict):
    udp: Port | None = None
    tcp: Port | None = None
    tls: Port | None = None
    tls_expired: Port | None = None    # a TLS port serving an expired certificate (the lab's TLS cases)

    @model_validator(mode="after")
    def _one_plain(self) -> "PortsFile":
        if self.udp is None and self.tcp is None:
            raise ValueError("give udp or tcp (the TLS port alone cannot place plain calls)")
        if self.udp is not None and self.tcp is not None and self.udp != self.tcp:
            raise ValueError("udp and tcp must be the same port (customers use one address for both)")
        return self


class TargetFile(_Strict):
    host: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9.:_-]+$")]
    domain: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$")] | None = None
    ports: PortsFile
    tls_server_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9.*-]+$")] | None = None
    ca_cert: Path | None = None


class AccountFile(_Strict):
    user: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")]
    password_env: EnvVar | None = None
    password: Annotated[str, Field(min_length=1)] | None = None
    balance_class: Literal["positive", "zero", "negative"] = "positive"

    @model_validator(mode="after")
    def _one_password(self) -> "AccountFile":
        if (self.password_env is None) == (self.password is None):
            raise ValueError("give exactly one of password_env (recommended) or password")
        return self


class CarrierFile(_Strict):
    bind: Annotated[str, Field(pattern=r"^[A-Za-z0-9.:_-]+:[0-9]{1,5}$")] | None = None
    plan: Path | None = None
    cdr: list[Path] = []
    # the carriers' SIP ports, captured with the run: a call whose customer leg is TLS is
    # judged on the wire by its carrier leg
    sip_ports: list[Port] = []


class CdrFile(_Strict):
    dsn: Annotated[str, Field(min_length=1)]
    table: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")] = "voipqa_cdr"
    mapping: dict[str, Annotated[str, Field(min_length=1)]] = {}
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","

    @field_validator("mapping")
    @classmethod
    def _canonical_keys(cls, mapping: dict[str, str]) -> dict[str, str]:
        for key in mapping:
            if key not in CDR_COLUMNS:
                raise ValueError(f"{key!r} is not a CDR column (known: {', '.join(CDR_COLUMNS)})")
        return mapping


Fraction = Annotated[float, Field(ge=0, le=1)]


class ThresholdsFile(_Strict):
    asr_min: Fraction | None = None
    ner_min: Fraction | None = None
    pdd_ms_max: Annotated[float, Field(gt=0)] | None = None
    setup_ms_max: Annotated[float, Field(gt=0)] | None = None
    mos_min: Annotated[float, Field(ge=1, le=5)] | None = None
    jitter_ms_max: Annotated[float, Field(ge=0)] | None = None
    loss_pct_max: Annotated[float, Field(ge=0, le=100)] | None = None
    cdr_discrepancies_max: Annotated[int, Field(ge=0)] = 0


MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.]*$")]
Nonblank = Annotated[str, Field(min_length=1)]


class ResourcesFile(_Strict):
    """Where the platform's resources are read during load and soak runs (issue 7).

    The built-in lab is sampled directly; any other platform says here what it exposes: a
    Prometheus text endpoint (``metrics``: voipqa name -> series) and/or a JSON stats URL
    (``fields``: voipqa name -> dotted path). ``scale`` converts units (bytes -> MB).
    """

    prometheus: HttpUrl | None = None
    metrics: dict[MetricName, Nonblank] = {}
    scale: dict[MetricName, Annotated[float, Field(allow_inf_nan=False)]] = {}
    stats_url: HttpUrl | None = None
    fields: dict[MetricName, Nonblank] = {}

    @model_validator(mode="after")
    def _sources_and_names(self) -> "ResourcesFile":
        if self.prometheus is None and self.stats_url is None:
            raise ValueError("give prometheus or stats_url (or both)")
        if self.metrics and self.prometheus is None:
            raise ValueError("metrics are read from prometheus: give its URL")
        if self.fields and self.stats_url is None:
            raise ValueError("fields are read from stats_url: give its URL")
        if self.prometheus is not None and not self.metrics:
            raise ValueError("prometheus without metrics samples nothing: map at least one metric")
        if self.stats_url is not None and not self.fields:
            raise ValueError("stats_url without fields samples nothing: map at least one field")
        if unknown := sorted(set(self.scale) - set(self.metrics) - set(self.fields)):
            raise ValueError(f"scale names {unknown[0]}, which is in neither metrics nor fields")
        return self


class AlertsFile(_Strict):
    """Where alerts go (``qa.alerts``): any of a Slack-compatible webhook (its URL is a
    secret: name the environment variable holding it), Alertmanager's v2 API, a command."""

    webhook_env: EnvVar | None = None
    alertmanager: HttpUrl | None = None
    command: Annotated[list[Nonblank], Field(min_length=1)] | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0

    @model_validator(mode="after")
    def _somewhere(self) -> "AlertsFile":
        if self.webhook_env is None and self.alertmanager is None and self.command is None:
            raise ValueError("give webhook_env, alertmanager or command (alerts need somewhere to go)")
        return self


Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$")]


class GateFile(_Strict):
    """What ``voipqa gate`` runs and the limits of its deploy decision (``qa.gate``)."""

    suites: list[Path] = []                 # default robot_suites/ (relative to this file)
    include: list[Tag] = []                 # tags of the cases to run; default every case
    exclude: list[Tag] = []
    profile: Nonblank | None = "gate"       # a load profile name or path; null: no load step
    failed_cases_max: Annotated[int, Field(ge=0)] = 0
    malformed_sip_max: Annotated[int, Field(ge=0)] = 0


def _ipv4(value: Any) -> str:
    import ipaddress

    try:
        return str(ipaddress.IPv4Address(value))
    except (ValueError, TypeError):
        raise ValueError(f"not an IPv4 address: {value!r}") from None


Address = Annotated[str, BeforeValidator(_ipv4)]
AccountName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")]


class FloodFile(_Strict):
    """One flood per method: ``packets`` requests at ``rate`` per second, at most."""

    rate: Annotated[int, Field(ge=100, le=50_000)] = 4000
    packets: Annotated[int, Field(ge=100, le=100_000)] = 12000
    throttled_within_s: Annotated[float, Field(gt=0, le=60)] = 2.0

    @model_validator(mode="after")
    def _long_enough(self) -> "FloodFile":
        if self.packets / self.rate < self.throttled_within_s + 0.5:
            raise ValueError(f"{self.packets} packets at {self.rate}/s last {self.packets / self.rate:g} s: "
                             f"give at least {self.throttled_within_s + 0.5:g} s (throttled_within_s + 0.5) "
                             "so a flood that is never throttled shows it")
        return self


class SecurityNumbersFile(_Strict):
    """Destinations the attacks dial: ``answer`` (the carrier answers: a legitimate call during
    the floods), ``reject`` (the carrier refuses it at once: the forged-identity probe), and the
    toll-fraud targets nobody may reach unauthenticated."""

    answer: Number = "15550001234"
    reject: Number = "1555003486"
    international: Annotated[list[Number], Field(min_length=1)] = ["+442071838750", "0088213000001"]
    premium: Annotated[list[Number], Field(min_length=1)] = ["19005550100"]


class SecurityFile(_Strict):
    """``security:``: how ``voipqa security`` attacks this platform (docs/security.md). The
    defaults are the lab's."""

    # local addresses the attacks send from, one per attack, that the platform's allow-list
    # accepts: a ban then hits the attacker's address, never the customers'
    sources: Annotated[list[Address], Field(min_length=1)] = [f"127.0.0.{n}" for n in range(65, 95)]
    outside_source: Address | None = "127.0.0.2"   # an address the allow-list refuses
    customer_source: Address = "127.0.0.1"         # where the legitimate customer calls from
    customer: AccountName | None = None            # the legitimate caller (default: the first account)
    numbers: SecurityNumbersFile = SecurityNumbersFile()
    flood: FloodFile = FloodFile()
    brute_force_tries: Annotated[int, Field(ge=2, le=500)] = 20
    timing_tolerance_ms: Annotated[float, Field(gt=0, le=5000)] = 50.0
    cert_warning_days: Annotated[int, Field(ge=0, le=3650)] = 30
    srtp: Literal["none", "optional", "mandatory"] = "none"


class EnvironmentFile(_Strict):
    """``environments/<name>.yaml``; see environments/example-staging.yaml for each field."""

    description: str | None = None
    target: TargetFile
    accounts: Annotated[list[AccountFile], Field(min_length=1)]
    carrier: CarrierFile = CarrierFile()
    cdr: CdrFile | None = None
    thresholds: ThresholdsFile = ThresholdsFile()
    numbers: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")], Number] = {}
    resources: ResourcesFile | None = None
    gate: GateFile = GateFile()
    alerts: AlertsFile | None = None
    security: SecurityFile = SecurityFile()

    @field_validator("accounts")
    @classmethod
    def _unique_users(cls, accounts: list[AccountFile]) -> list[AccountFile]:
        users = [a.user for a in accounts]
        if dupes := sorted({u for u in users if users.count(u) > 1}):
            raise ValueError(f"user {dupes[0]} is listed twice")
        return accounts


# -- what the rest of voipqa uses ---------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """The platform's SIP entry points."""

    host: str
    port: int
    tls_port: int | None = None
    domain: str | None = None
    tls_server_name: str | None = None
    ca_cert: Path | None = None

    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CdrSettings:
    """Where the platform's CDRs are: kept as settings so a command can override a part."""

    dsn: str
    table: str = "voipqa_cdr"
    mapping: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","
    base: Path | None = None  # relative file paths in ``dsn`` start here



@dataclass
class Environment:
    """Everything a case needs to place and judge a call against one platform."""

    name: str
    target: Target
    accounts: dict[str, str] = field(default_factory=dict)
    platform_cdr: CdrSource | None = None
    carrier_cdr: CdrSource | None = None   # verbatim carrier lines (the call record's ``carrier``)
    extra: dict[str, Any] = field(default_factory=dict)
    cdr: CdrSettings | None = None
    carrier_cdr_paths: tuple[Path, ...] = ()
    secrets: tuple[str, ...] = ()          # masked like passwords (e.g. a DSN's password)
    settings: EnvironmentFile | None = None  # the validated file (thresholds, numbers, carrier)
    path: Path | None = None

    def password(self, user: str) -> str:
        """The account's password; a user unknown to the environment is bad input."""
        try:
            return self.accounts[user]
        except KeyError:
            raise BadInput(f"environment {self.name}: no account {user!r} "
                           f"(known: {', '.join(sorted(self.accounts)) or 'none'})") from None

    def mask(self, text: str) -> str:
        """Replace every known password and secret in ``text`` by a mask, for logs and reports."""
        for secret in sorted({*self.accounts.values(), *self.secrets}, key=len, reverse=True):
            if secret:
                text = text.replace(secret, MASK)
        return text


def find_environment(name: str) -> Path:
    """``./environments/NAME.yaml``, then the repository's; a path is taken as it is."""
    if name.endswith((".yaml", ".yml")) or "/" in name or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise BadInput(f"environment file {name}: no such file")
        return path
    if not _ENV_NAME_RE.match(name):
        raise BadInput(f"environment {name!r}: not a name (letters, digits, '.', '_', '-') nor a .yaml path")
    for folder in (Path(ENV_DIR), ROOT / ENV_DIR):
        if (folder / f"{name}.yaml").is_file():
            return folder / f"{name}.yaml"
    raise BadInput(f"environment {name!r}: no {ENV_DIR}/{name}.yaml here or in {ROOT / ENV_DIR}")


def _extended(path: Path, data: dict[str, Any], seen: tuple[Path, ...]) -> dict[str, Any]:
    """``extends: other.yaml`` (beside this file): the other file with this one laid over it,
    mappings merged key by key, anything else (lists too) replaced. Why: one platform seen
    from two places (the docker lab from its bridge and from the host) differs in an address,
    not in its thirty lines of accounts and CDR settings."""
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name.endswith((".yaml", ".yml")):
        raise ConfigError(path, "extends", f"{base_name!r}: expected a .yaml file beside this one")
    base = (path.parent / base_name).resolve()
    if base in seen or base == path.resolve():
        raise ConfigError(path, "extends", f"{base_name}: extends itself (a cycle)")
    if not base.is_file():
        raise ConfigError(path, "extends", f"{base_name}: no such file in {path.parent}")
    inherited = _extended(base, load_yaml_mapping(base, "target:, accounts:, ..."), (*seen, path.resolve()))
    return _merged(inherited, data)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


def parse_environment_file(path: Path) -> EnvironmentFile:
    """The validated file; any problem is one ConfigError naming the file and the field."""
    data = _extended(path, load_yaml_mapping(path, "target:, accounts:, ..."), ())
    try:
        return EnvironmentFile.model_validate(data)
    except ValidationError as exc:
        loc, problem = pydantic_problem(exc, data)
        raise ConfigError(path, loc, problem) from None

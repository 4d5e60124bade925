"""Where an environment comes from: the running lab, or an environment file.

:mod:`qa.config` says what an environment is (the validated file, :class:`Environment`);
this module makes one, which needs services config must not import: the lab's state
(``qa.lab``) and the CDR sources (``qa.cdr``), opened here so a bad DSN is one line
naming the file before anything runs.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from qa.cdr.source import CdrSource, JsonlCdrSource, open_source
from qa.config import (AccountFile, CdrFile, CdrSettings, Environment, PasswordInFileWarning, Target,
                       find_environment, parse_environment_file)
from qa.errors import BadInput, ConfigError

__all__ = ["environment_from_file", "lab_environment", "load_environment", "open_cdr"]

_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def open_cdr(cdr: CdrSettings, dsn: str | None = None, table: str | None = None,
             mapping: dict[str, str] | None = None) -> CdrSource:
    """The platform's CDR source, with any of dsn/table/mapping overridden (mapping entries merge)."""
    return open_source(dsn or cdr.dsn, cdr.mapping | (mapping or {}), table or cdr.table,
                       base=None if dsn else cdr.base, delimiter=cdr.delimiter)


def lab_environment(run_dir: Path | None = None) -> Environment:
    """The built-in ``lab`` environment, from the running native lab's state."""
    from qa import lab  # a service, imported late so protocol-only users never load it

    run_dir = Path(run_dir) if run_dir else lab.default_run_dir()
    state = lab.load_state(run_dir)
    if state is None:
        raise BadInput(f"no lab is running in {run_dir}: start one with 'voipqa lab up'")
    seed = lab.effective_seed(state)  # a load-shaped lab has its load accounts too
    cdr = CdrSettings(dsn=f"sqlite:///{Path(state.cdr_db).resolve()}")
    carrier_paths = tuple(Path(p) for p in state.carrier_cdr.values())
    return Environment(
        name="lab",
        target=Target(host=state.host, port=state.ports["sip"], tls_port=state.ports.get("sip_tls"),
                      domain=state.domain, tls_server_name=state.tls_server_name,
                      ca_cert=Path(state.ca_cert) if state.ca_cert else None),
        accounts={a.user: a.password for a in seed.accounts},
        platform_cdr=open_cdr(cdr),
        carrier_cdr=JsonlCdrSource(carrier_paths, verbatim=True),
        extra={"run_dir": str(run_dir), "shape": state.shape,
               "load_accounts": list(state.load_accounts),
               "positive_accounts": [a.user for a in seed.accounts if a.balance > 0]},
        cdr=cdr,
        carrier_cdr_paths=carrier_paths,
    )


def load_environment(name: str | None) -> Environment:
    """``None`` or ``lab``: the native lab; ``NAME``: environments/NAME.yaml; or a file path."""
    if name in (None, "lab"):
        return lab_environment(Path(os.environ["VOIPQA_LAB_DIR"]) if os.environ.get("VOIPQA_LAB_DIR") else None)
    return environment_from_file(find_environment(name))


def environment_from_file(path: Path) -> Environment:
    """An Environment from ``environments/<name>.yaml`` (passwords read from env vars now)."""
    spec = parse_environment_file(path)
    base = Path(path).resolve().parent
    accounts = {a.user: _account_password(path, i, a) for i, a in enumerate(spec.accounts)}
    secrets: list[str] = []
    cdr = _cdr_settings(path, spec.cdr, base, secrets) if spec.cdr else None
    carrier_paths = tuple(base / p for p in spec.carrier.cdr)
    target = spec.target
    ca_cert = base / target.ca_cert if target.ca_cert else None
    if ca_cert is not None and not ca_cert.is_file():
        raise ConfigError(path, "target.ca_cert", f"{ca_cert}: no such file")
    return Environment(
        name=Path(path).stem,
        target=Target(host=target.host, port=target.ports.udp or target.ports.tcp, tls_port=target.ports.tls,
                      domain=target.domain, tls_server_name=target.tls_server_name, ca_cert=ca_cert),
        accounts=accounts,
        platform_cdr=_open(path, cdr) if cdr else None,
        carrier_cdr=JsonlCdrSource(carrier_paths, verbatim=True) if carrier_paths else None,
        extra={"file": str(path)},
        cdr=cdr,
        carrier_cdr_paths=carrier_paths,
        secrets=tuple(secrets),
        settings=spec,
        path=Path(path),
    )


def _open(path: Path, cdr: CdrSettings) -> CdrSource:
    try:
        return open_cdr(cdr)
    except ConfigError:
        raise
    except BadInput as exc:
        raise ConfigError(path, "cdr.dsn", str(exc)) from None


def _account_password(path: Path, index: int, account: AccountFile) -> str:
    if account.password is not None:
        warnings.warn(f"{path}: accounts[{index}].password: a password in the file; "
                      f"name an environment variable with password_env instead", PasswordInFileWarning,
                      stacklevel=3)
        return account.password
    value = os.environ.get(account.password_env or "")
    if not value:
        raise ConfigError(path, f"accounts[{index}].password_env",
                          f"environment variable {account.password_env} is not set")
    return value


def _cdr_settings(path: Path, cdr: CdrFile, base: Path, secrets: list[str]) -> CdrSettings:
    """The CDR settings with ``${VAR}`` in the DSN expanded; what was secret is remembered."""
    def expand(match: re.Match[str]) -> str:
        value = os.environ.get(match.group(1))
        if value is None:
            raise ConfigError(path, "cdr.dsn", f"environment variable {match.group(1)} is not set")
        secrets.append(value)
        return value

    dsn = _VAR_RE.sub(expand, cdr.dsn)
    if "://" in dsn and "@" in dsn.split("://", 1)[1]:
        userinfo = dsn.split("://", 1)[1].split("@", 1)[0]
        if ":" in userinfo:
            secrets.append(userinfo.split(":", 1)[1])
    return CdrSettings(dsn=dsn, table=cdr.table, mapping=dict(cdr.mapping), delimiter=cdr.delimiter, base=base)

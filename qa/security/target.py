"""The platform as the attacks see it: where it listens, who attacks from where, and the
witnesses that judge whether an attack got through.

Made from an :class:`qa.config.Environment` (the lab's or an environment file's): the
suite attacks only the target an environment names. Each attack takes its own source
address (:meth:`SecurityTarget.take_source`), one the platform accepts and has not banned,
so a ban an attack earns never spoils the next one, nor the customers' 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from qa.config import Environment, SecurityFile
from qa.errors import BadInput
from qa.security.wire import SipSocket

Row = dict[str, Any]


@dataclass
class SecurityTarget:
    """One platform under attack (see the module docstring)."""

    name: str
    host: str
    port: int
    domain: str
    accounts: dict[str, str]
    settings: SecurityFile
    tls_port: int | None = None
    tls_expired_port: int | None = None
    tls_server_name: str | None = None
    ca_cert: str | None = None
    carrier_rows: Callable[[Iterable[str]], list[Row]] = lambda ids: []
    billed_rows: Callable[[Iterable[str]], list[Row]] = lambda ids: []
    processes_down: Callable[[], list[str]] = lambda: []
    has_carrier_witness: bool = False
    has_billing_witness: bool = False
    mask: Callable[[str], str] = lambda text: text
    torture_dir: str | None = None     # extra torture messages (*.dat, e.g. RFC 4475's), --torture-dir
    carrier_ports: tuple[int, ...] = ()  # the carriers' SIP ports: the wire witness of a leg that got through
    _next_source: int = field(default=0, repr=False)
    used_sources: list[str] = field(default_factory=list)

    @property
    def customer(self) -> str:
        return self.settings.customer or next(iter(self.accounts))

    def ports(self) -> list[tuple[str, int]]:
        """Every (transport, port) the environment names."""
        out = [("udp", self.port), ("tcp", self.port)]
        if self.tls_port:
            out.append(("tls", self.tls_port))
        if self.tls_expired_port:
            out.append(("tls", self.tls_expired_port))
        return out

    def options_answered(self, source: str, timeout: float = 0.5) -> bool:
        """Does the platform answer an OPTIONS from ``source`` (the health probe)?"""
        try:
            with SipSocket(self.host, self.port, "udp", local=source, timeout=timeout) as sock:
                req = sock.request("OPTIONS", f"sip:{self.host}:{self.port}", from_user="health", domain=self.domain,
                                   to_user="health")
                return sock.exchange(req) is not None
        except OSError:
            return False

    def take_source(self) -> str:
        """The next attacker address the platform still answers (a banned one is skipped)."""
        sources = self.settings.sources
        while self._next_source < len(sources):
            source = sources[self._next_source]
            self._next_source += 1
            if self.options_answered(source):
                self.used_sources.append(source)
                return source
        raise BadInput(f"environment {self.name}: no attacker address left that the platform answers "
                       f"(security.sources: {len(sources)} addresses, all used or banned; "
                       f"wait for the bans to expire or list more)")

    def healthy(self) -> bool:
        """The platform answers a customer's OPTIONS (from the first address the allow-list
        accepts that no attack uses) and none of its processes is down."""
        return not self.processes_down() and self.options_answered(self.customer_source)

    @property
    def customer_source(self) -> str:
        return self.settings.customer_source


def from_environment(env: Environment) -> SecurityTarget:
    """The attack target of ``env``; BadInput when it names no account."""
    settings = env.settings.security if env.settings is not None else SecurityFile()
    if not env.accounts:
        raise BadInput(f"environment {env.name}: no accounts: the attacks need one to compare with")
    if settings.customer and settings.customer not in env.accounts:
        raise BadInput(f"environment {env.name}: security.customer {settings.customer!r} is not one of its accounts")
    target = env.target
    tls_expired: int | None = None
    carrier_ports: tuple[int, ...] = ()
    if env.settings is not None:
        tls_expired = env.settings.target.ports.tls_expired
        carrier_ports = tuple(env.settings.carrier.sip_ports)
    elif env.extra.get("run_dir"):
        tls_expired, carrier_ports = _lab_ports(env)
    return SecurityTarget(
        name=env.name, host=target.host, port=target.port, domain=target.domain or target.host,
        accounts=dict(env.accounts), settings=settings, tls_port=target.tls_port, tls_expired_port=tls_expired,
        tls_server_name=target.tls_server_name, ca_cert=str(target.ca_cert) if target.ca_cert else None,
        carrier_rows=_rows_of(env.carrier_cdr), billed_rows=_rows_of(env.platform_cdr),
        has_carrier_witness=env.carrier_cdr is not None, has_billing_witness=env.platform_cdr is not None,
        processes_down=_lab_processes(env), mask=env.mask, carrier_ports=carrier_ports)


def _rows_of(source: Any) -> Callable[[Iterable[str]], list[Row]]:
    if source is None:
        return lambda ids: []

    def rows(call_ids: Iterable[str]) -> list[Row]:
        out: list[Row] = []
        for call_id in call_ids:
            out.extend(source.rows(call_id))
        return out
    return rows


def _lab_ports(env: Environment) -> tuple[int | None, tuple[int, ...]]:
    """The lab's expired-certificate TLS port and its carriers' SIP ports."""
    from qa import lab

    state = lab.load_state(env.extra["run_dir"])
    if state is None:
        return None, ()
    carriers = tuple(port for name, port in state.ports.items() if name in state.carrier_cdr)
    return state.ports.get("sip_tls_expired"), carriers


def _lab_processes(env: Environment) -> Callable[[], list[str]]:
    """For the lab: the names of its processes that are not running (a crash is a failure)."""
    run_dir = env.extra.get("run_dir")
    if not run_dir:
        return lambda: []

    def down() -> list[str]:
        from pathlib import Path

        from qa import lab

        return [p.name for p in lab.status(Path(run_dir)) if not p.alive]
    return down


def wait_for_witnesses(seconds: float = 1.0) -> None:
    """CDRs are written shortly after a call ends (the lab's writer: within 250 ms)."""
    time.sleep(seconds)

"""Environments (DESIGN §3): where the platform under test is and how to judge it.

``lab`` is the built-in environment, made from the running native lab's state file;
``environments/<name>.yaml`` files point the same suites at another platform (a later
issue grows those). Passwords live here and nowhere else: reports get them masked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.cdr.source import CdrSource, JsonlCdrSource, SqliteCdrSource
from qa.errors import BadInput

MASK = "******"


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


@dataclass
class Environment:
    """Everything a case needs to place and judge a call against one platform."""

    name: str
    target: Target
    accounts: dict[str, str] = field(default_factory=dict)
    platform_cdr: CdrSource | None = None
    carrier_cdr: CdrSource | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def password(self, user: str) -> str:
        """The account's password; a user unknown to the environment is bad input."""
        try:
            return self.accounts[user]
        except KeyError:
            raise BadInput(f"environment {self.name}: no account {user!r} "
                           f"(known: {', '.join(sorted(self.accounts)) or 'none'})") from None

    def mask(self, text: str) -> str:
        """Replace every known password in ``text`` by a mask, for logs and reports."""
        for secret in self.accounts.values():
            if secret:
                text = text.replace(secret, MASK)
        return text


def lab_environment(run_dir: Path | None = None) -> Environment:
    """The built-in ``lab`` environment, from the running native lab's state."""
    from qa import lab  # a service, imported late so protocol-only users never load it
    from qa.lab.seed import load_seed

    run_dir = Path(run_dir) if run_dir else lab.default_run_dir()
    state = lab.load_state(run_dir)
    if state is None:
        raise BadInput(f"no lab is running in {run_dir}: start one with 'voipqa lab up'")
    seed = load_seed(Path(state.seed))
    return Environment(
        name="lab",
        target=Target(host=state.host, port=state.ports["sip"], tls_port=state.ports.get("sip_tls"),
                      domain=state.domain, tls_server_name=state.tls_server_name,
                      ca_cert=Path(state.ca_cert) if state.ca_cert else None),
        accounts={a.user: a.password for a in seed.accounts},
        platform_cdr=SqliteCdrSource(Path(state.cdr_db)),
        carrier_cdr=JsonlCdrSource(Path(p) for p in state.carrier_cdr.values()),
        extra={"run_dir": str(run_dir)},
    )


def load_environment(name: str | None) -> Environment:
    """``None`` or ``lab``: the native lab; anything else: a later issue's env files."""
    if name in (None, "lab"):
        return lab_environment(Path(os.environ["VOIPQA_LAB_DIR"]) if os.environ.get("VOIPQA_LAB_DIR") else None)
    raise BadInput(f"environment {name!r}: only the built-in 'lab' environment exists so far")

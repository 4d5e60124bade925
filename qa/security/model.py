"""What an attack found: its checks, its verdict and the evidence behind it (security.json).

An attack is judged by checks, each a defence the platform should have (``throttled``,
``no carrier leg``...). The attack *held* (verdict ``pass``) when every check held; one
failed check fails it. Evidence is what a reader needs to believe the verdict without
rerunning it: what was sent, what came back, rates, the Call-IDs and frames on the wire.
The document's shape is docs/security.md and docs/security.schema.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any, Literal

Verdict = Literal["pass", "fail"]

#: every attack by the name security.json and ``--only`` use, in the order they run
#: (floods last but one: their bans must not spoil the others; TLS last, it sends no SIP)
ATTACKS = ("scan", "enumeration", "brute-force", "single-challenge", "toll-fraud", "torture",
           "flood-options", "flood-register", "flood-invite", "tls")


@dataclass(frozen=True)
class Check:
    """One defence the attack tested: held (``ok``) or not, and why, in one line."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class AttackResult:
    """One attack's outcome; ``verdict`` is derived from the checks (no check: ``fail``,
    an attack that tested nothing proves nothing)."""

    name: str
    checks: list[Check] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    call_ids: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    duration_s: float = 0.0
    error: str | None = None

    def check(self, name: str, ok: bool, detail: str) -> bool:
        """Record one check; returns ``ok`` so callers can branch on it."""
        self.checks.append(Check(name, bool(ok), detail))
        return bool(ok)

    @property
    def verdict(self) -> Verdict:
        return "pass" if self.checks and self.error is None and all(c.ok for c in self.checks) else "fail"

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def summary(self) -> str:
        """One line: why it failed (the failed checks), or what held."""
        if self.error is not None:
            return f"{self.name}: could not run: {self.error}"
        if not self.checks:
            return f"{self.name}: nothing was tested"
        if self.failed:
            return f"{self.name}: " + "; ".join(f"{c.name}: {c.detail}" for c in self.failed)
        return f"{self.name}: held (" + ", ".join(c.name for c in self.checks) + ")"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "verdict": self.verdict, "summary": self.summary(),
                "started": round(self.started, 3), "duration_s": round(self.duration_s, 3),
                "checks": [c.to_dict() for c in self.checks], "call_ids": list(self.call_ids),
                "evidence": self.evidence, "error": self.error}


#: progress lines an attack prints while it runs (the CLI shows them; tests collect them)
Log = Callable[[str], None]

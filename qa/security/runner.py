"""Run the attacks against one environment and write ``security.json`` (docs/security.md).

The attacks run one after another (each is bounded in packets and time), each from its
own address; the run is captured on the wire, and every attack's entry names its frames
in that capture. The platform's health is checked before (an unreachable target is bad
input, exit 2: nothing was judged) and after (a defence that holds by falling over is not
a defence). Nothing is lost on Ctrl-C: the report is rewritten after every attack.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.config import Environment
from qa.errors import BadInput, VoipqaError
from qa.security.model import ATTACKS, AttackResult, Log
from qa.security.target import SecurityTarget, from_environment

Attack = Callable[[SecurityTarget, AttackResult, Log], None]

#: attack name -> (module of qa.security, the method for the flood runner); imported when
#: the attack runs, so `voipqa security --only tls` never loads the others (nor scapy)
REGISTRY: dict[str, tuple[str, str | None]] = {
    "scan": ("scan", None),
    "enumeration": ("enumeration", None),
    "brute-force": ("bruteforce", None),
    "single-challenge": ("challenge", None),
    "toll-fraud": ("tollfraud", None),
    "torture": ("torture", None),
    "flood-options": ("flood", "OPTIONS"),
    "flood-register": ("flood", "REGISTER"),
    "flood-invite": ("flood", "INVITE"),
    "tls": ("tls", None),
}
assert tuple(REGISTRY) == ATTACKS


def attack_function(name: str) -> Attack:
    """The function that runs attack ``name``."""
    module_name, method = REGISTRY[name]
    module = importlib.import_module(f"qa.security.{module_name}")
    return module.runner(method) if method else module.run  # type: ignore[no-any-return]

REPORT = "security.json"
SCHEMA_VERSION = 1


@dataclass
class SecurityReport:
    """The whole run: what ``security.json`` holds."""

    environment: str
    target: dict[str, Any]
    started: float
    attacks: list[AttackResult] = field(default_factory=list)
    healthy_after: bool | None = None
    health_detail: str = ""
    capture: str | None = None
    capture_note: str | None = None
    frames: dict[str, dict[str, int]] = field(default_factory=dict)
    duration_s: float = 0.0
    interrupted: bool = False

    @property
    def verdict(self) -> str:
        bad = any(a.verdict == "fail" for a in self.attacks if not a.evidence.get("not_applicable"))
        return "fail" if bad or self.healthy_after is False or self.interrupted else "pass"

    def to_dict(self) -> dict[str, Any]:
        attacks = []
        for a in self.attacks:
            entry = a.to_dict()
            if a.evidence.get("not_applicable"):
                entry["verdict"] = "not-applicable"
                entry["summary"] = f"{a.name}: not applicable: {a.evidence['not_applicable']}"
            entry["capture"] = {"file": self.capture, **self.frames.get(a.name, {})} if self.capture else None
            attacks.append(entry)
        return {"schema": SCHEMA_VERSION, "environment": self.environment, "target": self.target,
                "started": round(self.started, 3), "duration_s": round(self.duration_s, 2),
                "verdict": self.verdict, "interrupted": self.interrupted,
                "healthy_after": self.healthy_after, "health": self.health_detail,
                "capture": self.capture, "capture_note": self.capture_note, "attacks": attacks}


def check_names(only: list[str] | None) -> tuple[str, ...]:
    """The attacks to run, in their order; an unknown name is bad input naming the known ones."""
    if not only:
        return ATTACKS
    unknown = [n for n in only if n not in REGISTRY]
    if unknown:
        raise BadInput(f"unknown attack {unknown[0]!r} (attacks: {', '.join(ATTACKS)})")
    return tuple(n for n in ATTACKS if n in only)


def run_security(env: Environment, output: Path, *, only: list[str] | None = None,
                 torture_dir: Path | None = None, capture: bool = True, log: Log = print,
                 target: SecurityTarget | None = None) -> SecurityReport:
    """Attack ``env``'s platform; ``output/security.json`` is written as the run goes.

    ``target``: one kept from an earlier run on the same platform (the Robot keywords run
    one attack per case), so the addresses earlier attacks got banned are not tried again.
    """
    names = check_names(only)
    if torture_dir is not None and not Path(torture_dir).is_dir():
        raise BadInput(f"--torture-dir {torture_dir}: not a directory")
    target = target or from_environment(env)
    target.torture_dir = str(torture_dir) if torture_dir else None
    if not target.options_answered(target.customer_source, timeout=2.0):
        raise BadInput(f"environment {env.name}: the platform at {target.host}:{target.port} does not answer "
                       f"OPTIONS from {target.customer_source}: unreachable target, nothing attacked")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    report = SecurityReport(environment=env.name, started=time.time(), target={
        "host": target.host, "port": target.port, "tls_port": target.tls_port, "domain": target.domain})
    cap = _start_capture(target, output, report, log) if capture else None
    if not capture:
        report.capture_note = "not captured: --no-capture"
    try:
        for name in names:
            report.attacks.append(_one(name, target, log))
            _write(report, output, env)
        report.healthy_after, report.health_detail = _health(target)
    except KeyboardInterrupt:
        report.interrupted = True
        raise
    finally:
        report.duration_s = time.time() - report.started
        _stop_capture(cap, report, log)
        _write(report, output, env)
    return report


def _one(name: str, target: SecurityTarget, log: Log) -> AttackResult:
    result = AttackResult(name)
    log(f"security: {name} ...")
    began = time.monotonic()
    try:
        attack_function(name)(target, result, log)
    except VoipqaError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"{exc.__class__.__name__}: {exc}"
    result.duration_s = time.monotonic() - began
    log(f"security: {name}: {result.verdict.upper()} in {result.duration_s:.1f} s - {target.mask(result.summary())}")
    return result


def _health(target: SecurityTarget) -> tuple[bool, str]:
    down = target.processes_down()
    if down:
        return False, f"processes down after the attacks: {', '.join(down)}"
    if not target.options_answered(target.customer_source, timeout=2.0):
        return False, f"the platform no longer answers OPTIONS from {target.customer_source}"
    return True, f"the platform answers OPTIONS from {target.customer_source}; no process down"


def _start_capture(target: SecurityTarget, output: Path, report: SecurityReport, log: Log) -> Any:
    from qa.capture.live import Capture, CaptureUnavailable

    if not target.host.startswith("127."):
        report.capture_note = "not captured: the target is not on this machine's loopback"
        return None
    ports = sorted({p for _, p in target.ports()} | set(target.carrier_ports))
    try:
        return Capture(output / "security", ports=ports).start()
    except (CaptureUnavailable, OSError, VoipqaError) as exc:
        report.capture_note = f"not captured: {exc}"
        log(f"security: {report.capture_note}")
        return None


def _stop_capture(cap: Any, report: SecurityReport, log: Log) -> None:
    if cap is None:
        return
    try:
        files = cap.stop()
    except (OSError, VoipqaError) as exc:
        report.capture_note = f"capture failed: {exc}"
        return
    if files:
        report.capture = str(files[0])
        report.frames = frame_windows(files[0], report.attacks)


def frame_windows(path: Path, attacks: list[AttackResult]) -> dict[str, dict[str, int]]:
    """For each attack, the frames of the capture taken while it ran (first, last, count)."""
    from qa.capture.pcapfile import FrameSource

    # an attack's answers may trail it by a moment, but never into the next attack's frames
    starts = [a.started for a in attacks[1:]] + [float("inf")]
    windows = [(a.name, a.started, min(a.started + a.duration_s + 0.5, nxt)) for a, nxt in zip(attacks, starts)]
    out: dict[str, dict[str, int]] = {}
    try:
        for rec in FrameSource(Path(path)):
            if rec.__class__ is not tuple:
                continue
            n, ts = rec[0], rec[1]  # type: ignore[index]
            for name, start, end in windows:
                if start <= ts < end:
                    entry = out.setdefault(name, {"first_frame": n, "last_frame": n, "frames": 0})
                    entry["last_frame"] = n
                    entry["frames"] += 1
    except VoipqaError:
        pass
    return out


def masked(value: Any, mask: Callable[[str], str]) -> Any:
    """``value`` with every string masked (strings only: a short digit password must not
    turn a port number in the JSON into something that is not JSON)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): masked(v, mask) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [masked(v, mask) for v in value]
    return value


def _write(report: SecurityReport, output: Path, env: Environment) -> None:
    """security.json, secrets masked, replaced atomically (a reader never sees half of it)."""
    text = json.dumps(masked(report.to_dict(), env.mask), indent=2, default=str) + "\n"
    tmp = output / f".{REPORT}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output / REPORT)

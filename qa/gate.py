"""``voipqa gate``: the deploy decision in one command (docs/gate.md).

A staging gate answers one question for a release manager: deploy this build or not. It
runs what the team already trusts, each as the command a person would run, and judges the
results against the environment's limits:

1. **functional**: ``voipqa run`` over the gate's suites (or tags): every case must pass
   (``gate.failed_cases_max``);
2. **malformed SIP**: the run's capture through the analyzer: malformed SIP/SDP on the
   wire, error severity (``gate.malformed_sip_max``);
3. **CDRs**: ``voipqa cdr check`` of the run's calls against the platform's CDRs
   (``thresholds.cdr_discrepancies_max``), when the environment names a CDR source;
4. **load**: ``voipqa load run`` with the gate's short profile (``gate.profile``,
   ``profiles/gate.yaml``): its pass criteria.

Each step is a child process (its own reports, its own signal handling; the gate only
reads what it wrote), so the gate adds no second way to run a case. The result is
``DIR/gate.json`` (decision, each check with value, limit and evidence paths) and, on a
block, an alert (``qa.alerts``). A check that cannot be judged (no CDR source) is
``skipped`` and says why; a step that could not run fails, never passes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from qa.config import AlertsFile, GateFile, ThresholdsFile
from qa.errors import BadInput

__all__ = ["Check", "GatePlan", "GateResult", "GateSettings", "Stop", "cases_check", "decide", "gate_settings", "load_check",
           "plan_gate", "run_gate", "voipqa_child"]

Echo = Callable[[str], None]
Status = Literal["pass", "fail", "skipped"]
#: A findings rule the analyzer raises for malformed SIP or SDP (docs/pcap-json.md), but
#: not the informational count of retransmissions.
_NOT_MALFORMED = {"sip.retransmissions"}


@dataclass(frozen=True)
class Check:
    """One judged part of the decision: ``value`` against ``limit``."""

    name: str
    status: Status
    value: object
    limit: object
    evidence: list[str] = field(default_factory=list)
    detail: str = ""
    counts: dict[str, int] = field(default_factory=dict)   # cases passed/failed; the load's 4xx-6xx by code


@dataclass
class GateResult:
    decision: Literal["deploy", "block"]
    environment: str
    started: str
    duration_s: float
    checks: list[Check]
    interrupted: bool = False
    alerts: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"version": 1, **asdict(self)}


@dataclass(frozen=True)
class GatePlan:
    """What the gate will run, resolved and validated before anything starts."""

    env: str
    output: Path
    suites: list[Path]
    include: list[str]
    exclude: list[str]
    profile: str | None
    gate: GateFile
    thresholds: ThresholdsFile
    alerts: AlertsFile | None
    has_cdr: bool
    mask: Callable[[str], str] = lambda text: text


def decide(checks: list[Check]) -> Literal["deploy", "block"]:
    """Block when any check failed; skipped checks do not count, so a gate that judged
    nothing at all blocks too (an empty gate is not a green light)."""
    if any(c.status == "fail" for c in checks) or not any(c.status == "pass" for c in checks):
        return "block"
    return "deploy"


def plan_gate(env: str | None, output: Path, include: list[str] | None, exclude: list[str] | None,
              profile: str | None, no_load: bool, config: Path | None = None) -> GatePlan:
    """Everything checked up front (exit 2 before a lab or a case starts): the
    environment and its ``gate:`` section, the suites, the load profile, the output."""
    from qa.cases.suites import check_output, resolve_suites  # noqa: PLC0415 - loads Robot

    name = env or "lab"
    settings = gate_settings(name, config)
    gate = settings.gate
    suites = [p if p.is_absolute() else settings.base / p for p in gate.suites]
    resolve_suites([str(p) for p in suites])
    chosen = None if no_load else (profile or gate.profile)
    if chosen:
        from qa.load.profile import load_profile  # noqa: PLC0415

        load_profile(chosen)  # an unknown profile or a bad field: one line, exit 2
    check_output(output)
    return GatePlan(env=name, output=output, suites=suites, include=list(include or gate.include),
                    exclude=list(exclude or gate.exclude), profile=chosen, gate=gate,
                    thresholds=settings.thresholds, alerts=settings.alerts,
                    has_cdr=settings.has_cdr, mask=settings.mask)


@dataclass(frozen=True)
class GateSettings:
    """What the gate, the monitor and a load run's alerts read from an environment: its
    ``gate:``, ``thresholds:`` and ``alerts:`` (the lab's are the defaults), whether it
    names a CDR source, the directory its relative paths start from, and its mask."""

    gate: GateFile = field(default_factory=GateFile)
    thresholds: ThresholdsFile = field(default_factory=ThresholdsFile)
    alerts: AlertsFile | None = None
    has_cdr: bool = True
    base: Path = field(default_factory=Path.cwd)
    mask: Callable[[str], str] = lambda text: text


def gate_settings(name: str, config: Path | None) -> GateSettings:
    """The environment's settings (for the lab the defaults); each section a ``--config``
    file holds (``gate:``, ``thresholds:``, ``alerts:``) replaces the environment's, the
    others stay the environment's."""
    from qa.config import find_environment  # noqa: PLC0415
    from qa.environments import environment_from_file  # noqa: PLC0415

    settings = GateSettings()
    if name != "lab":
        env = environment_from_file(find_environment(name))
        assert env.settings is not None and env.path is not None
        settings = GateSettings(env.settings.gate, env.settings.thresholds, env.settings.alerts,
                                has_cdr=env.cdr is not None, base=env.path.parent, mask=env.mask)
    if config is not None:
        settings = _with_config_file(settings, config)
    return settings


def _with_config_file(settings: GateSettings, path: Path) -> GateSettings:
    from qa.validation import FileModel, load_yaml_mapping, validate_file  # noqa: PLC0415

    class GateConfig(FileModel):
        gate: GateFile = GateFile()
        thresholds: ThresholdsFile = ThresholdsFile()
        alerts: AlertsFile | None = None

    if not path.is_file():
        raise BadInput(f"--config {path}: no such file")
    parsed = validate_file(GateConfig, load_yaml_mapping(path, "gate:, thresholds:, alerts:"), path)
    given = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    if "gate" in given:  # the file's suites are relative to the file
        return replace(settings, base=path.parent, **given)
    return replace(settings, **given)


# -- running ------------------------------------------------------------------------------------
class Stop:
    """SIGINT/SIGTERM: no further step starts; the running child gets the signal too
    (SIGINT reaches it from the terminal; SIGTERM is passed on) and writes its reports."""

    def __init__(self, between: str = "stopping the gate after this step") -> None:
        self.signum: int | None = None
        self.child: subprocess.Popen | None = None
        self.between = between

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum
        os.write(2, f"voipqa: {signal.Signals(signum).name}: {self.between}\n".encode())
        if self.child is not None and signum == signal.SIGTERM:
            self.child.send_signal(signum)


def voipqa_child(args: list[str], stop: Stop, env: dict[str, str]) -> int:
    """Run ``voipqa ARGS`` with its output on ours; its exit code."""
    child = subprocess.Popen([sys.executable, "-m", "qa.cli", *args], env=env)
    stop.child = child
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # the child got the same SIGINT; wait for its reports
                continue
    finally:
        stop.child = None


def run_gate(plan: GatePlan, echo: Echo) -> GateResult:
    """Run the steps, judge them, write ``gate.json``, alert on a block."""
    stop = Stop()
    saved = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.monotonic()
    checks: list[Check] = []
    try:
        with _lab(plan, echo) as child_env:
            for step in _steps(plan):
                if stop.signum is not None:
                    break
                checks += step(plan, stop, child_env, echo)
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    result = GateResult(decision=decide(checks) if stop.signum is None else "block", environment=plan.env,
                        started=started, duration_s=round(time.monotonic() - t0, 1), checks=checks,
                        interrupted=stop.signum is not None)
    if result.decision == "block":
        result.alerts = _alert(plan, result, echo)
    (plan.output / "gate.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return result


def _steps(plan: GatePlan) -> list[Callable[..., list[Check]]]:
    return [_functional, _load] if plan.profile else [_functional]


@contextmanager
def _lab(plan: GatePlan, echo: Echo) -> Iterator[dict[str, str]]:
    """For ``--env lab``: the running lab, or a functional one started for the gate (the
    children find it through ``VOIPQA_LAB_DIR``) and stopped after it."""
    env = dict(os.environ)
    if plan.env != "lab":
        yield env
        return
    from qa import lab  # noqa: PLC0415

    run_dir = Path(os.environ.get("VOIPQA_LAB_DIR") or lab.default_run_dir())
    if lab.load_state(run_dir) is not None:
        echo(f"gate: using the running lab in {run_dir}")
        yield {**env, "VOIPQA_LAB_DIR": str(run_dir)}
        return
    run_dir = (plan.output / "lab").resolve()
    echo(f"gate: no lab running: starting one in {run_dir}")
    try:
        lab.up(run_dir, owner_pid=os.getpid())
        yield {**env, "VOIPQA_LAB_DIR": str(run_dir)}
    finally:
        lab.down(run_dir)
        echo("gate: lab stopped")


def _functional(plan: GatePlan, stop: Stop, env: dict[str, str], echo: Echo) -> list[Check]:
    out = plan.output / "functional"
    args = ["run", *map(str, plan.suites), "--env", plan.env, "--output", str(out)]
    args += [a for tag in plan.include for a in ("--include", tag)]
    args += [a for tag in plan.exclude for a in ("--exclude", tag)]
    echo(f"gate: functional suites -> {out}")
    code = voipqa_child(args, stop, env)
    checks = [cases_check(out, code, plan.gate.failed_cases_max)]
    checks.append(_malformed_check(out, plan.gate.malformed_sip_max))
    checks.append(_cdr_check(plan, out, stop, env, echo))
    return checks


def cases_check(out: Path, code: int, limit: int, where: str = "functional") -> Check:
    """The cases of a ``voipqa run`` in ``out`` (exit ``code``) against ``limit`` failures."""
    from qa.report.summary import read_summary  # noqa: PLC0415

    evidence = [f"{where}/{name}" for name in ("report.html", "log.html", "calls.jsonl")]
    if not (out / "output.xml").is_file():
        return Check("functional", "fail", None, limit, evidence,
                     f"voipqa run wrote no report (exit {code})")
    summary = read_summary(out / "output.xml")
    failed = [c.name for c in summary.cases if c.status == "FAIL"]
    if not summary.cases:
        return Check("functional", "fail", None, limit, evidence, f"no case ran (voipqa run exit {code})")
    wire = 1 if code == 1 and not failed else 0   # a call failed on the wire only
    value = len(failed) + wire
    detail = f"{summary.passed} passed, {len(failed)} failed" + (f": {', '.join(failed[:5])}" if failed else "")
    if wire:
        detail += "; a call failed on the wire (see the run's summary)"
    counts = {"passed": summary.passed, "failed": len(failed)}
    if code not in (0, 1):
        return Check("functional", "fail", value, limit, evidence, f"voipqa run ended with exit {code}; {detail}",
                     counts)
    return Check("functional", "pass" if value <= limit else "fail", value, limit, evidence, detail, counts)


def _malformed_check(out: Path, limit: int) -> Check:
    """Malformed SIP/SDP (error severity) anywhere in the run's capture."""
    captures = sorted(out.glob("capture*.pcap*"))
    if not captures:
        return Check("malformed_sip", "skipped", None, limit, [], "the run kept no capture (see its summary)")
    from qa.analysis.engine import analyze  # noqa: PLC0415

    value, rules = 0, {}
    for capture in captures:
        report = analyze(capture)
        severity = {f.rule: f.severity for f in report.findings}
        for rule, count in report.rule_counts.items():
            if rule.startswith(("sip.", "sdp.")) and rule not in _NOT_MALFORMED and severity.get(rule) == "error":
                value += count
                rules[rule] = rules.get(rule, 0) + count
    detail = ", ".join(f"{r} x{n}" for r, n in sorted(rules.items())) or "none"
    return Check("malformed_sip", "pass" if value <= limit else "fail", value, limit,
                 [f"functional/{c.name}" for c in captures], detail)


_DISCREPANCIES = ("missing", "duplicate", "billed_but_failed", "mismatched", "carrier_saw_unrouted",
                  "routed_carrier_never_saw", "orphans", "carrier_orphans")


def _cdr_check(plan: GatePlan, out: Path, stop: Stop, env: dict[str, str], echo: Echo) -> Check:
    limit = plan.thresholds.cdr_discrepancies_max
    if not plan.has_cdr:
        return Check("cdr", "skipped", None, limit, [], f"environment {plan.env} names no CDR source (cdr:)")
    calls = out / "calls.jsonl"
    if not calls.is_file():
        return Check("cdr", "fail", None, limit, [], "the run wrote no calls.jsonl")
    target = out / "cdr-check.json"
    echo("gate: CDR reconciliation (voipqa cdr check)")
    with open(target, "w") as f:
        child = subprocess.run([sys.executable, "-m", "qa.cli", "cdr", "check", "--calls", str(calls),
                                "--env", plan.env, "--json"], env=env, stdout=f, check=False)
    try:
        totals = json.loads(target.read_text())["totals"]
    except (ValueError, KeyError, OSError):
        return Check("cdr", "fail", None, limit, ["functional/cdr-check.json"],
                     f"voipqa cdr check gave no result (exit {child.returncode})")
    found = {k: totals.get(k, 0) for k in _DISCREPANCIES if totals.get(k, 0)}
    value = sum(found.values())
    detail = f"{totals.get('ok', 0)} of {totals.get('calls', 0)} calls reconciled" + (
        "; " + ", ".join(f"{k} {v}" for k, v in found.items()) if found else "")
    return Check("cdr", "pass" if value <= limit else "fail", value, limit, ["functional/cdr-check.json"], detail)


def _load(plan: GatePlan, stop: Stop, env: dict[str, str], echo: Echo) -> list[Check]:
    out = plan.output / "load"
    echo(f"gate: short load ({plan.profile}) -> {out}")
    code = voipqa_child(["load", "run", str(plan.profile), "--env", plan.env, "--output", str(out)], stop, env)
    return [load_check(out, code)]


def load_check(out: Path, code: int) -> Check:
    """The load run in ``out`` (exit ``code``) judged by its own criteria (``load.json``,
    docs/load-json.md); ``counts`` holds its 4xx/5xx/6xx final responses by code."""
    evidence = ["load/load.html", "load/load.json"]
    try:
        report = json.loads((out / "load.json").read_text())
    except (OSError, ValueError):
        return Check("load", "fail", None, "pass", evidence, f"voipqa load run wrote no load.json (exit {code})")
    reasons = report.get("reasons") or []
    calls = report.get("calls") or {}
    from qa.alerts import error_responses  # noqa: PLC0415

    errors = error_responses(calls.get("by_code") or {})
    detail = "; ".join(reasons[:3]) or f"{calls.get('completed', '?')} calls, every criterion held"
    return Check("load", "pass" if report.get("verdict") == "pass" else "fail", report.get("verdict"), "pass",
                 evidence, detail, errors)


def _alert(plan: GatePlan, result: GateResult, echo: Echo) -> list[dict[str, object]]:
    from qa.alerts import Alert, send  # noqa: PLC0415

    failed = [c for c in result.checks if c.status == "fail"]
    summary = ("gate interrupted before every check ran" if result.interrupted
               else "blocked: " + ", ".join(f"{c.name} {c.value} > {c.limit}" if c.name != "load"
                                            else f"load {c.value}" for c in failed))
    alerts = [Alert("VoipqaGateBlocked", summary, plan.env, details={c.name: c.detail for c in failed},
                    link=str((plan.output / "gate.json").resolve()))]
    if any(c.name == "malformed_sip" for c in failed):
        check = next(c for c in failed if c.name == "malformed_sip")
        alerts.append(Alert("VoipqaMalformedSip", f"{check.value} malformed SIP/SDP messages on the wire",
                            plan.env, severity="warning", details={"rules": check.detail},
                            link=str((plan.output / check.evidence[0]).resolve()) if check.evidence else ""))
    load = next((c for c in failed if c.name == "load" and c.counts), None)
    if load is not None:
        total = sum(load.counts.values())
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(load.counts.items()))
        alerts.append(Alert("VoipqaErrorResponses", f"{total} calls of the gate's load ended 4xx/5xx/6xx: {codes}",
                            plan.env, details=dict(load.counts),
                            link=str((plan.output / "load" / "load.html").resolve())))
    sent: list[dict[str, object]] = []
    for alert in alerts:
        for delivery in send(alert, plan.alerts, plan.mask):
            echo(f"gate: alert {alert.name} via {delivery.channel}: {delivery.detail}")
            sent.append({"alert": alert.name, **asdict(delivery)})
    return sent

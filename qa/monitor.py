"""``voipqa monitor``: the routine smoke test on a live platform, on a schedule (docs/monitor.md).

Every ``--every`` the smoke suite runs against the environment (``voipqa run``, a child
process like the gate's steps), its result goes to a history (SQLite by default; any
SQLAlchemy URL for a store several monitors share) and the alerts fire on a change:
``VoipqaSmokeFailed`` when a run fails after a pass (or as the first run), and
``VoipqaSmokeRecovered`` (resolved) when one passes after a failure. Alerting on the
change, not on every failed run, keeps a webhook channel readable during an outage that
lasts hours; Alertmanager users get the resolved alert that closes theirs.

Bounded for tests and CI by ``--count`` (runs) and ``--until`` (a time of day or a
duration from now); SIGINT/SIGTERM end it between runs, or stop the running one (its
result is not recorded: a half run is neither a pass nor a failure).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from qa.config import AlertsFile
from qa.errors import BadInput
from qa.gate import Stop, cases_check, voipqa_child

__all__ = ["History", "MonitorRun", "monitor", "parse_until"]

Echo = Callable[[str], None]
DEFAULT_HISTORY = Path(".voipqa") / "monitor.db"
KEEP_RUNS = 20


@dataclass(frozen=True)
class MonitorRun:
    environment: str
    started: str
    duration_s: float
    ok: bool
    passed: int
    failed: int
    exit_code: int
    detail: str
    output: str


class History:
    """Monitor results in an SQL table ``voipqa_monitor`` (created when missing)."""

    def __init__(self, where: str | Path) -> None:
        from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, create_engine
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError

        text = str(where)
        if "://" not in text:
            Path(text).parent.mkdir(parents=True, exist_ok=True)
            text = f"sqlite:///{Path(text).resolve()}"
        self.url = text
        meta = MetaData()
        self.table = Table(
            "voipqa_monitor", meta,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("environment", String(200), nullable=False, index=True),
            Column("started", String(40), nullable=False),
            Column("duration_s", Float, nullable=False),
            Column("ok", Boolean, nullable=False),
            Column("passed", Integer, nullable=False),
            Column("failed", Integer, nullable=False),
            Column("exit_code", Integer, nullable=False),
            Column("detail", String(2000), nullable=False),
            Column("output", String(1000), nullable=False),
        )
        try:
            self.engine = create_engine(text)
            meta.create_all(self.engine)
        except (ArgumentError, SQLAlchemyError, ImportError) as exc:
            raise BadInput(f"--history {_masked(text)}: {str(exc).splitlines()[0]}") from None

    def add(self, run: MonitorRun) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.insert().values(**run.__dict__))

    def last(self, environment: str | None = None, n: int = 10) -> list[MonitorRun]:
        """The newest ``n`` results, newest first."""
        query = self.table.select().order_by(self.table.c.id.desc()).limit(n)
        if environment is not None:
            query = query.where(self.table.c.environment == environment)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [MonitorRun(**{k: row[k] for k in MonitorRun.__dataclass_fields__}) for row in rows]


def _masked(url: str) -> str:
    """An SQL URL without its password."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail and ":" in tail.split("@", 1)[0]:
        user = tail.split("@", 1)[0].split(":", 1)[0]
        return f"{head}://{user}:******@{tail.split('@', 1)[1]}"
    return url


def parse_until(value: str, now: datetime | None = None) -> float:
    """``--until``: ``HH:MM`` (today, or tomorrow when past; local time) or a duration from
    now (``30m``); the deadline as ``time.time()`` seconds."""
    from qa.load.profile import DurationError, parse_duration

    now = now or datetime.now().astimezone()
    if ":" in value:
        try:
            hour, minute = (int(x) for x in value.split(":"))
            at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        except ValueError:
            raise BadInput(f"--until {value!r}: not HH:MM nor a duration (e.g. 06:00, 30m)") from None
        if at <= now:
            at += timedelta(days=1)
        return at.timestamp()
    try:
        return now.timestamp() + parse_duration(value)
    except DurationError:
        raise BadInput(f"--until {value!r}: not HH:MM nor a duration (e.g. 06:00, 30m)") from None


def monitor(*, env: str, suite: Path, include: list[str], every: float, count: int | None,
            until: float | None, history: History, output: Path, alerts: AlertsFile | None, mask: Callable[[str], str],
            echo: Echo) -> int:
    """Run the smoke suite until ``count`` runs or ``until``; 0 when the last run passed,
    1 when it failed, 130/143 when a signal ended the monitor."""
    stop = Stop(between="stopping the monitor")
    saved = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    last: MonitorRun | None = None
    runs = 0
    try:
        while stop.signum is None:
            run = _one_run(env, suite, include, output, stop, echo)
            if run is not None:
                previous = (history.last(env, 1) or [None])[0]
                history.add(run)
                _alert_on_change(previous, run, alerts, mask, echo)
                _prune(output)
                last = run
            runs += 1
            if (count is not None and runs >= count) or stop.signum is not None:
                break
            wake = time.time() + every
            if until is not None and wake > until:
                echo(f"monitor: --until reached after {runs} runs")
                break
            echo(f"monitor: next run at {datetime.fromtimestamp(wake).astimezone().isoformat(timespec='seconds')}")
            while stop.signum is None and time.time() < wake:
                time.sleep(min(1.0, max(0.0, wake - time.time())))
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
    if stop.signum is not None:
        return 130 if stop.signum == signal.SIGINT else 143
    return 0 if last is not None and last.ok else 1


def _one_run(env: str, suite: Path, include: list[str], output: Path, stop: Stop, echo: Echo
             ) -> MonitorRun | None:
    started = datetime.now(timezone.utc)
    out = output / started.strftime("%Y%m%dT%H%M%SZ")
    args = ["run", str(suite), "--env", env, "--output", str(out)]
    args += [a for tag in include for a in ("--include", tag)]
    echo(f"monitor: smoke run -> {out}")
    t0 = time.monotonic()
    code = voipqa_child(args, stop, dict(os.environ))
    if stop.signum is not None:
        echo("monitor: run stopped by a signal: not recorded")
        return None
    check = cases_check(out, code, 0, where=out.name)
    run = MonitorRun(environment=env, started=started.isoformat(timespec="seconds"),
                     duration_s=round(time.monotonic() - t0, 1), ok=check.status == "pass",
                     passed=check.counts.get("passed", 0), failed=check.counts.get("failed", 0), exit_code=code,
                     detail=check.detail[:2000], output=str(out))
    echo(f"monitor: {'PASS' if run.ok else 'FAIL'} {run.detail}")
    return run


def _alert_on_change(previous: MonitorRun | None, run: MonitorRun, alerts: AlertsFile | None, mask: Callable[[str], str],
                     echo: Echo) -> None:
    from qa.alerts import Alert, send

    if not run.ok and (previous is None or previous.ok):
        alert = Alert("VoipqaSmokeFailed", f"smoke test failed: {run.detail}", run.environment,
                      details={"started": run.started, "exit": run.exit_code}, link=run.output)
    elif run.ok and previous is not None and not previous.ok:
        alert = Alert("VoipqaSmokeRecovered", f"smoke test passes again: {run.detail}", run.environment,
                      severity="info", status="resolved", details={"started": run.started}, link=run.output)
    else:
        return
    for delivery in send(alert, alerts, mask):
        echo(f"monitor: alert {alert.name} via {delivery.channel}: {delivery.detail}")


def _prune(output: Path, keep: int = KEEP_RUNS) -> None:
    """Keep the newest ``keep`` run directories (a monitor runs for weeks)."""
    runs = sorted(p for p in output.iterdir() if p.is_dir() and p.name[:8].isdigit())
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)

"""The monitor's history (SQLite through SQLAlchemy), its bounds, and its alerts on a change
of state, received by a local receiver (the runs on a lab: tests/integration/test_monitor.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from qa.cli import main
from qa.config import AlertsFile
from qa.errors import BadInput
from qa.monitor import History, MonitorRun, _alert_on_change, parse_until

from tests.receiver import http_receiver


def _run(ok: bool, env: str = "lab", n: int = 0) -> MonitorRun:
    return MonitorRun(environment=env, started=f"2026-12-03T10:0{n}:00+00:00", duration_s=12.0, ok=ok,
                      passed=4 if ok else 3, failed=0 if ok else 1, exit_code=0 if ok else 1,
                      detail="4 passed, 0 failed" if ok else "3 passed, 1 failed: Authenticated Call",
                      output=f"results/monitor/{n}")


def test_the_history_keeps_results_newest_first_per_environment(tmp_path):
    history = History(tmp_path / "sub" / "monitor.db")
    for n, (ok, env) in enumerate([(True, "lab"), (False, "staging"), (False, "lab"), (True, "lab")]):
        history.add(_run(ok, env, n))
    again = History(f"sqlite:///{tmp_path / 'sub' / 'monitor.db'}")   # a second monitor, same store
    assert [r.ok for r in again.last("lab")] == [True, False, True]
    assert [r.environment for r in again.last(None, 2)] == ["lab", "lab"]
    assert again.last("staging")[0].detail.startswith("3 passed, 1 failed")
    assert again.last("nowhere") == []


def test_a_bad_history_url_is_one_line_without_its_password(tmp_path):
    with pytest.raises(BadInput) as info:
        History("nosuchdialect://qa:s3cret@db.example.net/monitor")
    assert "s3cret" not in str(info.value) and "--history" in str(info.value) and "\n" not in str(info.value)


def test_until_takes_a_time_of_day_or_a_duration():
    now = datetime(2026, 12, 3, 22, 30).astimezone()
    assert parse_until("30m", now) == pytest.approx(now.timestamp() + 1800)
    assert parse_until("23:00", now) == pytest.approx(now.timestamp() + 1800)
    assert parse_until("06:00", now) == pytest.approx((now.replace(hour=6, minute=0) + timedelta(days=1)).timestamp())
    for bad in ("25:99", "soon", "-5m"):
        with pytest.raises(BadInput, match="--until"):
            parse_until(bad, now)


def test_alerts_fire_on_a_failure_and_on_the_recovery_not_on_every_run():
    with http_receiver() as rx:
        settings = AlertsFile(alertmanager=rx.url)
        lines: list[str] = []
        sequence = [None, _run(True, n=0), _run(False, n=1), _run(False, n=2), _run(True, n=3), _run(True, n=4)]
        for previous, run in zip(sequence, sequence[1:]):
            _alert_on_change(previous, run, settings, lambda s: s, lines.append)
        _alert_on_change(None, _run(False, n=5), settings, lambda s: s, lines.append)  # a first run that fails
    names = [(body[0]["labels"]["alertname"], "endsAt" in body[0]) for body in rx.bodies("/api/v2/alerts")]
    assert names == [("VoipqaSmokeFailed", False), ("VoipqaSmokeRecovered", True), ("VoipqaSmokeFailed", False)]
    assert len(lines) == 3 and all("HTTP 200" in line for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["monitor", "--every", "0s"], "--every"),
    (["monitor", "--every", "often"], "often"),
    (["monitor", "--count", "0"], "--count"),
    (["monitor", "--suite", "no-such-suite"], "no-such-suite"),
    (["monitor", "--until", "soon"], "--until"),
])
def test_bad_monitor_options_are_one_line_and_exit_2(tmp_path, capsys, argv, message):
    assert main([*argv, "--history", str(tmp_path / "m.db"), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voipqa: error:") and message in err and "\n" not in err


def test_status_shows_the_newest_results_and_fails_when_the_newest_failed(tmp_path, capsys):
    db = tmp_path / "m.db"
    assert main(["monitor", "status", "--history", str(db)]) == 1           # nothing yet
    history = History(db)
    history.add(_run(True, n=0))
    history.add(_run(False, n=1))
    assert main(["monitor", "status", "--history", str(db), "--last", "5"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-2].split()[2] == "FAIL" and out[-1].split()[2] == "PASS"
    history.add(_run(True, n=2))
    assert main(["monitor", "status", "--history", str(db)]) == 0

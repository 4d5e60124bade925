"""`voipqa monitor` on the real lab: results kept in the history, an alert when the smoke
test starts failing (the carriers stopped), and a resolved alert when it passes again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from qa import lab
from qa.monitor import History
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED, ROOT

from tests.integration.cli import gone, voipqa
from tests.receiver import http_receiver

pytestmark = pytest.mark.integration
CARRIERS = ("carrier-a", "carrier-b")


def test_a_failing_smoke_test_alerts_once_and_its_recovery_resolves_it(tmp_path):
    run_dir = tmp_path / "lab"
    db = tmp_path / "monitor.db"
    config = tmp_path / "alerts.yaml"
    with http_receiver() as rx:
        config.write_text(yaml.safe_dump({"alerts": {"alertmanager": rx.url}}))
        state, _ = lab.up(run_dir, seed=DEFAULT_SEED, plan=DEFAULT_PLAN)
        common = ["--history", str(db), "--config", str(config), "--output", str(tmp_path / "runs"),
                  "--every", "1s"]
        try:
            healthy = voipqa("monitor", "--count", "1", *common, lab_dir=run_dir)
            for name in CARRIERS:
                lab.stop_carrier(run_dir, name)
            deadline = time.monotonic() + 5
            while not all(gone(state.processes[n]) for n in CARRIERS) and time.monotonic() < deadline:
                time.sleep(0.1)
            broken = voipqa("monitor", "--count", "2", *common, lab_dir=run_dir)   # two failed runs
            for name in CARRIERS:
                lab.start_carrier(run_dir, name)
            recovered = voipqa("monitor", "--count", "1", *common, lab_dir=run_dir)
        finally:
            lab.down(run_dir)
    assert healthy.returncode == 0, healthy.stdout[-3000:] + healthy.stderr[-1000:]
    assert broken.returncode == 1, broken.stdout[-3000:]
    assert recovered.returncode == 0, recovered.stdout[-3000:] + recovered.stderr[-1000:]
    alerts = [(b[0]["labels"]["alertname"], "endsAt" in b[0]) for b in rx.bodies("/api/v2/alerts")]
    assert alerts == [("VoipqaSmokeFailed", False), ("VoipqaSmokeRecovered", True)]   # not one per failed run
    status = voipqa("monitor", "status", "--history", str(db), lab_dir=run_dir)
    assert status.returncode == 0
    rows = [line.split()[2] for line in status.stdout.splitlines()[1:]]
    assert rows == ["PASS", "FAIL", "FAIL", "PASS"]
    assert "Authenticated Call Is Answered And Billed" in status.stdout
    counts = [(r.passed, r.failed) for r in History(db).last("lab", 4)]
    assert counts == [(4, 0), (3, 1), (3, 1), (4, 0)]


def test_sigterm_between_runs_ends_the_monitor_at_once(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "monitor", "--suite", "smoke", "--include", "auth",
                             "--every", "10m", "--history", str(tmp_path / "m.db"),
                             "--output", str(tmp_path / "runs")],
                            cwd=ROOT, env=dict(os.environ, VOIPQA_LAB_DIR=str(tmp_path / "no-lab")),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out = ""
        deadline = time.monotonic() + 120
        while "next run at" not in out and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            out += line
        assert "next run at" in out, out[-3000:]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 143
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""The README flow through the real CLI: lab up, status, run, down — nothing left behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from qa.paths import ROOT
from qa.ports import port_is_free

from tests.integration.cli import gone, voipqa

pytestmark = pytest.mark.integration




def test_up_status_run_down_leaves_no_process_or_port(tmp_path):
    lab_dir = tmp_path / "lab"
    up = voipqa("lab", "up", lab_dir=lab_dir)
    assert up.returncode == 0, up.stderr
    state = json.loads((lab_dir / "lab.json").read_text())
    try:
        again = voipqa("lab", "up", lab_dir=lab_dir)
        assert again.returncode == 0 and "lab already running" in again.stdout
        assert json.loads((lab_dir / "lab.json").read_text())["supervisor_pid"] == state["supervisor_pid"]
        status = voipqa("lab", "status", "--json", lab_dir=lab_dir)
        assert status.returncode == 0, status.stdout
        rows = {row["name"]: row for row in json.loads(status.stdout)}
        assert {"kamailio", "carrier-a", "carrier-b"} <= set(rows)
        assert all(row["alive"] for row in rows.values())
        assert "udp 200" in rows["kamailio"]["health"] and "tls 200" in rows["kamailio"]["health"]
        run = voipqa("run", "robot_suites/smoke.robot", "--output", str(tmp_path / "out"), lab_dir=lab_dir)
        assert run.returncode == 0, run.stdout[-2000:]
        assert "using the running lab" in run.stdout
    finally:
        down = voipqa("lab", "down", lab_dir=lab_dir)
    assert down.returncode == 0 and "lab stopped" in down.stdout
    pids = [state["supervisor_pid"], *state["processes"].values()]
    assert all(gone(pid) for pid in pids), pids
    assert all(port_is_free(port) for port in state["ports"].values()), state["ports"]
    assert not (lab_dir / "lab.json").exists()
    assert voipqa("lab", "status", lab_dir=lab_dir).returncode == 1


def test_taken_port_is_one_line_and_exit_2(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        proc = voipqa("lab", "up", "--port", f"sip={port}", lab_dir=tmp_path / "lab")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"voipqa: error: lab port 'sip': port 127.0.0.1:{port} is already taken"


@pytest.mark.parametrize("option, content, field", [
    ("--seed", "domain: voipqa.lab\naccounts:\n  - {user: '1001', password: p, balance: lots}\n"
               "carriers: [{name: carrier-a}]\n", "accounts[0].balance: not a number"),
    ("--plan", "version: 1\nroutes:\n  - {prefix: '1', reject: 999}\n", "routes[0].reject"),
    ("--seed", "domain: [unclosed\n", "seed.yaml"),
])
def test_malformed_seed_or_plan_names_the_field(tmp_path, option, content, field):
    bad = tmp_path / ("seed.yaml" if option == "--seed" else "numberplan.yaml")
    bad.write_text(content)
    proc = voipqa("lab", "up", option, str(bad), lab_dir=tmp_path / "lab")
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "lab" / "lab.json").exists()


def test_missing_kamailio_names_the_package(tmp_path):
    code = ("import shutil, sys; from qa import cli; real = shutil.which; "
            "shutil.which = lambda n, *a, **k: None if n == 'kamailio' else real(n, *a, **k); "
            f"sys.exit(cli.main(['lab', 'up', '--run-dir', {str(tmp_path / 'lab')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("voipqa: error: kamailio not found: install the Debian package 'kamailio'")


def test_a_lab_started_for_a_run_dies_with_the_run(tmp_path):
    """SIGKILL the `voipqa run` that started a lab: the lab stops by itself."""
    import signal
    import time

    out = tmp_path / "out"
    env = dict(os.environ, VOIPQA_LAB_DIR=str(tmp_path / "none"))
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "run", "robot_suites/smoke.robot", "--output", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_file = out / "lab" / "lab.json"
    deadline = time.monotonic() + 30
    while not state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    state = json.loads(state_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    pids = [state["supervisor_pid"], *state["processes"].values()]
    deadline = time.monotonic() + 10
    while not all(gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(gone(p) for p in pids)
    assert not state_file.exists()

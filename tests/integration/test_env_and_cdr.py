"""An environment file pointing at a running lab runs the smoke suite (no lab of its own),
and ``voipqa cdr check`` reconciles the run — then finds the CDR we delete."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from qa import lab
from qa.lab.seed import load_seed
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED, ROOT

pytestmark = pytest.mark.integration
SMOKE = ROOT / "robot_suites" / "smoke.robot"


def env_file(state: lab.LabState, folder: Path) -> tuple[Path, dict[str, str]]:
    """An environment file for the lab, passwords in env vars as a staging file would have them."""
    seed = load_seed(Path(state.seed))
    variables = {f"LABFILE_{a.user}_PW": a.password for a in seed.accounts}
    data = {
        "description": "the running native lab, reached like any other platform",
        "target": {"host": state.host, "domain": state.domain,
                   "ports": {"udp": state.ports["sip"], "tcp": state.ports["sip"], "tls": state.ports["sip_tls"]},
                   "tls_server_name": state.tls_server_name, "ca_cert": state.ca_cert},
        "accounts": [{"user": a.user, "password_env": f"LABFILE_{a.user}_PW",
                      "balance_class": "positive" if a.balance > 0 else "zero" if a.balance == 0 else "negative"}
                     for a in seed.accounts],
        "carrier": {"cdr": list(state.carrier_cdr.values())},
        "cdr": {"dsn": f"sqlite:///{state.cdr_db}", "table": "voipqa_cdr"},
    }
    path = folder / "lab-file.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, variables


def voipqa(*args: str, variables: dict[str, str], lab_dir: Path) -> subprocess.CompletedProcess:
    # VOIPQA_LAB_DIR points nowhere: if the run looked for "the lab" instead of the env file, it would fail
    env = dict(os.environ, VOIPQA_LAB_DIR=str(lab_dir), **variables)
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)


def test_smoke_through_an_env_file_then_cdr_check(tmp_path):
    run_dir = tmp_path / "lab"
    state, _ = lab.up(run_dir, seed=DEFAULT_SEED, plan=DEFAULT_PLAN)
    try:
        path, variables = env_file(state, tmp_path)
        out = tmp_path / "out"
        no_lab = tmp_path / "no-lab-here"
        proc = voipqa("run", str(SMOKE), "--env", str(path), "--output", str(out), variables=variables,
                      lab_dir=no_lab)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        assert not (out / "lab").exists() and not no_lab.exists()  # the run started no lab of its own
        assert "alice-pass-1001" not in (out / "log.html").read_text()
        calls = out / "calls.jsonl"

        check = voipqa("cdr", "check", "--calls", str(calls), "--env", str(path), "--json", variables=variables,
                       lab_dir=no_lab)
        assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
        report = json.loads(check.stdout)
        assert report["ok"] and report["carrier_checked"] and report["totals"]["calls"] == 4
        answered = next(c for c in report["calls"] if c["answered"])
        assert answered["platform_rows"] == 1 and answered["carrier_rows"] == 1

        with sqlite3.connect(state.cdr_db) as conn:
            deleted = conn.execute("DELETE FROM acc_cdrs WHERE call_id = ?", (answered["call_id"],)).rowcount
        assert deleted == 1
        check = voipqa("cdr", "check", "--calls", str(calls), "--env", str(path), variables=variables,
                       lab_dir=no_lab)
        assert check.returncode == 1, check.stdout[-3000:] + check.stderr[-2000:]
        text = " ".join(check.stdout.split())
        assert answered["call_id"] in check.stdout
        assert "missing" in text and "carrier_saw_unrouted" in text
        lost = answered["customer_duration_s"]
        assert f"billed seconds lost {lost:.2f}" in text
    finally:
        lab.down(run_dir)


def test_cdr_check_of_a_run_needs_nothing_but_its_calls_file(tmp_path):
    """The README's second command after the first: ``voipqa cdr check --calls
    results/calls.jsonl`` alone, after the run stopped the lab it started. The run left
    its CDRs beside calls.jsonl; REGISTER cases are not calls; every call reconciles."""
    out = tmp_path / "out"
    no_lab = tmp_path / "no-lab-here"
    proc = voipqa("run", str(SMOKE), str(ROOT / "robot_suites" / "catalogue" / "auth.robot"), "--output", str(out),
                  variables={}, lab_dir=no_lab)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert not (out / "lab" / "lab.json").exists()  # the run's lab is stopped
    assert (out / "cdr" / "sources.json").is_file()
    check = voipqa("cdr", "check", "--calls", str(out / "calls.jsonl"), "--json", variables={}, lab_dir=no_lab)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    report = json.loads(check.stdout)
    assert report["ok"] and report["carrier_checked"]
    registers = sum('"method": "REGISTER"' in line for line in (out / "calls.jsonl").read_text().splitlines())
    assert registers >= 2 and report["totals"]["calls"] == report["totals"]["ok"]
    assert report["totals"]["calls"] == len((out / "calls.jsonl").read_text().splitlines()) - registers
    text = voipqa("cdr", "check", "--calls", str(out / "calls.jsonl"), variables={}, lab_dir=no_lab)
    assert text.returncode == 0 and "all calls reconciled" in text.stdout

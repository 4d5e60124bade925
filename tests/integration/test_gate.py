"""`voipqa gate` against the real lab: a healthy lab is deployed, a lab with its balance
check broken is blocked, and the block reaches a local alert receiver."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from qa import lab
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED

from tests.integration.cli import voipqa
from tests.receiver import http_receiver

pytestmark = pytest.mark.integration


def _checks(out) -> dict[str, dict]:
    gate = json.loads((out / "gate.json").read_text())
    return gate, {c["name"]: c for c in gate["checks"]}


def test_a_healthy_lab_is_deployed_after_the_smoke_cases_and_the_short_load(tmp_path):
    out = tmp_path / "gate"
    proc = voipqa("gate", "--include", "smoke", "--output", str(out), lab_dir=tmp_path / "no-lab-here", timeout=400)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    gate, checks = _checks(out)
    assert gate["decision"] == "deploy" and gate["environment"] == "lab" and not gate["interrupted"]
    assert [c["status"] for c in gate["checks"]] == ["pass"] * 4, gate["checks"]
    assert checks["functional"]["value"] == 0 and "4 passed, 0 failed" in checks["functional"]["detail"]
    assert checks["cdr"]["value"] == 0 and "4 of 4 calls reconciled" in checks["cdr"]["detail"]
    assert checks["load"]["value"] == "pass"
    for check in gate["checks"]:
        assert all((out / e).exists() for e in check["evidence"]), check
    assert "gate DEPLOY (lab" in proc.stdout
    assert lab.load_state(out / "lab") is None  # the lab the gate started is stopped


def test_a_lab_that_lets_a_zero_balance_call_through_is_blocked_and_alerts(tmp_path):
    seed = yaml.safe_load(DEFAULT_SEED.read_text())
    for account in seed["accounts"]:
        if account["user"] == "1002":
            account["balance"] = 50.0           # the balance check no longer refuses 1002
    broken = tmp_path / "seed.yaml"
    broken.write_text(yaml.safe_dump(seed))
    run_dir = tmp_path / "lab"
    hook = tmp_path / "hook.json"
    with http_receiver() as rx:
        config = tmp_path / "gate.yaml"
        config.write_text(yaml.safe_dump({"alerts": {
            "webhook_env": "GATE_TEST_WEBHOOK", "alertmanager": rx.url,
            "command": [sys.executable, "-c", f"import sys; open({str(hook)!r}, 'w').write(sys.stdin.read())"]}}))
        lab.up(run_dir, seed=broken, plan=DEFAULT_PLAN)
        try:
            proc = voipqa("gate", "--include", "smoke", "--no-load", "--config", str(config),
                          "--output", str(tmp_path / "gate"), lab_dir=run_dir, timeout=300,
                          env={"GATE_TEST_WEBHOOK": f"{rx.url}/slack/secret-token"})
        finally:
            lab.down(run_dir)
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    gate, checks = _checks(tmp_path / "gate")
    assert gate["decision"] == "block"
    assert checks["functional"]["status"] == "fail" and checks["functional"]["value"] == 1
    assert "Zero Balance Gets 402 And Never Reaches The Carrier" in checks["functional"]["detail"]
    assert "load" not in checks
    (slack,) = rx.bodies("/slack/secret-token")
    assert "VoipqaGateBlocked (lab): blocked: functional 1 > 0" in slack["text"]
    (am,) = rx.bodies("/api/v2/alerts")
    assert am[0]["labels"]["alertname"] == "VoipqaGateBlocked"
    assert json.loads(hook.read_text())["name"] == "VoipqaGateBlocked"
    assert [a["ok"] for a in gate["alerts"]] == [True, True, True]
    assert "secret-token" not in proc.stdout + proc.stderr + (tmp_path / "gate" / "gate.json").read_text()
    assert "gate BLOCK (lab" in proc.stdout

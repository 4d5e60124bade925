"""The gate's decision rule and its up-front checks: bad input is one line and exit 2
before any lab or case starts (the lab runs are in tests/integration/test_gate.py)."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from qa.cli import main
from qa.config import AlertsFile, GateFile, ThresholdsFile
from qa.gate import Check, GatePlan, GateResult, _alert, decide, gate_settings, load_check

from tests.receiver import http_receiver


def _c(status: str, name: str = "functional") -> Check:
    return Check(name, status, 0, 0)


@pytest.mark.parametrize("statuses, decision", [
    (["pass", "pass", "skipped", "pass"], "deploy"),
    (["pass", "fail", "pass"], "block"),
    (["fail"], "block"),
    (["skipped", "skipped"], "block"),     # nothing judged is not a green light
    ([], "block"),
])
def test_the_gate_deploys_only_when_something_was_judged_and_nothing_failed(statuses, decision):
    assert decide([_c(s) for s in statuses]) == decision


def _one_line_exit_2(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voipqa: error: ") and "\n" not in err
    return err


def test_an_unknown_profile_is_bad_input_before_anything_starts(tmp_path, capsys):
    err = _one_line_exit_2(capsys, ["gate", "--profile", "no-such-profile", "--output", str(tmp_path / "g")])
    assert "no-such-profile" in err
    assert not (tmp_path / "g").exists()


def test_an_unknown_environment_is_bad_input(tmp_path, capsys):
    assert "nowhere" in _one_line_exit_2(capsys, ["gate", "--env", "nowhere", "--output", str(tmp_path / "g")])


@pytest.mark.parametrize("text, field", [
    ("gate:\n  failed_cases_max: -1\n", "gate.failed_cases_max"),
    ("gate:\n  profile: ''\n", "gate.profile"),
    ("gate:\n  includes: [smoke]\n", "gate.includes"),
    ("alerts: {}\n", "alerts"),
    ("- just a list\n", ""),
])
def test_a_bad_config_file_is_one_line_naming_the_field(tmp_path, capsys, text, field):
    config = tmp_path / "gate.yaml"
    config.write_text(text)
    err = _one_line_exit_2(capsys, ["gate", "--config", str(config), "--output", str(tmp_path / "g")])
    assert str(config) in err and field in err


def test_output_naming_a_file_is_bad_input(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert "--output" in _one_line_exit_2(capsys, ["gate", "--no-load", "--output", str(tmp_path / "f")])


def test_a_gate_suite_that_does_not_exist_is_bad_input(tmp_path, capsys):
    config = tmp_path / "gate.yaml"
    config.write_text("gate:\n  suites: [no-such-suite.robot]\n")
    assert "no-such-suite.robot" in _one_line_exit_2(capsys, ["gate", "--config", str(config), "--output",
                                                               str(tmp_path / "g")])


def _load_json(out, verdict: str, by_code: dict, reasons: list[str]) -> None:
    out.mkdir(parents=True)
    (out / "load.json").write_text(json.dumps({"verdict": verdict, "reasons": reasons,
                                               "calls": {"completed": sum(by_code.values()), "by_code": by_code}}))


def test_the_load_check_is_the_load_runs_own_verdict_with_its_error_responses(tmp_path):
    _load_json(tmp_path / "ok", "pass", {"200": 300}, [])
    ok = load_check(tmp_path / "ok", 0)
    assert (ok.status, ok.counts, ok.detail) == ("pass", {}, "300 calls, every criterion held")
    _load_json(tmp_path / "bad", "fail", {"200": 250, "503": 40, "480": 7, "timeout": 3},
               ["ASR 0.83 < 0.99", "failed 16.7 % > 1 %"])
    bad = load_check(tmp_path / "bad", 1)
    assert bad.status == "fail" and bad.counts == {"503": 40, "480": 7}
    assert bad.detail == "ASR 0.83 < 0.99; failed 16.7 % > 1 %"
    missing = load_check(tmp_path / "none", 2)
    assert missing.status == "fail" and "no load.json (exit 2)" in missing.detail


def test_a_blocked_gate_sends_one_alert_per_source(tmp_path):
    plan = GatePlan(env="staging", output=tmp_path, suites=[], include=[], exclude=[], profile="gate",
                    gate=GateFile(), thresholds=ThresholdsFile(), alerts=None, has_cdr=True)
    checks = [Check("functional", "pass", 0, 0), Check("malformed_sip", "fail", 3, 0, ["functional/capture.pcapng"],
                                                         "sip.header.syntax x3"),
              Check("load", "fail", "fail", "pass", [], "ASR 0.83 < 0.99", {"503": 40})]
    result = GateResult("block", "staging", "now", 1.0, checks)
    with http_receiver() as rx:
        plan = dataclasses.replace(plan, alerts=AlertsFile(alertmanager=rx.url))
        sent = _alert(plan, result, lambda line: None)
    names = [body[0]["labels"]["alertname"] for body in rx.bodies("/api/v2/alerts")]
    assert names == ["VoipqaGateBlocked", "VoipqaMalformedSip", "VoipqaErrorResponses"]
    assert all(s["ok"] for s in sent) and len(sent) == 3
    bodies = rx.bodies("/api/v2/alerts")
    assert bodies[0][0]["annotations"]["summary"] == "blocked: malformed_sip 3 > 0, load fail"
    assert bodies[2][0]["annotations"]["summary"] == "40 calls of the gate's load ended 4xx/5xx/6xx: 503 x40"


def test_a_config_file_replaces_only_the_sections_it_holds(tmp_path, monkeypatch):
    """--config with alerts only keeps the environment's gate: and thresholds:."""
    monkeypatch.setenv("GATE_TEST_1001_PW", "x-secret-x")
    staging = tmp_path / "envs" / "staging.yaml"
    staging.parent.mkdir()
    staging.write_text(yaml.safe_dump({
        "target": {"host": "sbc.example.net", "ports": {"udp": 5060}},
        "accounts": [{"user": "1001", "password_env": "GATE_TEST_1001_PW"}],
        "thresholds": {"cdr_discrepancies_max": 2},
        "gate": {"include": ["smoke", "auth"], "profile": None},
        "alerts": {"webhook_env": "GATE_TEST_WEBHOOK"}}))
    config = tmp_path / "alerts.yaml"
    config.write_text("alerts:\n  command: [/bin/true]\n")
    settings = gate_settings(str(staging), config)
    assert settings.gate.include == ["smoke", "auth"] and settings.gate.profile is None
    assert settings.thresholds.cdr_discrepancies_max == 2
    assert settings.alerts is not None and settings.alerts.command == ["/bin/true"]
    assert settings.base == staging.parent and not settings.has_cdr
    assert settings.mask("pw x-secret-x") == "pw ******"
    config.write_text("gate:\n  include: [smoke]\n")
    settings = gate_settings(str(staging), config)
    assert settings.gate.include == ["smoke"] and settings.base == tmp_path
    assert settings.alerts is not None and settings.alerts.webhook_env == "GATE_TEST_WEBHOOK"
    assert gate_settings("lab", None).alerts is None

"""Alerts reach a webhook, Alertmanager's v2 API and a command, each received by a real
local receiver; a receiver that is down or refuses is a delivery line, never a crash."""

from __future__ import annotations

import json
import sys

import pytest

from qa.alerts import KINDS, Alert, error_responses, load_alerts, send
from qa.config import AlertsFile
from qa.errors import ConfigError
from qa.validation import validate_file

from tests.receiver import http_receiver

SECRET_URL_VAR = "TEST_VOIPQA_WEBHOOK"


def _alert(**kw) -> Alert:
    return Alert(**{"name": "VoipqaGateBlocked", "summary": "blocked: functional 1 > 0",
                    "environment": "staging", "details": {"functional": "3 passed, 1 failed"},
                    "link": "/tmp/gate/gate.json", **kw})


def test_a_slack_compatible_webhook_gets_the_alert_and_its_url_is_never_printed():
    with http_receiver() as rx:
        url = f"{rx.url}/hooks/T000/B000/very-secret-token"
        deliveries = send(_alert(), AlertsFile(webhook_env=SECRET_URL_VAR), environ={SECRET_URL_VAR: url})
    assert [(d.channel, d.ok) for d in deliveries] == [("webhook", True)]
    assert "very-secret-token" not in deliveries[0].detail and SECRET_URL_VAR in deliveries[0].detail
    (body,) = rx.bodies("/hooks/T000/B000/very-secret-token")
    assert body["text"].startswith("[CRITICAL] VoipqaGateBlocked (staging): blocked: functional 1 > 0")
    assert "functional: 3 passed, 1 failed" in body["text"] and "/tmp/gate/gate.json" in body["text"]


def test_alertmanager_gets_a_v2_alert_and_a_resolved_one_ends():
    with http_receiver() as rx:
        settings = AlertsFile(alertmanager=f"{rx.url}/")
        send(_alert(), settings)
        send(_alert(name="VoipqaSmokeRecovered", status="resolved", severity="info"), settings)
    firing, resolved = rx.bodies("/api/v2/alerts")
    assert isinstance(firing, list) and len(firing) == 1
    assert firing[0]["labels"] == {"alertname": "VoipqaGateBlocked", "environment": "staging",
                                   "severity": "critical", "source": "voipqa"}
    assert firing[0]["annotations"]["summary"] == "blocked: functional 1 > 0"
    assert "startsAt" in firing[0] and "endsAt" not in firing[0]
    assert resolved[0]["labels"]["alertname"] == "VoipqaSmokeRecovered"
    assert resolved[0]["endsAt"] == resolved[0]["startsAt"]


def test_a_command_gets_the_alert_as_json_on_stdin(tmp_path):
    out = tmp_path / "alert.json"
    script = ("import json, os, sys; a = json.load(sys.stdin); a['env_name'] = os.environ['VOIPQA_ALERT_NAME'];"
              f" open({str(out)!r}, 'w').write(json.dumps(a))")
    deliveries = send(_alert(), AlertsFile(command=[sys.executable, "-c", script]))
    assert deliveries[0].ok, deliveries
    got = json.loads(out.read_text())
    assert got["name"] == got["env_name"] == "VoipqaGateBlocked" and got["status"] == "firing"
    assert got["details"] == {"functional": "3 passed, 1 failed"}


def test_every_way_is_used_when_several_are_set(tmp_path):
    with http_receiver() as rx:
        settings = AlertsFile(webhook_env=SECRET_URL_VAR, alertmanager=rx.url,
                              command=[sys.executable, "-c", "import sys; sys.stdin.read()"])
        deliveries = send(_alert(), settings, environ={SECRET_URL_VAR: f"{rx.url}/hook"})
    assert [d.channel for d in deliveries] == ["webhook", "alertmanager", "command"]
    assert all(d.ok for d in deliveries) and len(rx.posts) == 2


def test_a_receiver_that_refuses_or_is_down_is_a_failed_delivery_not_a_crash(tmp_path):
    with http_receiver(status=500) as rx:
        (refused,) = send(_alert(), AlertsFile(alertmanager=rx.url))
    assert not refused.ok and "HTTP 500" in refused.detail
    (down,) = send(_alert(), AlertsFile(alertmanager=rx.url))  # the server is shut down now
    assert not down.ok and "not delivered" in down.detail
    (unset,) = send(_alert(), AlertsFile(webhook_env=SECRET_URL_VAR), environ={})
    assert not unset.ok and "is not set" in unset.detail
    (failing,) = send(_alert(), AlertsFile(command=[sys.executable, "-c", "raise SystemExit('pager down')"]))
    assert not failing.ok and "exit 1" in failing.detail and "pager down" in failing.detail
    (missing,) = send(_alert(), AlertsFile(command=[str(tmp_path / "no-such-program")]))
    assert not missing.ok


def test_each_alert_source_has_its_own_name_and_an_unknown_one_is_refused():
    assert len(set(KINDS)) == 6 and {"VoipqaErrorResponses", "VoipqaMalformedSip", "VoipqaSmokeFailed"} <= set(KINDS)
    with pytest.raises(ValueError, match="not one of"):
        _alert(name="SomethingElse")


@pytest.mark.parametrize("data, message", [
    ({}, "give webhook_env, alertmanager or command"),
    ({"webhook_env": "https://hooks.slack.com/x"}, "webhook_env"),
    ({"alertmanager": "not a url"}, "alertmanager"),
    ({"command": []}, "command"),
    ({"command": ["x"], "timeout_s": 0}, "timeout_s"),
])
def test_a_bad_alerts_section_is_one_line_naming_the_field(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_file(AlertsFile, data, "env.yaml")
    assert "\n" not in str(info.value) and str(info.value).startswith("env.yaml")


def _load_result(verdict: str, by_code: dict) -> dict:
    return {"verdict": verdict, "environment": "staging", "kind": "soak", "profile": "soak",
            "reasons": ["platform.rss_mb grows 41 MB/h > 10 MB/h"] if verdict == "fail" else [],
            "calls": {"by_code": by_code}}


def test_a_failed_soak_alerts_with_its_reason_and_its_error_responses():
    assert load_alerts(_load_result("pass", {"200": 10}), "x") == []
    only = load_alerts(_load_result("fail", {"200": 10, "0": 2, "timeout": 1}), "/r/load.html")
    assert [a.name for a in only] == ["VoipqaSoakFailed"]
    assert only[0].summary == "soak run soak failed: platform.rss_mb grows 41 MB/h > 10 MB/h"
    both = load_alerts(_load_result("fail", {"200": 10, "503": 7, "486": 1}), "/r/load.html")
    assert [a.name for a in both] == ["VoipqaSoakFailed", "VoipqaErrorResponses"]
    assert both[1].details == {"503": 7, "486": 1} and "486 x1, 503 x7" in both[1].summary
    assert error_responses({"200": 5, "404": 0, "603": 2, "unfinished": 3}) == {"603": 2}


def test_load_run_reads_its_alerts_config_before_any_call(tmp_path, capsys):
    from qa.cli import main

    config = tmp_path / "alerts.yaml"
    config.write_text("alerts:\n  alertmanager: nope\n")
    assert main(["load", "run", "load", "--config", str(config), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(config) in err and "alerts.alertmanager" in err and "\n" not in err
    assert not (tmp_path / "out").exists()

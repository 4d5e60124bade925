"""Alerts: a blocked gate, a failed soak or smoke test, told to the people on call.

Three ways out, configured in the environment file's ``alerts:`` section
(docs/environments.md) and used together when several are set:

- ``webhook``: an HTTP POST of Slack-compatible JSON (``{"text": …}``, which Slack,
  Mattermost, Rocket.Chat and Teams' Slack connector all read). The URL is a secret
  (whoever holds a Slack webhook URL can post): the file names the environment variable
  that holds it (``webhook_env``).
- ``alertmanager``: Prometheus Alertmanager's v2 API (``POST {url}/api/v2/alerts``, a list
  of alerts with ``labels``, ``annotations``, ``startsAt``; a resolved alert has an
  ``endsAt`` in the past), so routing, silences and grouping stay the operator's.
- ``command``: a program run with the alert as JSON on its standard input (PagerDuty's
  CLI, ``mail``, a script), bounded by a timeout.

Each alert source has its own ``alertname`` (:data:`KINDS`), so a rule can route a
malformed-SIP alert elsewhere than an error-rate one. Sending never raises: a receiver that
is down is reported as a delivery line, and the run's verdict stays what it was.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Literal

from qa.config import AlertsFile

__all__ = ["Alert", "Delivery", "KINDS", "error_responses", "load_alerts", "send"]

#: alertname -> what raises it.
KINDS = {
    "VoipqaGateBlocked": "voipqa gate decided to block the deploy",
    "VoipqaSoakFailed": "a soak (or load) run failed one of its pass criteria",
    "VoipqaSmokeFailed": "the routine smoke test failed on the live platform (voipqa monitor)",
    "VoipqaSmokeRecovered": "the smoke test passes again after failing",
    "VoipqaErrorResponses": "4xx/5xx/6xx final responses above their limit",
    "VoipqaMalformedSip": "malformed SIP or SDP in the run's capture",
}


@dataclass(frozen=True)
class Alert:
    """One alert: ``name`` one of :data:`KINDS`; ``status`` firing or resolved."""

    name: str
    summary: str
    environment: str
    severity: Literal["critical", "warning", "info"] = "critical"
    status: Literal["firing", "resolved"] = "firing"
    details: dict[str, object] = field(default_factory=dict)
    link: str = ""          # the evidence: a report's path or URL
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.name not in KINDS:
            raise ValueError(f"alert {self.name!r}: not one of {', '.join(KINDS)}")

    def text(self) -> str:
        icon = "RESOLVED" if self.status == "resolved" else self.severity.upper()
        lines = [f"[{icon}] {self.name} ({self.environment}): {self.summary}"]
        lines += [f"• {k}: {v}" for k, v in self.details.items()]
        if self.link:
            lines.append(f"evidence: {self.link}")
        return "\n".join(lines)

    def slack(self) -> dict[str, object]:
        return {"text": self.text(), "username": "voipqa"}

    def alertmanager(self) -> list[dict[str, object]]:
        """Alertmanager v2 ``postableAlerts``; a resolved alert ends now."""
        body: dict[str, object] = {
            "labels": {"alertname": self.name, "environment": self.environment,
                       "severity": self.severity, "source": "voipqa"},
            "annotations": {"summary": self.summary, "description": self.text()},
            "startsAt": self.at,
        }
        if self.link.startswith(("http://", "https://")):
            body["generatorURL"] = self.link
        if self.status == "resolved":
            body["endsAt"] = self.at
        return [body]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Delivery:
    """How one way out took one alert: ``ok`` and a line saying what happened."""

    channel: str
    ok: bool
    detail: str


def send(alert: Alert, settings: AlertsFile | None, mask: Callable[[str], str] = lambda s: s,
         environ: dict[str, str] | None = None) -> list[Delivery]:
    """Send ``alert`` every configured way; never raises. ``mask`` hides secrets in the
    delivery lines (the webhook URL itself is never printed)."""
    if settings is None:
        return []
    env = os.environ if environ is None else environ
    out: list[Delivery] = []
    if settings.webhook_env:
        url = env.get(settings.webhook_env, "")
        if not url:
            out.append(Delivery("webhook", False, f"${settings.webhook_env} is not set: nothing sent"))
        else:
            out.append(_post("webhook", url, alert.slack(), settings.timeout_s, shown=f"${settings.webhook_env}"))
    if settings.alertmanager:
        base = str(settings.alertmanager).rstrip("/")
        out.append(_post("alertmanager", f"{base}/api/v2/alerts", alert.alertmanager(), settings.timeout_s,
                         shown=base))
    if settings.command:
        out.append(_command(settings.command, alert, settings.timeout_s))
    return [Delivery(d.channel, d.ok, mask(d.detail)) for d in out]


def _post(channel: str, url: str, body: object, timeout: float, shown: str) -> Delivery:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "voipqa"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Delivery(channel, True, f"{shown}: HTTP {response.status}")
    except urllib.error.HTTPError as exc:
        return Delivery(channel, False, f"{shown}: HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Delivery(channel, False, f"{shown}: not delivered ({reason})")


def _command(argv: Sequence[str], alert: Alert, timeout: float) -> Delivery:
    env = {**os.environ, "VOIPQA_ALERT_NAME": alert.name, "VOIPQA_ALERT_STATUS": alert.status,
           "VOIPQA_ALERT_SUMMARY": alert.summary}
    try:
        done = subprocess.run(list(argv), input=alert.to_json(), text=True, capture_output=True,
                              timeout=timeout, env=env, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Delivery("command", False, f"{argv[0]}: {exc}")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1]
        return Delivery("command", False, f"{argv[0]}: exit {done.returncode} {last}".rstrip())
    return Delivery("command", True, f"{argv[0]}: exit 0")


def error_responses(by_code: Mapping[str, object]) -> dict[str, int]:
    """The 4xx/5xx/6xx final responses of a load run's ``calls.by_code`` (docs/load-json.md;
    the other keys are 2xx, ``0`` for no answer and SIPp's abort reasons)."""
    return {str(code): int(n) for code, n in by_code.items()  # type: ignore[call-overload]
            if str(code).isdigit() and 400 <= int(code) <= 699 and n}


def load_alerts(result: Mapping[str, object], link: str) -> list[Alert]:
    """What a failed load or soak run (its ``load.json``) tells: ``VoipqaSoakFailed`` with the
    reasons, and ``VoipqaErrorResponses`` when calls ended 4xx/5xx/6xx. None for a pass."""
    if result.get("verdict") != "fail":
        return []
    env = str(result.get("environment") or "?")
    reasons = [str(r) for r in result.get("reasons") or []]  # type: ignore[attr-defined]
    calls = result.get("calls") or {}
    what = f"{result.get('kind', 'load')} run {result.get('profile', '?')}"
    alerts = [Alert("VoipqaSoakFailed", f"{what} failed: {reasons[0] if reasons else 'a criterion broke'}", env,
                    details={f"reason {i + 1}": r for i, r in enumerate(reasons[:5])}, link=link)]
    errors = error_responses(calls.get("by_code") or {})  # type: ignore[union-attr]
    if errors:
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(errors.items()))
        alerts.append(Alert("VoipqaErrorResponses", f"{sum(errors.values())} calls of the {what} ended "
                            f"4xx/5xx/6xx: {codes}", env, details=dict(errors), link=link))
    return alerts

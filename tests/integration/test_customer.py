"""The Python customer against the real lab (issue 3): the same call over UDP, TCP and TLS,
TLS negative cases, and replayed digest credentials.

One lab for the module (``qa.lab.up`` in a temporary run directory, down in ``finally``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import qa.lab as lab
from qa.carrier.cdr import read_cdrs
from qa.customer import CallConfig, CustomerResult, place_call, register, tls_check
from qa.lab.seed import load_seed
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_tool("kamailio") and have_tool("openssl")),
                       reason="kamailio and openssl are needed"),
]

ANSWER_ECHO = "1555000100"
CALL_TIMEOUT_S = 40.0


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("customer-lab")
    try:
        started, _ = lab.up(run_dir, timeout=60)
        yield started
    finally:
        lab.down(run_dir)


def _account(state, user: str) -> tuple[str, str] | None:
    """(user, password) from the seed the lab was started with, if it has that account."""
    for account in load_seed(Path(state.seed)).accounts:
        if account.user == user:
            return account.user, account.password
    return None


def _config(state, transport: str, *, account: tuple[str, str] | None = None, **kw) -> CallConfig:
    user, password = account or _account(state, "1001")
    port = state.ports["sip_tls" if transport == "tls" else "sip"]
    base = dict(from_user=user, password=password, to_user=ANSWER_ECHO, target_host=state.host,
                target_port=port, transport=transport, duration_s=0.5,
                tls_server_name=state.tls_server_name, ca_file=state.ca_cert)
    return CallConfig(**(base | kw))


def _call(config: CallConfig) -> CustomerResult:
    return asyncio.run(place_call(config, timeout_s=CALL_TIMEOUT_S))


def _carrier_lines(state, call_id: str, timeout: float = 10.0) -> list[dict]:
    """The carrier CDR lines of ``call_id`` (carriers write them when the call ends)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for path in state.carrier_cdr.values():
            for row in read_cdrs(path):
                if row.get("call_id") == call_id:
                    found.append(row)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _tls_account(state) -> tuple[str, str]:
    return _account(state, "1008") or _account(state, "1001")


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_the_same_call_over_each_transport_is_answered(state, transport):
    account = _tls_account(state) if transport == "tls" else None
    result = _call(_config(state, transport, account=account))
    assert result.error is None, result.error
    assert result.final_code == 200 and result.answered_codec and result.bye_by == "caller"
    assert result.via_sent.startswith(f"SIP/2.0/{transport.upper()} ")
    assert result.transport == transport and result.challenges == 1
    assert result.duration_s is not None and result.duration_s >= 0.5
    if transport == "udp":
        assert result.tls is None
    else:
        # a stream call is record-routed with its transport (Kamailio double Record-Route)
        assert any(f"transport={transport}" in rr for rr in result.record_route), result.record_route
    if transport == "tls":
        assert result.tls is not None and result.tls.ok, str(result.tls)
        assert result.tls.protocol in ("TLSv1.2", "TLSv1.3") and result.tls.days_to_expiry >= 0
    lines = _carrier_lines(state, result.call_id)
    assert lines, f"no carrier CDR for {result.call_id}"
    assert lines[-1]["final_code"] == 200


def test_tls_check_of_the_platform_is_ok(state):
    report = tls_check(state.host, state.ports["sip_tls"], state.tls_server_name, state.ca_cert)
    assert report.ok, str(report)
    assert f"DNS:{state.tls_server_name}" in report.san
    assert str(report).startswith(f"ok: {report.protocol}, expires in ")


def test_wrong_server_name_is_reported_as_hostname_mismatch(state):
    result = _call(_config(state, "tls", account=_tls_account(state), tls_server_name="wrong.example"))
    assert result.final_code is None and result.call_id == ""
    assert result.tls is not None and result.tls.error == "hostname-mismatch"
    assert str(result.tls) == ("server name wrong.example does not match certificate "
                               f"({result.tls.cert_names()})")
    assert state.tls_server_name in result.tls.cert_names()
    assert result.tls.days_to_expiry is not None and result.tls.days_to_expiry >= 0
    assert result.error == f"tls: {result.tls}"


def test_expired_certificate_is_reported_with_negative_days(state):
    assert "sip_tls_expired" in state.ports, f"the lab has no 'sip_tls_expired' port: {sorted(state.ports)}"
    port = state.ports["sip_tls_expired"]
    report = tls_check(state.host, port, state.tls_server_name, state.ca_cert)
    assert report.error == "expired", str(report)
    assert report.days_to_expiry is not None and report.days_to_expiry < 0
    assert str(report).startswith("certificate expired ")
    result = _call(_config(state, "tls", account=_tls_account(state), target_port=port))
    assert result.final_code is None and result.tls.error == "expired"


def test_replayed_credentials_are_challenged_again(state):
    result = _call(_config(state, "udp", replay_credentials=True))
    assert result.final_code == 200 and result.replay_call_id not in (None, result.call_id)
    assert result.rechallenged is not None, result.error
    # a platform that accepts a replayed nonce is a security failure, never a skip
    assert result.rechallenged, f"the platform accepted the replayed nonce ({result.replay_code})"
    assert result.replay_code == 407 and result.stale is True


def test_register_and_replayed_register(state):
    result = asyncio.run(register(_config(state, "tcp", replay_credentials=True), timeout_s=CALL_TIMEOUT_S))
    assert result.final_code == 200 and result.challenges == 1 and result.method == "REGISTER", result.error
    assert result.rechallenged, f"the platform accepted the replayed REGISTER nonce ({result.replay_code})"
    assert result.replay_code == 401 and result.stale is True


def test_wrong_password_is_refused(state):
    user, _ = _account(state, "1001")
    result = _call(_config(state, "udp", account=(user, "not-the-password")))
    assert result.final_code == 403 and result.challenges == 1 and result.answered is None

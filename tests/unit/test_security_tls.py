"""The ``tls`` attack against real TLS servers on 127.0.0.1, no lab needed.

Each server is a Python ``ssl`` listener in a thread, with certificates openssl makes in a
temporary directory: a *modern* one (TLS 1.2+, default ciphers, as the lab's ``modern_tls``
defence) and a *legacy* one (TLS 1.0+, ``ALL:@SECLEVEL=0``, as the lab with the defence
off). The legacy server is what proves the probes can fail: a TLS 1.0 offer from this
machine really reaches the wire and is accepted.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import warnings
from pathlib import Path

import pytest

from qa.config import SecurityFile
from qa.security.model import AttackResult
from qa.security.target import SecurityTarget
from qa.security.tls import run
from qa.tools import have_tool
from tests.tls_server import TlsServer

NAME = "sip.voipqa.test"

pytestmark = pytest.mark.skipif(not have_tool("openssl"), reason="openssl not installed")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _leaf(d: Path, name: str, days: str) -> None:
    """``name``.crt for NAME and 127.0.0.1, signed by ca, valid ``days`` from now (-1: expired)."""
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={NAME}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", days, "-extfile", "ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "400", "-subj", "/CN=test CA", cwd=d)
    (d / "ext").write_text(f"subjectAltName=DNS:{NAME},IP:127.0.0.1\n")
    _leaf(d, "valid", "365")
    _leaf(d, "soon", "5")
    _leaf(d, "expired", "-1")
    return d


def _server_context(pki: Path, cert: str, *, legacy: bool = False, ask_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / f"{cert}.crt", pki / f"{cert}.key")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1 if legacy else ssl.TLSVersion.TLSv1_2
    if legacy:
        ctx.set_ciphers("ALL:@SECLEVEL=0")       # the lab's tls.cfg with modern_tls off
    if ask_client_cert:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(pki / "ca.crt")
    return ctx


@pytest.fixture(scope="module")
def servers(pki):
    running = {
        "modern": TlsServer(_server_context(pki, "valid")),
        "legacy": TlsServer(_server_context(pki, "valid", legacy=True)),
        "soon": TlsServer(_server_context(pki, "soon")),
        "expired": TlsServer(_server_context(pki, "expired")),
        "asks": TlsServer(_server_context(pki, "valid", ask_client_cert=True)),
    }
    yield {name: srv.port for name, srv in running.items()}
    for srv in running.values():
        srv.close()


def _target(pki: Path, tls_port: int | None, *, expired_port: int | None = None, server_name: str = NAME,
            warning_days: int = 30) -> SecurityTarget:
    return SecurityTarget(name="test", host="127.0.0.1", port=5060, domain=NAME, accounts={"1001": "secret"},
                          settings=SecurityFile(cert_warning_days=warning_days), tls_port=tls_port,
                          tls_expired_port=expired_port, tls_server_name=server_name, ca_cert=str(pki / "ca.crt"))


def _attack(target: SecurityTarget) -> tuple[AttackResult, dict[str, object]]:
    result = AttackResult("tls")
    lines: list[str] = []
    run(target, result, lines.append)
    json.dumps(result.to_dict())                 # security.json must be able to hold it
    return result, {c.name: c for c in result.checks}


def test_modern_server_holds(pki, servers):
    result, checks = _attack(_target(pki, servers["modern"]))
    assert [c.name for c in result.checks] == ["protocols", "weak-ciphers", "certificate", "expiry"]
    assert result.verdict == "pass", result.summary()
    assert "TLSv1 and TLSv1.1 refused, TLSv1.2 and TLSv1.3 accepted" in checks["protocols"].detail
    assert checks["weak-ciphers"].detail.startswith("no weak cipher accepted (offered eNULL, aNULL")
    assert checks["certificate"].detail == (f"chain verifies against ca.crt; {NAME} matches the certificate "
                                            f"({NAME}, 127.0.0.1)")
    assert checks["expiry"].detail.startswith(("364 days left", "365 days left"))
    port = result.evidence["ports"][0]
    assert port["protocols"]["TLSv1"].startswith("refused: ")
    assert port["protocols"]["TLSv1.1"].startswith("refused: ")
    assert port["accepted"] == ["TLSv1.2", "TLSv1.3"]
    assert port["client_certificate"] == "not requested"
    assert port["certificate"]["subject"] == f"CN={NAME}"
    assert result.evidence["srtp"] == "not checked (security.srtp: none)"


def test_legacy_server_fails_protocols_and_weak_ciphers(pki, servers):
    result, checks = _attack(_target(pki, servers["legacy"]))
    port = result.evidence["ports"][0]
    # the TLS 1.0 / 1.1 offers reached the server and were accepted: the probe can fail
    assert port["protocols"]["TLSv1"].endswith("(TLSv1)") and port["protocols"]["TLSv1"].startswith("accepted")
    assert port["accepted"] == ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert not checks["protocols"].ok
    assert checks["protocols"].detail == (f"port {servers['legacy']} accepts TLSv1, TLSv1.1 "
                                          f"(RFC 8996 forbids them)")
    # ALL includes the anonymous suites (aNULL): a client cannot authenticate the server
    assert not checks["weak-ciphers"].ok
    assert f"port {servers['legacy']} accepts aNULL: " in checks["weak-ciphers"].detail
    assert port["weak_ciphers"]["aNULL"].startswith("accepted: ")
    assert checks["certificate"].ok and checks["expiry"].ok
    assert result.verdict == "fail"


def test_expiry_below_the_warning(pki, servers):
    result, checks = _attack(_target(pki, servers["soon"], warning_days=30))
    assert not checks["expiry"].ok
    assert checks["expiry"].detail.startswith("certificate expires in 4 day(s) (not after ")
    assert checks["expiry"].detail.endswith("): below the 30-day warning")
    assert checks["certificate"].ok and checks["protocols"].ok
    _, checks = _attack(_target(pki, servers["soon"], warning_days=3))
    assert checks["expiry"].ok and checks["expiry"].detail.startswith("4 days left")


def test_name_mismatch(pki, servers):
    result, checks = _attack(_target(pki, servers["modern"], server_name="wrong.example"))
    assert not checks["certificate"].ok
    assert checks["certificate"].detail == (f"port {servers['modern']}: server name wrong.example does not "
                                            f"match certificate ({NAME}, 127.0.0.1)")
    assert checks["protocols"].ok and checks["expiry"].ok   # the probes do not verify names


def test_untrusted_chain(pki, servers):
    target = _target(pki, servers["modern"])
    target.ca_cert = str(pki / "valid.crt")                 # a leaf, not the CA that signed it
    _, checks = _attack(target)
    assert not checks["certificate"].ok and "certificate not trusted" in checks["certificate"].detail


def test_expired_port_is_recorded_not_judged(pki, servers):
    result, checks = _attack(_target(pki, servers["modern"], expired_port=servers["expired"]))
    assert result.verdict == "pass", result.summary()
    assert f"ports {servers['modern']}, {servers['expired']}" in checks["protocols"].detail
    expired = result.evidence["ports"][1]
    assert expired["role"].startswith("expired certificate")
    assert expired["certificate"]["days_to_expiry"] < 0
    assert "verification" not in expired


def test_client_certificate_request_is_evidence(pki, servers):
    result, _ = _attack(_target(pki, servers["asks"]))
    assert result.evidence["ports"][0]["client_certificate"] == "requested"
    assert result.verdict == "pass"


def test_unreachable_port_fails_every_check(pki):
    with socket.socket() as sock:               # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, checks = _attack(_target(pki, port))
    assert result.verdict == "fail" and all(not c.ok for c in result.checks)
    assert checks["protocols"].detail.startswith(f"port {port}: cannot connect to 127.0.0.1:{port}")
    assert "not tested (port unreachable)" in checks["weak-ciphers"].detail
    assert checks["expiry"].detail == f"port {port}: no certificate could be read"


def test_no_tls_port_is_not_applicable(pki):
    result, _ = _attack(_target(pki, None))
    assert result.checks == [] and result.error is None
    assert result.evidence["not_applicable"] == "the environment names no TLS port"

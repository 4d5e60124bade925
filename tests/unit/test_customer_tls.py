"""TLS reports of the Python customer: one-line strings, certificate decoding, real handshakes.

The handshakes run against a tiny TLS server on 127.0.0.1 with certificates made by openssl
in a temporary directory (valid, expired, another CA).
"""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from qa.customer.result import TlsReport
from qa.customer.tls import days_left, decode_cert, fill_cert, tls_check
from qa.ports import allocate_ports
from qa.tools import have_tool
from tests.tls_server import TlsServer

NAME = "lab.voipqa.test"
needs_openssl = pytest.mark.skipif(not have_tool("openssl"), reason="openssl not installed")


def test_report_lines():
    ok = TlsReport(ok=True, protocol="TLSv1.3", days_to_expiry=364)
    assert str(ok) == "ok: TLSv1.3, expires in 364 days"
    expired = TlsReport(ok=False, error="expired", days_to_expiry=-3,
                        not_after="2026-11-25T10:00:00+00:00")
    assert str(expired) == "certificate expired 3 days ago (not after 2026-11-25)"
    wrong = TlsReport(ok=False, error="hostname-mismatch", server_name="wrong.example",
                      san=["DNS:lab.voipqa.test"], subject="CN=lab.voipqa.test")
    assert str(wrong) == "server name wrong.example does not match certificate (lab.voipqa.test)"
    refused = TlsReport(ok=False, error="refused", host="127.0.0.1", port=5061,
                        detail="[Errno 111] Connection refused")
    assert str(refused) == "cannot connect to 127.0.0.1:5061: [Errno 111] Connection refused"
    untrusted = TlsReport(ok=False, error="untrusted", detail="self-signed certificate",
                          days_to_expiry=10)
    assert str(untrusted) == "certificate not trusted (self-signed certificate); expires in 10 days"
    assert str(TlsReport(ok=False, error="handshake", detail="timed out")) == "TLS handshake failed: timed out"


def test_days_left_is_negative_once_expired():
    day = 86400
    assert days_left(1000 + 364.5 * day, 1000) == 364
    assert days_left(1000 - 0.2 * day, 1000) == -1
    assert days_left(1000 - 3.4 * day, 1000) == -3


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "30", "-subj", f"/CN={name}", cwd=d)


def _leaf(d: Path, name: str, days: str) -> None:
    (d / "ext").write_text(f"subjectAltName=DNS:{NAME},IP:127.0.0.1\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={NAME}", cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", days, "-extfile", "ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    if not have_tool("openssl"):
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "ca")
    _ca(d, "other")
    _leaf(d, "valid", "365")
    _leaf(d, "expired", "-1")
    return d


@pytest.fixture(scope="module")
def servers(pki):
    running = {name: TlsServer(_context(pki / f"{name}.crt", pki / f"{name}.key"), allocate_ports(1)[0]) for name in ("valid", "expired")}
    yield {name: srv.port for name, srv in running.items()}
    for srv in running.values():
        srv.close()


@needs_openssl
def test_decode_a_generated_certificate(pki):
    der = ssl.PEM_cert_to_DER_cert((pki / "valid.crt").read_text())
    assert decode_cert(der)["subject"] == ((("commonName", NAME),),)
    report = fill_cert(TlsReport(ok=True), der)
    assert report.subject == f"CN={NAME}" and report.issuer == "CN=ca"
    assert report.san == [f"DNS:{NAME}", "IP Address:127.0.0.1"]
    assert report.not_after.endswith("+00:00") and report.not_before < report.not_after
    assert report.days_to_expiry in (364, 365)


@needs_openssl
def test_check_ok(pki, servers):
    report = tls_check("127.0.0.1", servers["valid"], NAME, str(pki / "ca.crt"), timeout=5)
    assert report.ok and report.error is None and report.protocol == "TLSv1.3" and report.cipher
    assert report.days_to_expiry in (364, 365)
    assert str(report) == f"ok: TLSv1.3, expires in {report.days_to_expiry} days"


@needs_openssl
def test_check_wrong_server_name(pki, servers):
    report = tls_check("127.0.0.1", servers["valid"], "wrong.example", str(pki / "ca.crt"), timeout=5)
    assert not report.ok and report.error == "hostname-mismatch"
    assert str(report) == ("server name wrong.example does not match certificate "
                           "(lab.voipqa.test, 127.0.0.1)")
    assert report.days_to_expiry in (364, 365)          # read by the second handshake


@needs_openssl
def test_check_expired(pki, servers):
    report = tls_check("127.0.0.1", servers["expired"], NAME, str(pki / "ca.crt"), timeout=5)
    assert report.error == "expired" and report.days_to_expiry == -1
    assert str(report).startswith("certificate expired 1 day ago (not after ")


@needs_openssl
def test_check_untrusted(pki, servers):
    report = tls_check("127.0.0.1", servers["valid"], NAME, str(pki / "other.crt"), timeout=5)
    assert report.error == "untrusted" and report.subject == f"CN={NAME}"
    assert "not trusted" in str(report)


def test_check_refused():
    port = allocate_ports(1)[0]
    report = tls_check("127.0.0.1", port, NAME, None, timeout=2)
    assert report.error == "refused" and str(report).startswith(f"cannot connect to 127.0.0.1:{port}")


def test_robot_assertions_over_a_report():
    from qa.robot.tls import TlsKeywords
    kw = TlsKeywords(ctx=None)
    expired = TlsReport(ok=False, error="expired", days_to_expiry=-2, host="h", port=1)
    kw.tls_certificate_should_be_rejected(expired, "expired")
    with pytest.raises(AssertionError, match="rejected as expired, expected hostname-mismatch"):
        kw.tls_certificate_should_be_rejected(expired, "hostname-mismatch")
    with pytest.raises(AssertionError, match="certificate expired 2 days ago"):
        kw.tls_certificate_should_be_valid(expired)
    ok = TlsReport(ok=True, protocol="TLSv1.3", days_to_expiry=29)
    kw.tls_certificate_should_be_valid(ok)
    kw.tls_days_to_expiry_should_be_at_least(ok, "29")
    with pytest.raises(AssertionError, match="29 days to expiry, expected at least 30"):
        kw.tls_days_to_expiry_should_be_at_least(ok, 30)
    with pytest.raises(AssertionError, match="was accepted"):
        kw.tls_certificate_should_be_rejected(ok, "expired")


def _context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx

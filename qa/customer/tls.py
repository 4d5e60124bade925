"""TLS certificate checks of the platform (RFC 5246/8446 handshakes; RFC 5922 §7 server names).

``tls_check`` connects, verifies the chain against the lab's CA with SNI and hostname
checking on, and reports why it failed when it does (expired, hostname mismatch, untrusted,
handshake, refused). The certificate's names and dates are read even when verification
fails: a second, non-verifying handshake fetches the peer certificate, decoded with the
standard library (``ssl._ssl._test_decode_cert``; ``cryptography`` is not a dependency).
"""

from __future__ import annotations

import math
import os
import socket
import ssl
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

from qa.customer.result import TlsReport

__all__ = ["TlsReport", "classify_failure", "days_left", "decode_cert", "fetch_peer_cert", "fill_cert",
           "report_from_ssl", "tls_check", "verifying_context"]

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) -> report error
_EXPIRED = 10
_HOSTNAME_MISMATCH = 62
_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
          "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST"}


def verifying_context(cafile: str | None) -> ssl.SSLContext:
    """Chain verified against ``cafile`` (system store if None), hostname checked (SNI)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    text = " ".join(str(text).split())
    return text or type(exc).__name__


def classify_failure(exc: BaseException, host: str, port: int, server_name: str) -> TlsReport:
    """A failed report for ``exc`` raised while connecting / handshaking."""
    report = TlsReport(ok=False, host=host, port=port, server_name=server_name,
                       detail=_one_line(exc))
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        report.error = {_EXPIRED: "expired", _HOSTNAME_MISMATCH: "hostname-mismatch"}.get(
            code, "untrusted")
    elif isinstance(exc, ssl.SSLError):
        report.error = "handshake"
    elif isinstance(exc, (socket.timeout, TimeoutError)):
        report.error, report.detail = "handshake", "timed out"
    else:
        report.error = "refused"
    return report


def _name(rdns: Any) -> str:
    return ", ".join(f"{_SHORT.get(k, k)}={v}" for rdn in rdns or () for k, v in rdn)


def _iso(cert_time: str) -> tuple[str, float]:
    seconds = ssl.cert_time_to_seconds(cert_time)
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(), seconds


def decode_cert(der: bytes) -> dict[str, Any]:
    """The ``getpeercert()``-style dict of a DER certificate (through a temporary PEM file)."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(ssl.DER_cert_to_PEM_cert(der))
        return ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
    finally:
        os.unlink(path)


def fill_cert(report: TlsReport, der: bytes | None, now: float | None = None) -> TlsReport:
    """Copy subject, issuer, SAN, validity and days to expiry (see :func:`days_left`)."""
    if not der:
        return report
    try:
        cert = decode_cert(der)
    except (ssl.SSLError, ValueError, OSError):
        return report
    report.subject, report.issuer = _name(cert.get("subject")), _name(cert.get("issuer"))
    report.san = [f"{kind}:{value}" for kind, value in cert.get("subjectAltName", ())]
    if cert.get("notBefore"):
        report.not_before = _iso(cert["notBefore"])[0]
    if cert.get("notAfter"):
        report.not_after, seconds = _iso(cert["notAfter"])
        report.days_to_expiry = days_left(seconds, time.time() if now is None else now)
    return report


def days_left(not_after: float, now: float) -> int:
    """Whole days to expiry: floor while valid; once expired, -(whole days ago), at least -1."""
    left = (not_after - now) / 86400
    return math.floor(left) if left >= 0 else -max(1, math.floor(-left))


def report_from_ssl(tls: ssl.SSLSocket | ssl.SSLObject, host: str, port: int,
                    server_name: str) -> TlsReport:
    """The report of a verified connection: protocol, cipher and the certificate."""
    cipher = tls.cipher()
    report = TlsReport(ok=True, host=host, port=port, server_name=server_name,
                       protocol=tls.version(), cipher=cipher[0] if cipher else None,
                       detail="verified")
    return fill_cert(report, tls.getpeercert(binary_form=True))


def fetch_peer_cert(host: str, port: int, server_name: str, timeout: float = 5) -> bytes | None:
    """The peer's DER certificate from a non-verifying handshake (None if that fails too)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
                return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def tls_check(host: str, port: int, server_name: str, cafile: str | None,
              timeout: float = 5) -> TlsReport:
    """Connect to ``host:port`` with SNI ``server_name`` and verify against ``cafile``."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return classify_failure(exc, host, port, server_name)
    try:
        with verifying_context(cafile).wrap_socket(raw, server_hostname=server_name) as tls:
            return report_from_ssl(tls, host, port, server_name)
    except (OSError, ssl.SSLError) as exc:
        report = classify_failure(exc, host, port, server_name)
        if report.error == "refused":     # reset during the handshake: still a TLS failure
            report.error = "handshake"
        return fill_cert(report, fetch_peer_cert(host, port, server_name, timeout))
    finally:
        raw.close()

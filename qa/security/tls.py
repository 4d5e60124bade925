"""The ``tls`` attack: what an intruder learns from the platform's TLS listeners.

Nothing here sends SIP: each probe is one TLS handshake (RFC 5246 / RFC 8446) from the
customers' address (an attacker's would do, but a ban must never stop the probe), and the
verdict is what the platform *agreed to*:

``protocols``
    TLS 1.0 and 1.1 are refused (RFC 8996 deprecates both) and TLS 1.2 or 1.3 is accepted
    (a port that accepts nothing is not secure, it is down). Every port the environment
    names is probed.
``weak-ciphers``
    No cipher of a family the standards rule out is negotiated: NULL encryption, EXPORT /
    LOW / DES (< 112 bits), 3DES (SWEET32) and MD5 MACs (RFC 9325 §4.1, which obsoletes
    RFC 7525), RC4 (RFC 7465), anonymous key exchange (RFC 5246 A.5: a SIP client could not
    authenticate the proxy, RFC 3261 §26.2.1). Each family is offered alone, at SECLEVEL 0 so
    that this machine's OpenSSL really sends it; a family this OpenSSL no longer has is
    reported as such, never as "refused".
``certificate``
    On the main TLS port only: the chain verifies against the environment's CA and the
    certificate names the SIP domain / server name (RFC 5922 §7.1: the subjectAltName
    identities; OpenSSL reads the CN only when there is no subjectAltName).
``expiry``
    The certificate has at least ``security.cert_warning_days`` whole days left.

Evidence only: whether the server asks for a client certificate (``client_certificate``),
and SRTP, which is not probed yet (``srtp``).

The lab's second TLS port serves an expired certificate on purpose (a fault its functional
cases declare): it is probed for protocols and ciphers, its expiry is recorded, not judged.

A probe counts as *refused* only when a ClientHello left this machine (seen through
OpenSSL's message callback) and the server did not complete the handshake: a handshake that
never started proves nothing, so it is reported as "not tested" and fails the check. A
server that stays silent counts as refusing (the same port must complete a TLS 1.2 or 1.3
handshake for ``protocols`` to hold, so silence everywhere still fails). Every
probe has a short timeout and the whole attack a time budget (:data:`BUDGET_S`).
"""

from __future__ import annotations

import re
import socket
import ssl
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.customer.result import TlsReport
from qa.customer.tls import classify_failure, fill_cert, verifying_context
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget

__all__ = ["BUDGET_S", "LEGACY", "MODERN", "PROBE_TIMEOUT_S", "WEAK_FAMILIES", "Handshake", "handshake", "run"]

PROBE_TIMEOUT_S = 2.0     # one handshake on 127.0.0.1 takes milliseconds; 2 s is a dead peer
BUDGET_S = 12.0           # every probe of every port: past it the rest are "not tested"

#: versions a modern platform must refuse (RFC 8996) and the ones it must offer one of
LEGACY = (("TLSv1", ssl.TLSVersion.TLSv1), ("TLSv1.1", ssl.TLSVersion.TLSv1_1))
MODERN = (("TLSv1.3", ssl.TLSVersion.TLSv1_3), ("TLSv1.2", ssl.TLSVersion.TLSv1_2))

#: OpenSSL cipher-string families no client should get, each offered alone: what is wrong
#: with it and the standard that rules it out
WEAK_FAMILIES = {
    "eNULL": "no encryption, RFC 9325 §4.1",
    "aNULL": "no server authentication, RFC 5246 A.5",
    "EXPORT": "export-grade, RFC 9325 §4.1",
    "LOW": "below 112 bits, RFC 9325 §4.1",
    "DES": "single DES, RFC 9325 §4.1",
    "3DES": "3DES (SWEET32), RFC 9325 §4.1",
    "RC4": "RC4, RFC 7465",
    "MD5": "MD5 MAC, RFC 9325 §4.1",
}

_SECLEVEL0 = ":@SECLEVEL=0"   # OpenSSL 3 refuses TLS 1.0/1.1 and weak ciphers above level 0
_HANDSHAKE = 22               # TLS ContentType handshake (RFC 8446 §5.1)
_CLIENT_HELLO = 1             # HandshakeType values (RFC 8446 §4)
_CERTIFICATE_REQUEST = 13


@dataclass
class Handshake:
    """One probe: did a ClientHello leave, and what did the server answer?"""

    connected: bool = False           # the TCP connection was made
    offered: bool = False             # a ClientHello was written to it
    version: str | None = None        # negotiated protocol, when the server accepted
    cipher: str | None = None
    error: str | None = None          # why not, one line
    der: bytes | None = None          # the server's certificate (unverified)
    cert_requested: bool = False      # the server sent a CertificateRequest

    @property
    def accepted(self) -> bool:
        return self.version is not None

    @property
    def refused(self) -> bool:
        """Refused by the *server*: the offer was made and the handshake did not complete."""
        return self.offered and not self.accepted

    def describe(self) -> str:
        if self.accepted:
            return f"accepted: {self.cipher} ({self.version})"
        if self.refused:
            return f"refused: {self.error}"
        return f"not tested: {self.error}"


@dataclass
class _Budget:
    """The time left for probes: the attack must end in seconds even against a dead peer."""

    seconds: float = BUDGET_S
    started: float = field(default_factory=time.monotonic)

    def timeout(self) -> float | None:
        left = self.seconds - (time.monotonic() - self.started)
        return min(PROBE_TIMEOUT_S, left) if left > 0.05 else None


@dataclass
class _Port:
    """What the probes of one port found (its evidence, and the input of the checks)."""

    port: int
    role: str
    protocols: dict[str, Handshake] = field(default_factory=dict)
    weak: dict[str, Handshake | str] = field(default_factory=dict)   # str: not in this OpenSSL
    der: bytes | None = None
    cert_requested: bool = False

    @property
    def reachable(self) -> bool:
        return any(h.connected for h in self.protocols.values())

    def accepted(self) -> list[str]:
        return [name for name, h in self.protocols.items() if h.accepted]


# -- one handshake -------------------------------------------------------------------------------

def _context(low: ssl.TLSVersion, high: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    """A non-verifying client context offering exactly ``low``..``high``.

    The bounds are set explicitly because the system's openssl.cnf may raise the minimum
    (Debian: TLS 1.2). ssl.SSLError when ``ciphers`` selects nothing in this OpenSSL.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():      # TLSVersion.TLSv1 is deprecated: probing it is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = low
        ctx.maximum_version = high
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def _watch(ctx: ssl.SSLContext, seen: set[tuple[str, int]]) -> bool:
    """Record the handshake messages of ``ctx``'s connections as (direction, type).

    ``SSLContext._msg_callback`` (CPython >= 3.8, OpenSSL's SSL_CTX_set_msg_callback) is
    the only way the standard library shows whether the ClientHello was actually written
    and whether the server sent a CertificateRequest (encrypted in TLS 1.3). False when
    this Python has no such hook.
    """
    def callback(conn: Any, direction: str, version: Any, content_type: Any, msg_type: Any,
                 data: Any) -> None:
        try:
            if int(content_type) == _HANDSHAKE:
                seen.add((str(direction), int(msg_type)))
        except (TypeError, ValueError):
            pass
    try:
        setattr(ctx, "_msg_callback", callback)
    except (AttributeError, TypeError):
        return False
    return True


def _reason(exc: BaseException) -> str:
    """One readable line for a failed handshake (OpenSSL's "[SSL: X] text (_ssl.c:N)" trimmed)."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(exc, ssl.SSLEOFError) or isinstance(exc, ConnectionResetError):
        return "connection closed by the server"
    if isinstance(exc, ssl.SSLError):
        text = re.sub(r"^\[SSL: [A-Z0-9_]+\]\s*", "", str(exc.args[1] if len(exc.args) > 1 else exc))
        text = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", text)
        return " ".join(text.split()) or (exc.reason or type(exc).__name__).lower()
    return " ".join(str(exc).split()) or type(exc).__name__


def handshake(host: str, port: int, server_name: str, source: str, ctx: ssl.SSLContext,
              timeout: float) -> Handshake:
    """One TLS handshake from ``source`` with SNI ``server_name``; never raises on the network."""
    seen: set[tuple[str, int]] = set()
    watched = _watch(ctx, seen)
    try:
        raw = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0))
    except OSError as exc:
        return Handshake(error=f"cannot connect to {host}:{port}: {_reason(exc)}")
    result = Handshake(connected=True)
    try:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            cipher = tls.cipher()
            result.version, result.cipher = tls.version(), cipher[0] if cipher else None
            result.der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        result.error = _reason(exc)
    finally:
        raw.close()
    # without the hook, a handshake that reached the server is assumed to have been offered
    result.offered = ("write", _CLIENT_HELLO) in seen if watched else result.connected
    result.cert_requested = ("read", _CERTIFICATE_REQUEST) in seen
    return result


# -- the probes of one port ----------------------------------------------------------------------

def _probe(target: SecurityTarget, port: int, ctx: ssl.SSLContext, budget: _Budget) -> Handshake:
    timeout = budget.timeout()
    if timeout is None:
        return Handshake(error=f"time budget of {budget.seconds:g} s spent")
    return handshake(target.host, port, _server_name(target), target.customer_source, ctx, timeout)


def _probe_port(target: SecurityTarget, port: int, role: str, budget: _Budget) -> _Port:
    """Modern versions first (an unreachable port then skips the rest), then legacy, then ciphers."""
    found = _Port(port, role)
    for name, version in MODERN:
        found.protocols[name] = _probe(target, port, _context(version, version), budget)
    if not found.reachable:
        unreachable = Handshake(error="port unreachable")
        found.protocols.update({name: unreachable for name, _ in LEGACY})
        found.weak = {family: unreachable for family in WEAK_FAMILIES}
        return found
    for name, version in LEGACY:
        found.protocols[name] = _probe(target, port, _context(version, version, "ALL" + _SECLEVEL0), budget)
    for family in WEAK_FAMILIES:
        try:
            ctx = _context(ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_2, family + _SECLEVEL0)
        except ssl.SSLError:
            found.weak[family] = "not in this OpenSSL"
            continue
        found.weak[family] = _probe(target, port, ctx, budget)
    probes = [*found.protocols.values(), *(h for h in found.weak.values() if isinstance(h, Handshake))]
    found.der = next((h.der for h in found.protocols.values() if h.der), None)
    found.cert_requested = any(h.cert_requested for h in probes)
    return found


def _server_name(target: SecurityTarget) -> str:
    return target.tls_server_name or target.host


# -- checks --------------------------------------------------------------------------------------

def _protocol_problems(found: _Port) -> list[str]:
    """Why ``found`` fails ``protocols`` (empty: it holds)."""
    if not found.reachable:
        first = next(iter(found.protocols.values()))
        return [f"port {found.port}: {first.error}"]
    problems = []
    accepted_legacy = [name for name, _ in LEGACY if found.protocols[name].accepted]
    if accepted_legacy:
        problems.append(f"port {found.port} accepts {', '.join(accepted_legacy)} (RFC 8996 forbids them)")
    untested = [name for name, _ in LEGACY if not found.protocols[name].offered]
    if untested:
        why = found.protocols[untested[0]].error
        problems.append(f"port {found.port}: {', '.join(untested)} not tested ({why})")
    if not any(found.protocols[name].accepted for name, _ in MODERN):
        why = found.protocols["TLSv1.2"].error
        problems.append(f"port {found.port} accepts neither TLSv1.2 nor TLSv1.3 ({why})")
    return problems


def _check_protocols(result: AttackResult, ports: list[_Port]) -> None:
    problems = [p for found in ports for p in _protocol_problems(found)]
    if problems:
        result.check("protocols", False, "; ".join(problems))
        return
    accepted = sorted({v for found in ports for v in found.accepted()})
    where = ", ".join(str(found.port) for found in ports)
    result.check("protocols", True, f"TLSv1 and TLSv1.1 refused, {' and '.join(accepted)} accepted "
                                    f"on port{'s' if len(ports) > 1 else ''} {where} (RFC 8996)")


def _weak_problems(found: _Port, tried: set[str]) -> list[str]:
    """Why ``found`` fails ``weak-ciphers``; adds the families it refused to ``tried``."""
    problems, untested = [], []
    for family, probe in found.weak.items():
        if isinstance(probe, str):
            continue
        if probe.accepted:
            problems.append(f"port {found.port} accepts {family}: {probe.cipher} ({probe.version}; "
                            f"{WEAK_FAMILIES[family]})")
        elif probe.refused:
            tried.add(family)
        else:
            untested.append((family, probe.error))
    if untested:
        families = ", ".join(family for family, _ in untested)
        problems.append(f"port {found.port}: {families} not tested ({untested[0][1]})")
    return problems


def _check_weak(result: AttackResult, ports: list[_Port]) -> None:
    tried: set[str] = set()
    problems = [p for found in ports for p in _weak_problems(found, tried)]
    if problems:
        result.check("weak-ciphers", False, "; ".join(problems))
        return
    if not tried:
        result.check("weak-ciphers", False, f"not tested: {ssl.OPENSSL_VERSION} has none of "
                                            f"{', '.join(WEAK_FAMILIES)}")
        return
    offered = ", ".join(f for f in WEAK_FAMILIES if f in tried)
    missing = ", ".join(f for f in WEAK_FAMILIES if f not in tried)
    note = f"; {missing} not in {ssl.OPENSSL_VERSION}" if missing else ""
    result.check("weak-ciphers", True, f"no weak cipher accepted (offered {offered}, "
                                       f"one family at a time{note})")


def _verify(target: SecurityTarget, port: int, budget: _Budget) -> TlsReport:
    """A verifying handshake (chain + server name, SNI) as a SIP client must do (RFC 5922 §7)."""
    name = _server_name(target)
    timeout = budget.timeout() or 0.1
    try:
        ctx = verifying_context(target.ca_cert)
        raw = socket.create_connection((target.host, port), timeout=timeout,
                                       source_address=(target.customer_source, 0))
    except (OSError, ssl.SSLError) as exc:
        return classify_failure(exc, target.host, port, name)
    try:
        with ctx.wrap_socket(raw, server_hostname=name) as tls:
            cipher = tls.cipher()
            return TlsReport(ok=True, host=target.host, port=port, server_name=name, protocol=tls.version(),
                             cipher=cipher[0] if cipher else None, detail="verified")
    except (OSError, ssl.SSLError) as exc:
        report = classify_failure(exc, target.host, port, name)
        report.error = "handshake" if report.error == "refused" else report.error
        return report
    finally:
        raw.close()


def _check_certificate(result: AttackResult, target: SecurityTarget, report: TlsReport) -> None:
    if not report.ok:
        result.check("certificate", False, f"port {report.port}: {report}")
        return
    ca = Path(target.ca_cert).name if target.ca_cert else "the system CAs"
    result.check("certificate", True, f"chain verifies against {ca}; {report.server_name} matches the "
                                      f"certificate ({report.cert_names()})")


def _check_expiry(result: AttackResult, target: SecurityTarget, report: TlsReport) -> None:
    days, warn = report.days_to_expiry, target.settings.cert_warning_days
    day = (report.not_after or "?")[:10]
    if days is None:
        result.check("expiry", False, f"port {report.port}: no certificate could be read")
    elif days < 0:
        result.check("expiry", False, f"certificate expired {-days} day(s) ago (not after {day})")
    elif days < warn:
        result.check("expiry", False, f"certificate expires in {days} day(s) (not after {day}): "
                                      f"below the {warn}-day warning")
    else:
        result.check("expiry", True, f"{days} days left (not after {day}; warning below {warn})")


# -- evidence ------------------------------------------------------------------------------------

def _cert_evidence(report: TlsReport) -> dict[str, Any]:
    return {"subject": report.subject, "issuer": report.issuer, "san": list(report.san),
            "not_before": report.not_before, "not_after": report.not_after,
            "days_to_expiry": report.days_to_expiry}


def _port_evidence(found: _Port, cert: TlsReport) -> dict[str, Any]:
    weak = {f: p if isinstance(p, str) else p.describe() for f, p in found.weak.items()}
    return {"port": found.port, "role": found.role,
            "protocols": {name: found.protocols[name].describe() for name in ("TLSv1", "TLSv1.1", "TLSv1.2",
                                                                               "TLSv1.3")},
            "accepted": sorted(found.accepted()), "weak_ciphers": weak,
            "client_certificate": "requested" if found.cert_requested else "not requested",
            "certificate": _cert_evidence(cert)}


def _srtp_evidence(target: SecurityTarget) -> str:
    mode = target.settings.srtp
    if mode == "none":
        return "not checked (security.srtp: none)"
    return f"not checked (security.srtp: {mode}; the SRTP probe is not implemented yet)"


# -- the attack ----------------------------------------------------------------------------------

def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    """Probe every TLS port the environment names and judge the four checks above."""
    result.evidence["srtp"] = _srtp_evidence(target)
    if target.tls_port is None:
        result.evidence["not_applicable"] = "the environment names no TLS port"
        log("tls: the environment names no TLS port: nothing to probe")
        return
    budget = _Budget()
    roles = [(target.tls_port, "main")]
    if target.tls_expired_port is not None:
        roles.append((target.tls_expired_port, "expired certificate (declared fault: recorded, not judged)"))
    result.evidence.update({"openssl": ssl.OPENSSL_VERSION, "source": target.customer_source,
                            "server_name": _server_name(target),
                            "ca_cert": Path(target.ca_cert).name if target.ca_cert else "system CAs"})
    ports, certs = [], []
    for port, role in roles:
        found = _probe_port(target, port, role, budget)
        cert = fill_cert(TlsReport(ok=False, host=target.host, port=port, server_name=_server_name(target)),
                         found.der)
        ports.append(found)
        certs.append(cert)
        log(f"tls: port {port}: accepts {', '.join(sorted(found.accepted())) or 'nothing'}")
    main = _verify(target, target.tls_port, budget)
    _copy_cert(certs[0], main)
    result.evidence["ports"] = [_port_evidence(found, cert) for found, cert in zip(ports, certs)]
    result.evidence["ports"][0]["verification"] = str(main)
    _check_protocols(result, ports)
    _check_weak(result, ports)
    _check_certificate(result, target, main)
    _check_expiry(result, target, certs[0])


def _copy_cert(source: TlsReport, into: TlsReport) -> None:
    """The verifying handshake's report gets the certificate fields the probes read."""
    for name in ("subject", "issuer", "san", "not_before", "not_after", "days_to_expiry"):
        setattr(into, name, getattr(source, name))


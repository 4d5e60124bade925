"""Scan: what a SIP scanner (SIPVicious ``svmap``, sippts) learns from the platform.

An OPTIONS and an unauthenticated INVITE to every port and transport the environment
names. The platform should answer its own OPTIONS (it is a SIP server; hiding that is not
the point) but must not tell the scanner what software and version it runs
(``Server``/``User-Agent``, RFC 3261 §20.35/§20.41 and its security note §26.4.4), and an
INVITE without credentials must be challenged or refused, never routed. Only the
environment's own host is probed: a CIDR sweep is refused by construction.
"""

from __future__ import annotations

import re

from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget
from qa.security.wire import SipSocket

#: a version number in a product token ("kamailio (5.6.3 (x86_64/linux))", "FPBX-16.0.33")
VERSION_RE = re.compile(r"\d+\.\d+")
#: a dialled number nobody owns: the INVITE probes routing, not a customer
PROBE_USER = "100"


def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    source = target.take_source()
    probes: list[dict[str, object]] = []
    for transport, port in target.ports():
        for method in ("OPTIONS", "INVITE"):
            probes.append(_probe(target, source, transport, port, method))
            log(f"scan: {method} {transport}:{port} -> {probes[-1]['reply']}")
    result.evidence = {"source": source, "probes": probes,
                       "fingerprints": sorted({str(p[h]) for p in probes for h in ("server", "user_agent") if p[h]})}
    answered = [p for p in probes if p["status"] is not None]
    if not answered:
        result.error = f"nothing answered on {', '.join(f'{t}:{p}' for t, p in target.ports())}: is the platform up?"
        return
    disclosed = sorted({str(p[h]) for p in answered for h in ("server", "user_agent")
                        if p[h] and VERSION_RE.search(str(p[h]))})
    result.check("fingerprint", not disclosed,
                 f"the platform discloses its software version: {'; '.join(disclosed)}" if disclosed else
                 "no version in Server/User-Agent (" + (", ".join(result.evidence["fingerprints"]) or "none sent") + ")")
    routed = [p for p in answered if p["method"] == "INVITE" and isinstance(p["status"], int) and _routed(p["status"])]
    result.check("unauthenticated-invite", not routed,
                 "INVITE without credentials was not refused: " + "; ".join(
                     f"{p['transport']}:{p['port']} {p['reply']}" for p in routed) if routed else
                 "every INVITE without credentials was challenged or refused")


def _routed(status: int) -> bool:
    """A final or provisional answer that means the INVITE went on (1xx but 100, 2xx, 3xx)."""
    return status < 400 and status != 100


def _probe(target: SecurityTarget, source: str, transport: str, port: int, method: str) -> dict[str, object]:
    out: dict[str, object] = {"transport": transport, "port": port, "method": method, "status": None,
                              "reply": "no answer", "server": None, "user_agent": None}
    ruri = f"sip:{target.host}:{port}" if method == "OPTIONS" else f"sip:{PROBE_USER}@{target.domain}"
    try:
        with SipSocket(target.host, port, transport, local=source, timeout=1.0,
                       server_name=target.tls_server_name) as sock:
            req = sock.request(method, ruri, from_user="scanner", domain=target.domain, to_user=PROBE_USER)
            reply = sock.exchange(req)
    except OSError as exc:
        out["reply"] = f"no connection ({exc.__class__.__name__})"
        return out
    if reply is not None:
        out.update(status=reply.status, reply=reply.line(), server=reply.response.headers.get("Server"),
                   user_agent=reply.response.headers.get("User-Agent"))
    return out

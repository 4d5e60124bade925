"""Torture on the wire: malformed SIP sent to the platform, which must refuse it and live.

Every message here breaks one rule of RFC 3261 (framing §18.3, Content-Length §20.14, CSeq
§8.1.1.5, Max-Forwards §20.22, the §25.1 grammar...) or strains the transport (60 KB
datagrams, 100 KB over TCP, a body that never comes, one byte per TCP segment, IP
fragments). RFC 4475 is the inspiration; the messages are our own. The platform must answer
4xx (400 ideally; 505 for a version it does not speak, 513 for a message too large) or drop
it; never a 2xx or a ringing 1xx, never a leg to the carrier, never a CDR, and it must
still answer a customer's OPTIONS after each message with none of its processes down.

An unauthenticated malformed INVITE is only challenged, never routed, so it cannot prove
much: the messages whose name starts with ``auth-`` are sent with valid credentials (a
well-formed INVITE is challenged first, the malformed one answers that challenge), which is
where a platform that does not check its input forwards the defect to the carrier.

Everything is sent from ONE attacker address (:meth:`SecurityTarget.take_source`). Datagrams
are pipelined: each message gets a short grace for its answer, then the health probe, and
late answers are collected at the end (an INVITE that was taken on, 100 Trying, is waited for
until its final answer or :data:`FINAL_WAIT_S`). Scapy (fragments) is imported only when
it is used, and only as root.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.errors import ParseError
from qa.sdp import make_offer
from qa.sip import Headers, Request, Response
from qa.security import wire
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget, wait_for_witnesses
from qa.security.torture_messages import (
    CorpusMessage, Outcome, SPECS, Spec, TCP_HOLD_S, TOO_LARGE, VERSION_REFUSED, call_ids_of, read_corpus, record_checks, record_witnesses,
)

#: a local platform answers a datagram within milliseconds: wait this long before the health probe
REPLY_GRACE_S = 0.05
#: answers still welcome this long after a message was sent (collected at the end)
REPLY_WAIT_S = 0.3
#: a valid message broken up by the transport (one byte per segment, IP fragments) is answered within
ANSWER_WAIT_S = 2.0
#: an INVITE the platform took on (100 Trying) is waited for this long after it was sent:
#: a relayed one ends in the carrier's answer or, when the carrier drops it, in the
#: platform's own timeouts (the lab: two carriers x fr_timer 3 s, then 503)
FINAL_WAIT_S = 8.0
#: one byte per TCP segment, this far apart (a few hundred segments in all)
BYTE_PAUSE_S = 0.001
FRAGMENT_SIZE = 1200               # IP payload per fragment (a multiple of 8, RFC 791)
CORPUS_PORT = 5060                 # where a corpus message's Via (no port) sends the answer


# -- on the wire ----------------------------------------------------------------------------------

@dataclass
class _Open:
    """A datagram exchange still listening for late answers."""

    outcome: Outcome
    sock: wire.SipSocket
    sent_at: float
    invite: Request | None            # the INVITE to ACK a non-2xx final against

    @property
    def done(self) -> bool:
        return any(s >= 200 for s in self.outcome.statuses)

    def deadline(self) -> float:
        took_on = 100 in self.outcome.statuses and not self.done
        return self.sent_at + (FINAL_WAIT_S if took_on else REPLY_WAIT_S)


class _Session:
    """One run: the attacker's address, the sockets still open, what each message got."""

    def __init__(self, target: SecurityTarget, log: Log, source: str) -> None:
        self.target, self.log, self.source = target, log, source
        self.outcomes: list[Outcome] = []
        self.open: list[_Open] = []
        self.corpus_uris: dict[str, str] = {}     # corpus outcome name -> its Request-URI (for an ACK)
        self.call_ids: list[str] = []             # every Call-ID a request of ours carried
        self.packets = 0

    # -- building
    def base(self, spec: Spec, local: tuple[str, int], transport: str) -> Request:
        """The well-formed request ``spec`` is made from."""
        t = self.target
        call_id = f"torture-{spec.name}-{secrets.token_hex(6)}@{self.source}"
        self.call_ids.append(call_id)
        if spec.method == "OPTIONS":
            return wire.request("OPTIONS", f"sip:{t.host}:{t.port}", local=local, transport=transport,
                                from_user="torture", domain=t.domain, call_id=call_id)
        reject = t.settings.numbers.reject
        offer = bytes(make_offer(["PCMU"], address=self.source, port=40000))
        return wire.request("INVITE", f"sip:{reject}@{t.domain}", local=local, transport=transport,
                            from_user=t.customer, domain=t.domain, to_user=reject, call_id=call_id,
                            body=offer, content_type="application/sdp")

    def outcome(self, spec: Spec) -> Outcome:
        return Outcome(spec.name, spec.transport if spec.mode != "fragments" else "udp-fragments", spec.expect,
                       spec.also_ok, spec.authenticated, spec.defect)

    # -- sending
    def send_spec(self, spec: Spec) -> None:
        out = self.outcome(spec)
        self.outcomes.append(out)
        try:
            if spec.transport == "tcp":
                self._tcp(spec, out)
            elif spec.mode == "fragments":
                self._fragments(spec, out)
            else:
                self._udp(spec, out)
        except OSError as exc:
            out.note = f"{out.note + '; ' if out.note else ''}socket error: {exc}"
        if out.sent:
            self.health(out)
        self.log(f"torture: {out.name} ({out.transport}, {out.sent} bytes): "
                 f"{out.note if not out.sent else out.reply_line()}; health {out.health_detail or '-'}")

    def _udp(self, spec: Spec, out: Outcome) -> None:
        sock = wire.SipSocket(self.target.host, self.target.port, "udp", local=self.source, timeout=REPLY_WAIT_S)
        try:
            base: Request | None = self.base(spec, sock.local, "udp")
            if spec.authenticated and base is not None:
                base = self._authenticate(sock, base, out)
            if base is not None:
                self._send_datagram(sock, spec.build(base), base, out)
                return
        except BaseException:
            sock.close()
            raise
        sock.close()

    def _authenticate(self, sock: wire.SipSocket, req: Request, out: Outcome) -> Request | None:
        """``req`` again with credentials for the challenge it gets (RFC 3261 §22.3)."""
        t = self.target
        reply = sock.exchange(req, timeout=1.0)
        self.packets += 2
        if reply is None or reply.status not in (401, 407):
            out.note = f"not sent: the well-formed INVITE got {reply.line() if reply else 'no answer'}, no challenge"
            return None
        return wire.with_credentials(req, reply.response, t.customer, t.accounts[t.customer])

    def _send_datagram(self, sock: wire.SipSocket, data: bytes, invite: Request | None, out: Outcome) -> None:
        out.call_ids = call_ids_of(data)
        sock.send(data)
        self.packets += 1
        out.sent = len(data)
        pending = _Open(out, sock, time.monotonic(), invite if invite is not None and invite.method == "INVITE"
                        else None)
        self.collect(pending, time.monotonic() + REPLY_GRACE_S)
        self.open.append(pending)

    def collect(self, pending: _Open, until: float) -> None:
        """Answers on ``pending``'s socket until ``until`` or its final one (ACKed if an INVITE's)."""
        while (left := until - time.monotonic()) > 0:
            response = pending.sock.receive(left)
            if response is None:
                return
            pending.outcome.replies.append((response.status, response.reason))
            if response.status >= 200:
                self.ack(pending.sock, pending.invite, response)
                return

    def ack(self, sock: wire.SipSocket, invite: Request | None, response: Response) -> None:
        """ACK a non-2xx final answer to an INVITE (RFC 3261 §17.1.1.3)."""
        if invite is None or response.status < 300:
            return
        try:
            sock.send(bytes(wire.ack_for(invite, response)))
            self.packets += 1
        except OSError:
            pass

    def _tcp(self, spec: Spec, out: Outcome) -> None:
        with wire.SipSocket(self.target.host, self.target.port, "tcp", local=self.source,
                            timeout=REPLY_WAIT_S) as sock:
            base = self.base(spec, sock.local, "tcp")
            data = spec.build(base)
            out.call_ids = call_ids_of(data)
            started = time.monotonic()
            try:
                self._write(sock, data, spec.mode, out)
            except OSError as exc:
                out.note = f"the platform closed the connection after part of the message ({exc.strerror or exc})"
            if spec.mode == "hold":
                self.health(out, during=True)
            pending = _Open(out, sock, started, base if spec.method == "INVITE" else None)
            wait = TCP_HOLD_S if spec.mode == "hold" else (REPLY_WAIT_S if spec.expect == "reject" else ANSWER_WAIT_S)
            self.collect(pending, time.monotonic() + wait)

    def _write(self, sock: wire.SipSocket, data: bytes, mode: str, out: Outcome) -> None:
        if mode != "bytewise":
            sock.sock.settimeout(ANSWER_WAIT_S)
            view = memoryview(data)
            while out.sent < len(data):
                out.sent += sock.sock.send(view[out.sent:])
                self.packets += 1
            return
        for i in range(len(data)):
            sock.sock.send(data[i:i + 1])
            out.sent = i + 1
            self.packets += 1
            time.sleep(BYTE_PAUSE_S)

    def _fragments(self, spec: Spec, out: Outcome) -> None:
        """The OPTIONS as IP fragments (crafted with scapy on a raw socket: root only); the
        answer comes back to an ordinary UDP socket on the port the fragments name."""
        if os.geteuid() != 0:
            out.note = "fragmented UDP: not sent (raw sockets need root)"
            return
        sock = wire.SipSocket(self.target.host, self.target.port, "udp", local=self.source, timeout=REPLY_WAIT_S)
        data = spec.build(self.base(spec, sock.local, "udp"))
        try:
            count = send_fragments(self.target.host, self.target.port, sock.local, data)
        except ImportError:
            sock.close()
            out.note = "fragmented UDP: not sent (scapy is not installed)"
            return
        out.call_ids, out.sent, out.note = call_ids_of(data), len(data), f"{count} IP fragments"
        self.packets += count
        pending = _Open(out, sock, time.monotonic(), None)
        self.collect(pending, time.monotonic() + ANSWER_WAIT_S)
        self.open.append(pending)

    def send_corpus(self, sock: socket.socket, message: CorpusMessage) -> None:
        """One raw message, byte for byte, over UDP; answers are matched to it by Call-ID."""
        out = Outcome(message.name, "udp", "reject" if message.judged else "none",
                      frozenset({VERSION_REFUSED, TOO_LARGE}),
                      defect=" ".join(x for x in (message.section, message.expected, message.description) if x))
        out.call_ids = call_ids_of(message.data)
        self.outcomes.append(out)
        self.corpus_uris[out.name] = _request_uri(message.data)
        try:
            sock.sendto(message.data, (self.target.host, self.target.port))
            out.sent = len(message.data)
            self.packets += 1
        except OSError as exc:
            out.note = f"not sent: {exc}"
            return
        self.collect_corpus(sock, out, time.monotonic() + REPLY_GRACE_S)
        self.health(out)
        self.log(f"torture: {out.name} (corpus, {out.sent} bytes): {out.reply_line()}; health {out.health_detail}")

    def collect_corpus(self, sock: socket.socket, current: Outcome | None, until: float) -> None:
        """Answers on the corpus socket until ``until``: each to the message with its Call-ID
        (else to ``current``), an INVITE's non-2xx final ACKed."""
        by_id = {c: o for o in self.outcomes if o.name in self.corpus_uris for c in o.call_ids}
        while (left := until - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(65535)
            except OSError:
                return
            response = wire.parse_response(data)
            if response is None:
                continue
            owner = by_id.get(response.headers.get("Call-ID") or "", current)
            if owner is None:
                continue
            owner.replies.append((response.status, response.reason))
            self._ack_corpus(sock, response, self.corpus_uris[owner.name])

    def _ack_corpus(self, sock: socket.socket, response: Response, uri: str) -> None:
        if response.status < 300 or (response.headers.get("CSeq") or "").split()[-1:] != ["INVITE"]:
            return
        invite = _invite_of(response, uri)
        if invite is not None:
            try:
                sock.sendto(bytes(wire.ack_for(invite, response)), (self.target.host, self.target.port))
                self.packets += 1
            except OSError:
                pass

    # -- health and the end
    def health(self, out: Outcome, during: bool = False) -> None:
        """The health probe: a customer's OPTIONS answered and no process down."""
        down = self.target.processes_down()
        answered = self.target.options_answered(self.target.customer_source)
        ok = answered and not down
        problems = ([] if answered else ["customer OPTIONS unanswered"]) + \
            ([f"down: {', '.join(down)}"] if down else [])
        detail = "ok" if ok else "; ".join(problems)
        if during:
            detail = f"while held: {detail}"
        elif out.health_detail:
            detail = f"{out.health_detail}; after: {detail}"
        out.health = ok if out.health is None else (out.health and ok)
        out.health_detail = detail

    def drain(self) -> None:
        """Late answers: every open exchange until its deadline, then closed."""
        for pending in sorted(self.open, key=lambda p: p.deadline()):
            if not pending.done:
                self.collect(pending, pending.deadline())
            pending.sock.close()
        self.open.clear()


def _request_uri(data: bytes) -> str:
    """The Request-URI of a raw request ('' for anything else)."""
    parts = data.split(b"\r\n", 1)[0].split(b" ")
    return parts[1].decode("utf-8", "replace") if len(parts) > 2 and not parts[0].startswith(b"SIP/") else ""


def _invite_of(response: Response, uri: str) -> Request | None:
    """The INVITE a corpus answer is for, as far as an ACK needs it (Via, From, Call-ID, CSeq)."""
    headers = Headers()
    for name in ("Via", "From", "Call-ID", "CSeq"):
        value = response.headers.get(name)
        if value is None:
            return None
        headers.add(name, value)
    try:
        request = Request("INVITE", uri, headers)
        request.cseq  # noqa: B018 - ack_for needs a number
    except ParseError:
        return None
    return request


def send_fragments(host: str, port: int, local: tuple[str, int], data: bytes) -> int:
    """Send ``data`` as one UDP datagram cut into IP fragments (RFC 791) from ``local`` to
    ``host:port``; returns how many. Scapy on a raw L3 socket (L3RawSocket for loopback,
    where a link-layer socket cannot send); needs root. Imported here only."""
    import importlib
    import logging

    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
    scapy = importlib.import_module("scapy.all")
    packet = scapy.IP(src=local[0], dst=host) / scapy.UDP(sport=local[1], dport=port) / scapy.Raw(data)
    fragments = scapy.fragment(packet, fragsize=FRAGMENT_SIZE)
    previous = scapy.conf.L3socket
    if host.startswith("127."):
        scapy.conf.L3socket = importlib.import_module("scapy.supersocket").L3RawSocket
    try:
        scapy.send(fragments, verbose=0)
    finally:
        scapy.conf.L3socket = previous
    return len(fragments)


def _corpus_socket(source: str) -> tuple[socket.socket, str | None]:
    """The UDP socket the corpus goes out on: port 5060 where it can, since a raw message's
    Via (no rport) sends the answer to its sent-by port or 5060 (RFC 3261 §18.2.2)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((source, CORPUS_PORT))
        return sock, None
    except OSError as exc:
        sock.bind((source, 0))
        return sock, (f"port {CORPUS_PORT} on {source} not free ({exc.strerror or exc}): answers sent to a "
                      f"Via's port are not seen")


# -- the attack ----------------------------------------------------------------------------------

def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
    """Send every crafted message (and the torture directory's, if any) from one attacker
    address; judge the answers, the platform's health after each, and the witnesses."""
    corpus = read_corpus(Path(target.torture_dir)) if target.torture_dir else []
    source = target.take_source()
    started = time.monotonic()
    session = _Session(target, log, source)
    log(f"torture: {len(SPECS)} crafted messages{f' and {len(corpus)} from the torture directory' if corpus else ''}"
        f" from {source} to {target.host}:{target.port}")
    for spec in SPECS:
        session.send_spec(spec)
    corpus_note = _send_corpus(session, corpus) if corpus else None
    session.drain()
    wait_for_witnesses()
    record_checks(result, session.outcomes)
    record_witnesses(target, result, session.outcomes)
    result.call_ids.extend(dict.fromkeys([*session.call_ids, *(c for o in session.outcomes for c in o.call_ids)]))
    result.evidence.update(_evidence(session, corpus, corpus_note, time.monotonic() - started))


def _send_corpus(session: _Session, corpus: Sequence[CorpusMessage]) -> str | None:
    sock, note = _corpus_socket(session.source)
    try:
        for message in corpus:
            session.send_corpus(sock, message)
        session.collect_corpus(sock, None, time.monotonic() + REPLY_WAIT_S)
    finally:
        sock.close()
    return note


def _evidence(session: _Session, corpus: Sequence[CorpusMessage], corpus_note: str | None,
              runtime: float) -> dict[str, Any]:
    notes = [o.note for o in session.outcomes if not o.sent and o.note]
    out: dict[str, Any] = {
        "source": session.source, "target": f"{session.target.host}:{session.target.port}",
        "packets": session.packets, "runtime_s": round(runtime, 2),
        "messages": [o.to_evidence() for o in session.outcomes]}
    if notes:
        out["not_sent"] = notes
    if corpus:
        out["corpus"] = {"messages": len(corpus), "judged": sum(1 for m in corpus if m.judged)}
        if corpus_note:
            out["corpus"]["note"] = corpus_note
    return out

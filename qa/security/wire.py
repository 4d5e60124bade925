"""A blocking SIP endpoint for attacks: one local address, one transport, raw control.

Attacks must send what a normal client never would (replayed nonces, forged identities,
torture bytes), so this is deliberately small: build a request with :func:`request`, send
bytes, read the responses that come back. Messages are built and parsed by ``qa.sip``;
only the sockets live here.
"""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass

from qa.errors import ParseError
from qa.sip import (Headers, Request, Response, StreamFramer, build_authorization, new_branch, new_call_id,
                    new_tag, parse_digest_challenge, parse_message)

USER_AGENT = "voipqa-security"


@dataclass(frozen=True)
class Reply:
    """A response as an attack sees it: when it came, and its fingerprint-free headers."""

    response: Response
    elapsed_ms: float

    @property
    def status(self) -> int:
        return self.response.status

    def line(self) -> str:
        return f"{self.response.status} {self.response.reason}"


class SipSocket:
    """One socket from ``local`` to the target, over ``transport`` (udp, tcp or tls)."""

    def __init__(self, host: str, port: int, transport: str = "udp", *, local: str = "127.0.0.1",
                 timeout: float = 2.0, server_name: str | None = None, context: ssl.SSLContext | None = None) -> None:
        self.host, self.port, self.transport = host, port, transport
        self.timeout = timeout
        self._framer = StreamFramer()
        self._pending: list[bytes] = []
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        try:
            self.sock.bind((local, 0))
            self.sock.settimeout(timeout)
            if transport != "udp":
                self.sock.connect((host, port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if transport == "tls":
                ctx = context or ssl._create_unverified_context()
                self.sock = ctx.wrap_socket(self.sock, server_hostname=server_name or host)
        except BaseException:
            self.sock.close()
            raise
        self.local = self.sock.getsockname()[:2]

    def __enter__(self) -> SipSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        if self.transport == "udp":
            self.sock.sendto(data, (self.host, self.port))
        else:
            self.sock.sendall(data)

    def receive(self, timeout: float | None = None) -> Response | None:
        """The next response, or None when none came within ``timeout`` (or the peer closed)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            if self._pending:
                msg = parse_response(self._pending.pop(0))
                if msg is not None:
                    return msg
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, socket.timeout, BlockingIOError):
                return None
            except (ConnectionError, ssl.SSLError, OSError):
                return None
            if not data:
                return None
            if self.transport == "udp":
                self._pending.append(data)
                continue
            try:
                self._pending.extend(self._framer.feed(data))
            except ParseError:
                return None

    def final(self, timeout: float | None = None) -> Reply | None:
        """Wait for the final response (provisionals skipped)."""
        started = time.monotonic()
        deadline = started + (self.timeout if timeout is None else timeout)
        while (left := deadline - time.monotonic()) > 0:
            response = self.receive(left)
            if response is None:
                return None
            if response.status >= 200:
                return Reply(response, (time.monotonic() - started) * 1000)
        return None

    def exchange(self, request: Request, timeout: float | None = None) -> Reply | None:
        """Send ``request`` and return its final response (an unanswered INVITE is None)."""
        self.send(bytes(request))
        reply = self.final(timeout)
        if reply is not None and request.method == "INVITE":
            self.send(bytes(ack_for(request, reply.response)))
        return reply

    def request(self, method: str, ruri: str, *, from_user: str, domain: str, to_user: str | None = None,
                call_id: str | None = None, cseq: int = 1, extra: list[tuple[str, str]] | None = None,
                body: bytes = b"", content_type: str | None = None) -> Request:
        """A request from this socket (Via, Contact on its address)."""
        return request(method, ruri, local=self.local, transport=self.transport, from_user=from_user,
                       domain=domain, to_user=to_user, call_id=call_id, cseq=cseq, extra=extra, body=body,
                       content_type=content_type)


def parse_response(data: bytes) -> Response | None:
    """The SIP response in ``data``, or None for anything else (a request, garbage)."""
    try:
        msg = parse_message(data)
    except ParseError:
        return None
    return msg if isinstance(msg, Response) else None


def request(method: str, ruri: str, *, local: tuple[str, int], transport: str, from_user: str, domain: str,
            to_user: str | None = None, call_id: str | None = None, cseq: int = 1,
            extra: list[tuple[str, str]] | None = None, body: bytes = b"",
            content_type: str | None = None) -> Request:
    """An out-of-dialog request (RFC 3261 §8.1.1) with the mandatory headers and ``extra``."""
    headers = Headers()
    headers.add("Via", f"SIP/2.0/{transport.upper()} {local[0]}:{local[1]};branch={new_branch()};rport")
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:{from_user}@{domain}>;tag={new_tag()}")
    headers.add("To", f"<sip:{to_user or from_user}@{domain}>")
    headers.add("Call-ID", call_id or new_call_id(local[0]))
    headers.add("CSeq", f"{cseq} {method}")
    headers.add("Contact", f"<sip:{from_user}@{local[0]}:{local[1]};transport={transport}>")
    headers.add("User-Agent", USER_AGENT)
    for name, value in extra or ():
        headers.add(name, value)
    if content_type:
        headers.add("Content-Type", content_type)
    headers.add("Content-Length", str(len(body)))
    return Request(method, ruri, headers, body)


def ack_for(invite: Request, response: Response) -> Request:
    """The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): same branch, the response's To."""
    headers = Headers()
    headers.add("Via", invite.headers.get("Via") or "")
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or "")
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq[0]} ACK")
    headers.add("Content-Length", "0")
    return Request("ACK", invite.uri, headers)


def with_credentials(req: Request, challenge_reply: Response, user: str, password: str) -> Request:
    """``req`` again (new branch, CSeq + 1) answering the challenge in ``challenge_reply``."""
    www = challenge_reply.status == 401
    value = challenge_reply.headers.get("WWW-Authenticate" if www else "Proxy-Authenticate") or ""
    challenge = parse_digest_challenge(value)
    auth = build_authorization(challenge, username=user, password=password, method=req.method, uri=req.uri)
    again = fresh(req, next_cseq=True)
    again.headers.add("Authorization" if www else "Proxy-Authorization", auth)
    return again


def fresh(req: Request, *, next_cseq: bool = False) -> Request:
    """``req`` as a new transaction (new branch) with its headers, body and Call-ID kept;
    ``next_cseq``: with CSeq + 1 and without its credentials (to answer a new challenge)."""
    headers = Headers()
    for name, val in req.headers:
        lower = name.lower()
        if lower == "via":
            val = val.split(";branch=")[0] + f";branch={new_branch()};rport"
        elif next_cseq and lower == "cseq":
            val = f"{req.cseq[0] + 1} {req.method}"
        elif next_cseq and lower in ("authorization", "proxy-authorization"):
            continue
        headers.add(name, val)
    return Request(req.method, req.uri, headers, req.body)

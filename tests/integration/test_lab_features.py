"""The reference platform's functional catalogue features, for real (issue 3).

One lab for the module. The three slow calls (ring forever -> 408 at fr_inv_timer,
media timeout, session-timer expiry at 90 s) start in background threads when the
module starts and are checked by the tests at the end of the file, so the module takes
about as long as the session expiry. Failover tests only touch dispatcher set 2
(carrier-c, carrier-d: destinations 1666...), so nothing else in the lab notices them.

Customers are raw sockets built on ``qa.sip`` (``Phone`` below: UDP, TCP or TLS, digest
auth with ``qa.sip`` helpers) where a test must see or forge exact messages, and SIPp
(``qa.sipp.Agent`` + sipp/uac_call.xml) where a plain call is enough.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

import qa.lab as lab
from qa.carrier.cdr import read_cdrs
from qa.lab.seed import load_seed
from qa.paths import DEFAULT_SEED
from qa.sip import (
    Headers, Request, Response, StreamFramer, build_authorization, make_response, new_branch,
    new_tag, parse_digest_challenge, parse_message,
)
from qa.sipp import Agent
from qa.sipp.process import run as run_sipp
from qa.tools import have_tool
from qa.transport.probe import sip_options

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(have_tool(t) for t in ("kamailio", "sipp", "openssl", "rtpengine")),
                       reason="kamailio, sipp, openssl and rtpengine are needed"),
]

HOST = "127.0.0.1"
DOMAIN = "voipqa.lab"
ANSWER = "15550001234"          # answer-echo on every carrier (set 1)
BUSY = "1555003486"             # every carrier: 486
RING_FOREVER = "15550020999"    # 180, never a final response
RTP_STOPS = "15550070123"       # the carrier sends RTP for 3 s, then stops
CARRIER_HANGS_UP = "15550040123"  # the carrier sends BYE 3 s after answering
SET2_ANSWER = "16660001234"     # set 2: answered by every carrier
SET2_503_ON_C = "16660010123"   # carrier-c: 503, carrier-d: answer
SET2_BLACKHOLE_ON_C = "16660020123"  # carrier-c: no answer at all, carrier-d: answer

SEED = load_seed(DEFAULT_SEED)
PASSWORDS = {a.user: a.password for a in SEED.accounts}
FR_TIMER_S = SEED.fr_timer_s
FR_INV_TIMER_S = SEED.fr_inv_timer_s
MEDIA_TIMEOUT_S = SEED.media_timeout_s
SESSION_EXPIRES_S = SEED.min_se_s
SLACK_S = 8.0                   # 2 shared cores: generous bounds, never tight timing


# ============================================================================ raw SIP

class Phone:
    """A tiny blocking SIP endpoint on one socket (UDP, TCP or TLS) to the lab's Kamailio.

    Messages are built and parsed by ``qa.sip``; requests the platform sends us (BYE)
    are queued apart from responses so a test can wait for either.
    """

    def __init__(self, port: int, transport: str = "udp", *, local_ip: str = HOST,
                 ssl_context: ssl.SSLContext | None = None, server_name: str | None = None) -> None:
        self.transport = transport
        self.peer = (HOST, port)
        if transport == "udp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((local_ip, 0))
        else:
            raw = socket.create_connection(self.peer, timeout=5, source_address=(local_ip, 0))
            self.sock = ssl_context.wrap_socket(raw, server_hostname=server_name) if ssl_context else raw
        self.local = self.sock.getsockname()
        self.framer = StreamFramer()
        self.inbox: deque[Request | Response] = deque()

    def close(self) -> None:
        self.sock.close()

    def send(self, msg: Request | Response | bytes) -> None:
        data = msg if isinstance(msg, bytes) else bytes(msg)
        if self.transport == "udp":
            self.sock.sendto(data, self.peer)
        else:
            self.sock.sendall(data)

    def _fill(self, timeout: float) -> None:
        self.sock.settimeout(max(timeout, 0.01))
        if self.transport == "udp":
            self.inbox.append(parse_message(self.sock.recv(65535)))
            return
        data = self.sock.recv(65535)
        if not data:
            raise ConnectionError("the platform closed the connection")
        self.inbox.extend(parse_message(raw) for raw in self.framer.feed(data))

    def wait(self, match: Callable[[Request | Response], bool], timeout: float) -> Request | Response:
        """The first received message ``match`` accepts (others stay queued)."""
        deadline = time.monotonic() + timeout
        while True:
            for msg in list(self.inbox):
                if match(msg):
                    self.inbox.remove(msg)
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching SIP message within {timeout:g} s")
            try:
                self._fill(left)
            except (socket.timeout, TimeoutError):
                pass

    def response(self, call_id: str, cseq: int, timeout: float = 10) -> Response:
        msg = self.wait(lambda m: isinstance(m, Response) and m.call_id == call_id and m.cseq[0] == cseq,
                        timeout)
        assert isinstance(msg, Response)
        return msg

    def final(self, call_id: str, cseq: int, timeout: float = 10) -> tuple[Response, list[int]]:
        """The final response to request ``cseq`` and the provisional codes before it."""
        provisional: list[int] = []
        deadline = time.monotonic() + timeout
        while True:
            resp = self.response(call_id, cseq, max(0.1, deadline - time.monotonic()))
            if resp.status >= 200:
                return resp, provisional
            provisional.append(resp.status)


def sdp(media_port: int) -> bytes:
    return (f"v=0\r\no=voipqa 1 1 IN IP4 {HOST}\r\ns=voipqa\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"m=audio {media_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n").encode()


def sdp_media_address(body: bytes) -> tuple[str, int]:
    text = body.decode()
    host = re.search(r"^c=IN IP4 (\S+)", text, re.M)
    port = re.search(r"^m=audio (\d+)", text, re.M)
    assert host and port, text
    return host.group(1), int(port.group(1))


@dataclass
class Dialog:
    """One call from a ``Phone``: INVITE (auth handled) and what follows."""

    phone: Phone
    number: str
    user: str
    call_id: str = field(default_factory=lambda: f"feat-{uuid.uuid4().hex[:16]}")
    from_tag: str = field(default_factory=new_tag)
    cseq: int = 1
    to_tag: str | None = None
    route_set: list[str] = field(default_factory=list)
    remote_target: str = ""
    final: Response | None = None
    provisional: list[int] = field(default_factory=list)
    answered_at: float | None = None
    authorization: str | None = None

    @property
    def ruri(self) -> str:
        return f"sip:{self.number}@{DOMAIN}"

    def headers(self, method: str, cseq: int, branch: str, to_tag: str | None) -> Headers:
        host, port = self.phone.local[0], self.phone.local[1]
        h = Headers()
        h.add("Via", f"SIP/2.0/{self.phone.transport.upper()} {host}:{port};branch={branch};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:{self.user}@{DOMAIN}>;tag={self.from_tag}")
        h.add("To", f"<{self.ruri}>" + (f";tag={to_tag}" if to_tag else ""))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Contact", f"<sip:{self.user}@{host}:{port};transport={self.phone.transport}>")
        return h

    def invite(self, password: str, *, extra: list[tuple[str, str]] | None = None, body: bytes = b"",
               timeout: float = 30, replay_authorization: str | None = None) -> Response:
        """INVITE; answer one 407 with credentials (unless replaying old ones); ACK a
        failure. Returns the final response."""
        auth = ("Proxy-Authorization", replay_authorization) if replay_authorization else None
        resp = self._send_invite(extra or [], body, auth, timeout)
        if resp.status == 407 and replay_authorization is None:
            self._ack_failure(resp)
            challenge = parse_digest_challenge(resp.headers.get("Proxy-Authenticate") or "")
            self.authorization = build_authorization(challenge, username=self.user, password=password,
                                                     method="INVITE", uri=self.ruri)
            self.cseq += 1
            resp = self._send_invite(extra or [], body, ("Proxy-Authorization", self.authorization), timeout)
        self.final = resp
        if resp.status >= 300:
            self._ack_failure(resp)
        else:
            self._learn_dialog(resp)
        return resp

    def _send_invite(self, extra: list[tuple[str, str]], body: bytes, auth: tuple[str, str] | None,
                     timeout: float) -> Response:
        self.branch = new_branch()
        h = self.headers("INVITE", self.cseq, self.branch, None)
        for name, value in extra + ([auth] if auth else []):
            h.add(name, value)
        if body:
            h.add("Content-Type", "application/sdp")
        self.phone.send(Request("INVITE", self.ruri, h, body))
        resp, self.provisional = self.phone.final(self.call_id, self.cseq, timeout)
        return resp

    def _ack_failure(self, resp: Response) -> None:
        """ACK for a non-2xx: same branch as the INVITE (RFC 3261 §17.1.1.3)."""
        h = self.headers("ACK", self.cseq, self.branch, resp.to_tag)
        self.phone.send(Request("ACK", self.ruri, h))

    def _learn_dialog(self, resp: Response) -> None:
        self.answered_at = time.monotonic()
        self.to_tag = resp.to_tag
        self.route_set = list(reversed(resp.headers.get_all("Record-Route")))
        contacts = resp.contacts
        self.remote_target = str(contacts[0].uri) if contacts else self.ruri

    def in_dialog(self, method: str, cseq: int) -> Request:
        h = self.headers(method, cseq, new_branch(), self.to_tag)
        for route in self.route_set:
            h.add("Route", route)
        return Request(method, self.remote_target, h)

    def ack(self) -> None:
        self.phone.send(self.in_dialog("ACK", self.cseq))

    def bye(self, timeout: float = 10) -> Response:
        self.cseq += 1
        self.phone.send(self.in_dialog("BYE", self.cseq))
        return self.phone.final(self.call_id, self.cseq, timeout)[0]

    def wait_bye(self, timeout: float) -> Request:
        """The platform's BYE for this call, answered 200."""
        msg = self.phone.wait(lambda m: isinstance(m, Request) and m.method == "BYE"
                              and m.call_id == self.call_id, timeout)
        assert isinstance(msg, Request)
        self.phone.send(make_response(msg, 200, "OK"))
        return msg


def register(phone: Phone, user: str, password: str | None, *, authorization: str | None = None,
             call_id: str | None = None, cseq: int = 1) -> tuple[list[Response], str | None]:
    """REGISTER (answering one 401 when ``password`` is given); the responses and the
    Authorization header that was sent last."""
    call_id = call_id or f"reg-{uuid.uuid4().hex[:16]}"
    tag, uri = new_tag(), f"sip:{DOMAIN}"
    responses: list[Response] = []
    for _ in range(2):
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {phone.local[0]}:{phone.local[1]};branch={new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:{user}@{DOMAIN}>;tag={tag}")
        h.add("To", f"<sip:{user}@{DOMAIN}>")
        h.add("Call-ID", call_id)
        h.add("CSeq", f"{cseq} REGISTER")
        h.add("Contact", f"<sip:{user}@{phone.local[0]}:{phone.local[1]}>")
        h.add("Expires", "60")
        if authorization:
            h.add("Authorization", authorization)
        phone.send(Request("REGISTER", uri, h))
        resp = phone.final(call_id, cseq)[0]
        responses.append(resp)
        if resp.status != 401 or password is None:
            break
        challenge = parse_digest_challenge(resp.headers.get("WWW-Authenticate") or "")
        authorization = build_authorization(challenge, username=user, password=password,
                                            method="REGISTER", uri=uri)
        cseq += 1
    return responses, authorization


class RtpSender:
    """Sends one PCMU packet every 100 ms to ``dest`` until stopped: keeps rtpengine's
    media timeout away from a call that must live on (session-timer expiry)."""

    def __init__(self, sock: socket.socket, dest: tuple[str, int]) -> None:
        self.sock, self.dest = sock, dest
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seq, ts, ssrc = 0, 0, 0x5151
        while not self.stop.wait(0.1):
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
            try:
                self.sock.sendto(header + b"\xff" * 160, self.dest)
            except OSError:
                return
            seq, ts = seq + 1, ts + 800

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


# ============================================================================ witnesses

def wait_for(what: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    """Poll ``what`` until it returns something truthy; that value (or the last falsy one)."""
    deadline = time.monotonic() + timeout
    value = what()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = what()
    return value


def cdr(state: lab.LabState, call_id: str, timeout: float = 8) -> dict[str, Any]:
    rows = wait_for(lambda: lab.query_cdrs(state, call_id), timeout)
    assert len(rows) == 1, f"CDR rows for {call_id}: {rows}"
    return rows[0]


def carrier_records(state: lab.LabState, call_id: str) -> list[dict[str, Any]]:
    out = []
    for name, path in state.carrier_cdr.items():
        for rec in read_cdrs(path):
            if rec.get("call_id") == call_id:
                rec.setdefault("carrier", name)
                out.append(rec)
    return out


def answered_by(state: lab.LabState, call_id: str, timeout: float = 8) -> list[str]:
    recs = wait_for(lambda: [r for r in carrier_records(state, call_id) if r.get("final_code") == 200], timeout)
    return sorted(r["carrier"] for r in recs or [])


def sipp_call(state: lab.LabState, workdir: Path, number: str, user: str, *, local_ip: str = HOST,
              hold_ms: int = 300, timeout_s: float = 30) -> Any:
    """One call through the lab with sipp/uac_call.xml; its CallResult."""
    agent = Agent(scenario="uac_call", remote=f"{HOST}:{state.ports['sip']}", local_ip=local_ip,
                  service=number, auth_user=user, auth_password=PASSWORDS[user], from_user=user,
                  keys={"domain": DOMAIN}, call_duration_ms=hold_ms, timeout_s=timeout_s)
    result = asyncio.run(run_sipp(agent, workdir))
    assert len(result.calls) == 1, result.describe()
    return result.calls[0]


# ============================================================================ fixtures

@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory):
    run_dir = tmp_path_factory.mktemp("features") / "run"
    st, already = lab.up(run_dir, timeout=30)
    assert not already
    yield st
    lab.down(run_dir)


@pytest.fixture(scope="module")
def background(state: lab.LabState):
    """The slow calls, started at once and checked at the end of the module."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="slow-call")
    jobs: dict[str, Future[dict[str, Any]]] = {
        "ring": pool.submit(ring_forever_call, state),
        "media": pool.submit(media_timeout_call, state),
    }
    yield jobs
    pool.shutdown(wait=False, cancel_futures=True)


@pytest.fixture(autouse=True)
def _slow_calls_running(background: dict[str, Future[dict[str, Any]]]) -> None:
    """Every test depends on the background calls, so they start with the first test."""


@pytest.fixture()
def set2_healthy(state: lab.LabState):
    """carrier-c and carrier-d running, unpaused and active in the dispatcher, before and
    after a failover test (each one stops or pauses them)."""
    _restore_set2(state)
    yield
    _restore_set2(state)


def _restore_set2(state: lab.LabState) -> None:
    for name in ("carrier-c", "carrier-d"):
        held = (lab.load_state(state.run_dir) or state).controlled.get(name)
        if held == "stopped":
            lab.start_carrier(state, name)
        elif held == "paused":
            lab.resume_carrier(state, name)
    flags = wait_for(lambda: _set2_active(state), 20, 0.3)
    assert flags, f"set 2 not active again: {lab.dispatcher_state(state)}"


def _set2_active(state: lab.LabState) -> bool:
    flags = lab.dispatcher_state(state)
    return all(flags.get(n, "").startswith("A") for n in ("carrier-c", "carrier-d"))


# ============================================================================ background calls

def _udp_phone(state: lab.LabState) -> tuple[Phone, socket.socket]:
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind((HOST, 0))
    return Phone(state.ports["sip"]), media


def ring_forever_call(state: lab.LabState) -> dict[str, Any]:
    """alice to a number that rings forever: the platform gives up at fr_inv_timer."""
    phone = Phone(state.ports["sip"])
    try:
        d = Dialog(phone, RING_FOREVER, "1001")
        t0 = time.monotonic()
        resp = d.invite(PASSWORDS["1001"], body=sdp(40000), timeout=FR_INV_TIMER_S + 30)
        return {"call_id": d.call_id, "status": resp.status, "after_s": time.monotonic() - t0,
                "provisional": d.provisional}
    finally:
        phone.close()


def media_timeout_call(state: lab.LabState) -> dict[str, Any]:
    """judy to the carrier that stops its RTP after 3 s; the customer sends none."""
    phone, media = _udp_phone(state)
    try:
        d = Dialog(phone, RTP_STOPS, "1010")
        resp = d.invite(PASSWORDS["1010"], body=sdp(media.getsockname()[1]))
        assert resp.status == 200, f"{resp.status} {resp.reason}"
        d.ack()
        d.wait_bye(3 + MEDIA_TIMEOUT_S + 30)
        assert d.answered_at is not None
        return {"call_id": d.call_id, "after_s": time.monotonic() - d.answered_at}
    finally:
        phone.close()
        media.close()


# ============================================================================ REGISTER and auth

def test_register_challenged_once_then_200_with_expires(state: lab.LabState) -> None:
    phone = Phone(state.ports["sip"])
    try:
        responses, _ = register(phone, "1009", PASSWORDS["1009"])
    finally:
        phone.close()
    assert [r.status for r in responses] == [401, 200]
    contact = responses[1].headers.get("Contact") or ""
    assert f"sip:1009@{phone.local[0]}:{phone.local[1]}" in contact and "expires=60" in contact, contact


@pytest.mark.parametrize("user,password", [("1009", "not-ivans-password"), ("9999", "whatever")])
def test_register_wrong_password_or_unknown_user_is_403(state: lab.LabState, user: str, password: str) -> None:
    phone = Phone(state.ports["sip"])
    try:
        responses, _ = register(phone, user, password)
    finally:
        phone.close()
    assert [r.status for r in responses] == [401, 403]


def _stale(resp: Response, header: str) -> bool:
    return parse_digest_challenge(resp.headers.get(header) or "Digest x=y").get("stale", "").lower() == "true"


def test_replayed_register_nonce_is_challenged_again(state: lab.LabState) -> None:
    phone = Phone(state.ports["sip"])
    try:
        responses, used = register(phone, "1009", PASSWORDS["1009"])
        assert [r.status for r in responses] == [401, 200]
        # the same Authorization again (new transaction, same call): a replay
        replay, _ = register(phone, "1009", None, authorization=used,
                             call_id=responses[1].call_id, cseq=5)
    finally:
        phone.close()
    assert replay[0].status == 401, replay[0].status
    assert _stale(replay[0], "WWW-Authenticate"), replay[0].headers.get("WWW-Authenticate")


def test_replayed_invite_nonce_is_challenged_again(state: lab.LabState) -> None:
    phone = Phone(state.ports["sip"])
    try:
        first = Dialog(phone, BUSY, "1001")
        assert first.invite(PASSWORDS["1001"]).status == 486
        again = Dialog(phone, BUSY, "1001")   # a new call carrying the used credentials
        resp = again.invite(PASSWORDS["1001"], replay_authorization=first.authorization)
    finally:
        phone.close()
    assert resp.status == 407, resp.status
    assert _stale(resp, "Proxy-Authenticate"), resp.headers.get("Proxy-Authenticate")
    assert carrier_records(state, again.call_id) == []


# ============================================================================ destinations and sources

@pytest.mark.parametrize("user,number,code", [
    ("1006", "15550009991", 403),   # frank: deny 1555000999
    ("1006", "15550001234", 200),
    ("1007", "15550001234", 200),   # grace: allow_only 1555000
    ("1007", "+15550101234", 403),  # normalised to 15550101234: outside the allow list
])
def test_per_account_deny_and_allow_only(state: lab.LabState, tmp_path: Path, user: str, number: str,
                                         code: int) -> None:
    call = sipp_call(state, tmp_path, number, user)
    assert call.final_code == code, (call.final_code, call.final_reason)
    row = cdr(state, call.call_id)
    assert row["sip_code"] == code and row["account"] == user
    if code == 403:
        assert row["sip_reason"] == "Destination Not Allowed"
        assert carrier_records(state, call.call_id) == []
    else:
        assert row["end_reason"] == "caller-bye"


def test_carrier_hangup_is_billed_as_callee_bye(state: lab.LabState, tmp_path: Path) -> None:
    call = sipp_call(state, tmp_path, CARRIER_HANGS_UP, "1004", hold_ms=8000)
    assert call.final_code == 200 and call.bye_by == "callee", call
    row = cdr(state, call.call_id)
    assert row["end_reason"] == "callee-bye" and 2 <= row["duration"] <= 3 + SLACK_S


def test_source_outside_the_allow_list_is_403(state: lab.LabState, tmp_path: Path) -> None:
    call = sipp_call(state, tmp_path, ANSWER, "1001", local_ip="127.0.0.2")
    assert (call.final_code, call.final_reason) == (403, "Source Not Allowed")
    assert lab.query_cdrs(state, call.call_id) == []   # rejected before auth: not billed
    assert carrier_records(state, call.call_id) == []


# ============================================================================ TLS

def _tls_context(state: lab.LabState) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=state.ca_cert)


def test_expired_certificate_fails_the_handshake(state: lab.LabState) -> None:
    with socket.create_connection((HOST, state.ports["sip_tls_expired"]), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError) as err:
            _tls_context(state).wrap_socket(raw, server_hostname=state.tls_server_name)
    assert err.value.verify_code == 10, err.value          # X509_V_ERR_CERT_HAS_EXPIRED
    assert "certificate has expired" in err.value.verify_message


def test_valid_tls_options_with_sni(state: lab.LabState) -> None:
    assert sip_options(HOST, state.ports["sip_tls"], "tls", 5, cafile=state.ca_cert,
                       server_name=state.tls_server_name)[0] == 200


def test_tls_call_is_double_record_routed(state: lab.LabState) -> None:
    phone = Phone(state.ports["sip_tls"], "tls", ssl_context=_tls_context(state),
                  server_name=state.tls_server_name)
    try:
        d = Dialog(phone, ANSWER, "1008")
        resp = d.invite(PASSWORDS["1008"], body=sdp(40002))
        assert resp.status == 200, resp.status
        routes = resp.headers.get_all("Record-Route")
        d.ack()
        time.sleep(0.3)
        assert d.bye().status == 200
    finally:
        phone.close()
    assert len(routes) == 2, routes
    tls = [r for r in routes if "transport=tls" in r]
    assert len(tls) == 1 and f":{state.ports['sip_tls']};" in tls[0], routes
    assert [r for r in routes if "transport=tls" not in r and f":{state.ports['sip']};" in r], routes
    recs = wait_for(lambda: carrier_records(state, d.call_id), 5)
    assert recs and recs[0]["transport"] == "udp"
    assert cdr(state, d.call_id)["end_reason"] == "caller-bye"


# ============================================================================ large requests

def test_large_invite_reaches_the_carrier_over_tcp(state: lab.LabState) -> None:
    phone = Phone(state.ports["sip"])
    try:
        d = Dialog(phone, ANSWER, "1001")
        resp = d.invite(PASSWORDS["1001"], body=sdp(40004), extra=[("X-Padding", "p" * 1500)])
        assert resp.status == 200, resp.status
        d.ack()
        time.sleep(0.3)
        assert d.bye().status == 200
    finally:
        phone.close()
    recs = wait_for(lambda: carrier_records(state, d.call_id), 5)
    assert len(recs) == 1 and recs[0]["transport"] == "tcp", recs
    headers = {k.lower(): v for k, v in recs[0]["x_headers"].items()}
    assert headers["x-voipqa-call-id"] == d.call_id and headers["x-voipqa-account"] == "1001"


def test_small_invite_stays_on_udp_with_both_x_headers(state: lab.LabState, tmp_path: Path) -> None:
    call = sipp_call(state, tmp_path, ANSWER, "1004")
    assert call.final_code == 200
    recs = wait_for(lambda: carrier_records(state, call.call_id), 5)
    assert recs[0]["transport"] == "udp"
    headers = {k.lower(): v for k, v in recs[0]["x_headers"].items()}
    assert headers == {"x-voipqa-account": "1004", "x-voipqa-call-id": call.call_id}


# ============================================================================ session timers

def test_session_expires_below_min_se_is_422_and_never_relayed(state: lab.LabState) -> None:
    phone = Phone(state.ports["sip"])
    try:
        d = Dialog(phone, ANSWER, "1010")
        resp = d.invite(PASSWORDS["1010"], body=sdp(40006),
                        extra=[("Session-Expires", "60;refresher=uac"), ("Supported", "timer")])
    finally:
        phone.close()
    assert (resp.status, resp.reason) == (422, "Session Interval Too Small")
    assert resp.headers.get("Min-SE") == str(SESSION_EXPIRES_S)
    assert cdr(state, d.call_id)["sip_code"] == 422
    time.sleep(0.5)
    assert carrier_records(state, d.call_id) == []


# ============================================================================ failover (set 2)

def _call_set2(state: lab.LabState, number: str, timeout: float = 30) -> tuple[Response, float, str]:
    phone = Phone(state.ports["sip"])
    try:
        d = Dialog(phone, number, "1004")
        t0 = time.monotonic()
        resp = d.invite(PASSWORDS["1004"], body=sdp(40008), timeout=timeout)
        took = time.monotonic() - t0
        if resp.status == 200:
            d.ack()
            time.sleep(0.2)
            d.bye()
    finally:
        phone.close()
    return resp, took, d.call_id


def test_normal_set2_call_goes_to_carrier_c(state: lab.LabState, set2_healthy: None) -> None:
    resp, _, call_id = _call_set2(state, SET2_ANSWER)
    assert resp.status == 200
    assert answered_by(state, call_id) == ["carrier-c"]
    assert cdr(state, call_id)["carrier"] == "carrier-c"


def test_503_from_carrier_c_fails_over_to_d(state: lab.LabState, set2_healthy: None) -> None:
    resp, took, call_id = _call_set2(state, SET2_503_ON_C)
    print(f"\n503 failover c -> d answered after {took:.2f} s")
    assert resp.status == 200 and took < SLACK_S
    assert answered_by(state, call_id) == ["carrier-d"]
    assert sorted(r["carrier"] for r in carrier_records(state, call_id)) == ["carrier-c", "carrier-d"]
    assert cdr(state, call_id)["carrier"] == "carrier-d"
    assert lab.dispatcher_state(state)["carrier-c"].startswith("A")   # a 503 is not "dead"


def test_blackholed_carrier_c_fails_over_after_fr_timer(state: lab.LabState, set2_healthy: None) -> None:
    resp, took, call_id = _call_set2(state, SET2_BLACKHOLE_ON_C)
    print(f"\nblackhole failover c -> d answered after {took:.2f} s (fr_timer {FR_TIMER_S:g} s)")
    assert resp.status == 200
    assert FR_TIMER_S - 0.5 <= took <= FR_TIMER_S + SLACK_S
    assert answered_by(state, call_id) == ["carrier-d"]
    # marked inactive for this very call (the flags themselves turn back to active at the
    # next answered ping, up to probe_interval_s later: too short a window to read them)
    marked = f"ci:{call_id}}} <script>: carrier carrier-c (sip:{HOST}:{state.ports['carrier-c']}) timed out: marked inactive"
    assert wait_for(lambda: marked in Path(state.run_dir, "kamailio.log").read_text(errors="replace"), 3), \
        "Kamailio did not mark carrier-c inactive after its timeout"


def test_stopped_carrier_c_is_marked_inactive_and_d_takes_the_calls(state: lab.LabState,
                                                                      set2_healthy: None) -> None:
    lab.stop_carrier(state, "carrier-c")
    assert lab.load_state(state.run_dir).controlled == {"carrier-c": "stopped"}
    t0 = time.monotonic()
    resp, took, call_id = _call_set2(state, SET2_ANSWER)
    assert resp.status == 200 and took <= FR_TIMER_S + SLACK_S
    assert answered_by(state, call_id) == ["carrier-d"]
    flags = wait_for(lambda: lab.dispatcher_state(state)["carrier-c"].startswith("I"), 12)
    print(f"\nstopped carrier-c: call answered by d after {took:.2f} s; "
          f"carrier-c inactive {time.monotonic() - t0:.2f} s after the stop")
    assert flags, lab.dispatcher_state(state)


def test_both_down_is_503_no_carrier_available(state: lab.LabState, set2_healthy: None) -> None:
    lab.pause_carrier(state, "carrier-c")
    lab.pause_carrier(state, "carrier-d")
    resp, took, call_id = _call_set2(state, SET2_ANSWER)
    print(f"\nboth blackholed (still marked active): 503 after {took:.2f} s")
    assert (resp.status, resp.reason) == (503, "No Carrier Available")
    assert took <= 2 * FR_TIMER_S + SLACK_S
    row = cdr(state, call_id)
    assert (row["sip_code"], row["sip_reason"], row["duration"]) == (503, "No Carrier Available", 0.0)
    # once the probes marked both inactive, the answer is immediate
    assert wait_for(lambda: all(f.startswith("I") for n, f in lab.dispatcher_state(state).items()
                                if n in ("carrier-c", "carrier-d")), 12)
    resp, took, _ = _call_set2(state, SET2_ANSWER)
    print(f"both marked inactive: 503 after {took:.2f} s")
    assert resp.status == 503 and took < 2.5


def test_recovered_carrier_is_used_again(state: lab.LabState, set2_healthy: None) -> None:
    lab.stop_carrier(state, "carrier-c")
    assert wait_for(lambda: lab.dispatcher_state(state)["carrier-c"].startswith("I"), 12)
    old_pid = state.processes["carrier-c"]
    t0 = time.monotonic()
    pid = lab.start_carrier(state, "carrier-c")
    assert pid != old_pid and lab.load_state(state.run_dir).processes["carrier-c"] == pid
    assert lab.load_state(state.run_dir).controlled == {}
    assert wait_for(lambda: lab.dispatcher_state(state)["carrier-c"].startswith("A"), 12)
    print(f"\nrestarted carrier-c active again {time.monotonic() - t0:.2f} s after its start")
    resp, _, call_id = _call_set2(state, SET2_ANSWER)
    assert resp.status == 200
    assert answered_by(state, call_id) == ["carrier-c"]   # same CDR file, same port


def test_set1_is_untouched_by_set2_failover(state: lab.LabState) -> None:
    flags = lab.dispatcher_state(state)
    assert flags["carrier-a"].startswith("A") and flags["carrier-b"].startswith("A"), flags
    rows = {r.name: r for r in lab.status(state.run_dir)}
    assert rows["rtpengine"].alive and rows["rtpengine"].health == "ng ping ok"


def test_bad_carrier_operations(state: lab.LabState) -> None:
    from qa.errors import BadInput
    with pytest.raises(BadInput, match="no carrier 'carrier-z'"):
        lab.stop_carrier(state, "carrier-z")
    with pytest.raises(BadInput, match="no carrier 'kamailio'"):
        lab.pause_carrier(state, "kamailio")


# ============================================================================ the slow calls

def test_ring_forever_gets_408_at_fr_inv_timer(state: lab.LabState,
                                               background: dict[str, Future[dict[str, Any]]]) -> None:
    res = background["ring"].result(timeout=FR_INV_TIMER_S + 60)
    print(f"\nring forever: final {res['status']} after {res['after_s']:.2f} s (fr_inv_timer {FR_INV_TIMER_S:g} s)")
    assert res["status"] in (408, 480) and 180 in res["provisional"]
    assert FR_INV_TIMER_S - 1 <= res["after_s"] <= FR_INV_TIMER_S + SLACK_S
    row = cdr(state, res["call_id"])
    assert (row["sip_code"], row["duration"], row["answer_time"]) == (res["status"], 0.0, None)


def test_media_timeout_ends_the_call_with_bye_and_cdr(state: lab.LabState,
                                                      background: dict[str, Future[dict[str, Any]]]) -> None:
    res = background["media"].result(timeout=3 + MEDIA_TIMEOUT_S + 60)
    print(f"\nmedia timeout: BYE to the customer {res['after_s']:.2f} s after the answer "
          f"(carrier RTP 3 s + timeout {MEDIA_TIMEOUT_S} s)")
    assert MEDIA_TIMEOUT_S - 1 <= res["after_s"] <= 3 + MEDIA_TIMEOUT_S + SLACK_S
    row = cdr(state, res["call_id"])
    assert row["sip_code"] == 200 and row["end_reason"] == "media-timeout"
    assert MEDIA_TIMEOUT_S - 1 <= row["duration"] <= 3 + MEDIA_TIMEOUT_S + SLACK_S
    recs = wait_for(lambda: [r for r in carrier_records(state, res["call_id"]) if r.get("ended")], 10)
    assert recs and recs[0]["rtp_packets_out"] > 0, recs   # the carrier did send RTP first


# Session expiry (RFC 4028: the platform ends an unrefreshed session, both legs get a BYE,
# the CDR says session-expired) is proven once, by the catalogue's "Session Never
# Refreshed Is Ended At Expiry" in tests/integration/test_catalogue.py: the 90 s minimum
# session made a second copy here cost a minute of every CI run.


def test_platform_ended_calls_end_on_both_legs_when_they_end_together(state: lab.LabState) -> None:
    """Eight calls timed out by rtpengine at the same moment. Kamailio 5.6's own BYE to both
    legs lost the carrier's about half the time (GH #4169): a quick customer's 200 deleted
    the dialog before the carrier's BYE went out. Every carrier must get its BYE, and every
    CDR says media-timeout with the call's real duration."""
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: media_timeout_call(state), range(8)))
    for res in results:
        recs = wait_for(lambda: [r for r in carrier_records(state, res["call_id"]) if r.get("ended")], 5)
        assert [r["ended_by"] for r in recs or []] == ["caller"], f"{res['call_id']}: the carrier got no BYE ({recs})"
        row = cdr(state, res["call_id"])
        assert row["end_reason"] == "media-timeout" and float(row["duration"]) >= MEDIA_TIMEOUT_S, row

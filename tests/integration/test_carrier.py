"""The native mock carrier as a real process, driven by real SIPp and raw sockets (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.carrier.cdr import read_cdrs
from qa.ports import allocate_ports
from qa.rtp import RtpPacket, ulaw_encode
from qa.rtp.dtmf_tones import dtmf_tone_pcm
from qa.sdp import SessionDescription
from qa.sip import parse_message
from qa.sipp import Agent, run

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "carriers" / "numberplan.yaml"
PY = sys.executable
SIPP = "/usr/bin/sipp"

if not os.path.exists(SIPP):   # pragma: no cover
    pytest.skip("sipp not installed", allow_module_level=True)


class CarrierProc:
    def __init__(self, tmp: Path, *extra: str, name: str = "carrier-a") -> None:
        self.port = allocate_ports(1)[0]
        self.cdr = tmp / f"{name}.jsonl"
        self.stderr = tmp / f"{name}.err"
        self.proc = subprocess.Popen(
            [PY, "-m", "qa.carrier", "serve", "--plan", str(PLAN), "--listen", f"127.0.0.1:{self.port}",
             "--cdr", str(self.cdr), "--name", name, *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(self.stderr, "w"), text=True)
        line = self.proc.stdout.readline()          # bounded: the process prints or dies
        assert "listening" in line, f"carrier did not start: {line!r} {self.stderr.read_text()}"
        self.seen = 0

    def new_cdrs(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Wait for ``count`` CDR lines written since the last call; return them."""
        deadline = time.monotonic() + timeout
        while True:
            rows = read_cdrs(self.cdr)[self.seen:]
            if len(rows) >= count or time.monotonic() > deadline:
                self.seen += len(rows)
                return rows
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        return self.proc.returncode


@pytest.fixture(scope="module")
def carrier(tmp_path_factory):
    c = CarrierProc(tmp_path_factory.mktemp("carrier"))
    yield c
    assert c.stop() == 0


def sipp(carrier: CarrierProc, tmp: Path, *args: str, scenario: str | None = None,
         number: str = "1555000100", timeout: float = 25) -> subprocess.CompletedProcess:
    local, ctrl, media = allocate_ports(3)
    cmd = [SIPP, f"127.0.0.1:{carrier.port}", "-s", number, "-p", str(local), "-cp", str(ctrl),
           "-mp", str(media), "-timeout", "20s", "-timeout_error", "-nostdin"]
    cmd += ["-sf", scenario] if scenario else ["-sn", "uac"]
    cmd += list(args)
    return subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------------------ SIPp, built-in uac

@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_uac_calls_answered(carrier, tmp_path, transport):
    res = sipp(carrier, tmp_path, "-m", "3", "-r", "3", "-d", "1000", "-t", transport)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rows = carrier.new_cdrs(3)
    assert len(rows) == 3
    want = "udp" if transport == "u1" else "tcp"
    for row in rows:
        assert row["final_code"] == 200 and row["ended_by"] == "caller"
        assert row["transport"] == want and row["to"] == "1555000100" and row["route"] == "answer-echo"
        assert 0.9 <= row["duration_s"] <= 2.0
        assert row["codec"] == "PCMU" and row["from_tag"] and row["carrier"] == "carrier-a"
    assert len({r["call_id"] for r in rows}) == 3


def test_sipp_reject_gives_failures_and_cdr_code(carrier, tmp_path):
    res = sipp(carrier, tmp_path, "-m", "1", number="1555003486")
    assert res.returncode != 0
    # the carrier writes a rejected call's CDR when its 486 transaction ends: at the ACK, or
    # at Timer H (64*T1 = 32 s) when SIPp's built-in uac aborted the call without one
    rows = carrier.new_cdrs(1, timeout=40)
    assert [(r["final_code"], r["ended_by"], r["answered"]) for r in rows] == [(486, "carrier", None)]


def test_sipp_pcmu_offer_to_pcma_only_number_gets_488(carrier, tmp_path):
    res = sipp(carrier, tmp_path, "-m", "1", number="15550050")
    assert res.returncode != 0
    assert [r["final_code"] for r in carrier.new_cdrs(1)] == [488]


# ------------------------------------------------------------------------ SIPp, the customer's scenarios

def _customer(carrier, tmp: Path, scenario: str, number: str, **options):
    """One call with a scenario of sipp/ (qa.sipp.Agent), against the carrier alone."""
    agent = Agent(scenario, remote=f"127.0.0.1:{carrier.port}", service=number, timeout_s=20, **options)
    result = asyncio.run(run(agent, tmp / "sipp"))
    assert result.calls and result.ok, f"{result.describe()} {result.errors}"
    return result.calls[0]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_carrier_hangs_up_with_bye(carrier, tmp_path, transport):
    call = _customer(carrier, tmp_path, "uac_call", "15550040", transport=transport, call_duration_ms=10_000)
    assert call.final_code == 200 and call.bye_by == "callee"
    assert 2.8 <= call.duration_s <= 5, call.duration_s                 # the route hangs up after 3 s
    row, = carrier.new_cdrs(1)
    assert row["ended_by"] == "carrier" and row["final_code"] == 200 and row["transport"] == transport
    assert 2.9 <= row["duration_s"] <= 3.5


def test_caller_cancel_gets_200_and_487(carrier, tmp_path):
    call = _customer(carrier, tmp_path, "uac_cancel", "15550020", keys={"cancel_ms": "200"})
    assert call.final_code == 487
    row, = carrier.new_cdrs(1)
    assert (row["final_code"], row["ended_by"], row["answered"]) == (487, "cancel", None)


# ------------------------------------------------------------------------ raw sockets

def _invite(port: int, local: int, number: str, call_id: str, rtp_port: int, branch: str) -> bytes:
    sdp = (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
           "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n")
    return (f"INVITE sip:{number}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
            f"From: <sip:raw@127.0.0.1:{local}>;tag=rawtag\r\nTo: <sip:{number}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:{local}>\r\n"
            "Max-Forwards: 70\r\nX-Test-Id: raw-1\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}").encode()


def _in_dialog(method: str, port: int, local: int, number: str, call_id: str, to_tag: str,
               cseq: int, branch: str) -> bytes:
    return (f"{method} sip:{number}@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch}\r\n"
            f"From: <sip:raw@127.0.0.1:{local}>;tag=rawtag\r\nTo: <sip:{number}@127.0.0.1>;tag={to_tag}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode()


def _recv_until(sock: socket.socket, pred, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        msg = parse_message(data)
        got.append(msg)
        if pred(msg):
            return msg, got
    raise AssertionError(f"no matching message; got {[getattr(m, 'status', getattr(m, 'method', '?')) for m in got]}")


def _rtp(pt: int, seq: int, ts: int, payload: bytes) -> bytes:
    return bytes([0x80, pt]) + seq.to_bytes(2, "big") + ts.to_bytes(4, "big") + b"\x12\x34\x56\x78" + payload


def test_raw_udp_retransmitted_invite_is_one_call_with_rtp_echo_and_dtmf(carrier):
    sip_port, rtp_port = allocate_ports(2)
    call_id = f"raw-{time.time()}@127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
        sock.bind(("127.0.0.1", sip_port))
        rtp.bind(("127.0.0.1", rtp_port))
        inv = _invite(carrier.port, sip_port, "1555000100", call_id, rtp_port, "z9hG4bK-raw-1")
        dest = ("127.0.0.1", carrier.port)
        sock.sendto(inv, dest)
        sock.sendto(inv, dest)                      # the same INVITE again: a retransmission
        ok, _ = _recv_until(sock, lambda m: getattr(m, "status", 0) == 200)
        to_tag = ok.to_tag
        media = SessionDescription.parse(ok.body).media[0]
        sock.sendto(_in_dialog("ACK", carrier.port, sip_port, "1555000100", call_id, to_tag, 1,
                               "z9hG4bK-raw-ack"), dest)
        # RTP: 5 voice packets echoed as they are, then digit 7 (RFC 4733: 3 updates + 3 ends)
        packets = [_rtp(0, i, 160 * i, bytes([i]) * 160) for i in range(5)]
        packets += [_rtp(101, 10 + i, 4000, bytes([7, 0x0A if i < 3 else 0x8A]) + (160 * (i + 1)).to_bytes(2, "big"))
                    for i in range(6)]
        for p in packets:
            rtp.sendto(p, ("127.0.0.1", media.port))
        echoed = []
        rtp.settimeout(2)
        while len(echoed) < len(packets):
            echoed.append(rtp.recvfrom(2048)[0])
        assert echoed == packets                     # echoed unchanged (same SSRC), in order
        sock.sendto(_in_dialog("BYE", carrier.port, sip_port, "1555000100", call_id, to_tag, 2,
                               "z9hG4bK-raw-bye"), dest)
        bye_ok, _ = _recv_until(sock, lambda m: getattr(m, "status", 0) == 200 and m.cseq[1] == "BYE")
        assert bye_ok.call_id == call_id
    rows = [r for r in carrier.new_cdrs(1) if r["call_id"] == call_id]
    assert len(rows) == 1
    row = rows[0]
    assert row["rtp_packets_in"] == 11 and row["rtp_packets_out"] == 11
    assert row["dtmf_heard"] == "7" and row["x_headers"] == {"X-Test-Id": "raw-1"}
    assert row["ended_by"] == "caller" and row["from"] == "raw"


def test_options_and_unknown_method(carrier):
    sip_port, = allocate_ports(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", sip_port))
        for method, want in (("OPTIONS", 200), ("SUBSCRIBE", 405)):
            msg = _in_dialog(method, carrier.port, sip_port, "carrier", f"o-{method}", "x", 1, f"z9hG4bK-{method}")
            sock.sendto(msg.replace(b";tag=x", b""), ("127.0.0.1", carrier.port))
            resp, _ = _recv_until(sock, lambda m: hasattr(m, "status"))
            assert resp.status == want
            assert "INVITE" in resp.headers.get_all("Allow")


def test_no_ack_2xx_retransmitted_then_bye_and_sigterm_flushes(tmp_path):
    c = CarrierProc(tmp_path, "--t1", "0.05", "--transport", "udp", name="carrier-fast")
    try:
        sip_port, rtp_port = allocate_ports(2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", sip_port))
            sock.sendto(_invite(c.port, sip_port, "1555000100", "noack@x", rtp_port, "z9hG4bK-na"),
                        ("127.0.0.1", c.port))
            t0 = time.monotonic()
            bye, got = _recv_until(sock, lambda m: getattr(m, "method", "") == "BYE", timeout=6)
            elapsed = time.monotonic() - t0
            oks = [m for m in got if getattr(m, "status", 0) == 200]
            # T1=0.05: 200 at 0, .05, .15, .35, .75, 1.55, 2.35, 3.15 -> 8 copies before BYE at 3.2 s
            assert 6 <= len(oks) <= 9 and 2.9 <= elapsed <= 4.5
            assert bye.cseq == (2, "BYE") and bye.uri == f"sip:raw@127.0.0.1:{sip_port}"
        row, = c.new_cdrs(1)
        assert row["ended_by"] == "timeout"
        # a call ringing forever when SIGTERM comes: the carrier ends it and flushes its CDR
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", sip_port))
            sock.sendto(_invite(c.port, sip_port, "15550020", "ring@x", rtp_port, "z9hG4bK-ring"),
                        ("127.0.0.1", c.port))
            _recv_until(sock, lambda m: getattr(m, "status", 0) == 180)
            assert c.stop() == 0
        row, = c.new_cdrs(1)
        assert row["call_id"] == "ring@x" and row["final_code"] == 480 and row["ended_by"] == "carrier"
    finally:
        c.stop()


# ------------------------------------------------------------------------ CLI errors

def test_bad_plan_exits_2_with_one_line(tmp_path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\nroutes:\n  - prefix: '1'\n    reject: 999\n")
    port, = allocate_ports(1)
    res = subprocess.run([PY, "-m", "qa.carrier", "serve", "--plan", str(plan), "--listen",
                          f"127.0.0.1:{port}", "--cdr", str(tmp_path / "c.jsonl")],
                         cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [
        f"carrier: {plan}: routes[0].reject: 999 is not a SIP final response code"]


def test_port_taken_exits_2_with_one_line(carrier, tmp_path):
    res = subprocess.run([PY, "-m", "qa.carrier", "serve", "--plan", str(PLAN), "--listen",
                          f"127.0.0.1:{carrier.port}", "--cdr", str(tmp_path / "c.jsonl")],
                         cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert res.returncode == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(rf"cannot listen on 127\.0\.0\.1:{carrier.port}", lines[0])


# ------------------------------------------------------------------------ issue 3: media, DTMF, per-carrier



class RawCall:
    """One call over raw UDP sockets (SIP + RTP), for what SIPp cannot easily show."""

    def __init__(self, carrier: CarrierProc, number: str, tag: str) -> None:
        self.carrier, self.number = carrier, number
        self.sip_port, self.rtp_port = allocate_ports(2)
        self.call_id = f"{tag}-{time.time()}@127.0.0.1"
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", self.sip_port))
        self.rtp.bind(("127.0.0.1", self.rtp_port))
        self.dest = ("127.0.0.1", carrier.port)
        self.cseq = 1
        self.to_tag = ""
        self.media_port = 0

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def invite(self) -> None:
        self.sip.sendto(_invite(self.carrier.port, self.sip_port, self.number, self.call_id, self.rtp_port,
                                f"z9hG4bK-{self.call_id}"), self.dest)

    def answer(self) -> None:
        self.invite()
        ok, _ = _recv_until(self.sip, lambda m: getattr(m, "status", 0) >= 200)
        assert ok.status == 200, ok.status
        self.to_tag = ok.to_tag
        self.media_port = SessionDescription.parse(ok.body).media[0].port
        self.request("ACK", wait=False)

    def request(self, method: str, body: str = "", ctype: str = "", wait: bool = True):
        self.cseq += 1
        cseq = 1 if method == "ACK" else self.cseq
        msg = _in_dialog(method, self.carrier.port, self.sip_port, self.number, self.call_id, self.to_tag,
                         cseq, f"z9hG4bK-{method}-{self.cseq}")
        if body:
            msg = msg.replace(b"Content-Length: 0\r\n\r\n",
                              f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        self.sip.sendto(msg, self.dest)
        if wait:
            resp, _ = _recv_until(self.sip, lambda m: getattr(m, "status", 0) >= 200 and m.cseq[1] == method)
            return resp
        return None

    def send_rtp(self, packets: list[bytes], pace: float = 0.0) -> None:
        for p in packets:
            self.rtp.sendto(p, ("127.0.0.1", self.media_port))
            if pace:
                time.sleep(pace)

    def receive_rtp(self, seconds: float) -> list[tuple[float, RtpPacket]]:
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.rtp.settimeout(left)
            try:
                data, _ = self.rtp.recvfrom(2048)
            except socket.timeout:
                break
            got.append((time.monotonic(), RtpPacket.parse(data)))
        return got


def _ulaw_packets(pcm: bytes, ssrc: int = 0x1234, seq0: int = 0) -> list[bytes]:
    payload = ulaw_encode(pcm)
    return [bytes(RtpPacket(payload_type=0, sequence_number=seq0 + i, timestamp=160 * (seq0 + i), ssrc=ssrc,
                            payload=payload[160 * i:160 * (i + 1)])) for i in range(len(payload) // 160)]


def test_silence_rtp_at_50pps_with_negotiated_pt_and_stop_after_3s(carrier):
    call = RawCall(carrier, "15550070", "stop")
    try:
        call.answer()
        t0 = time.monotonic()
        call.send_rtp(_ulaw_packets(bytes(3200)))            # 10 packets of ours, PT 0
        got = call.receive_rtp(4.5)
        assert got, "the carrier sent no RTP"
        first, last = got[0][0], got[-1][0]
        pkts = [p for _, p in got]
        assert {p.payload_type for p in pkts} == {0} and len({p.ssrc for p in pkts}) == 1
        assert all(p.payload == b"\xff" * 160 for p in pkts)
        seqs = [p.sequence_number for p in pkts]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
        assert all((b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 for a, b in zip(pkts, pkts[1:]))
        rate = (len(pkts) - 1) / (last - first)
        assert 40 <= rate <= 60, rate                        # 50 packets/s, generous for a loaded CI
        assert 2.7 <= last - t0 <= 3.6 and 130 <= len(pkts) <= 165
        assert call.receive_rtp(1.0) == []                   # stopped, and the call is still up
        assert call.request("BYE").status == 200
    finally:
        call.close()
    row = [r for r in carrier.new_cdrs(1) if r["call_id"] == call.call_id][0]
    assert row["rtp_packets_out"] == len(pkts) and row["rtp_payload_types_out"] == [0]
    assert row["rtp_packets_in"] == 10 and row["rtp_payload_types_in"] == [0]
    assert row["route"] == "rtp-stops-after-3s" and row["ended_by"] == "caller"


def test_dtmf_inband_info_and_rfc4733_heard_in_order(carrier):
    call = RawCall(carrier, "15550080", "dtmf")
    try:
        call.answer()
        call.send_rtp(_ulaw_packets(dtmf_tone_pcm("159#", on_ms=80, off_ms=80, level_dbm0=-12)), pace=0.002)
        time.sleep(0.5)
        assert call.request("INFO", "Signal=*\r\nDuration=160\r\n", "application/dtmf-relay").status == 200
        assert call.request("INFO", "0", "application/dtmf").status == 200
        events = [_rtp(101, 500 + i, 90000, bytes([7, 0x0A if i < 3 else 0x8A]) + (160 * (i + 1)).to_bytes(2, "big"))
                  for i in range(6)]
        call.send_rtp(events)
        time.sleep(0.5)
        heard_rtp = call.receive_rtp(0.3)
        assert call.request("BYE").status == 200
    finally:
        call.close()
    row = [r for r in carrier.new_cdrs(1) if r["call_id"] == call.call_id][0]
    assert row["dtmf_heard"] == "159#*07"
    assert [e["via"] for e in row["dtmf_events"]] == ["inband"] * 4 + ["info"] * 2 + ["rfc4733"]
    assert row["rtp_payload_types_in"] == [0, 101] and row["rtp_payload_types_out"] == [0]
    assert heard_rtp and all(p.payload_type == 0 for _, p in heard_rtp)   # silence, not our tones back


@pytest.fixture(scope="module")
def carrier_c(tmp_path_factory):
    c = CarrierProc(tmp_path_factory.mktemp("carrier-c"), "--t1", "0.05", name="carrier-c")
    yield c
    assert c.stop() == 0


def test_blackhole_no_response_then_timeout_cdr(carrier_c):
    call = RawCall(carrier_c, "16660020", "bh")
    try:
        call.invite()
        time.sleep(0.3)
        call.invite()                                        # a retransmission: absorbed too
        call.sip.settimeout(2.0)
        with pytest.raises(socket.timeout):
            call.sip.recvfrom(65535)
    finally:
        call.close()
    row, = carrier_c.new_cdrs(1, timeout=5)                 # 64*T1 = 3.2 s with --t1 0.05
    assert (row["call_id"], row["final_code"], row["ended_by"]) == (call.call_id, None, "timeout")
    assert row["route"] == "failover-blackhole-on-c" and row["carrier"] == "carrier-c"


@pytest.mark.parametrize("number", ["16660010", "16660020"])
def test_per_carrier_route_other_carriers_answer(carrier, number):
    call = RawCall(carrier, number, "fo")
    try:
        call.answer()
        assert call.request("BYE").status == 200
    finally:
        call.close()
    row = [r for r in carrier.new_cdrs(1) if r["call_id"] == call.call_id][0]
    assert row["route"] == "failover-fallback" and row["final_code"] == 200 and row["carrier"] == "carrier-a"


def test_per_carrier_route_carrier_c_rejects_503(carrier_c):
    call = RawCall(carrier_c, "16660010", "fo503")
    try:
        call.invite()
        final, got = _recv_until(call.sip, lambda m: getattr(m, "status", 0) >= 200)
        assert [m.status for m in got] == [100, 503]
    finally:
        call.close()
    row, = carrier_c.new_cdrs(1)
    assert (row["final_code"], row["route"]) == (503, "failover-503-on-c")

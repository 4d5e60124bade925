"""Make the small captures that ``robot_suites/pcap.robot`` judges.

The suite used to read public captures from a corpus beside the checkout, so a clone
without it failed. These captures are written by voipqa's own builders (``qa.sip``
messages, ``qa.rtp`` packets, ``qa.capture.writer``) with fixed addresses, ids and
timestamps, so running this script again gives the same bytes; the shipped files are
checked against it (``tests/unit/test_pcap_suite.py``).

    .venv/bin/python robot_suites/data/make_pcaps.py [OUTDIR]    # default: beside this file
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from qa.capture.writer import udp_packet, write_pcap
from qa.rtp import DtmfEvent, RtpPacket
from qa.sip import Request, Response
from qa.sip.responses import make_response

HERE = Path(__file__).resolve().parent
CALLER, PLATFORM = ("192.0.2.10", 5062), ("192.0.2.1", 5060)
CALLER_RTP, PLATFORM_RTP = ("192.0.2.10", 40000), ("192.0.2.1", 50000)
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: fixed, so the bytes are reproducible

#: file name -> the Call-ID of its call (the suite names these).
CALL_IDS = {
    "clean-call-reinvite.pcap": "reinvite-1@voipqa.test",
    "rfc2833-digits.pcap": "dtmf-1@voipqa.test",
    "declined-603.pcap": "declined-1@voipqa.test",
    "malformed-sip.pcap": "malformed-1@voipqa.test",
}
DIGITS = "6789123"


class Capture:
    """Packets on a clock: each ``add`` (``up``, ``down``, ``media``) advances it by ``dt`` seconds."""

    def __init__(self) -> None:
        self.now = START
        self.packets: list[tuple[float, bytes]] = []

    def add(self, src: tuple[str, int], dst: tuple[str, int], data: bytes, dt: float) -> None:
        """One UDP datagram ``dt`` seconds after the previous packet."""
        self.now += dt
        self.packets.append((self.now, udp_packet(*src, *dst, data)))

    def up(self, msg: Request | Response | bytes, dt: float = 0.01) -> None:
        """Caller -> platform signalling."""
        self.add(CALLER, PLATFORM, bytes(msg), dt)

    def down(self, msg: Request | Response | bytes, dt: float = 0.01) -> None:
        """Platform -> caller signalling."""
        self.add(PLATFORM, CALLER, bytes(msg), dt)

    def media(self, seq: int, dt: float = 0.02) -> None:
        """One 20 ms PCMU packet (silence) each way: caller -> platform, then 1 ms later back."""
        for n, (src, dst, ssrc) in enumerate(((CALLER_RTP, PLATFORM_RTP, 0x1111),
                                              (PLATFORM_RTP, CALLER_RTP, 0x2222))):
            pkt = RtpPacket(payload_type=0, sequence_number=seq, timestamp=seq * 160, ssrc=ssrc,
                            payload=bytes([0xFF]) * 160)
            self.add(src, dst, bytes(pkt), dt if n == 0 else 0.001)


def sdp(ip: str, port: int, version: int = 1) -> bytes:
    """An audio offer/answer: PCMU and telephone-event (RFC 4733)."""
    return (f"v=0\r\no=- 1 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n").encode()


def request(method: str, call_id: str, cseq: int, branch: str, *, to_tag: str | None = None,
            body: bytes = b"") -> Request:
    """A request from 1001 to 1555 in ``call_id`` (in-dialog when ``to_tag`` is given)."""
    to = "<sip:1555@192.0.2.1>" + (f";tag={to_tag}" if to_tag else "")
    headers = [("Via", f"SIP/2.0/UDP {CALLER[0]}:{CALLER[1]};branch=z9hG4bK-{branch};rport"),
               ("Max-Forwards", "70"), ("From", "<sip:1001@192.0.2.1>;tag=caller-1"), ("To", to),
               ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"),
               ("Contact", f"<sip:1001@{CALLER[0]}:{CALLER[1]}>")]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return Request(method, "sip:1555@192.0.2.1", headers, body)


def answer(req: Request, status: int, body: bytes = b"") -> Response:
    """The platform's response to ``req`` (callee tag ``callee-1``, Contact on 2xx/1xx)."""
    extra = [("Contact", f"<sip:1555@{PLATFORM[0]}:{PLATFORM[1]}>")] if 100 < status < 300 else []
    if body:
        extra.append(("Content-Type", "application/sdp"))
    return make_response(req, status, to_tag=None if status == 100 else "callee-1", headers=extra, body=body)


def invite_answered(cap: Capture, call_id: str) -> None:
    """INVITE / 100 / 180 / 200 with SDP / ACK."""
    invite = request("INVITE", call_id, 1, "1", body=sdp(*CALLER_RTP))
    cap.up(invite)
    cap.down(answer(invite, 100), 0.005)
    cap.down(answer(invite, 180), 0.2)
    cap.down(answer(invite, 200, sdp(*PLATFORM_RTP)), 0.5)
    cap.up(request("ACK", call_id, 1, "2", to_tag="callee-1"))


def hang_up(cap: Capture, call_id: str, cseq: int) -> None:
    """The caller's BYE and its 200."""
    bye = request("BYE", call_id, cseq, f"bye{cseq}", to_tag="callee-1")
    cap.up(bye, 0.5)
    cap.down(answer(bye, 200))


def clean_call_reinvite(call_id: str) -> Capture:
    """An answered call, a re-INVITE (new SDP version, answered), media both ways, BYE."""
    cap = Capture()
    invite_answered(cap, call_id)
    for seq in range(25):
        cap.media(seq)
    reinvite = request("INVITE", call_id, 2, "3", to_tag="callee-1", body=sdp(*CALLER_RTP, version=2))
    cap.up(reinvite)
    cap.down(answer(reinvite, 200, sdp(*PLATFORM_RTP, version=2)), 0.05)
    cap.up(request("ACK", call_id, 2, "4", to_tag="callee-1"))
    for seq in range(25, 50):
        cap.media(seq)
    hang_up(cap, call_id, 3)
    return cap


def rfc2833_digits(call_id: str) -> Capture:
    """An answered call in which the caller sends ``DIGITS`` as RFC 4733 events."""
    cap = Capture()
    invite_answered(cap, call_id)
    for seq in range(20):
        cap.media(seq)
    seq = 20
    for k, digit in enumerate(DIGITS):
        for n, end in enumerate((False, False, True, True, True)):  # RFC 4733 §2.5.1.4: end sent 3 times
            event = DtmfEvent.for_digit(digit, end=end, duration=160 * (n + 1))
            pkt = RtpPacket(payload_type=101, sequence_number=seq, timestamp=100_000 + k * 8000,
                            ssrc=0x1111, marker=n == 0, payload=bytes(event))
            cap.add(CALLER_RTP, PLATFORM_RTP, bytes(pkt), 0.02)
            seq += 1
    hang_up(cap, call_id, 2)
    return cap


def declined_603(call_id: str) -> Capture:
    """An INVITE the callee declines: 100 / 180 / 603 Decline / ACK."""
    cap = Capture()
    invite = request("INVITE", call_id, 1, "1", body=sdp(*CALLER_RTP))
    cap.up(invite)
    cap.down(answer(invite, 100), 0.005)
    cap.down(answer(invite, 180), 0.2)
    cap.down(answer(invite, 603), 1.0)
    cap.up(request("ACK", call_id, 1, "1", to_tag="callee-1"))
    return cap


def malformed_sip(call_id: str) -> Capture:
    """A declined call whose INVITE carries a CSeq that is not a number (RFC 3261 §20.16)."""
    cap = Capture()
    invite = request("INVITE", call_id, 1, "1", body=sdp(*CALLER_RTP))
    cap.up(bytes(invite).replace(b"CSeq: 1 INVITE", b"CSeq: one INVITE"))
    cap.down(answer(invite, 400), 0.005)
    cap.up(request("ACK", call_id, 1, "1", to_tag="callee-1"))
    return cap


BUILDERS: dict[str, Callable[[str], Capture]] = {
    "clean-call-reinvite.pcap": clean_call_reinvite,
    "rfc2833-digits.pcap": rfc2833_digits,
    "declined-603.pcap": declined_603,
    "malformed-sip.pcap": malformed_sip,
}


def make_pcaps(outdir: str | Path = HERE) -> list[Path]:
    """Write every capture into ``outdir``; return their paths."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in BUILDERS.items():
        write_pcap(out / name, build(CALL_IDS[name]).packets)
        paths.append(out / name)
    return paths


if __name__ == "__main__":
    for path in make_pcaps(sys.argv[1] if len(sys.argv) > 1 else HERE):
        print(f"{path} ({path.stat().st_size} bytes)")

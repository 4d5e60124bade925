"""Every answered call carries media: the customer's default call (sipp/uac_media.xml)
against the real lab (Kamailio, rtpengine, the mock carriers), read on the wire.

Each call is captured on ``lo`` (the agents' media pool); the customer's RTP is the UDP
sent from the media port of its SDP offer, the RTP it got back the UDP sent to it. The
carrier's CDR (``rtp_payload_types_in``) is the second witness of the payload type.
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qa import lab
from qa.capture.live import Capture
from qa.capture.model import CaptureUnavailable
from qa.capture.pcapfile import FrameSource
from qa.carrier.cdr import read_cdrs
from qa.cases.checks import Expectation
from qa.cases.customers import CallSpec, CustomerOutcome, place
from qa.config import Environment
from qa.environments import lab_environment
from qa.ports import AGENT_MEDIA_POOL
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_tool("kamailio") and have_tool("sipp") and have_tool("rtpengine")),
                       reason="kamailio, rtpengine and sipp are needed"),
]

ALICE = "1001"
ECHO = "1555000100"
PCMA_ONLY = "1555005000"
OPUS_ONLY = "1555005300"
PREMIUM = "19005550100"      # blocked by the platform: 403
DURATION_S = 1.0
PACKETS_MIN = 40             # of the 50 a 1 s call plays (20 ms frames), on two busy cores


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Environment:
    run_dir = tmp_path_factory.mktemp("media-lab")
    try:
        lab.up(run_dir, timeout=60)
        yield lab_environment(run_dir)
    finally:
        lab.down(run_dir)


@dataclass
class Wire:
    """The customer's RTP on the wire: payload types sent, and packets received."""

    sent: list[int] = field(default_factory=list)
    received: int = 0


def _customer_media_port(workdir: Path) -> int:
    """The audio port of the customer's SDP offer (SIPp's -mp), from its message log."""
    found = re.search(r"m=audio (\d+) ", (workdir / "messages.log").read_text(errors="replace"))
    assert found, f"no SDP offer in {workdir / 'messages.log'}"
    return int(found.group(1))


def _wire(files: list[Path], port: int) -> Wire:
    """UDP from / to ``port`` in the capture (Linux lo: Ethernet frames, IPv4)."""
    wire = Wire()
    for path in files:
        for item in FrameSource(path):
            if not isinstance(item, tuple):
                continue
            ip = item[-1][14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
                continue
            ihl = (ip[0] & 0x0F) * 4
            src, dst = struct.unpack("!HH", ip[ihl:ihl + 4])
            rtp = ip[ihl + 8:]
            if src == port and len(rtp) >= 12:
                wire.sent.append(rtp[1] & 0x7F)
            elif dst == port and len(rtp) >= 12:
                wire.received += 1
    return wire


def _call(env: Environment, tmp: Path, to: str, **options) -> tuple[CustomerOutcome, Wire]:
    """Place one call with the catalogue's customer while capturing the agents' media ports."""
    spec = CallSpec(case="media default", from_user=ALICE, to=to, duration_s=DURATION_S, **options)
    capture = Capture(tmp / "capture", bpf="udp portrange {}-{}".format(*AGENT_MEDIA_POOL))
    try:
        capture.start()
    except CaptureUnavailable as exc:
        pytest.fail(f"capture is needed for the wire witness: {exc}")
    workdir = tmp / "sipp" / "call"
    try:
        outcome = asyncio.run(place(spec, env, env.password(ALICE), workdir))
    finally:
        files = capture.stop(settle=1.5)
    assert outcome.call is not None, outcome.problem
    # the Python customer (TLS) keeps no message log: its carrier's CDR is the witness
    wire = Wire() if spec.transport == "tls" else _wire(files, _customer_media_port(workdir))
    print(f"{to} {spec.codecs}: answered {outcome.call.answered_codec}, customer sent PT "
          f"{sorted(set(wire.sent))} x{len(wire.sent)}, received {wire.received}; {outcome.extra}")
    return outcome, wire


def _carrier_line(env: Environment, call_id: str, timeout: float = 10.0) -> dict:
    """The line of the carrier that answered ``call_id`` (written when the call ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in env.carrier_cdr_paths:
            for row in read_cdrs(path):
                if row.get("call_id") == call_id and row.get("final_code") == 200:
                    return row
        time.sleep(0.2)
    raise AssertionError(f"no carrier CDR line answering {call_id}")


def test_offer_pcmu_pcma_to_a_pcma_only_carrier_sends_pt_8(env, tmp_path):
    outcome, wire = _call(env, tmp_path, PCMA_ONLY, codecs=("PCMU", "PCMA", "telephone-event"))
    call = outcome.call
    assert call.final_code == 200 and call.answered_codec == "PCMA"
    assert call.offered_codecs[:2] == ["PCMU", "PCMA"]
    assert len(wire.sent) >= PACKETS_MIN and set(wire.sent) == {8}, wire
    assert outcome.extra["media_sent"].startswith("PCMA (PT 8): 50 packets"), outcome.extra
    carrier = _carrier_line(env, call.call_id)
    assert carrier["rtp_payload_types_in"] == [8] and carrier["rtp_packets_in"] >= PACKETS_MIN


def test_default_call_to_the_answering_route_has_rtp_both_ways(env, tmp_path):
    outcome, wire = _call(env, tmp_path, ECHO)
    call = outcome.call
    assert call.final_code == 200 and call.answered_codec == "PCMU"
    assert len(wire.sent) >= PACKETS_MIN and set(wire.sent) == {0}, wire
    assert wire.received >= PACKETS_MIN, wire
    assert outcome.extra["media_sent"].startswith("PCMU (PT 0)"), outcome.extra
    carrier = _carrier_line(env, call.call_id)
    assert carrier["rtp_payload_types_in"] == [0] and carrier["rtp_packets_out"] >= PACKETS_MIN


def test_media_none_sends_nothing(env, tmp_path):
    outcome, wire = _call(env, tmp_path, ECHO, media="none")
    assert outcome.call.final_code == 200
    assert wire.sent == [], wire                       # (the echo route has nothing to echo)
    assert outcome.extra["media_sent"] == "none (media=none)"


def test_negotiated_codec_without_a_pcap_sends_nothing_and_says_why(env, tmp_path):
    outcome, wire = _call(env, tmp_path, OPUS_ONLY, codecs=("opus", "PCMU", "telephone-event"))
    assert outcome.call.final_code == 200 and outcome.call.answered_codec == "opus"
    assert wire.sent == [], wire
    assert outcome.extra["media_sent"] == "none (opus (PT 111): no pcap for it)"


def test_call_expected_to_fail_is_placed_as_before(env, tmp_path):
    outcome, wire = _call(env, tmp_path, PREMIUM, expect=Expectation(final_code=403, carrier_sees=False))
    assert outcome.call.final_code == 403
    assert wire.sent == [] and outcome.extra == {}
    assert not (tmp_path / "sipp" / "media").exists()      # uac_call: no pcap was made


def test_a_tls_call_carries_media_too(env, tmp_path):
    """The Python customer (SIPp has no TLS) plays the answer's codec for the talk time."""
    outcome, _ = _call(env, tmp_path, ECHO, transport="tls")
    call = outcome.call
    assert call.final_code == 200 and call.answered_codec == "PCMU", outcome
    assert re.fullmatch(r"PCMU \(PT 0\): (4\d|5[01]) packets, .*", outcome.extra["media_sent"]), outcome.extra
    carrier = _carrier_line(env, call.call_id)
    assert carrier["rtp_payload_types_in"] == [0] and carrier["rtp_packets_in"] >= PACKETS_MIN, carrier
    assert carrier["rtp_packets_out"] >= PACKETS_MIN, carrier                  # echoed back


@pytest.mark.parametrize("options", [{"padding": 1600, "transport": "tcp"}, {"dtmf": "12", "dtmf_mode": "info"}],
                         ids=["padded-invite", "sip-info"])
def test_calls_with_their_own_scenario_carry_the_answer_codec(env, tmp_path, options):
    """The padded-INVITE and SIP INFO scenarios play the answer's codec around what they test."""
    outcome, wire = _call(env, tmp_path, ECHO, **options)
    call = outcome.call
    assert call.final_code == 200 and call.answered_codec == "PCMU", outcome
    assert outcome.extra["media_sent"].startswith("PCMU (PT 0)"), outcome.extra
    assert len(wire.sent) >= PACKETS_MIN // 2 and set(wire.sent) == {0}, wire
    carrier = _carrier_line(env, call.call_id)
    assert carrier["rtp_payload_types_in"] == [0], carrier

"""The catalogue's customer scenarios (sipp/uac_*.xml) against the real mock carrier.

The carrier (``python -m qa.carrier serve``) is the witness: its CDR says which digits it
heard, which codec it answered and which RTP payload types arrived. The session-timer
scenario runs against a tiny SIPp UAS that answers and hangs up after 2 s (the platform
test is the lab's).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa.carrier.cdr import read_cdrs
from qa.paths import DEFAULT_PLAN, ROOT
from qa.ports import allocate_ports
from qa.sipp import Agent, CallResult, SippResult, run
from qa.sipp.media import audio_pcap, inband_pcap, negotiated_play_keys, play_keys, rfc4733_pcap
from qa.tools import have_tool
from tests.integration.test_sipp_agents import OK_TO_BYE

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_tool("sipp"), reason="sipp (Debian sip-tester) not installed"),
]

DIGITS = "0123456789*#"
DTMF_NUMBER = "15550080"     # answers with silence, collects DTMF
ECHO_NUMBER = "1555000100"
RING_FOREVER = "15550020"
SIPP_TIMEOUT_S = 40.0        # two shared cores: generous


class Carrier:
    """``python -m qa.carrier serve`` on an allocated port, with its CDR file."""

    def __init__(self, tmp: Path) -> None:
        self.port = allocate_ports(1)[0]
        self.cdr = tmp / "carrier.jsonl"
        self.stderr = tmp / "carrier.stderr"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "qa.carrier", "serve", "--plan", str(DEFAULT_PLAN),
             "--listen", f"127.0.0.1:{self.port}", "--cdr", str(self.cdr), "--name", "carrier-a"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(self.stderr, "wb"), text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        assert "listening" in line, f"carrier did not start: {line!r} {self.stderr.read_text()}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cdr_for(self, call_id: str, timeout: float = 10.0) -> dict:
        """The carrier's CDR of ``call_id`` (written when the call ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for row in read_cdrs(self.cdr):
                if row.get("call_id") == call_id:
                    return row
            time.sleep(0.1)
        raise AssertionError(f"no carrier CDR for {call_id}; CDRs: {self.cdr.read_text() if self.cdr.exists() else '-'}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def carrier(tmp_path_factory):
    proc = Carrier(tmp_path_factory.mktemp("carrier"))
    yield proc
    proc.stop()


def _call(scenario: str, carrier: Carrier, number: str, workdir: Path, **kwargs) -> tuple[SippResult, CallResult]:
    agent = Agent(scenario, remote=carrier.address, service=number, timeout_s=SIPP_TIMEOUT_S, **kwargs)
    result = asyncio.run(run(agent, workdir))
    assert result.calls, f"no call traced: {result.describe()} {result.errors}"
    return result, result.calls[0]


def _answered_call(scenario: str, carrier: Carrier, number: str, workdir: Path, **kwargs) -> tuple[CallResult, dict]:
    result, call = _call(scenario, carrier, number, workdir, **kwargs)
    assert result.ok, f"{result.describe()} {result.errors}"
    assert call.final_code == 200 and call.bye_by == "caller"
    return call, carrier.cdr_for(call.call_id)


# -- DTMF --------------------------------------------------------------------------------
def test_rfc4733_digits_heard_in_order(carrier, tmp_path):
    pcap = rfc4733_pcap(DIGITS, tmp_path / "dtmf.pcap")
    call, cdr = _answered_call("uac_dtmf", carrier, DTMF_NUMBER, tmp_path / "sipp",
                               keys=play_keys(pcap), dtmf=DIGITS)
    assert call.dtmf_sent == DIGITS
    assert cdr["dtmf_heard"] == DIGITS
    assert 101 in cdr.get("rtp_payload_types_in", [101])


def test_shipped_sip_tester_pcap_plays_too(carrier, tmp_path):
    pcap = Path("/usr/share/sip-tester/dtmf_2833_5.pcap")
    if not pcap.exists():
        pytest.skip("sip-tester DTMF pcaps not installed")
    _, cdr = _answered_call("uac_dtmf", carrier, DTMF_NUMBER, tmp_path, keys=play_keys(pcap), dtmf="5")
    assert cdr["dtmf_heard"] == "5"


def test_info_digits_heard_in_order(carrier, tmp_path):
    call, cdr = _answered_call("uac_dtmf_info", carrier, DTMF_NUMBER, tmp_path / "sipp", dtmf=DIGITS + "ABCD",
                               keys=negotiated_play_keys(1.0, tmp_path / "media"))
    assert cdr["dtmf_heard"] == DIGITS + "ABCD"
    assert call.dtmf_sent == DIGITS + "ABCD"
    assert cdr["rtp_payload_types_in"] == [0]           # the answer's codec beside the INFOs


def test_info_single_digit(carrier, tmp_path):
    _, cdr = _answered_call("uac_dtmf_info", carrier, DTMF_NUMBER, tmp_path / "sipp", dtmf="#",
                            keys=negotiated_play_keys(1.0, tmp_path / "media"))
    assert cdr["dtmf_heard"] == "#"


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_inband_digits_heard_in_order(carrier, tmp_path, codec):
    pcap = inband_pcap(DIGITS, tmp_path / "inband.pcap", codec=codec)
    _, cdr = _answered_call("uac_dtmf", carrier, DTMF_NUMBER, tmp_path / "sipp", keys={
        **play_keys(pcap), "codecs": f"{codec},telephone-event"}, dtmf=DIGITS)
    assert cdr["dtmf_heard"] == DIGITS
    assert cdr["codec"] == codec


# -- codecs -------------------------------------------------------------------------------
@pytest.mark.parametrize(("codec", "number", "pt"), [
    ("PCMU", "15550051", 0), ("PCMA", "15550050", 8), ("G722", "15550052", 9),
])
def test_answer_and_rtp_use_the_negotiated_codec(carrier, tmp_path, codec, number, pt):
    pcap = audio_pcap(codec, 1.0, tmp_path / f"{codec}.pcap")
    call, cdr = _answered_call("uac_dtmf", carrier, number, tmp_path / "sipp", keys={
        **play_keys(pcap), "codecs": f"{codec},telephone-event"})
    assert call.answered_codec == codec
    assert cdr["codec"] == codec
    assert cdr["rtp_packets_in"] >= 45
    assert cdr["rtp_payload_types_in"] == [pt]


def test_mixed_offer_answered_with_the_numbers_codec(carrier, tmp_path):
    pcap = audio_pcap("PCMA", 0.5, tmp_path / "pcma.pcap")
    call, cdr = _answered_call("uac_dtmf", carrier, "15550050", tmp_path / "sipp", keys={
        **play_keys(pcap), "codecs": "PCMU,G722,PCMA,telephone-event"})
    assert call.offered_codecs[:3] == ["PCMU", "G722", "PCMA"]
    assert call.answered_codec == "PCMA" == cdr["codec"]


def test_no_common_codec_gets_488(carrier, tmp_path):
    result, call = _call("uac_call", carrier, "15550054", tmp_path, keys={"codecs": "PCMU,PCMA,telephone-event"})
    assert result.ok, result.describe()      # a failure the scenario handles: clean end
    assert call.final_code == 488
    assert carrier.cdr_for(call.call_id)["final_code"] == 488


# -- the default call: RTP on the negotiated codec (uac_media) ----------------------------------
def _media_log(workdir: Path) -> str:
    return (workdir / "actions.log").read_text().strip()


@pytest.mark.parametrize(("offer", "number", "codec", "pt"), [
    ("PCMU,PCMA,telephone-event", "15550050", "PCMA", 8),     # PCMA-only: not the first offered
    ("PCMU,PCMA,telephone-event", ECHO_NUMBER, "PCMU", 0),
    ("G722,PCMU,telephone-event", "15550052", "G722", 9),
    ("PCMA,PCMU,telephone-event", "15550051", "PCMU", 0),
])
def test_media_scenario_plays_the_answers_payload_type(carrier, tmp_path, offer, number, codec, pt):
    keys = negotiated_play_keys(1.0, tmp_path / "media") | {"codecs": offer}
    call, cdr = _answered_call("uac_media", carrier, number, tmp_path / "sipp", keys=keys,
                               call_duration_ms=1000)
    assert call.answered_codec == codec == cdr["codec"]
    assert _media_log(tmp_path / "sipp") == f"media: {call.call_id} pt={pt} play={codec}"
    assert cdr["rtp_payload_types_in"] == [pt] and cdr["rtp_packets_in"] >= 45


def test_media_scenario_without_a_pcap_for_the_answer_plays_nothing(carrier, tmp_path):
    keys = negotiated_play_keys(1.0, tmp_path / "media") | {"codecs": "opus,PCMU,telephone-event"}
    call, cdr = _answered_call("uac_media", carrier, "15550053", tmp_path / "sipp", keys=keys,
                               call_duration_ms=1000)
    assert call.answered_codec == "opus"
    assert _media_log(tmp_path / "sipp") == f"media: {call.call_id} pt=111 play=none"
    assert cdr["rtp_packets_in"] == 0


def test_media_scenario_ends_a_failed_call_cleanly(carrier, tmp_path):
    keys = negotiated_play_keys(1.0, tmp_path / "media") | {"codecs": "PCMU,PCMA,telephone-event"}
    result, call = _call("uac_media", carrier, "15550054", tmp_path / "sipp", keys=keys)
    assert result.ok, result.describe()
    assert call.final_code == 488 and not _media_log(tmp_path / "sipp")


def test_media_stops_when_the_callee_hangs_up(carrier, tmp_path):
    keys = negotiated_play_keys(6.0, tmp_path / "media")
    result, call = _call("uac_media", carrier, "15550040", tmp_path / "sipp", keys=keys, call_duration_ms=6000)
    assert result.ok, f"{result.describe()} {result.errors}"
    assert call.bye_by == "callee" and call.duration_s < 4
    cdr = carrier.cdr_for(call.call_id)
    assert cdr["rtp_payload_types_in"] == [0] and 100 <= cdr["rtp_packets_in"] <= 200     # 3 s, not 6


# -- transport ------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_large_invite_is_over_1300_bytes_on_the_wire(carrier, tmp_path, transport):
    result, call = _call("uac_large_invite", carrier, ECHO_NUMBER, tmp_path, transport=transport,
                         call_duration_ms=200,
                         keys={"padding_bytes": "1500"} | negotiated_play_keys(0.2, tmp_path / "media"))
    assert result.ok, f"{result.describe()} {result.errors}"
    assert call.final_code == 200
    assert call.request_bytes is not None and call.request_bytes > 1500
    assert call.transport_sent == transport
    messages = (tmp_path / "messages.log").read_text(errors="replace")
    assert f"{transport.upper()} message sent ({call.request_bytes} bytes)" in messages
    assert carrier.cdr_for(call.call_id)["transport"] == transport


# -- CANCEL -----------------------------------------------------------------------------------
def test_cancel_while_ringing_gets_487(carrier, tmp_path):
    result, call = _call("uac_cancel", carrier, RING_FOREVER, tmp_path, keys={"cancel_ms": "500"})
    assert result.ok, f"{result.describe()} {result.errors}"
    assert call.final_code == 487
    assert 180 in call.provisional
    cdr = carrier.cdr_for(call.call_id)
    assert cdr["ended_by"] == "cancel" and cdr["final_code"] == 487


# -- session timers ----------------------------------------------------------------------------
_UAS_HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n  <recv request="INVITE"/>\n'
_REPLY = """      [last_Via:]
      [last_From:]
      [last_To:];tag=uas[call_number]
      [last_Call-ID:]
      [last_CSeq:]
"""
_UAS_EXPIRES = _UAS_HEAD.format(name="answer, BYE at expiry") + """  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
""" + _REPLY + """      Contact: <sip:uas@[local_ip]:[local_port]>
      Supported: timer
      Require: timer
      Session-Expires: 2;refresher=uac
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=uas 1 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
    ]]>
  </send>
  <recv request="ACK"/>
  <pause milliseconds="2000"/>
  <send retrans="500">
    <![CDATA[
      BYE [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$to]
      To: [$from]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
</scenario>
"""
_UAS_422 = _UAS_HEAD.format(name="422") + """  <send>
    <![CDATA[
      SIP/2.0 422 Session Interval Too Small
""" + _REPLY + """      Min-SE: 90
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
"""


def _uas_expires_xml() -> str:
    """Capture the caller's From/To on the INVITE for the BYE the UAS sends."""
    return _UAS_EXPIRES.replace('<recv request="INVITE"/>', """<recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="contact"/>
    </action>
  </recv>""").replace("From: [$to]", "From: [$to];tag=uas[call_number]")


def _with_uas(xml: str, tmp: Path, **uac_keys: str) -> tuple[SippResult, SippResult]:
    scenario = tmp / "uas.xml"
    scenario.write_text(xml)
    uas = Agent(scenario, calls=1, timeout_s=SIPP_TIMEOUT_S)
    uac = Agent("uac_session_timer", remote=uas.address, service="1000", timeout_s=SIPP_TIMEOUT_S,
                keys=uac_keys | negotiated_play_keys(5.0, tmp / "media"))

    async def both() -> tuple[SippResult, SippResult]:
        uas_task = asyncio.create_task(run(uas, tmp / "uas"))
        await asyncio.sleep(0.5)
        res_uac = await run(uac, tmp / "uac")
        return await uas_task, res_uac

    return asyncio.run(both())


def test_session_timer_not_refreshed_ended_by_the_far_end(tmp_path):
    res_uas, res_uac = _with_uas(_uas_expires_xml(), tmp_path, session_expires="2", min_se="2")
    assert res_uac.ok, f"{res_uac.describe()} {res_uac.errors}"
    call = res_uac.calls[0]
    assert call.final_code == 200 and call.bye_by == "callee"
    assert call.session_expires == 2
    assert 1.5 < call.duration_s < 10
    invite = (tmp_path / "uac" / "messages.log").read_text()
    assert "Session-Expires: 2;refresher=uac" in invite and "Supported: timer" in invite
    assert "Min-SE: 2" in invite


def test_session_timer_too_small_gets_422_with_min_se(tmp_path):
    _, res_uac = _with_uas(_UAS_422, tmp_path, session_expires="30", min_se="30")
    assert res_uac.ok, f"{res_uac.describe()} {res_uac.errors}"
    call = res_uac.calls[0]
    assert call.final_code == 422
    assert call.min_se == 90


# -- the default call against an answer without SDP ----------------------------------------------
_UAS_NO_SDP = _UAS_HEAD.format(name="200 without SDP") + """  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
""" + _REPLY + """      Contact: <sip:uas@[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
  <recv request="ACK"/>
""" + OK_TO_BYE + """</scenario>
"""


def test_media_scenario_with_an_answer_without_sdp_plays_nothing(tmp_path):
    scenario = tmp_path / "uas.xml"
    scenario.write_text(_UAS_NO_SDP)
    uas = Agent(scenario, calls=1, timeout_s=SIPP_TIMEOUT_S)
    uac = Agent("uac_media", remote=uas.address, service="1000", timeout_s=SIPP_TIMEOUT_S, call_duration_ms=500,
                keys=negotiated_play_keys(0.5, tmp_path / "media"))

    async def both() -> tuple[SippResult, SippResult]:
        uas_task = asyncio.create_task(run(uas, tmp_path / "uas"))
        await asyncio.sleep(0.5)
        res_uac = await run(uac, tmp_path / "uac")
        return await uas_task, res_uac

    _, res_uac = asyncio.run(both())
    assert res_uac.ok, f"{res_uac.describe()} {res_uac.errors}"
    call = res_uac.calls[0]
    assert call.final_code == 200 and call.bye_by == "caller"
    assert _media_log(tmp_path / "uac") == f"media: {call.call_id} pt= play=none"

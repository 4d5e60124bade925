"""Real SIPp processes on 127.0.0.1: sipp/uac_call.xml against small UASes, via qa.sipp."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from qa.errors import BadInput
from qa.sipp import Agent, Outcome, SippResult, run
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_tool("sipp"), reason="sipp (Debian sip-tester) not installed"),
]

HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'
REPLY_HEADERS = """      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
"""
ANSWER = """      SIP/2.0 200 OK
""" + REPLY_HEADERS + """      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
"""
OK_TO_BYE = """  <recv request="BYE"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""


def _send(text: str, retrans: bool = False) -> str:
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}>\n    <![CDATA[\n{text}    ]]>\n  </send>\n"


UAS_REJECT = (HEAD.format(name="reject 486") + '  <recv request="INVITE"/>\n'
              + _send("      SIP/2.0 486 Busy Here\n" + REPLY_HEADERS + "      Content-Length: 0\n")
              + '  <recv request="ACK"/>\n</scenario>\n')

UAS_CHALLENGE = (HEAD.format(name="407 then 200") + '  <recv request="INVITE"/>\n'
                 + _send("      SIP/2.0 407 Proxy Authentication Required\n" + REPLY_HEADERS
                         + '      Proxy-Authenticate: Digest realm="voipqa.test", nonce="n[call_number]", '
                           'algorithm=MD5, qop="auth"\n      Content-Length: 0\n')
                 + '  <recv request="ACK"/>\n  <recv request="INVITE"/>\n'
                 + _send(ANSWER, retrans=True) + '  <recv request="ACK"/>\n' + OK_TO_BYE + "</scenario>\n")

UAS_HANGS_UP = (HEAD.format(name="callee hangs up") + '  <recv request="INVITE"/>\n'
                + _send(ANSWER, retrans=True) + '  <recv request="ACK"/>\n'
                + '  <pause milliseconds="300"/>\n'
                + _send("""      BYE [last_Contact:] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:1000@[local_ip]>;tag=[pid]SIPpTag01[call_number]
      To: [$caller]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Content-Length: 0
""".replace("[last_Contact:]", "sip:caller@[remote_ip]:[remote_port]"), retrans=True)
                + '  <recv response="200"/>\n</scenario>\n')


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def _pair(tmp_path: Path, uas: Agent, uac: Agent) -> tuple[SippResult, SippResult]:
    uac.remote = uas.address
    return await asyncio.gather(run(uas, tmp_path / "uas"), run(uac, tmp_path / "uac"))


def _caller(**kw) -> Agent:
    base = dict(service="1000", auth_user="alice", auth_password="secret", call_duration_ms=400,
                timeout_s=10, rate=20)
    base.update(kw)
    return Agent("uac_call", **base)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_three_calls_answered(tmp_path, transport):
    uas = Agent("uas_answer", calls=3, transport=transport, timeout_s=10)
    uac = _caller(calls=3, transport=transport)
    r_uas, r_uac = asyncio.run(_pair(tmp_path, uas, uac))
    assert r_uac.outcome is Outcome.OK, r_uac.describe()
    assert r_uas.outcome is Outcome.OK, r_uas.describe()
    assert r_uac.exit_code == 0 and r_uac.stats["SuccessfulCall(C)"] == 3
    assert len(r_uac.calls) == 3 and len({c.call_id for c in r_uac.calls}) == 3
    for call in r_uac.calls:
        assert call.final_code == 200 and call.transport == transport
        assert call.role == "caller" and call.bye_by == "caller" and call.challenges == 0
        assert call.duration_s == pytest.approx(0.41, abs=0.15)
        assert call.offered_codecs == ["PCMU", "PCMA", "telephone-event"]
        assert call.answered_codec == "PCMU"
        assert call.from_user == "alice" and call.to_user == "1000"
        assert call.started < call.answered < call.ended
        assert call.setup_ms is not None and call.pdd_ms is not None and call.pdd_ms <= call.setup_ms
    # the callee's view of the same calls
    assert sorted(c.call_id for c in r_uas.calls) == sorted(c.call_id for c in r_uac.calls)
    assert all(c.role == "callee" and c.bye_by == "caller" for c in r_uas.calls)
    assert "secret" not in " ".join(r_uac.argv)
    assert (tmp_path / "uac" / "messages.log").exists()


def test_rejected_call_ends_cleanly(tmp_path):
    uas = Agent(_write(tmp_path, "uas486.xml", UAS_REJECT), calls=1, timeout_s=10)
    r_uas, r_uac = asyncio.run(_pair(tmp_path, uas, _caller(calls=1)))
    (call,) = r_uac.calls
    assert call.final_code == 486 and call.final_reason == "Busy Here"
    assert call.answered is None and call.duration_s is None and call.ended is not None
    # SIPp itself saw a clean scenario end: no "unexpected message"
    assert r_uac.outcome is Outcome.OK, r_uac.describe()
    assert r_uas.outcome is Outcome.OK, r_uas.describe()
    assert not any("unexpected" in e.lower() for e in r_uac.errors)


def test_digest_challenge_then_answer(tmp_path):
    uas = Agent(_write(tmp_path, "uas407.xml", UAS_CHALLENGE), calls=1, timeout_s=10)
    r_uas, r_uac = asyncio.run(_pair(tmp_path, uas, _caller(calls=1, keys={"codecs": "PCMA,telephone-event"})))
    assert r_uac.outcome is Outcome.OK, r_uac.describe()
    (call,) = r_uac.calls
    assert call.challenges == 1 and call.invites == 2 and call.final_code == 200
    assert call.offered_codecs == ["PCMA", "telephone-event"] and call.answered_codec == "PCMA"
    (callee,) = r_uas.calls
    assert callee.call_id == call.call_id  # same Call-ID for the retry
    wire = (tmp_path / "uac" / "messages.log").read_text()
    assert 'Proxy-Authorization: Digest username="alice"' in wire


def test_callee_hangs_up_during_the_pause(tmp_path):
    text = UAS_HANGS_UP.replace('<recv request="INVITE"/>', """<recv request="INVITE">
    <action><ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/></action>
  </recv>""")
    uas = Agent(_write(tmp_path, "uas_bye.xml", text), calls=1, timeout_s=10)
    r_uas, r_uac = asyncio.run(_pair(tmp_path, uas, _caller(calls=1, call_duration_ms=5000)))
    assert r_uac.outcome is Outcome.OK, r_uac.describe()
    (call,) = r_uac.calls
    assert call.bye_by == "callee" and call.final_code == 200
    assert call.duration_s == pytest.approx(0.3, abs=0.2)
    assert r_uac.wall_s < 4  # did not sit out the 5 s pause


def test_register_with_challenge(tmp_path):
    registrar = (HEAD.format(name="registrar") + '  <recv request="REGISTER"/>\n'
                 + _send("      SIP/2.0 401 Unauthorized\n" + REPLY_HEADERS
                         + '      WWW-Authenticate: Digest realm="voipqa.test", nonce="abc"\n      Content-Length: 0\n')
                 + '  <recv request="REGISTER"/>\n'
                 + _send("      SIP/2.0 403 Forbidden\n" + REPLY_HEADERS + "      Content-Length: 0\n")
                 + "</scenario>\n")
    uas = Agent(_write(tmp_path, "registrar.xml", registrar), calls=1, timeout_s=10)
    uac = Agent("uac_register", auth_user="alice", auth_password="wrong", keys={"expires": "120"}, timeout_s=10)
    r_uas, r_uac = asyncio.run(_pair(tmp_path, uas, uac))
    assert r_uac.outcome is Outcome.OK, r_uac.describe()
    (reg,) = r_uac.calls
    assert reg.method == "REGISTER" and reg.challenges == 1 and reg.final_code == 403
    assert "Expires: 120" in (tmp_path / "uac" / "messages.log").read_text()


def _dead_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_timeout_bounds_an_unanswered_call(tmp_path):
    uac = _caller(calls=1, timeout_s=2, remote=f"127.0.0.1:{_dead_port()}")
    started = time.monotonic()
    result = asyncio.run(run(uac, tmp_path / "uac"))
    assert time.monotonic() - started < 6
    assert result.outcome is Outcome.TIMED_OUT, result.describe()
    assert any("timed out" in e for e in result.errors)
    (call,) = result.calls
    assert call.final_code is None and call.answered is None
    assert call.retransmissions >= 1  # SIPp retransmitted the INVITE over UDP


def test_voipqa_stops_an_overrunning_sipp(tmp_path):
    # a UAS waits for INVITEs forever; voipqa's own deadline (timeout + margin) stops it
    uas = Agent("uas_answer", calls=1, timeout_s=30)
    started = time.monotonic()
    result = asyncio.run(run(uas, tmp_path / "uas", margin_s=-28.5))
    assert time.monotonic() - started < 8
    assert result.outcome is Outcome.TIMED_OUT and result.stopped_by_voipqa
    assert _port_free(uas.port)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_cancellation_kills_sipp(tmp_path):
    uas = Agent("uas_answer", calls=1, timeout_s=30)
    progress: list[dict] = []

    async def main() -> None:
        task = asyncio.create_task(run(uas, tmp_path / "uas", on_progress=progress.append))
        await asyncio.sleep(2.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 8
    assert _port_free(uas.port)
    assert progress and "TotalCallCreated" in progress[-1]


def test_missing_scenario_is_bad_input(tmp_path):
    missing = tmp_path / "nope.xml"
    with pytest.raises(BadInput, match="nope.xml"):
        asyncio.run(run(Agent(missing, remote="127.0.0.1:5060"), tmp_path / "w"))


def test_invalid_scenario_is_bad_input_with_sipp_line(tmp_path):
    bad = _write(tmp_path, "broken.xml", "<scenario><send>\n")
    with pytest.raises(BadInput, match=r"broken\.xml.*Unable to load or parse"):
        asyncio.run(run(Agent(bad, remote="127.0.0.1:5060", timeout_s=5), tmp_path / "w"))
    needs_key = _write(tmp_path, "needs_key.xml", HEAD.format(name="k") + _send(
        "      OPTIONS sip:[service]@[remote_ip] SIP/2.0\n      X-Thing: [undefined_key]\n"
        "      Content-Length: 0\n") + "</scenario>\n")
    with pytest.raises(BadInput, match="undefined_key"):
        asyncio.run(run(Agent(needs_key, remote="127.0.0.1:5060", timeout_s=5), tmp_path / "w2"))

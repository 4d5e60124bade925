"""qa.sipp without running SIPp: argv building, masking, exit codes, trace parsing."""

from __future__ import annotations

import socket
import xml.dom.minidom
from datetime import datetime

import pytest

from qa.errors import BadInput
from qa.paths import SIPP_DIR
from qa.sipp import (
    MASK, Agent, Outcome, build_calls, mask_argv, parse_error_file, parse_message_log,
    parse_stat_file, sdp_keys, stat_summary,
)


def _opt(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def _keys(argv: list[str]) -> dict[str, str]:
    return {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "-key"}


# -- argv ---------------------------------------------------------------------------
def test_argv_allocates_distinct_free_ports(tmp_path):
    agent = Agent("uac_call", remote="127.0.0.1:5060", service="1000")
    argv = agent.argv(tmp_path)
    ports = [int(_opt(argv, f)) for f in ("-p", "-cp", "-mp")]
    assert len(set(ports)) == 3 and all(p > 1024 for p in ports)
    assert ports[2] % 2 == 0
    assert _opt(argv, "-ci") == "127.0.0.1" and _opt(argv, "-i") == "127.0.0.1"
    # stable once allocated
    assert agent.argv(tmp_path) == argv
    assert agent.address == f"127.0.0.1:{ports[0]}"


def test_argv_contents(tmp_path):
    agent = Agent("uac_call", remote="10.0.0.1:5070", service="4912345", auth_user="alice",
                  auth_password="s3cret", calls=5, rate=2.5, rate_period_ms=1000, limit=3,
                  call_duration_ms=1500, timeout_s=12.2, inf=tmp_path / "users.csv",
                  port=15060, control_port=15061, media_port=16000, extra_args=["-aa"])
    argv = agent.argv(tmp_path)
    assert argv[0] == "sipp" and argv[1:3] == ["-sf", str(SIPP_DIR / "uac_call.xml")]
    assert argv[3] == "10.0.0.1:5070"
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    assert (_opt(argv, "-p"), _opt(argv, "-cp"), _opt(argv, "-mp")) == ("15060", "15061", "16000")
    assert _opt(argv, "-t") == "u1" and _opt(argv, "-s") == "4912345"
    assert _opt(argv, "-au") == "alice" and _opt(argv, "-ap") == "s3cret"
    assert _opt(argv, "-m") == "5" and _opt(argv, "-r") == "2.5" and _opt(argv, "-rp") == "1000"
    assert _opt(argv, "-l") == "3" and _opt(argv, "-d") == "1500"
    assert _opt(argv, "-timeout") == "13s" and "-timeout_error" in argv
    assert _opt(argv, "-inf") == str(tmp_path / "users.csv")
    assert "-nostdin" in argv and argv[-1] == "-aa"
    for flag, option, name in (("-trace_msg", "-message_file", "messages.log"),
                               ("-trace_err", "-error_file", "errors.log"),
                               ("-trace_stat", "-stf", "stat.csv"),
                               ("-trace_screen", "-screen_file", "screen.log"),
                               ("-trace_logs", "-log_file", "actions.log")):
        assert flag in argv and _opt(argv, option) == str(tmp_path / name)
    keys = _keys(argv)
    assert keys["from_user"] == "alice" and keys["domain"] == "10.0.0.1:5070"
    assert keys["sdp_formats"] == "0 8 101"
    assert "a=rtpmap:101 telephone-event/8000" in keys["sdp_attributes"].split("\r\n")


@pytest.mark.parametrize("transport,mode", [("udp", "u1"), ("tcp", "t1"), ("tcp-per-call", "tn")])
def test_transports(tmp_path, transport, mode):
    argv = Agent("uac", remote="127.0.0.1:5060", transport=transport).argv(tmp_path)
    assert _opt(argv, "-t") == mode
    assert argv[1:3] == ["-sn", "uac"]
    assert ("-max_socket" in argv) == (transport == "tcp-per-call")


@pytest.mark.parametrize("bad", ["tls", "sctp", "UDP"])
def test_bad_transport(bad):
    with pytest.raises(BadInput, match="transport"):
        Agent("uac", transport=bad)


def test_keys_from_user_and_codecs(tmp_path):
    agent = Agent("uac_call", remote="127.0.0.1:5060", from_user="bob",
                  keys={"codecs": "PCMA,G722,opus,telephone-event", "custom": "x y"})
    keys = _keys(agent.argv(tmp_path))
    assert keys["from_user"] == "bob" and keys["custom"] == "x y"
    assert keys["sdp_formats"] == "8 9 111 101"
    assert "a=rtpmap:111 opus/48000/2" in keys["sdp_attributes"]
    # keys a scenario does not use get no defaults; built-ins get only what was asked
    assert "expires" not in keys
    assert _keys(Agent("uac", remote="127.0.0.1:5060", keys={"k": "v"}).argv(tmp_path)) == {"k": "v"}
    assert _keys(Agent("uac_register", remote="127.0.0.1:5060").argv(tmp_path))["expires"] == "3600"


def test_sdp_keys():
    assert sdp_keys("PCMU") == {"sdp_formats": "0", "sdp_attributes": "a=rtpmap:0 PCMU/8000"}
    out = sdp_keys(["pcmu", "L16/16000", "telephone-event"])
    assert out["sdp_formats"] == "0 96 101"
    assert out["sdp_attributes"].split("\r\n")[1] == "a=rtpmap:96 L16/16000"
    with pytest.raises(BadInput):
        sdp_keys("")
    with pytest.raises(BadInput):
        sdp_keys("PC MU")


def test_masking(tmp_path):
    agent = Agent("uac_call", remote="127.0.0.1:5060", auth_user="alice", auth_password="s3cret",
                  keys={"password": "k3y"},
                  extra_args=["-set", "hdr", 'Authorization: Digest username="a",response="0123abcd"'])
    for text in (agent.describe(), repr(agent), str(agent), " ".join(agent.masked_argv(tmp_path))):
        assert "s3cret" not in text and "k3y" not in text and "0123abcd" not in text, text
    assert "-ap '******'" in agent.describe()
    assert "auth_password='******'" in repr(agent)
    # the real argv keeps the secret (SIPp needs it)
    assert _opt(agent.argv(tmp_path), "-ap") == "s3cret"
    assert mask_argv(["-ap", "x", "-au", "y"]) == ["-ap", MASK, "-au", "y"]
    assert "\n" not in agent.describe()


def test_scenario_resolution(tmp_path):
    assert Agent("uac_call").scenario_path == SIPP_DIR / "uac_call.xml"
    assert Agent("uas").scenario_path is None and Agent("uas").builtin
    assert Agent(tmp_path / "x.xml").scenario_path == tmp_path / "x.xml"
    with pytest.raises(BadInput, match="x.xml"):
        Agent(tmp_path / "x.xml").check_scenario()
    with pytest.raises(BadInput, match="nope.xml"):
        Agent("nope").check_scenario()


SCENARIOS = ("uac_call", "uac_media", "uac_register", "uas_answer", "uac_dtmf", "uac_dtmf_info",
             "uac_session_timer", "uac_large_invite", "uac_cancel")


def test_shipped_scenarios_are_well_formed_and_document_their_command():
    for name in SCENARIOS:
        path = SIPP_DIR / f"{name}.xml"
        xml.dom.minidom.parse(str(path))
        text = path.read_text()
        assert f"sipp -sf sipp/{name}.xml" in text.split("<scenario")[0]


def test_uac_call_ends_cleanly_on_failure_codes():
    text = (SIPP_DIR / "uac_call.xml").read_text()
    for code in (402, 403, 404, 408, 480, 486, 487, 488, 500, 503, 603):
        assert f'<recv response="{code}" optional="true" response_txn="invite1" next="failed1"/>' in text
        assert f'<recv response="{code}" optional="true" response_txn="invite2" next="failed2"/>' in text
    assert 'optional="global"' in text and "[authentication]" in text


# -- exit codes ---------------------------------------------------------------------
@pytest.mark.parametrize("code,outcome", [
    (0, Outcome.OK), (1, Outcome.CALLS_FAILED), (95, Outcome.STOPPED), (96, Outcome.KILLED),
    (97, Outcome.INTERNAL_EXIT), (98, Outcome.UNKNOWN_RESULT), (99, Outcome.NO_CALLS),
    (255, Outcome.FATAL), (-1, Outcome.FATAL), (254, Outcome.BIND_ERROR), (-2, Outcome.BIND_ERROR),
    (253, Outcome.SYSTEM_ERROR), (252, Outcome.ARGUMENT_ERROR), (-9, Outcome.SIGNALLED),
    (42, Outcome.OTHER), (None, Outcome.OTHER),
])
def test_exit_codes(code, outcome):
    assert Outcome.from_exit(code) is outcome
    assert outcome.describe() and "\n" not in outcome.describe()


def test_exit_255_with_timeout_is_timed_out():
    assert Outcome.from_exit(255, ["uac timed out after '2.000' seconds"]) is Outcome.TIMED_OUT
    assert Outcome.OK.ok and not Outcome.CALLS_FAILED.ok and Outcome.BIND_ERROR.fatal


# -- trace parsing ------------------------------------------------------------------
SEP = "-" * 47


def _entry(stamp: str, direction: str, msg: str, transport: str = "UDP") -> str:
    data = msg.replace("\n", "\r\n")
    size = len(data.encode())
    head = (f"{transport} message sent ({size} bytes):" if direction == "sent"
            else f"{transport} message received [{size}] bytes :")
    return f"{SEP} 2026-11-28 {stamp}\n{head}\n\n{data}\n"


SDP_OFFER = ("v=0\no=voipqa 1 1 IN IP4 127.0.0.1\ns=voipqa\nc=IN IP4 127.0.0.1\nt=0 0\n"
             "m=audio 6000 RTP/AVP 0 8 101\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n"
             "a=rtpmap:101 telephone-event/8000\n")
SDP_ANSWER = ("v=0\no=callee 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n"
              "m=audio 7000 RTP/AVP 8 101\na=rtpmap:8 PCMA/8000\na=rtpmap:101 telephone-event/8000\n")


def _req(method: str, cseq: int, *, branch: str, to_tag: str | None = None, body: str = "",
         extra: str = "", call_id: str = "1-42@127.0.0.1") -> str:
    to = "<sip:1000@example.test>" + (f";tag={to_tag}" if to_tag else "")
    ctype = "Content-Type: application/sdp\n" if body else ""
    return (f"{method} sip:1000@example.test SIP/2.0\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5071;branch={branch}\n"
            f'From: "alice" <sip:alice@example.test>;tag=42SIPpTag001\nTo: {to}\n'
            f"Call-ID: {call_id}\nCSeq: {cseq} {method}\nMax-Forwards: 70\n{extra}{ctype}"
            f"Content-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}\n\n{body}")


def _resp(code: int, reason: str, cseq: int, *, branch: str, to_tag: str | None = "t1",
          body: str = "", extra: str = "", method: str = "INVITE", call_id: str = "1-42@127.0.0.1") -> str:
    to = "<sip:1000@example.test>" + (f";tag={to_tag}" if to_tag else "")
    ctype = "Content-Type: application/sdp\n" if body else ""
    return (f"SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP 127.0.0.1:5071;branch={branch}\n"
            f'From: "alice" <sip:alice@example.test>;tag=42SIPpTag001\nTo: {to}\n'
            f"Call-ID: {call_id}\nCSeq: {cseq} {method}\n{extra}{ctype}"
            f"Content-Length: {len(body.replace(chr(10), chr(13) + chr(10)))}\n\n{body}")


def _ts(stamp: str) -> float:
    return datetime.strptime(f"2026-11-28 {stamp}", "%Y-%m-%d %H:%M:%S.%f").timestamp()


CHALLENGED_CALL = (
    "Problem EAGAIN on socket  7 and poll_idx  is 1 \n"
    + _entry("10:00:00.000000", "sent", _req("INVITE", 1, branch="z9hG4bK-1-inv1", body=SDP_OFFER))
    + _entry("10:00:00.010000", "received", _resp(100, "Trying", 1, branch="z9hG4bK-1-inv1", to_tag=None))
    + _entry("10:00:00.020000", "received", _resp(407, "Proxy Authentication Required", 1,
                                                  branch="z9hG4bK-1-inv1",
                                                  extra='Proxy-Authenticate: Digest realm="x", nonce="n"\n'))
    + _entry("10:00:00.021000", "sent", _req("ACK", 1, branch="z9hG4bK-1-inv1", to_tag="t1"))
    + _entry("10:00:00.022000", "sent", _req("INVITE", 2, branch="z9hG4bK-1-inv2", body=SDP_OFFER,
                                             extra='Proxy-Authorization: Digest username="alice", response="ff00"\n'))
    # a retransmission of the INVITE (same branch) is not a new transaction
    + _entry("10:00:00.522000", "sent", _req("INVITE", 2, branch="z9hG4bK-1-inv2", body=SDP_OFFER,
                                             extra='Proxy-Authorization: Digest username="alice", response="ff00"\n'))
    + _entry("10:00:00.600000", "received", _resp(180, "Ringing", 2, branch="z9hG4bK-1-inv2"))
    + _entry("10:00:01.000000", "received", _resp(200, "OK", 2, branch="z9hG4bK-1-inv2", body=SDP_ANSWER))
    + f"{SEP}\nIgnoring provisional UDP message for transaction invite2:\n\nSIP/2.0 183 Session Progress\n\n"
    + _entry("10:00:01.001000", "sent", _req("ACK", 2, branch="z9hG4bK-1-ack2", to_tag="t1"))
    + _entry("10:00:03.001000", "sent", _req("BYE", 3, branch="z9hG4bK-1-bye", to_tag="t1"))
    + _entry("10:00:03.002000", "received", _resp(200, "OK", 3, branch="z9hG4bK-1-bye", method="BYE"))
)

REJECTED_CALL = (
    _entry("10:00:05.000000", "sent", _req("INVITE", 1, branch="b1", body=SDP_OFFER, call_id="2-42@h"), "TCP")
    + _entry("10:00:05.300000", "received", _resp(183, "Session Progress", 1, branch="b1", call_id="2-42@h",
                                                  body=SDP_ANSWER), "TCP")
    + _entry("10:00:05.500000", "received", _resp(486, "Busy Here", 1, branch="b1", call_id="2-42@h"), "TCP")
    + _entry("10:00:05.501000", "sent", _req("ACK", 1, branch="b1", to_tag="t1", call_id="2-42@h"), "TCP")
)


def test_parse_message_log_entries():
    msgs = parse_message_log(CHALLENGED_CALL.encode())
    assert len(msgs) == 11  # the stray line and the "Ignoring provisional" note are skipped
    first = msgs[0]
    assert first.direction == "sent" and first.transport == "udp"
    assert first.timestamp == pytest.approx(_ts("10:00:00.000000"))
    assert first.size == len(first.data) and first.data.startswith(b"INVITE ")
    assert first.data.endswith(b"telephone-event/8000\r\n")
    assert [m.direction for m in msgs[:3]] == ["sent", "received", "received"]


def test_callresult_after_challenge():
    (call,) = build_calls(parse_message_log(CHALLENGED_CALL.encode()))
    assert call.call_id == "1-42@127.0.0.1" and call.role == "caller"
    assert call.from_user == "alice" and call.to_user == "1000"
    assert call.from_uri == "sip:alice@example.test" and call.transport == "udp"
    assert call.challenges == 1 and call.invites == 2
    assert call.final_code == 200 and call.final_reason == "OK"
    assert call.offered_codecs == ["PCMU", "PCMA", "telephone-event"]
    assert call.answered_codec == "PCMA"
    assert call.started == pytest.approx(_ts("10:00:00.000000"))
    assert call.answered == pytest.approx(_ts("10:00:01.000000"))
    assert call.ended == pytest.approx(_ts("10:00:03.001000"))
    assert call.pdd_ms == pytest.approx(600.0)
    assert call.setup_ms == pytest.approx(1000.0)
    assert call.duration_s == pytest.approx(2.001)
    assert call.bye_by == "caller" and call.retransmissions == 1
    assert call.provisional == [180] and not call.parse_errors


def test_callresult_rejected_and_grouping():
    calls = build_calls(parse_message_log((CHALLENGED_CALL + REJECTED_CALL).encode()))
    assert [c.call_id for c in calls] == ["1-42@127.0.0.1", "2-42@h"]
    busy = calls[1]
    assert busy.transport == "tcp" and busy.final_code == 486 and busy.final_reason == "Busy Here"
    assert busy.challenges == 0 and busy.answered is None and busy.duration_s is None
    assert busy.setup_ms is None and busy.bye_by is None
    assert busy.pdd_ms == pytest.approx(300.0)
    assert busy.answered_codec == "PCMA"  # early-media SDP answer
    assert busy.ended == pytest.approx(_ts("10:00:05.500000"))


def test_callee_bye_and_unparsable_message():
    log = (_entry("10:00:00.000000", "sent", _req("INVITE", 1, branch="b1", body=SDP_OFFER))
           + _entry("10:00:00.100000", "received", _resp(200, "OK", 1, branch="b1", body=SDP_ANSWER))
           + _entry("10:00:00.101000", "sent", _req("ACK", 1, branch="b2", to_tag="t1"))
           + _entry("10:00:00.600000", "received", "BYE sip:alice@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP h;branch=x\n"
                    "From: <sip:1000@example.test>;tag=t1\nTo: <sip:alice@example.test>;tag=42SIPpTag001\n"
                    "Call-ID: 1-42@127.0.0.1\nCSeq: 1 BYE\nContent-Length: 0\n\n")
           + _entry("10:00:00.601000", "received", "this is not SIP\nCall-ID: 1-42@127.0.0.1\n\n"))
    (call,) = build_calls(parse_message_log(log))
    assert call.bye_by == "callee" and call.duration_s == pytest.approx(0.5)
    assert call.final_code == 200 and len(call.parse_errors) == 1


def test_message_log_from_real_sipp_file_shape(tmp_path):
    # the size field may disagree with a truncated file: parse up to the end, keep going
    text = _entry("10:00:00.000000", "sent", _req("OPTIONS", 1, branch="b"))
    truncated = text[:-40]
    path = tmp_path / "m.log"
    path.write_text(truncated)
    (msg,) = parse_message_log(path)
    assert msg.data.startswith(b"OPTIONS")
    assert parse_message_log(tmp_path / "missing.log") == []


STAT = (
    "StartTime;LastResetTime;CurrentTime;ElapsedTime(P);ElapsedTime(C);TargetRate;CallRate(P);CallRate(C);"
    "TotalCallCreated;CurrentCall;SuccessfulCall(P);SuccessfulCall(C);FailedCall(P);FailedCall(C);"
    "Retransmissions(P);Retransmissions(C);CallLength(C);\n"
    "2026-11-28\t00:15:36.902252\t1795824936.902252;2026-11-28\t00:15:36.902252\t1795824936.902252;"
    "2026-11-28\t00:15:36.903123\t1795824936.903123;00:00:00;00:00:00;10;0;0;0;0;0;0;0;0;0;0;00:00:00:000000;\n"
    "2026-11-28\t00:15:36.902252\t1795824936.902252;2026-11-28\t00:15:37.214175\t1795824937.214175;"
    "2026-11-28\t00:15:37.214278\t1795824937.214278;00:00:00;00:00:01;10;0;3.20513;3;0;0;2;0;1;0;4;00:00:00:208000;\n"
)


def test_parse_stat_file(tmp_path):
    rows = parse_stat_file(STAT)
    assert len(rows) == 2
    assert rows[1]["TotalCallCreated"] == 3 and rows[1]["SuccessfulCall(C)"] == 2
    assert rows[1]["CallRate(C)"] == pytest.approx(3.20513)
    assert rows[1]["StartTime"].startswith("2026-11-28\t00:15:36")
    assert "" not in rows[0]
    summary = stat_summary(rows)
    assert summary["FailedCall(C)"] == 1 and summary["Retransmissions(C)"] == 4
    assert summary["CallLength(C)"] == "00:00:00:208000"
    path = tmp_path / "s.csv"
    path.write_text(STAT)
    assert parse_stat_file(path) == rows
    assert parse_stat_file(tmp_path / "none.csv") == [] and stat_summary([]) == {}


def test_parse_error_file():
    text = ("2026-11-28\t00:16:06.765638\t1795824966.765638: uac timed out after '2.000' seconds\n\n"
            "2026-11-28\t00:16:07.000000\t1795824967.000000: Aborting call on unexpected message\n"
            'Proxy-Authorization: Digest username="a",response="deadbeef"\n')
    lines = parse_error_file(text)
    assert lines[0] == "uac timed out after '2.000' seconds"
    assert lines[1] == "Aborting call on unexpected message"
    assert "deadbeef" not in lines[2] and len(lines) == 3


def test_free_port_helper_sanity():
    # the agent's ports are really free on UDP and TCP when handed out
    agent = Agent("uas").ensure_ports()
    for port in (agent.port, agent.control_port):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", port))


# -- generated scenarios, new keys, new CallResult fields ---------------------------------
def test_generated_scenarios_are_up_to_date():
    from qa.sipp import scenarios

    for path, text in scenarios.files().items():
        assert path.read_text(encoding="iso-8859-1") == text, (
            f"{path.name} differs from qa/sipp/scenarios.py: run python -m qa.sipp.scenarios")
    assert scenarios.main(["--check"]) == 0


@pytest.mark.parametrize("name", ["uac_media", "uac_dtmf", "uac_dtmf_info", "uac_session_timer",
                                  "uac_large_invite", "uac_cancel"])
def test_new_scenarios_share_the_call_flow(name):
    text = (SIPP_DIR / f"{name}.xml").read_text()
    for code in (403, 404, 486, 488, 503):
        assert f'<recv response="{code}" optional="true" response_txn="invite1" next="failed1"/>' in text
    assert 'next="callee_bye"' in text and "[authentication]" in text
    assert '<recv response="407" optional="true" auth="true" response_txn="invite1" next="auth"/>' in text


def test_scenario_specific_elements():
    read = lambda n: (SIPP_DIR / f"{n}.xml").read_text()  # noqa: E731
    assert '<exec play_pcap_audio="[media_pcap]"/>' in read("uac_dtmf")
    assert '<pause variable="media_ms"/>' in read("uac_dtmf")
    info = read("uac_dtmf_info")
    assert "Content-Type: application/dtmf-relay" in info and "Signal=[$digit]" in info
    assert 'search_in="var" variable="digits_left"' in info and "CSeq: [$cseq] INFO" in info
    timer = read("uac_session_timer")
    assert "Session-Expires: [session_expires];refresher=uac" in timer and "Min-SE: [min_se]" in timer
    assert "Supported: timer" in timer and "<send retrans=\"500\" start_txn=\"bye\">" not in timer
    assert "X-Padding: [padding]" in read("uac_large_invite")
    cancel = read("uac_cancel")
    assert "CSeq: 1 CANCEL" in cancel and "branch=z9hG4bK-[pid]-[call_number]-inv1" in cancel
    assert '<pause variable="cancel_ms"/>' in cancel


def test_new_keys_get_defaults_only_where_used(tmp_path):
    keys = _keys(Agent("uac_session_timer", remote="127.0.0.1:5060", service="1").argv(tmp_path))
    assert keys["session_expires"] == "1800" and keys["min_se"] == "90"
    assert "padding" not in keys and "cancel_ms" not in keys and "dtmf_digits" not in keys
    keys = _keys(Agent("uac_large_invite", remote="127.0.0.1:5060", service="1",
                       keys={"padding_bytes": "2000"}).argv(tmp_path))
    assert keys["padding"] == "x" * 2000 and "padding_bytes" not in keys
    keys = _keys(Agent("uac_dtmf_info", remote="127.0.0.1:5060", service="1", dtmf="12*#abcd").argv(tmp_path))
    assert keys["dtmf_digits"] == "12*#ABCD"
    keys = _keys(Agent("uac_cancel", remote="127.0.0.1:5060", service="1").argv(tmp_path))
    assert keys["cancel_ms"] == "1000"


@pytest.mark.parametrize("bad", ["", "12x", "1" * 17])
def test_bad_dtmf_and_padding(bad, tmp_path):
    with pytest.raises(BadInput, match="dtmf"):
        Agent("uac_dtmf_info", dtmf=bad)
    with pytest.raises(BadInput, match="padding_bytes"):
        Agent("uac_large_invite", remote="127.0.0.1:5060", keys={"padding_bytes": "x"}).argv(tmp_path)


def test_callresult_session_timer_fields():
    granted = (_entry("10:00:00.000000", "sent", _req("INVITE", 1, branch="b1", body=SDP_OFFER,
                                                      extra="Session-Expires: 90;refresher=uac\n"))
               + _entry("10:00:00.100000", "received", _resp(200, "OK", 1, branch="b1", body=SDP_ANSWER,
                                                             extra="Session-Expires: 120;refresher=uas\n")))
    (call,) = build_calls(parse_message_log(granted))
    assert call.session_expires == 120 and call.min_se is None
    size = len(_req("INVITE", 1, branch="b1", body=SDP_OFFER,
                    extra="Session-Expires: 90;refresher=uac\n").replace("\n", "\r\n").encode())
    assert call.request_bytes == size and call.transport_sent == "udp"
    too_small = (_entry("10:00:00.000000", "sent", _req("INVITE", 1, branch="b1", body=SDP_OFFER), "TCP")
                 + _entry("10:00:00.100000", "received", _resp(422, "Session Interval Too Small", 1,
                                                               branch="b1", extra="Min-SE: 90\n"), "TCP"))
    (call,) = build_calls(parse_message_log(too_small))
    assert call.final_code == 422 and call.min_se == 90 and call.session_expires is None
    assert call.transport_sent == "tcp" and call.dtmf_sent is None

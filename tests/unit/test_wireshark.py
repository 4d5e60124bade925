"""Wireshark display filters over one call (issue 12): the call's frames found in one pass,
matched by pyshark with their original frame numbers, and every failure path one line:
a bad filter (tshark's reason), a filter that matches nothing, a call not in the capture."""

from __future__ import annotations

import json
import subprocess

import pytest

from qa.analysis.wireshark import (BadFilter, NoCallFrames, call_capture, call_frames, check_filter, match,
                                   whole_capture)
from qa.capture.model import Payload
from qa.cli import main
from qa.paths import ROOT
from qa.robot.wireshark import call_id_of
from qa.tools import have_tool

pytestmark = pytest.mark.skipif(not have_tool("tshark"), reason="tshark is needed (./bootstrap installs it)")

DTMF = ROOT / "robot_suites" / "data" / "rfc2833-digits.pcap"
DTMF_CALL = "dtmf-1@voipqa.test"
DECLINED = ROOT / "robot_suites" / "data" / "declined-603.pcap"


def _tshark_frames(path, expression: str) -> list[int]:
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-Y", expression, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, check=True).stdout
    return [int(n) for n in out.split()]


def test_a_bad_filter_is_one_line_with_tsharks_reason():
    with pytest.raises(BadFilter) as exc:
        check_filter('sip.Methd == "INVITE"')
    assert str(exc.value) == ("display filter 'sip.Methd == \"INVITE\"': Left side of \"==\" expression must be "
                              "a field or function, not sip.Methd.")
    with pytest.raises(BadFilter, match="display filter is empty"):
        check_filter("  ")
    check_filter('sip.Method == "INVITE" && sdp.media.format contains "PCMA"')


def test_a_call_keeps_its_original_frame_numbers_and_only_its_frames(tmp_path):
    call = call_capture(DTMF, DTMF_CALL, tmp_path)
    whole = _tshark_frames(DTMF, f'sip.Call-ID == "{DTMF_CALL}" || rtp || rtpevent')
    assert call.frames == sorted(set(whole) & set(call.frames)) and len(call.frames) == len(whole)
    invites = match(call, 'sip.Method == "INVITE"', ["sip.Via.transport"])
    assert [m.frame for m in invites] == _tshark_frames(DTMF, 'sip.Method == "INVITE"')
    assert invites[0].fields == {"sip.Via.transport": ["UDP"]}
    digits = match(call, "rtpevent.end_of_event == 1", ["rtpevent.event_id"])
    assert [m.frame for m in digits] == _tshark_frames(DTMF, "rtpevent.end_of_event == 1")
    assert digits and digits[0].fields["rtpevent.event_id"]


def test_a_filter_that_matches_nothing_is_an_empty_list_and_a_missing_call_is_an_error(tmp_path):
    assert match(call_capture(DTMF, DTMF_CALL, tmp_path), "sip.Status-Code >= 500") == []
    with pytest.raises(NoCallFrames, match=r"rfc2833-digits.pcap: no frames for call 'not-in-it@x'"):
        call_capture(DTMF, "not-in-it@x", tmp_path)


def test_the_whole_capture_is_a_scope_too():
    scope = whole_capture(DECLINED)
    assert [m.frame for m in match(scope, "sip.Status-Code == 603")] == _tshark_frames(DECLINED, "sip.Status-Code == 603")
    assert scope.describe() == "the whole capture"


def _payload(frame: int, t: float, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> Payload:
    return Payload(frame, t, src[0], src[1], dst[0], dst[1], "udp", data, 4)


def _sip(first_line: str, call_id: str, sdp: tuple[str, int] | None = None) -> bytes:
    body = (f"v=0\r\no=- 1 1 IN IP4 {sdp[0]}\r\ns=-\r\nc=IN IP4 {sdp[0]}\r\nt=0 0\r\n"
            f"m=audio {sdp[1]} RTP/AVP 0\r\n").encode() if sdp else b""
    return f"{first_line}\r\nCall-ID: {call_id}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


def test_media_is_the_calls_between_its_sdp_addresses_until_its_bye():
    a, b, c = ("10.0.0.1", 4000), ("10.0.0.2", 6000), ("10.0.0.3", 4002)
    items = [
        _payload(1, 0.0, a, b, _sip("INVITE sip:x SIP/2.0", "one", ("10.0.0.1", 4000))),
        _payload(2, 0.1, b, a, _sip("SIP/2.0 200 OK", "one", ("10.0.0.2", 6000))),
        _payload(3, 0.2, a, b, b"\x80rtp"),                  # the call's media
        _payload(4, 0.3, c, b, b"\x80rtp"),                  # another sender to the same port
        _payload(5, 1.0, a, b, _sip("BYE sip:x SIP/2.0", "one")),
        _payload(6, 3.0, a, b, b"\x80rtp"),                  # the port reused after the BYE
        _payload(7, 3.0, a, b, _sip("INVITE sip:y SIP/2.0", "two")),
    ]
    assert call_frames(items, "one") == [1, 2, 3, 5]
    assert call_frames(items, "two") == [7]
    assert call_frames(items, "three") == []
    no_bye = [i for i in items if i.frame != 5]
    assert call_frames(no_bye, "one") == [1, 2, 3, 6], "without its BYE a call's media runs to the end"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_pcap_filter_exits_0_on_a_match_1_on_none_2_on_bad_input(capsys, tmp_path):
    code, out, _ = _run(capsys, "pcap", "filter", str(DTMF), "--call-id", DTMF_CALL, 'sip.Method == "INVITE"',
                        "--field", "sip.Via.transport", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["matched"] == 1 and doc["matches"][0]["fields"] == {"sip.Via.transport": ["UDP"]}
    code, out, _ = _run(capsys, "pcap", "filter", str(DTMF), "--call-id", DTMF_CALL, "sip.Status-Code >= 500")
    assert code == 1 and "0 frame(s) of call dtmf-1@voipqa.test" in out
    code, _, err = _run(capsys, "pcap", "filter", str(DTMF), "sip.Methd == 1")
    assert code == 2 and err.count("\n") == 1 and "display filter 'sip.Methd == 1': Left side" in err
    code, _, err = _run(capsys, "pcap", "filter", str(DTMF), "--call-id", "nope", "sip")
    assert code == 2 and "no frames for call 'nope'" in err
    garbage = tmp_path / "garbage.pcap"
    garbage.write_bytes(b"not a capture at all")
    code, _, err = _run(capsys, "pcap", "filter", str(garbage), "sip")
    assert code == 2 and err.startswith(f"voipqa: error: {garbage}")


def test_a_keyword_takes_a_call_record_a_dictionary_a_call_id_or_run():
    class Record:
        call_id = "abc@h"

    assert call_id_of(Record()) == "abc@h" and call_id_of({"call_id": "d@h"}) == "d@h"
    assert call_id_of("x@h") == "x@h" and call_id_of("run") is None
    with pytest.raises(ValueError, match="not a call"):
        call_id_of({"case": "no id"})


def test_each_finding_carries_wiresharks_verdict_on_its_frame(capsys):
    code, out, _ = _run(capsys, "pcap", "check", str(ROOT / "robot_suites" / "data" / "malformed-sip.pcap"),
                        "--second-opinion", "wireshark", "--json")
    doc = json.loads(out)
    assert code == 1 and doc["findings"]
    assert all(f["wireshark"] == "no complaint" for f in doc["findings"]), "tshark 4.0 has no word on these"


@pytest.mark.corpus("pcaps")
def test_wiresharks_expert_info_is_the_verdict_where_it_complains():
    from qa.analysis.wireshark import frame_verdicts
    from tests.corpus import CORPUS

    verdicts = frame_verdicts(CORPUS / "pcaps" / "sngrep-aaa.pcap", [6, 7, 8])
    assert verdicts == {6: "no complaint", 7: "DNS query retransmission. Original request in frame 6",
                        8: "DNS query retransmission. Original request in frame 6"}

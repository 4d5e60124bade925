"""The default call carries media: sipp/uac_media.xml (generated), its pcaps, and which
scenario the customer picks for a case (qa.cases.customers), without running SIPp."""

from __future__ import annotations

import re
import xml.dom.minidom
from pathlib import Path

import pytest

from qa.cases.checks import Expectation
from qa.cases.customers import (
    NEGOTIATED_MEDIA,
    CallSpec,
    _scenario,
    customer_sent_rtp,
    media_sent,
    plays_negotiated_media,
    sends_rtp,
)
from qa.paths import SIPP_DIR
from qa.sipp import Agent, CallResult, scenarios
from qa.sipp.media import (
    STATIC_PAYLOAD_TYPES,
    cached_audio_pcap,
    negotiated_play_keys,
    pcap_duration_ms,
    pcap_key,
    rtp_summary,
)

MEDIA_XML = SIPP_DIR / "uac_media.xml"


def _spec(**kw) -> CallSpec:
    return CallSpec(case="c", from_user="1001", to="1555000100", **kw)


# -- the generated scenario ------------------------------------------------------------------
def test_uac_media_is_generated_and_well_formed():
    assert scenarios.UAC_MEDIA in scenarios.SPECS
    assert MEDIA_XML.read_text(encoding="iso-8859-1") == scenarios.render(scenarios.UAC_MEDIA)
    xml.dom.minidom.parse(str(MEDIA_XML))


def test_the_answer_payload_type_is_read_from_both_200s():
    text = MEDIA_XML.read_text()
    ereg = ('<ereg regexp="m=audio [0-9]+ [A-Z/]+ ([0-9]+)" search_in="body" check_it="false" '
            'assign_to="m_audio,pt"/>')
    for n in (1, 2):
        line = next(li for li in text.splitlines() if f'<recv response="200" response_txn="invite{n}"' in li)
        assert ereg in line and f'next="answered{n}"' in line
    # the regexp finds the first format of the answer's m= line
    regexp = re.search(r'regexp="([^"]+)"', ereg).group(1)
    assert re.search(regexp, "v=0\r\nm=audio 4000 RTP/AVP 8 101\r\n").group(1) == "8"


@pytest.mark.parametrize("scenario", sorted(NEGOTIATED_MEDIA))
@pytest.mark.parametrize("codec,pt", sorted(STATIC_PAYLOAD_TYPES.items()))
def test_each_payload_type_branches_to_its_pcap(codec, pt, scenario):
    """Every scenario that plays the answer's codec (the default call, and the session-timer,
    padded-INVITE and SIP INFO calls) reads the answer's payload type and plays its pcap."""
    text = (SIPP_DIR / f"{scenario}.xml").read_text()
    low = codec.lower()
    for n in (1, 2):
        line = next(li for li in text.splitlines() if f'<recv response="200" response_txn="invite{n}"' in li)
        assert 'assign_to="m_audio,pt"' in line
    assert f'<strcmp assign_to="cmp_{low}" variable="pt" value="{pt}"/>' in text
    assert f'<test assign_to="is_{low}" variable="cmp_{low}" compare="equal" value="0"/>' in text
    assert f'<nop hide="true" test="is_{low}" next="play_{low}"/>' in text
    play = text.split(f'<label id="play_{low}"/>')[1].split("<label")[0]
    assert f'<exec play_pcap_audio="[{pcap_key(codec)}]"/>' in play
    assert f'play={codec}"/>' in play and 'next="media_started"' in play


@pytest.mark.parametrize("scenario, talk", [
    ("uac_media", "<!-- talk time: -d -->\n  <pause/>"),
    ("uac_large_invite", "<!-- talk time: -d -->\n  <pause/>"),
    ("uac_session_timer", "<!-- never refresh: the platform has to end the call at expiry -->"),
    ("uac_dtmf_info", "<!-- one INFO per digit"),
])
def test_no_pcap_plays_nothing_and_logs_it_then_the_scenario_goes_on(scenario, talk):
    text = (SIPP_DIR / f"{scenario}.xml").read_text()
    after_branches = text.split('next="play_g722"/>')[1].split('<label id="play_pcmu"/>')[0]
    assert 'play=none"/>' in after_branches and "play_pcap_audio" not in after_branches
    assert text.split('<label id="media_started"/>')[1].lstrip().startswith(talk)


def test_failures_end_the_call_as_in_uac_call():
    """Everything before the talk is the shared flow: a 403 or 488 ends the call as before."""
    media, call = MEDIA_XML.read_text(), (SIPP_DIR / "uac_call.xml").read_text()
    for code in (403, 404, 486, 488, 503):
        for n in (1, 2):
            line = f'<recv response="{code}" optional="true" response_txn="invite{n}" next="failed{n}"/>'
            assert line in media and line in call
    flow = lambda t, name: (t.split("<scenario")[1].split('<label id="talk"/>')[0]
                            .replace(name, "X").replace("/>", "></recv>"))
    flow_media = re.sub(r"><action>.*?</action></recv>", "></recv>", flow(media, "uac_media"))
    assert flow_media == flow(call, "uac_call")


def test_agent_passes_the_pcap_keys(tmp_path):
    keys = negotiated_play_keys(1.0, tmp_path)
    argv = Agent("uac_media", remote="127.0.0.1:5060", service="1", keys=keys).argv(tmp_path)
    given = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "-key"}
    assert {k: given[k] for k in keys} == keys
    assert {"pcap_pcmu", "pcap_pcma", "pcap_g722"} <= Agent("uac_media").scenario_keywords()


# -- the pcaps ------------------------------------------------------------------------------
def test_negotiated_pcaps_are_made_once_per_codec_and_duration(tmp_path):
    keys = negotiated_play_keys(2.5, tmp_path)
    assert set(keys) == {"pcap_pcmu", "pcap_pcma", "pcap_g722"}
    for codec, pt in STATIC_PAYLOAD_TYPES.items():
        path = Path(keys[pcap_key(codec)])
        assert path.is_absolute() and path.name == f"{codec.lower()}-2500ms.pcap"
        assert rtp_summary(path) == (pt, 125) and pcap_duration_ms(path) == 2500
    stamp = Path(keys["pcap_pcma"]).stat().st_mtime_ns
    assert negotiated_play_keys(2.5, tmp_path) == keys
    assert Path(keys["pcap_pcma"]).stat().st_mtime_ns == stamp          # cached, not rewritten
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(v).name for v in keys.values())


def test_cached_pcap_rounds_to_whole_frames(tmp_path):
    assert cached_audio_pcap("pcmu", 0.03, tmp_path).name == "pcmu-40ms.pcap"


# -- the customer's choice of scenario ---------------------------------------------------------
@pytest.mark.parametrize("kw,scenario", [
    ({}, "uac_media"),
    ({"transport": "tcp", "duration_s": 4.0}, "uac_media"),
    ({"codecs": ("PCMU", "PCMA")}, "uac_media"),
    ({"media": "none"}, "uac_call"),
    ({"media": "NONE"}, "uac_call"),
    ({"media": "PCMA"}, "uac_dtmf"),
    ({"expect": Expectation(final_code=403)}, "uac_call"),
    ({"expect": Expectation(final_code=488)}, "uac_call"),
    ({"expect": Expectation(final_code=None)}, "uac_call"),
    ({"session_expires": 90}, "uac_session_timer"),
    ({"padding": 1600}, "uac_large_invite"),
    ({"cancel_after_s": 2.0, "expect": Expectation(final_code=487)}, "uac_cancel"),
    ({"dtmf": "12", "dtmf_mode": "info"}, "uac_dtmf_info"),
    ({"dtmf": "12", "dtmf_mode": "rfc4733"}, "uac_dtmf"),
    ({"kind": "register"}, "uac_register"),
])
def test_scenario_for_the_case(kw, scenario, tmp_path):
    name, keys = _scenario(_spec(**kw), tmp_path / "sipp" / "call-1")
    assert name == scenario
    assert plays_negotiated_media(_spec(**kw)) == (scenario in NEGOTIATED_MEDIA)
    pcaps = {k: v for k, v in keys.items() if k.startswith("pcap_")}
    if scenario in NEGOTIATED_MEDIA:
        assert set(pcaps) == {"pcap_pcmu", "pcap_pcma", "pcap_g722"}
        assert all(Path(v).parent == tmp_path / "sipp" / "media" for v in pcaps.values())
    else:
        assert not pcaps


def test_a_session_timer_call_plays_until_the_platform_ends_it(tmp_path):
    """Its audio lasts past the expiry (the platform's BYE ends it), not the 1 s talk time."""
    _, keys = _scenario(_spec(session_expires=90), tmp_path / "sipp" / "a")
    assert keys["session_expires"] == "90" and pcap_duration_ms(keys["pcap_pcmu"]) == 105_000


@pytest.mark.parametrize("kw", [{"session_expires": 90}, {"padding": 1600}, {"dtmf": "1", "dtmf_mode": "info"},
                                {"dtmf": "1"}])
def test_media_cannot_be_chosen_for_a_call_that_plays_its_own(kw):
    from qa.errors import BadInput

    with pytest.raises(BadInput, match="media=PCMA cannot be combined with"):
        _spec(media="PCMA", **kw)


def test_media_pcaps_last_the_call_and_are_shared_by_the_run(tmp_path):
    _, first = _scenario(_spec(duration_s=3.0), tmp_path / "sipp" / "a")
    _, second = _scenario(_spec(duration_s=3.0), tmp_path / "sipp" / "b")
    assert first == second and pcap_duration_ms(first["pcap_pcma"]) == 3000


def test_who_sends_rtp():
    assert sends_rtp(_spec()) and sends_rtp(_spec(media="PCMA"))
    assert sends_rtp(_spec(dtmf="1", dtmf_mode="inband")) and sends_rtp(_spec(dtmf="1"))
    assert sends_rtp(_spec(session_expires=90)) and sends_rtp(_spec(padding=1600))
    assert sends_rtp(_spec(dtmf="1", dtmf_mode="info"))                  # the answer's codec, beside its INFOs
    assert not sends_rtp(_spec(media="none")) and not sends_rtp(_spec(cancel_after_s=1.0))
    assert sends_rtp(_spec(transport="tls")) and not sends_rtp(_spec(transport="tls", media="none"))
    assert not sends_rtp(_spec(kind="register"))
    assert not sends_rtp(_spec(expect=Expectation(final_code=403)))


# -- what the record says the customer sent ----------------------------------------------------
def _answered(codec: str = "PCMA") -> CallResult:
    return CallResult(call_id="1-2@127.0.0.1", final_code=200, answered_codec=codec)


def _log(workdir: Path, line: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "actions.log").write_text(f"other line\n{line}\n")


def test_media_sent_names_the_played_codec(tmp_path):
    keys = negotiated_play_keys(1.0, tmp_path / "media")
    _log(tmp_path / "w", "media: 1-2@127.0.0.1 pt=8 play=PCMA")
    extra = media_sent(_spec(), "uac_media", keys, _answered(), tmp_path / "w")
    assert extra == {"media_sent": "PCMA (PT 8): 50 packets, 1.00 s"}
    assert customer_sent_rtp(extra) is True


def test_media_sent_of_a_call_cut_short(tmp_path):
    keys = negotiated_play_keys(10.0, tmp_path / "media")
    _log(tmp_path / "w", "media: 1-2@127.0.0.1 pt=0 play=PCMU")
    call = CallResult(call_id="1-2@127.0.0.1", final_code=200, answered_codec="PCMU", duration_s=3.01)
    assert media_sent(_spec(duration_s=10.0), "uac_media", keys, call, tmp_path / "w") == {
        "media_sent": "PCMU (PT 0): about 150 of 500 packets (the call ended after 3.01 s)"}


def test_media_sent_none_says_why(tmp_path):
    keys = negotiated_play_keys(1.0, tmp_path / "media")
    _log(tmp_path / "w", "media: 1-2@127.0.0.1 pt=111 play=none")
    extra = media_sent(_spec(), "uac_media", keys, _answered("opus"), tmp_path / "w")
    assert extra == {"media_sent": "none (opus (PT 111): no pcap for it)"}
    assert customer_sent_rtp(extra) is False
    _log(tmp_path / "w", "media: 1-2@127.0.0.1 pt= play=none")
    assert media_sent(_spec(), "uac_media", keys, _answered(None), tmp_path / "w") == {
        "media_sent": "none (the answer had no audio payload type)"}
    assert media_sent(_spec(media="none"), "uac_call", {}, _answered(), tmp_path) == {
        "media_sent": "none (media=none)"}
    assert media_sent(_spec(kind="register"), "uac_register", {}, _answered(), tmp_path) == {}
    assert media_sent(_spec(cancel_after_s=5.0), "uac_cancel", {}, _answered(), tmp_path) == {
        "media_sent": "none (uac_cancel sends no media)"}


def test_media_sent_of_explicit_and_dtmf_pcaps(tmp_path):
    from qa.sipp.media import audio_pcap, play_keys, rfc4733_pcap

    keys = play_keys(audio_pcap("PCMA", 1.0, tmp_path / "a.pcap"))
    assert media_sent(_spec(media="PCMA"), "uac_dtmf", keys, _answered(), tmp_path) == {
        "media_sent": "PCMA (PT 8): 50 packets, 1.00 s"}
    keys = play_keys(rfc4733_pcap("1", tmp_path / "d.pcap"))
    assert media_sent(_spec(dtmf="1"), "uac_dtmf", keys, _answered(), tmp_path)["media_sent"].startswith(
        "telephone-event (PT 101): 7 packets")


def test_unanswered_calls_record_no_media(tmp_path):
    failed = CallResult(call_id="x", final_code=403)
    assert media_sent(_spec(expect=Expectation(final_code=403)), "uac_call", {}, failed, tmp_path) == {}
    assert customer_sent_rtp({}) is None

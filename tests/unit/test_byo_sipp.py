"""Bring your own SIPp scenario, without SIPp: reading scenarios, choosing peers, the run glue."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.cases.byo import (
    ByoOptions,
    _scenario_ok,
    build_record,
    split_sources,
    with_scenarios,
    write_suite,
)
from qa.errors import BadInput
from qa.paths import ROOT
from qa.sipp import Outcome, SippResult
from qa.sipp.byo import (
    Account,
    ScenarioError,
    ScenarioRun,
    _escape_attribute_lt,
    choose_peer,
    inf_row,
    inspect_scenario,
    runnable_copy,
)

INVITE = """<send><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Call-ID: [call_id]
Content-Length: 0
]]></send>"""
ACK_BYE = """<send><![CDATA[ACK sip:[service]@[remote_ip] SIP/2.0]]></send>
<send><![CDATA[BYE sip:[service]@[remote_ip] SIP/2.0]]></send>"""
OK = """<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
]]></send>"""


def scenario(tmp_path: Path, body: str, name: str = "s.xml") -> Path:
    path = tmp_path / name
    path.write_text(f'<?xml version="1.0"?>\n<scenario name="t">\n{body}\n</scenario>\n')
    return path


def test_uac_without_auth_calls_the_carrier(tmp_path: Path) -> None:
    info = inspect_scenario(scenario(tmp_path, INVITE + '<recv response="100" optional="true"/>'
                                     '<recv response="200"/>' + ACK_BYE + '<pause milliseconds="1500"/>'))
    assert (info.role, info.initial_method, info.authentication) == ("uac", "INVITE", False)
    assert info.sends == ("INVITE", "ACK", "BYE") and info.responses == (200,) and info.pause_s == 1.5
    assert choose_peer(info) == "carrier"


def test_uac_with_authentication_or_fields_goes_through_the_platform(tmp_path: Path) -> None:
    auth = inspect_scenario(scenario(tmp_path, INVITE.replace("Call-ID", "[authentication]\nCall-ID")))
    assert auth.authentication and choose_peer(auth) == "platform"
    fields = inspect_scenario(scenario(tmp_path, INVITE.replace("[service]", "[field0]"), "f.xml"))
    assert fields.fields == (0,) and choose_peer(fields) == "platform"


def test_uas_is_called_by_voipqas_uac(tmp_path: Path) -> None:
    info = inspect_scenario(scenario(tmp_path, '<recv request="INVITE"/>' + OK + '<recv request="ACK"/>'
                                     '<recv request="BYE"/>' + OK))
    assert (info.role, info.initial_method, info.receives) == ("uas", "INVITE", ("INVITE", "ACK", "BYE"))
    assert choose_peer(info) == "uac"


@pytest.mark.parametrize("body, why", [
    ('<recv request="INVITE"/>' + OK + '<recv request="PRACK"/>', "needs a UAC that sends PRACK"),
    ('<recv request="INVITE"/>' + OK + '<recv request="INVITE"/>', "re-INVITE"),
    ('<recv request="SUBSCRIBE"/>', "waits for SUBSCRIBE"),
    (INVITE + '<sendCmd><![CDATA[Call-ID: [call_id]]]></sendCmd>', "-3pcc twin"),
    (INVITE.replace("INVITE sip", "MESSAGE sip"), "needs a peer that accepts MESSAGE"),
    (INVITE + ACK_BYE.replace("ACK sip", "UPDATE sip"), "sends UPDATE in the call"),
])
def test_peers_voipqa_does_not_provide_are_one_line(tmp_path: Path, body: str, why: str) -> None:
    path = scenario(tmp_path, body)
    with pytest.raises(ScenarioError) as err:
        choose_peer(inspect_scenario(path))
    assert why in str(err.value) and "\n" not in str(err.value) and str(err.value).startswith(str(path))


def test_invalid_xml_names_file_line_and_column(tmp_path: Path) -> None:
    path = scenario(tmp_path, '<recv response="200">\n<pause/>')
    with pytest.raises(ScenarioError, match=rf"^{path}:5:3: invalid XML: mismatched tag$"):
        inspect_scenario(path)


def test_lt_in_an_attribute_is_refused_with_what_sipp_would_do(tmp_path: Path) -> None:
    path = scenario(tmp_path, INVITE + '\n<nop display=">>> hold <<<<"/>\n' + ACK_BYE)
    with pytest.raises(ScenarioError, match=rf"^{path}:\d+:\d+: invalid XML: '<' inside an attribute value.*cut short"):
        inspect_scenario(path)


def test_escape_attribute_lt_leaves_cdata_and_comments() -> None:
    text = '<a x="<<" y=\'<\'><!-- <b --><![CDATA[ <c d="<"> ]]></a>'
    assert _escape_attribute_lt(text) == '<a x="&lt;&lt;" y=\'&lt;\'><!-- <b --><![CDATA[ <c d="<"> ]]></a>'


def test_not_a_scenario_and_unreadable(tmp_path: Path) -> None:
    other = tmp_path / "o.xml"
    other.write_text("<other/>")
    with pytest.raises(ScenarioError, match="root element is <other>"):
        inspect_scenario(other)
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        inspect_scenario(tmp_path / "missing.xml")


def test_pcap_paths_resolve_from_the_scenario_folder(tmp_path: Path) -> None:
    (tmp_path / "pcap").mkdir()
    (tmp_path / "pcap" / "a.pcap").write_bytes(b"")
    folder = tmp_path / "flows"
    folder.mkdir()
    play = '<nop><action><exec play_pcap_audio="../pcap/a.pcap"/></action></nop>'
    info = inspect_scenario(scenario(folder, INVITE + play))
    assert info.pcap_files == ((tmp_path / "pcap" / "a.pcap").resolve(),)
    work = tmp_path / "work"
    work.mkdir()
    copy = runnable_copy(info, work)
    assert copy.parent == work and f'play_pcap_audio="{(tmp_path / "pcap" / "a.pcap").resolve()}"' in copy.read_text()
    with pytest.raises(ScenarioError, match="media file .*nope.pcap"):
        inspect_scenario(scenario(folder, INVITE + play.replace("a.pcap", "nope.pcap"), "n.xml"))


def test_runnable_copy_is_the_file_itself_without_relative_pcaps(tmp_path: Path) -> None:
    info = inspect_scenario(scenario(tmp_path, INVITE))
    assert runnable_copy(info, tmp_path) == info.path.resolve()


def test_inf_row_from_the_template() -> None:
    account = Account(user="1001", password="pw", domain="voipqa.lab", service="155")
    assert inf_row("{user};{user};{password}", account) == "1001;1001;pw"
    assert inf_row("{user};{domain};[authentication username={user} password={password}]", account) == \
        "1001;voipqa.lab;[authentication username=1001 password=pw]"
    with pytest.raises(BadInput, match="unknown placeholder"):
        inf_row("{nope}", account)


def test_stop_now_exit_97_is_the_scenarios_intended_end(tmp_path: Path) -> None:
    stops = inspect_scenario(scenario(tmp_path, '<recv request="INVITE"/>' + OK +
                                      '<nop><action><exec int_cmd="stop_now"/></action></nop>'))
    assert stops.stops_itself
    result = SippResult(exit_code=97, outcome=Outcome.INTERNAL_EXIT)
    assert _scenario_ok(result, stops) and not _scenario_ok(result, None)


def test_a_failed_scenario_fails_the_customer_witness_with_sipps_line(tmp_path: Path) -> None:
    info = inspect_scenario(scenario(tmp_path, INVITE))
    failed = SippResult(exit_code=1, outcome=Outcome.CALLS_FAILED,
                        errors=["The following events occurred:", "Aborting call on unexpected message"],
                        workdir=tmp_path)
    record = build_record(ScenarioRun(info, "carrier", "127.0.0.1:5060", failed),
                          "case", Account("1001", "pw", "d", "155"), ByoOptions())
    assert record.verdict == "fail"
    assert record.reasons == [
        ("customer: no call in the message log: SIPp exit 1: at least one call failed; "
         "0 call(s), 0 answered; The following events occurred:"),
        "customer: scenario: SIPp exit 1: at least one call failed; Aborting call on unexpected message"]


def test_run_sources_wrap_xml_in_a_generated_suite(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    xml = scenario(tmp_path / "flows", INVITE, "my uac.xml")
    suites, scenarios = split_sources(["robot_suites/smoke.robot", str(xml)])
    assert suites == ["robot_suites/smoke.robot"] and scenarios == [xml.resolve()]
    assert with_scenarios(["robot_suites/smoke.robot"], tmp_path) == ["robot_suites/smoke.robot"]
    suite = write_suite([xml.resolve(), xml.resolve()], tmp_path / "out")
    text = suite.read_text()
    assert "Run SIPp Scenario    " in text and "expect=200" in text and "Call Should Pass" in text
    assert "\nflows my uac\n" in text and "\nflows my uac 2\n" in text
    with pytest.raises(BadInput, match="no such file"):
        split_sources([str(tmp_path / "absent.xml")])


def test_shipped_example_is_a_uac_for_the_platform() -> None:
    info = inspect_scenario(ROOT / "sipp" / "examples" / "uac_basic.xml")
    assert (info.role, info.authentication, info.fields) == ("uac", True, (0,))
    assert choose_peer(info) == "platform"

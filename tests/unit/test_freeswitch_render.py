"""The FreeSWITCH carrier configuration is generated from the number plan and never drifts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from qa.carrier.cli import render_freeswitch
from qa.carrier.freeswitch import FILES, SIP_PORT, check, extension_name, ordered_routes, render, write
from qa.carrier.plan import load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[2]
PLAN_PATH = ROOT / "carriers" / "numberplan.yaml"
OUT = ROOT / "carriers" / "freeswitch"
PLAN = load_plan(PLAN_PATH)
FILES_NOW = render(PLAN)


def _xml(rel: str) -> ET.Element:
    return ET.fromstring(FILES_NOW[rel])


def _extensions() -> dict[str, ET.Element]:
    context = _xml("dialplan/voipqa.xml").find("context")
    return {e.get("name"): e for e in context.findall("extension")}


def _actions(ext: ET.Element) -> list[tuple[str, str | None]]:
    return [(a.get("application"), a.get("data")) for a in ext.iter("action")]


def test_files_on_disk_equal_a_fresh_render():
    """The drift test: run `voipqa carrier render-freeswitch` after changing the plan."""
    assert sorted(FILES_NOW) == sorted(FILES)
    assert check(FILES_NOW, OUT) == [], "carriers/freeswitch is stale: run voipqa carrier render-freeswitch"


def test_render_is_deterministic():
    assert render(load_plan(PLAN_PATH)) == FILES_NOW


@pytest.mark.parametrize("rel", FILES)
def test_every_file_is_well_formed_xml(rel):
    ET.fromstring(FILES_NOW[rel])
    ET.parse(OUT / rel)


def test_every_route_has_its_extension_with_the_right_regex_longest_first():
    exts = _extensions()
    order = [e for e in exts if e.startswith("voipqa-") and e not in ("voipqa-rtp-stopped", "voipqa-no-route")]
    assert order == [extension_name(r) for r in ordered_routes(PLAN)]
    assert len(order) == len(PLAN.routes)
    lengths = [len(r.prefix) for r in ordered_routes(PLAN)]
    assert lengths == sorted(lengths, reverse=True)
    for route in PLAN.routes:
        conds = exts[extension_name(route)].findall("condition")
        dest = [c for c in conds if c.get("field") == "destination_number"]
        assert [c.get("expression") for c in dest] == [f"^{route.prefix}\\d*$"]
        assert re.match(dest[0].get("expression"), route.prefix + "123")
        assert ("set", f"voipqa_route={route.name}") in _actions(exts[extension_name(route)])
    assert list(exts)[-1] == "voipqa-no-route"


def test_reject_codes_are_mapped_to_respond():
    exts = _extensions()
    for route in PLAN.routes:
        responds = [d for a, d in _actions(exts[extension_name(route)]) if a == "respond"]
        if route.reject is not None and not route.blackhole:
            assert responds == [f"{route.reject} {route.reason}"]
        else:
            assert responds == []
    assert ("respond", "404 Not Found") in _actions(exts["voipqa-no-route"])


def test_route_behaviours_map_to_applications():
    exts = _extensions()
    acts = lambda number: _actions(exts[extension_name(PLAN.lookup(number, "carrier-c"))])  # noqa: E731
    assert ("set", "absolute_codec_string=PCMA") in acts("15550050")
    assert ("set", "absolute_codec_string=G722") in acts("15550052")
    assert ("set", "absolute_codec_string=OPUS") in acts("15550053")
    assert ("set", "absolute_codec_string=G729") in acts("15550054")
    assert ("sched_hangup", "+3 NORMAL_CLEARING") in acts("15550040")
    assert acts("15550060")[2:5] == [("pre_answer", None), ("playback", "tone_stream://%(1000,0,1000);loops=2"),
                                     ("answer", None)]   # early media with sound on it
    assert acts("15550010")[2:5] == [("ring_ready", None), ("sleep", "2000"), ("answer", None)]
    assert acts("15550020")[1:] == [("ring_ready", None), ("park", None)]
    assert ("sched_transfer", "+3 voipqa-rtp-stopped XML voipqa") in acts("15550070")
    dtmf = [a for a, _ in acts("15550080")]
    assert "start_dtmf" in dtmf and "read" in dtmf and dtmf.index("start_dtmf") < dtmf.index("read")
    assert ("echo", None) in acts("1555000")
    assert ("hangup", "NO_USER_RESPONSE") in acts("16660020")


def test_carrier_restricted_routes_have_a_carrier_condition():
    exts = _extensions()
    for route in PLAN.routes:
        conds = [(c.get("field"), c.get("expression")) for c in exts[extension_name(route)].findall("condition")]
        if route.carriers:
            assert conds[0] == ("${voipqa_carrier}", "^(carrier-c)$")
        else:
            assert all(f == "destination_number" for f, _ in conds)
    assert 'voipqa_carrier=' in FILES_NOW["vars_voipqa.xml"]


def test_profile_settings():
    params = {p.get("name"): p.get("value") for p in _xml("sip_profiles/voipqa.xml").iter("param")}
    assert params["sip-port"] == str(SIP_PORT) == "5080" and params["context"] == "voipqa"
    assert params["inbound-codec-negotiation"] == "generous" and params["inbound-late-negotiation"] == "true"
    assert params["dtmf-type"] == "rfc2833" and params["liberal-dtmf"] == "true"
    assert params["inbound-codec-prefs"].split(",") == ["PCMU", "PCMA", "G722", "OPUS", "G729"]


def test_json_cdr_and_modules():
    params = {p.get("name"): p.get("value") for p in _xml("autoload_configs/json_cdr.conf.xml").iter("param")}
    assert params["log-dir"] and params["encode-values"] == "false"
    modules = [m.get("module") for m in _xml("autoload_configs/modules.conf.xml").iter("load")]
    for needed in ("mod_sofia", "mod_dptools", "mod_dialplan_xml", "mod_json_cdr", "mod_tone_stream",
                   "mod_opus", "mod_spandsp", "mod_g729"):
        assert needed in modules
    assert len(modules) == len(set(modules))


def test_special_characters_are_escaped():
    plan = parse_plan({"version": 1, "routes": [{"prefix": "1", "name": 'a<b>&"c', "reject": 486,
                                                  "reason": "Busy & <gone>"}]})
    files = render(plan)
    root = ET.fromstring(files["dialplan/voipqa.xml"])
    assert ("respond", "486 Busy & <gone>") in _actions(root)


def test_cli_check_names_drifted_files_and_write_fixes_them(tmp_path, capsys):
    out = tmp_path / "fs"
    assert render_freeswitch(PLAN_PATH, out, check_only=True) == 1
    assert "dialplan/voipqa.xml: differs" in capsys.readouterr().out
    assert render_freeswitch(PLAN_PATH, out) == 0
    assert render_freeswitch(PLAN_PATH, out, check_only=True) == 0
    (out / "dialplan" / "voipqa.xml").write_text("<include/>\n")
    capsys.readouterr()
    assert render_freeswitch(PLAN_PATH, out, check_only=True) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [f"{out / 'dialplan' / 'voipqa.xml'}: differs from a fresh render of {PLAN_PATH}"]


def test_cli_bad_plan_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "plan.yaml"
    bad.write_text("version: 1\nroutes:\n  - prefix: '1'\n    blackhole: true\n    reject: 503\n")
    assert render_freeswitch(bad, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"carrier: {bad}: routes[0].blackhole: makes no sense on a route that rejects"]
    assert not (tmp_path / "out").exists()


def test_voipqa_cli_has_render_freeswitch(tmp_path):
    from qa.cli import main
    assert main(["carrier", "render-freeswitch", "--plan", str(PLAN_PATH), "--out", str(OUT), "--check"]) == 0


def test_write_creates_directories(tmp_path):
    paths = write(FILES_NOW, tmp_path / "x")
    assert sorted(p.relative_to(tmp_path / "x").as_posix() for p in paths) == sorted(FILES)

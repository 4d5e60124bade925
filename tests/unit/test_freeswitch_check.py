"""The FreeSWITCH configuration is checked without a FreeSWITCH: routing like the native
carrier, modules of FreeSWITCH 1.10, the XML shape its loaders read. The shipped rendering
passes; each mutation below is one a check must catch (and only that check catches)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from qa.carrier import freeswitch
from qa.carrier.cli import render_freeswitch
from qa.carrier.freeswitch import FILES, render, write
from qa.carrier.freeswitch_check import (
    FS_110_MODULES,
    check_files,
    hunt,
    parse_extensions,
    regex_problem,
)
from qa.carrier.plan import KNOWN_CODECS, NumberPlan, load_plan, parse_plan

ROOT = Path(__file__).resolve().parents[2]
PLAN_PATH = ROOT / "carriers" / "numberplan.yaml"
OUT = ROOT / "carriers" / "freeswitch"
PLAN = load_plan(PLAN_PATH)
FILES_NOW = render(PLAN)
DIALPLAN = "dialplan/voipqa.xml"
MODULES = "autoload_configs/modules.conf.xml"
PROFILE = "sip_profiles/voipqa.xml"


def _mutated(rel: str, old: str, new: str, count: int = -1) -> dict[str, str]:
    """The fresh rendering with ``old`` replaced in one file (the mutation must apply)."""
    assert old in FILES_NOW[rel], old
    return {**FILES_NOW, rel: FILES_NOW[rel].replace(old, new, count)}


def _edited(rel: str, edit: Callable[[ET.Element], object]) -> dict[str, str]:
    root = ET.fromstring(FILES_NOW[rel])
    edit(root)
    return {**FILES_NOW, rel: ET.tostring(root, encoding="unicode")}


def _problems(files: dict[str, str], plan: NumberPlan = PLAN) -> list[str]:
    return check_files(files, plan)


# ---------------------------------------------------------------- the shipped configuration

def test_the_shipped_configuration_passes_every_check():
    on_disk = {rel: (OUT / rel).read_text(encoding="utf-8") for rel in FILES}
    assert check_files(on_disk, PLAN) == []
    assert check_files(FILES_NOW, PLAN) == []


def test_a_plan_with_every_known_codec_renders_loadable_modules():
    """Every codec the plan accepts maps to a 1.10 module (1.10 has no mod_speex: speex is core)."""
    plan = parse_plan({"version": 1, "routes": [{"prefix": str(10 + i), "codecs": [c]}
                                                 for i, c in enumerate(KNOWN_CODECS) if c not in ("telephone-event", "CN")]})
    files = render(plan)
    assert check_files(files, plan) == []
    with_speex = files[MODULES].replace("</modules>", '<load module="mod_speex" /></modules>')
    assert check_files({**files, MODULES: with_speex}, plan) == [
        "autoload_configs/modules.conf.xml: mod_speex is not a FreeSWITCH 1.10 module (build/modules.conf.in)"]


# ---------------------------------------------------------------- routing equivalence

def test_a_regex_with_the_wrong_prefix_is_caught():
    problems = _problems(_mutated(DIALPLAN, r"^15550010\d*$", r"^15550011\d*$"))
    assert ("dialplan/voipqa.xml: 15550010 on carriers carrier-a, carrier-c, voipqa-unknown-carrier: FreeSWITCH "
            "picks extension voipqa-no-route, the native carrier route 15550010 (answer-after-2s)") in problems
    assert ("dialplan/voipqa.xml: 15550011 on carriers carrier-a, carrier-c, voipqa-unknown-carrier: FreeSWITCH "
            "picks extension voipqa-15550010-answer-after-2s, the native carrier no route (404)") in problems


def test_a_shorter_prefix_shadowing_a_longer_one_is_caught(monkeypatch):
    monkeypatch.setattr(freeswitch, "ordered_routes", lambda plan: sorted(plan.routes, key=lambda r: len(r.prefix)))
    problems = _problems(render(PLAN))
    assert ("dialplan/voipqa.xml: 1666000 on carriers carrier-a, carrier-c, voipqa-unknown-carrier: FreeSWITCH "
            "picks extension voipqa-166600-failover-fallback, the native carrier route 1666000 (failover-answer)"
            ) in problems
    assert ("dialplan/voipqa.xml: 16660010 on carrier carrier-c: FreeSWITCH picks extension "
            "voipqa-166600-failover-fallback, the native carrier route 16660010 (failover-503-on-c)") in problems


def test_a_carrier_restricted_route_without_its_carrier_condition_is_caught():
    files = _mutated(DIALPLAN, '<condition field="${voipqa_carrier}" expression="^(carrier-c)$" />', "")
    problems = _problems(files)
    assert ("dialplan/voipqa.xml: 16660010 on carriers carrier-a, voipqa-unknown-carrier: FreeSWITCH picks "
            "extension voipqa-16660010-failover-503-on-c, the native carrier route 166600 (failover-fallback)") in problems
    assert ("dialplan/voipqa.xml: +16660020 on carriers carrier-a, voipqa-unknown-carrier: FreeSWITCH picks "
            "extension voipqa-16660020-failover-blackhole-on-c, the native carrier route 166600 (failover-fallback)"
            ) in problems


def test_a_leading_plus_not_stripped_is_caught():
    """The native carrier ignores one leading '+'; without the transfer FreeSWITCH 404s it."""
    def drop_plus(root: ET.Element) -> None:
        context = root.find("context")
        context.remove(next(e for e in context if e.get("name") == freeswitch.LEADING_PLUS))
    problems = _problems(_edited(DIALPLAN, drop_plus))
    assert ("dialplan/voipqa.xml: +1555000 on carriers carrier-a, carrier-c, voipqa-unknown-carrier: FreeSWITCH "
            "picks extension voipqa-no-route, the native carrier route 1555000 (answer-echo)") in problems
    assert problems[-1].startswith("dialplan/voipqa.xml: ... and ") and problems[-1].endswith(
        "more numbers routed differently")    # one line per number, and a summary past 20


def test_hunt_follows_the_transfer_and_a_double_plus_is_not_routed():
    exts = parse_extensions(ET.fromstring(FILES_NOW[DIALPLAN]))
    env = {"${voipqa_carrier}": "carrier-c"}
    assert hunt(exts, "+16660010", env).name == "voipqa-16660010-failover-503-on-c"
    assert PLAN.lookup("++1555000", "carrier-c") is None
    assert hunt(exts, "++1555000", env).name == "voipqa-no-route"
    assert hunt(exts, "voipqa-rtp-stopped", env).name == "voipqa-rtp-stopped"


def test_an_expression_outside_the_shared_pcre_subset_is_caught():
    problems = _problems(_mutated(DIALPLAN, r"^1555000\d*$", r"^1555000\w*$"))
    assert problems == [(r"dialplan/voipqa.xml: extension voipqa-1555000-answer-echo: expression '^1555000\w*$' "
                        r"uses \w, outside the PCRE subset Python re evaluates the same (literals, anchors, \d, "
                        r"classes, groups)")]


@pytest.mark.parametrize("expression, why", [
    (r"^1(?=5)\d*$", "uses (?="), (r"^(1)\1$", r"uses \1"), (r"^1\d*+$", "uses the possessive *+"),
    (r"^[[:digit:]]+$", "uses the class [[:digit:]"), (r"^1\s$", r"uses \s"), (r"^1{2$", "uses a { that"),
    (r"^(1$", "does not compile"),
])
def test_regex_problem_names_what_python_and_pcre_read_differently(expression, why):
    assert regex_problem(expression).startswith(why)


@pytest.mark.parametrize("expression", [r"^1555\d*$", r"^\+(\d+)$", r"^(carrier-c|x\.y)$", "^.*$",
                                        r"^[0-9#*]{2,4}$", r"^(?:00|\+)44\d+$"])
def test_regex_problem_accepts_the_shared_subset(expression):
    assert regex_problem(expression) is None


def test_a_variable_condition_the_vars_file_does_not_set_is_caught():
    files = _mutated("vars_voipqa.xml", "voipqa_carrier=carrier-a", "voipqa_carier=carrier-a")
    assert ("dialplan/voipqa.xml: condition field ${voipqa_carrier} is a variable vars_voipqa.xml does not set "
            "(FreeSWITCH expands it to '')") in _problems(files)


# ---------------------------------------------------------------- modules

def test_an_unknown_module_is_caught():
    problems = _problems(_mutated(MODULES, '"mod_tone_stream"', '"mod_tone_streams"'))
    assert "autoload_configs/modules.conf.xml: mod_tone_streams is not a FreeSWITCH 1.10 module " \
           "(build/modules.conf.in)" in problems
    assert "dialplan/voipqa.xml: playback tone_stream:// needs mod_tone_stream, which modules.conf.xml " \
           "does not load" in problems


def test_an_application_of_an_unloaded_module_is_caught():
    problems = _problems(_mutated(MODULES, '<load module="mod_dptools" />', ""))
    assert "dialplan/voipqa.xml: application answer needs mod_dptools, which modules.conf.xml does not load" \
        in problems
    extra = _mutated(DIALPLAN, '<action application="echo" />', '<action application="conference" data="r" />', 1)
    assert _problems(extra) == [("dialplan/voipqa.xml: application conference needs mod_conference, which "
                                "modules.conf.xml does not load")]


def test_an_unknown_application_is_caught():
    assert _problems(_mutated(DIALPLAN, 'application="echo"', 'application="echo2"')) == [
        ("dialplan/voipqa.xml: application 'echo2' is not one this check knows the module of "
        "(qa/carrier/freeswitch_check.py _APP_MODULE)")]


def test_a_codec_nobody_provides_is_caught():
    assert _problems(_mutated(DIALPLAN, "absolute_codec_string=G722", "absolute_codec_string=G728")) == [
        "dialplan/voipqa.xml: codec 'G728' is provided by no FreeSWITCH 1.10 module this check knows"]


def test_a_codec_whose_module_is_not_loaded_is_caught():
    problems = _problems(_mutated(MODULES, '<load module="mod_opus" />', ""))
    assert problems == [
        "dialplan/voipqa.xml: codec OPUS needs mod_opus, which modules.conf.xml does not load",
        "sip_profiles/voipqa.xml: codec OPUS needs mod_opus, which modules.conf.xml does not load",
    ]


def test_the_module_list_has_the_ones_the_renderer_loads_and_not_the_removed_ones():
    loaded = [m.get("module") for m in ET.fromstring(FILES_NOW[MODULES]).iter("load")]
    assert set(loaded) <= FS_110_MODULES
    assert not {"mod_speex", "mod_g722", "mod_gsm"} & FS_110_MODULES


def test_a_json_cdr_param_the_module_ignores_is_caught():
    assert _problems(_mutated("autoload_configs/json_cdr.conf.xml", '"log-dir"', '"log_dir"')) == [
        "autoload_configs/json_cdr.conf.xml: mod_json_cdr has no param 'log_dir' (it would be ignored)"]


# ---------------------------------------------------------------- XML shape

def test_a_missing_attribute_is_caught():
    problems = _problems(_mutated(DIALPLAN, '<action application="answer" />', '<action data="answer" />', 1))
    assert problems == ["dialplan/voipqa.xml: <action> has no application= (FreeSWITCH needs it)",
                        ("dialplan/voipqa.xml: application '' is not one this check knows the module of "
                        "(qa/carrier/freeswitch_check.py _APP_MODULE)")]


def test_an_unknown_element_or_attribute_is_caught():
    files = _edited(PROFILE, lambda root: ET.SubElement(root.find("settings"), "parm", name="x", value="y"))
    assert _problems(files) == ['sip_profiles/voipqa.xml: <settings>: element <parm> is not one FreeSWITCH reads here']
    files = _mutated(DIALPLAN, '<extension name="voipqa-no-route">', '<extension name="voipqa-no-route" cotinue="true">')
    assert _problems(files) == [('dialplan/voipqa.xml: <extension name="voipqa-no-route">: attribute cotinue= is not '
                                'one FreeSWITCH reads here')]


def test_a_wrong_root_or_configuration_name_is_caught():
    files = _mutated(MODULES, 'name="modules.conf"', 'name="modules"')
    assert _problems(files) == [('autoload_configs/modules.conf.xml: <configuration name="modules">, FreeSWITCH '
                                'looks for name="modules.conf"')]
    wrapped = {**FILES_NOW, "dialplan/voipqa.xml": "<document>" + FILES_NOW[DIALPLAN].split("-->", 1)[1] + "</document>"}
    assert _problems(wrapped) == ["dialplan/voipqa.xml: root <document>, FreeSWITCH expects <include>"]


def test_a_vars_line_that_is_not_name_value_is_caught():
    assert _problems(_mutated("vars_voipqa.xml", 'data="voipqa_carrier=carrier-a"', 'data="voipqa_carrier"')) == [
        'vars_voipqa.xml: X-PRE-PROCESS set data="voipqa_carrier" is not name=value',
        ("dialplan/voipqa.xml: condition field ${voipqa_carrier} is a variable vars_voipqa.xml does not set "
        "(FreeSWITCH expands it to '')")]


def test_a_missing_or_broken_file_is_caught():
    files = {rel: text for rel, text in FILES_NOW.items() if rel != PROFILE}
    assert _problems({**files, MODULES: "<configuration"})[:2] == [
        "sip_profiles/voipqa.xml: missing",
        "autoload_configs/modules.conf.xml: not well-formed XML: unclosed token: line 1, column 0"]


# ---------------------------------------------------------------- the CLI

def test_cli_check_reports_problems_of_the_rendering_and_exits_1(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fs"
    broken = _mutated(DIALPLAN, r"^15550010\d*$", r"^15550011\d*$")
    write(broken, out)
    monkeypatch.setattr(freeswitch, "render", lambda plan: broken)
    assert render_freeswitch(PLAN_PATH, out, check_only=True) == 1
    captured = capsys.readouterr()
    assert f"{out}/dialplan/voipqa.xml: 15550010 on carriers carrier-a, carrier-c, voipqa-unknown-carrier: " \
           "FreeSWITCH picks extension voipqa-no-route, the native carrier route 15550010 " \
           "(answer-after-2s)" in captured.out.splitlines()
    assert "differs" not in captured.out and "fix qa/carrier/freeswitch.py" in captured.err


def test_cli_check_passes_on_the_shipped_configuration(capsys):
    assert render_freeswitch(PLAN_PATH, OUT, check_only=True) == 0
    assert capsys.readouterr().out.strip().endswith("checked (routing, modules, XML shape)")

"""The number plan: the shipped file, longest prefix, strict validation naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.carrier.plan import NumberPlan, Route, load_plan, parse_plan
from qa.errors import BadInput, ConfigError

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "carriers" / "numberplan.yaml"


def _plan(*routes: dict, **top) -> dict:
    return {"version": 1, "routes": list(routes) or [{"prefix": "1"}], **top}


def _error(data, path="np.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_plan(data, path)
    return info.value


# ---------------------------------------------------------------- the shipped plan

@pytest.fixture(scope="module")
def plan() -> NumberPlan:
    return load_plan(PLAN)


@pytest.mark.parametrize("number, name", [
    ("1555000", "answer-echo"),
    ("1555000100", "answer-echo"),
    ("15550001", "answer-echo"),
    ("15550010", "answer-after-2s"),
    ("155500101", "answer-after-2s"),
    ("15550020", "ring-forever"),
    ("1555003486", "reject-486"),
    ("1555003404", "reject-404"),
    ("1555003503", "reject-503"),
    ("1555003603", "reject-603"),
    ("1555003488", "reject-488"),
    ("15550040", "carrier-hangs-up-3s"),
    ("15550050", "pcma-only"),
    ("15550060", "early-media-then-answer"),
    ("+1555000100", "answer-echo"),
    ("15550051", "pcmu-only"),
    ("15550052", "g722-only"),
    ("15550053", "opus-only"),
    ("15550054", "g729-only"),
    ("15550070", "rtp-stops-after-3s"),
    ("15550080", "dtmf-collect"),
    ("1666000", "failover-answer"),
    ("16660001234", "failover-answer"),
    ("16660010", "failover-fallback"),        # not carrier-c: the next-longest prefix
    ("16660020", "failover-fallback"),
])
def test_shipped_plan_routes(plan, number, name):
    assert plan.lookup(number).name == name


@pytest.mark.parametrize("number", ["", "1", "155500", "1555003", "1555003400", "4930123", "abc"])
def test_unmatched_numbers_get_404(plan, number):
    assert plan.lookup(number) is None
    route = plan.route_for(number)
    assert route.reject == 404 and not route.answers


def test_shipped_behaviours(plan):
    assert plan.lookup("1555000100").answers and plan.lookup("1555000100").media == "echo"
    assert plan.lookup("1555000100").hangup_after_s is None
    assert plan.lookup("15550010").ring_s == 2
    assert plan.lookup("15550020").ring_forever and not plan.lookup("15550020").answers
    for code in (486, 404, 503, 603, 488):
        assert plan.lookup(f"1555003{code}").reject == code
    assert plan.lookup("15550040").hangup_after_s == 3
    assert plan.lookup("15550050").codecs == ("PCMA", "telephone-event")
    assert plan.lookup("15550050").audio_codecs == ("PCMA",)
    assert plan.lookup("15550060").early_media and plan.lookup("15550060").ring_s == 2
    assert plan.no_route == 404


def test_longest_prefix_wins_regardless_of_order():
    p = parse_plan(_plan({"prefix": "12345", "reject": 486}, {"prefix": "1"}, {"prefix": "123"}))
    assert p.lookup("123456").prefix == "12345"
    assert p.lookup("1234").prefix == "123"
    assert p.lookup("19").prefix == "1"
    assert p.lookup("2") is None


def test_defaults_apply_and_routes_override():
    p = parse_plan(_plan({"prefix": "1"}, {"prefix": "2", "codecs": ["pcma"]},
                         defaults={"codecs": ["G722", "PCMU"], "media": "silence"}))
    assert p.lookup("1").codecs == ("G722", "PCMU") and p.lookup("1").media == "silence"
    assert p.lookup("2").codecs == ("PCMA",)          # spelling normalised


def test_null_means_none_where_the_field_allows_it():
    p = parse_plan(_plan({"prefix": "1", "hangup_after_s": None}, {"prefix": "2"}, defaults={"hangup_after_s": 3}))
    assert p.lookup("1").hangup_after_s is None and p.lookup("2").hangup_after_s == 3
    assert parse_plan(_plan(defaults=None)).lookup("1") == Route(prefix="1")


def test_default_route_values():
    r = parse_plan(_plan({"prefix": "1"})).lookup("1")
    assert r == Route(prefix="1")
    assert r.codecs == ("PCMU", "PCMA", "telephone-event") and r.collect_dtmf and r.answers


# ---------------------------------------------------------------- validation errors

@pytest.mark.parametrize("route, field, words", [
    ({"prefix": "1", "reject": 999}, "routes[0].reject", "999 is not a SIP final response code"),
    ({"prefix": "1", "reject": 200}, "routes[0].reject", "200 is not a SIP final response code"),
    ({"prefix": "1", "reject": 302}, "routes[0].reject", "redirection"),
    ({"prefix": "1", "reject": "busy"}, "routes[0].reject", "not a SIP final response code"),
    ({"prefix": "1", "reject": True}, "routes[0].reject", "not a SIP final response code"),
    ({"prefix": 1555}, "routes[0].prefix", "quoted string"),
    ({"prefix": "15a"}, "routes[0].prefix", "digits"),
    ({"prefix": "+1"}, "routes[0].prefix", "digits"),
    ({"prefix": ""}, "routes[0].prefix", "digits"),
    ({"name": "x"}, "routes[0].prefix", "required"),
    ({"prefix": "1", "ring_s": -1}, "routes[0].ring_s", ">= 0"),
    ({"prefix": "1", "ring_s": "2s"}, "routes[0].ring_s", "not a number"),
    ({"prefix": "1", "hangup_after_s": 0}, "routes[0].hangup_after_s", "> 0"),
    ({"prefix": "1", "rtp_stop_after_s": -3}, "routes[0].rtp_stop_after_s", "> 0"),
    ({"prefix": "1", "media": "music"}, "routes[0].media", "echo, silence"),
    ({"prefix": "1", "early_media": "yes"}, "routes[0].early_media", "true/false"),
    ({"prefix": "1", "codecs": []}, "routes[0].codecs", "needs at least 1 entry"),
    ({"prefix": "1", "codecs": "PCMU"}, "routes[0].codecs", "must be a list"),
    ({"prefix": "1", "codecs": ["PCMU", "AMR-XX"]}, "routes[0].codecs[1]", "unknown codec 'AMR-XX'"),
    ({"prefix": "1", "codecs": ["PCMU", "pcmu"]}, "routes[0].codecs[1]", "twice"),
    ({"prefix": "1", "codecs": ["telephone-event"]}, "routes[0].codecs", "audio codec"),
    ({"prefix": "1", "answer_after": 2}, "routes[0].answer_after", "unknown key"),
    ({"prefix": "1", "reject": 486, "hangup_after_s": 3}, "routes[0].hangup_after_s", "rejects"),
    ({"prefix": "1", "reject": 486, "ring_forever": True}, "routes[0].ring_forever", "rejects"),
    ({"prefix": "1", "reason": "Busy"}, "routes[0].reason", "reject"),
    ({"prefix": "1", "ring_forever": True, "hangup_after_s": 3}, "routes[0].hangup_after_s", "forever"),
    ({"prefix": "1", "name": 5}, "routes[0].name", "not a string"),
    # an explicit null is no value: refused where the field has no "none" meaning
    ({"prefix": "1", "reject": None}, "routes[0].reject", "None is not a SIP final response code"),
    ({"prefix": "1", "ring_s": None}, "routes[0].ring_s", "not a number"),
    ({"prefix": "1", "codecs": None}, "routes[0].codecs", "must be a list"),
    ({"prefix": "1", "ring_s": 10 ** 400}, "routes[0].ring_s", "not a finite number"),   # was a crash
    ({"prefix": "1", "ring_s": "5"}, "routes[0].ring_s", "not a number"),   # quoted: not taken as 5
    ({"prefix": "1", "rtp_payload_type": 128}, "routes[0].rtp_payload_type", "not an RTP payload type"),
    ({"prefix": "1", "reject": 486, "rtp_payload_type": 8}, "routes[0].rtp_payload_type", "rejects"),
])
def test_bad_route_fields_are_named(route, field, words):
    err = _error(_plan(route))
    assert err.field == field
    assert words in err.problem
    assert str(err).startswith(f"np.yaml: {field}: ")
    assert isinstance(err, BadInput) and err.exit_code == 2


def test_error_names_the_right_route_index():
    err = _error(_plan({"prefix": "1"}, {"prefix": "2"}, {"prefix": "3"}, {"prefix": "4", "reject": 999}),
                 "carriers/numberplan.yaml")
    assert str(err) == "carriers/numberplan.yaml: routes[3].reject: 999 is not a SIP final response code"


def test_duplicate_prefix():
    err = _error(_plan({"prefix": "15"}, {"prefix": "15", "reject": 404}))
    assert err.field == "routes[1].prefix" and "routes[0]" in err.problem


@pytest.mark.parametrize("data, field, words", [
    ([], "", "mapping"),
    ({"routes": [{"prefix": "1"}]}, "version", "required"),
    ({"version": 2, "routes": [{"prefix": "1"}]}, "version", "not a supported version"),
    ({"version": True, "routes": [{"prefix": "1"}]}, "version", "True is not a supported version"),
    ({"version": 1}, "routes", "required"),
    ({"version": 1, "routes": []}, "routes", "needs at least 1 entry"),
    ({"version": 1, "routes": {"prefix": "1"}}, "routes", "must be a list"),
    ({"version": 1, "routes": ["1555"]}, "routes[0]", "mapping"),
    ({"version": 1, "routes": [{"prefix": "1"}], "extra": 1}, "extra", "unknown key"),
    ({"version": 1, "routes": [{"prefix": "1"}], 7: 1}, "7", "unknown key"),   # YAML read the key as a number
    ({"version": 1, "routes": [{"prefix": "1"}], "no_route": 99}, "no_route", "not a SIP final"),
    ({"version": 1, "routes": [{"prefix": "1"}], "max_call_s": 0}, "max_call_s", "> 0"),
    ({"version": 1, "routes": [{"prefix": "1"}], "defaults": {"prefix": "1"}}, "defaults.prefix", "unknown key"),
    ({"version": 1, "routes": [{"prefix": "1"}], "defaults": {"codecs": ["XYZ"]}}, "defaults.codecs[0]", "unknown codec"),
    ({"version": 1, "routes": [{"prefix": "1"}], "defaults": []}, "defaults", "mapping"),
])
def test_bad_top_level(data, field, words):
    err = _error(data)
    assert err.field == field and words in err.problem


def test_load_plan_file_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        load_plan(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nroutes: [\n  - prefix: '1'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_plan(bad)
    assert str(info.value).startswith(f"{bad}: not valid YAML (line 3): ")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"version: 1\n\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read: not UTF-8 text"):
        load_plan(binary)
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"must be a mapping \(version:, routes:, ...\); the file is empty"):
        load_plan(empty)
    octal = tmp_path / "octal.yaml"
    octal.write_text("version: 1\nroutes:\n  - prefix: 0044\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes\[0\]\.prefix: .*quoted string"):
        load_plan(octal)


# ---------------------------------------------------------------- issue 3 numbers and fields

def test_new_numbers_behaviours(plan):
    assert plan.lookup("15550051").codecs == ("PCMU", "telephone-event")
    assert plan.lookup("15550052").codecs == ("G722", "telephone-event")
    assert plan.lookup("15550053").codecs == ("opus", "telephone-event")
    assert plan.lookup("15550054").codecs == ("G729",)
    r = plan.lookup("15550070")
    assert (r.media, r.rtp_stop_after_s, r.answers, r.hangup_after_s) == ("silence", 3.0, True, None)
    r = plan.lookup("15550080")
    assert (r.media, r.collect_dtmf, r.answers) == ("silence", True, True)
    assert plan.lookup("1666000").answers and plan.lookup("1666000").carriers == ()


@pytest.mark.parametrize("number, carrier, name, answers", [
    ("16660010", "carrier-c", "failover-503-on-c", False),
    ("16660010", "carrier-a", "failover-fallback", True),
    ("16660010", None, "failover-fallback", True),
    ("16660020", "carrier-c", "failover-blackhole-on-c", False),
    ("16660020", "carrier-b", "failover-fallback", True),
    ("1666000999", "carrier-c", "failover-answer", True),
])
def test_per_carrier_lookup(plan, number, carrier, name, answers):
    route = plan.lookup(number, carrier)
    assert route.name == name and route.answers is answers


def test_carrier_c_routes(plan):
    assert plan.lookup("16660010", "carrier-c").reject == 503
    bh = plan.lookup("16660020", "carrier-c")
    assert bh.blackhole and bh.carriers == ("carrier-c",) and not bh.answers


def test_every_shipped_number_of_the_brief_is_unchanged(plan):
    """The numbers other suites dial: one line each so a change is a visible diff."""
    got = {n: plan.lookup(n).name for n in (
        "1555000", "15550010", "15550020", "1555003486", "1555003404", "1555003503", "1555003603",
        "1555003488", "15550040", "15550050", "15550060")}
    assert got == {"1555000": "answer-echo", "15550010": "answer-after-2s", "15550020": "ring-forever",
                   "1555003486": "reject-486", "1555003404": "reject-404", "1555003503": "reject-503",
                   "1555003603": "reject-603", "1555003488": "reject-488", "15550040": "carrier-hangs-up-3s",
                   "15550050": "pcma-only", "15550060": "early-media-then-answer"}


def test_restricted_route_falls_through_to_no_route():
    p = parse_plan(_plan({"prefix": "12", "carriers": ["x"], "reject": 486}))
    assert p.lookup("123", "x").reject == 486
    assert p.lookup("123", "y") is None and p.route_for("123", "y").reject == 404


def test_media_tone_is_valid():
    assert parse_plan(_plan({"prefix": "1", "media": "tone"})).lookup("1").media == "tone"


@pytest.mark.parametrize("route, field, words", [
    ({"prefix": "1", "carriers": []}, "routes[0].carriers", "needs at least 1 entry"),
    ({"prefix": "1", "carriers": "carrier-c"}, "routes[0].carriers", "must be a list"),
    ({"prefix": "1", "carriers": ["ok", "bad name"]}, "routes[0].carriers[1]", "not a carrier name"),
    ({"prefix": "1", "carriers": ["a", "a"]}, "routes[0].carriers[1]", "twice"),
    ({"prefix": "1", "blackhole": "yes"}, "routes[0].blackhole", "true/false"),
    ({"prefix": "1", "blackhole": True, "reject": 503}, "routes[0].blackhole", "rejects"),
    ({"prefix": "1", "blackhole": True, "ring_forever": True}, "routes[0].ring_forever", "blackholes"),
    ({"prefix": "1", "blackhole": True, "ring_s": 2}, "routes[0].ring_s", "blackholes"),
    ({"prefix": "1", "blackhole": True, "media": "silence"}, "routes[0].media", "blackholes"),
    ({"prefix": "1", "blackhole": True, "early_media": True}, "routes[0].early_media", "blackholes"),
    ({"prefix": "1", "media": "music"}, "routes[0].media", "echo, silence, tone"),
])
def test_bad_issue3_fields_are_named(route, field, words):
    err = _error(_plan(route))
    assert err.field == field and words in err.problem
    assert str(err).startswith(f"np.yaml: {field}: ")


@pytest.mark.parametrize("key", ["carriers", "blackhole"])
def test_route_only_keys_not_in_defaults(key):
    err = _error(_plan({"prefix": "1"}, defaults={key: True}))
    assert err.field == f"defaults.{key}" and "unknown key" in err.problem

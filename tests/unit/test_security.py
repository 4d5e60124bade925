"""The security suite's logic without a platform: verdicts, the report, settings, the lab's
defence switches, and the judging helpers of the attacks (issue 11). The attacks against
real labs are tests/integration/test_security.py."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from qa.capture.writer import udp_packet, write_pcap
from qa.config import SecurityFile, parse_environment_file
from qa.errors import BadInput, ConfigError
from qa.lab.config import LEGACY_TLS, MODERN_TLS, defence_defines, render_config, tls_config
from qa.lab.seed import DEFENCES, load_seed, parse_seed
from qa.paths import DEFAULT_SEED, ROOT
from qa.robot.security import SecurityKeywords
from qa.security import bruteforce, enumeration, flood, scan
from qa.security.model import ATTACKS, AttackResult
from qa.security.runner import REGISTRY, SecurityReport, check_names, frame_windows, masked
from qa.security.target import SecurityTarget
from qa.security.wire import Reply
from qa.sip import Headers, Response, parse_message

SCHEMA = json.loads((ROOT / "docs" / "security.schema.json").read_text())


# -- verdicts and the report ---------------------------------------------------------------------
def test_an_attack_holds_only_when_every_check_held():
    result = AttackResult("scan")
    assert result.verdict == "fail" and result.summary() == "scan: nothing was tested"
    result.check("fingerprint", True, "no version")
    assert result.verdict == "pass" and result.summary() == "scan: held (fingerprint)"
    result.check("unauthenticated-invite", False, "INVITE got 180 Ringing")
    assert result.verdict == "fail"
    assert result.summary() == "scan: unauthenticated-invite: INVITE got 180 Ringing"


def test_an_attack_that_could_not_run_fails_with_the_reason():
    result = AttackResult("tls")
    result.check("protocols", True, "ok")
    result.error = "no attacker address left"
    assert result.verdict == "fail" and "could not run: no attacker address left" in result.summary()


def test_the_report_follows_its_schema_and_not_applicable_does_not_fail_the_run():
    held, na = AttackResult("scan"), AttackResult("tls")
    held.check("fingerprint", True, "none")
    na.evidence["not_applicable"] = "the environment names no TLS port"
    report = SecurityReport("staging", {"host": "h", "port": 5060, "tls_port": None, "domain": "d"}, 1.0,
                            attacks=[held, na], healthy_after=True, health_detail="ok")
    doc = report.to_dict()
    jsonschema.validate(doc, SCHEMA)
    assert report.verdict == "pass"
    assert doc["attacks"][1]["verdict"] == "not-applicable"
    report.healthy_after = False
    assert report.verdict == "fail", "a platform that fell over did not hold"


def test_unknown_attacks_are_bad_input_naming_the_known_ones():
    assert check_names(None) == ATTACKS
    assert check_names(["tls", "scan"]) == ("scan", "tls")
    with pytest.raises(BadInput, match="unknown attack 'teardrop' \\(attacks: scan, enumeration"):
        check_names(["teardrop"])
    assert tuple(REGISTRY) == ATTACKS


def test_masking_touches_strings_only_so_the_json_stays_json():
    def mask(text: str) -> str:
        return text.replace("1234", "******")

    doc = masked({"port": 61234, "password 1234": ["tried 1234", 1234.5], "n": None}, mask)
    assert doc == {"port": 61234, "password ******": ["tried ******", 1234.5], "n": None}


def test_each_attack_gets_the_frames_taken_while_it_ran(tmp_path):
    pkt = udp_packet("127.0.0.65", 5060, "127.0.0.1", 5060, b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    write_pcap(tmp_path / "c.pcap", [(100.0, pkt), (100.5, pkt), (103.0, pkt), (110.0, pkt)])
    first, second = AttackResult("scan", started=99.9, duration_s=1.0), AttackResult("tls", started=102.9, duration_s=0.1)
    windows = frame_windows(tmp_path / "c.pcap", [first, second])
    assert windows == {"scan": {"first_frame": 1, "last_frame": 2, "frames": 2},
                       "tls": {"first_frame": 3, "last_frame": 3, "frames": 1}}


# -- the environment's security section --------------------------------------------------------------
def _env(tmp_path: Path, security: dict) -> Path:
    path = tmp_path / "staging.yaml"
    path.write_text(yaml.safe_dump({"target": {"host": "127.0.0.1", "ports": {"udp": 5060}},
                                    "accounts": [{"user": "1001", "password_env": "P"}], "security": security}))
    return path


def test_security_settings_default_to_the_lab_and_bad_ones_are_one_line(tmp_path):
    spec = parse_environment_file(_env(tmp_path, {}))
    assert spec.security.sources[0] == "127.0.0.65" and spec.security.flood.packets == 12000
    with pytest.raises(ConfigError, match=r"staging.yaml: security.sources\[0\]: not an IPv4 address: '10.0.0.1x'"):
        parse_environment_file(_env(tmp_path, {"sources": ["10.0.0.1x"]}))
    with pytest.raises(ConfigError, match=r"security.flood: .*1000 packets at 4000/s last 0.25 s") as exc:
        parse_environment_file(_env(tmp_path, {"flood": {"packets": 1000}}))
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match=r"security.srtp"):
        parse_environment_file(_env(tmp_path, {"srtp": "always"}))


# -- the lab's defence switches ----------------------------------------------------------------------
def test_every_defence_is_on_by_default_and_each_can_be_turned_off():
    seed = load_seed(DEFAULT_SEED)
    assert seed.defences == frozenset(DEFENCES) and seed.auth_ban_failures == 5
    data = yaml.safe_load(DEFAULT_SEED.read_text())
    data["defences"] = {"auth_ban": False, "auth_ban_failures": 3}
    weak = parse_seed(data)
    assert weak.defences == frozenset(DEFENCES) - {"auth_ban"} and weak.auth_ban_failures == 3
    data["defences"] = {"antiflood": "no"}
    with pytest.raises(ConfigError, match="defences.antiflood: input should be a valid boolean"):
        parse_seed(data)


def test_a_defence_turned_off_is_absent_from_the_rendered_config(tmp_path):
    seed = load_seed(DEFAULT_SEED)
    ports = {"sip": 5999, "sip_tls": 5998, "sip_tls_expired": 5997, "rtpengine_ng": 5996}
    strong = render_config(seed, ports, tmp_path, tmp_path / "ctl")
    assert "#!define DEFENCE_AUTH_BAN" in strong and "#!define DEFENCE_ANTIFLOOD" in strong
    data = yaml.safe_load(DEFAULT_SEED.read_text())
    data["defences"] = {name: False for name in DEFENCES}
    weak_seed = parse_seed(data)
    assert defence_defines(weak_seed) == "# no defences"
    assert "#!define DEFENCE_" not in render_config(weak_seed, ports, tmp_path, tmp_path / "ctl")


def test_modern_tls_off_offers_the_old_protocols():
    assert MODERN_TLS in tls_config(Path("/run"), 5997) and LEGACY_TLS not in tls_config(Path("/run"), 5997)
    legacy = tls_config(Path("/run"), 5997, modern=False)
    assert legacy.count("method = TLSv1+") == 2 and "@SECLEVEL=0" in legacy


def test_every_defence_of_the_template_is_documented_in_the_seed_and_the_guide():
    template = (ROOT / "lab" / "kamailio.cfg").read_text()
    guide = (ROOT / "docs" / "security.md").read_text()
    seed_text = DEFAULT_SEED.read_text()
    for name in DEFENCES:
        assert f"DEFENCE_{name.upper()}" in template, name
        assert f"| `{name}` |" in guide, name
        assert f"  {name}: true" in seed_text, name


# -- the attacks' judging helpers -------------------------------------------------------------------
def _reply(status: int, ms: float = 1.0, **headers: str) -> Reply:
    h = Headers()
    h.add("Via", "SIP/2.0/UDP 127.0.0.65:5060;branch=z9hG4bK-1")
    h.add("Call-ID", "abc")
    for name, value in headers.items():
        h.add(name.replace("_", "-"), value)
    return Reply(Response(status, "Reason", h), ms)


def test_enumeration_tells_users_apart_by_status_headers_or_time():
    same = enumeration.compare([_reply(403)], [_reply(403)], 50)
    assert same == []
    assert enumeration.compare([_reply(403)], [_reply(404)], 50) == ["status 403 Reason vs 404 Reason"]
    extra = enumeration.compare([_reply(403)], [_reply(403, Warning="399 unknown user")], 50)
    assert extra and extra[0].startswith("headers differ: warning: 399 unknown user")
    slow = enumeration.compare([_reply(403, 2.0)] * 3, [_reply(403, 90.0)] * 3, 50)
    assert slow == ["median answer time 2.0 ms vs 90.0 ms (tolerance 50 ms)"]


def test_the_dictionary_starts_with_the_user_and_has_the_size_asked():
    words = bruteforce.dictionary("1001", 20)
    assert words[:3] == ["1001", "10011001", "1001123"] and len(words) == len(set(words)) == 20
    assert len(bruteforce.dictionary("1001", 40)) == 40


@pytest.mark.parametrize("password, why", [("1234", "shorter than 12"), ("alllowercaseletters", "fewer than 3"),
                                           ("alice-pass-1001", None), ("Load.2001-lSXgFV", None)])
def test_weak_passwords_follow_the_seed_rule(password, why):
    got = bruteforce.weak(password)
    assert (got is None) if why is None else (why in got)


@pytest.mark.parametrize("header, discloses", [("kamailio (5.6.3 (x86_64/linux))", True), ("FPBX-16.0.33", True),
                                               ("voipqa-lab", False), ("Asterisk PBX", False)])
def test_a_version_in_the_fingerprint_is_found(header, discloses):
    assert bool(scan.VERSION_RE.search(header)) is discloses


def test_every_flood_packet_is_a_new_transaction_and_parses():
    target = SecurityTarget(name="t", host="127.0.0.1", port=5060, domain="voipqa.lab", accounts={"1001": "x"},
                            settings=SecurityFile())
    template = flood._template(target, "127.0.0.65", "INVITE")
    packets = [template.replace(flood.PLACEHOLDER, b"voipqa-flood-%08d" % n) for n in (0, 1)]
    first, second = (parse_message(p) for p in packets)
    assert first.method == "INVITE" and first.call_id != second.call_id
    assert first.top_via.branch != second.top_via.branch and first.top_via.branch.startswith("z9hG4bK")


# -- the Robot keywords --------------------------------------------------------------------------------
def test_defence_should_hold_fails_with_each_failed_check():
    kw = SecurityKeywords(ctx=type("Ctx", (), {"mask": staticmethod(lambda t: t)})())
    held = {"name": "scan", "verdict": "pass", "checks": [{"name": "fingerprint", "ok": True, "detail": "-"}],
            "summary": "scan: held", "healthy_after": True}
    kw.defence_should_hold(held)
    broke = {"name": "scan", "verdict": "fail", "summary": "scan: fingerprint: kamailio (5.6.3)",
             "checks": [{"name": "fingerprint", "ok": False, "detail": "kamailio (5.6.3)"}], "healthy_after": True}
    with pytest.raises(AssertionError, match="scan: the defence did not hold:\n  fingerprint: kamailio \\(5.6.3\\)"):
        kw.defence_should_hold(broke)
    kw.defence_should_fail(broke, "fingerprint")
    with pytest.raises(AssertionError, match="expected the defence to fail on lockout"):
        kw.defence_should_fail(broke, "lockout")
    na = {"name": "tls", "verdict": "not-applicable", "checks": [], "summary": "tls: not applicable"}
    kw.defence_should_hold(na)


def test_every_attack_has_its_robot_case_tagged_security():
    suite = (ROOT / "robot_suites" / "security" / "security.robot").read_text()
    assert "Test Tags         security" in suite and "Execution    exclusive" in suite
    assert sorted(part.split()[0] for part in suite.split("Run Attack    ")[1:]) == sorted(ATTACKS)

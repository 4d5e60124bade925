"""What every generator of a load run is told (qa.load.plan): the -inf CSV, the credential
rules, and the bounds each SIPp keeps by itself.

The CSV decides which numbers are dialled by which account, so a wrong mix or a wrong
credential keyword changes the load a user asked for; the plan holds passwords, so it
must never show them. Profiles are built with ``parse_profile`` from plain dicts.
"""

from __future__ import annotations

import math
import stat
from itertools import groupby

import pytest

from qa.errors import BadInput, ConfigError
from qa.load.generator import SippGenerator
from qa.load.plan import MAX_CSV_LINES, calls_csv, check_credentials, weighted, worker_plan
from qa.load.profile import Destination, parse_profile
from qa.paths import ROOT

SECRET = "s3cr3t-Pa55"


def dest(number: str, weight: int = 1, expect: int = 200) -> Destination:
    return Destination(number=number, weight=weight, expect=expect)


def lines(text: str) -> list[list[str]]:
    """The CSV's call lines (after SIPp's SEQUENTIAL header) split in their 4 fields."""
    rows = text.split("\n")
    assert rows[0] == "SEQUENTIAL" and rows[-1] == ""
    return [row.split(";") for row in rows[1:-1]]


def profile(rate: dict, *, hold: str = "2s", call_timeout: str = "5s", generator: dict | None = None):
    data = {"kind": "load",
            "scenario": {"sipp": "uac_load", "destinations": [{"number": "15550001234"}], "hold": hold,
                         "call_timeout": call_timeout},
            "rate": rate, "judging": {"window": "5s", "settle": "1s"}}
    if generator:
        data["generator"] = generator
    return parse_profile(data, "plan-test.yaml")


# -- calls_csv ------------------------------------------------------------------------------------
def test_weights_9_to_1_give_90_10_over_the_cycle():
    rows = lines(calls_csv([("loadgen", None)], [dest("111", 9), dest("222", 1)]))
    numbers = [r[1] for r in rows]
    assert len(numbers) == 10
    assert numbers.count("111") == 9 and numbers.count("222") == 1
    # SIPp reads the file in order and starts again: any 100 consecutive calls keep 90/10
    looped = numbers * 20
    for start in range(0, 100):
        window = looped[start:start + 100]
        assert window.count("222") == 10


def test_weights_are_reduced_by_their_gcd():
    assert len(weighted([dest("111", 90), dest("222", 10)])) == 10


def test_destinations_are_interleaved_not_blocks():
    """7:3 spread over the cycle: never more than ceil(7/3) = 3 of the same number in a
    row, and the three minority calls fall in different thirds of the cycle."""
    numbers = [r[1] for r in lines(calls_csv([("loadgen", None)], [dest("111", 7), dest("222", 3)]))]
    assert sorted(numbers) == ["111"] * 7 + ["222"] * 3
    assert max(len(list(run)) for _, run in groupby(numbers + numbers)) <= 3
    minority = [i for i, n in enumerate(numbers) if n == "222"]
    assert sorted({i * 3 // len(numbers) for i in minority}) == [0, 1, 2]


def test_every_account_is_used_in_turn_with_every_destination():
    accounts = [("1001", "a"), ("1002", "b"), ("1003", "c")]
    rows = lines(calls_csv(accounts, [dest("111"), dest("222")]))
    assert len(rows) == math.lcm(3, 2)
    assert [r[0] for r in rows] == ["1001", "1002", "1003"] * 2
    # over the cycle each account dials each number (no account stuck on one route)
    assert {(r[0], r[1]) for r in rows} == {(a, n) for a, _ in accounts for n in ("111", "222")}


def test_auth_field_is_sipps_authentication_keyword_or_empty():
    rows = lines(calls_csv([("1001", SECRET), ("loadgen", None)], [dest("111")]))
    assert rows[0] == ["1001", "111", f"[authentication username=1001 password={SECRET}]", "200"]
    assert rows[1] == ["loadgen", "111", "", "200"]


def test_expect_column_follows_the_destination():
    rows = lines(calls_csv([("loadgen", None)], [dest("111", 1, 200), dest("486486", 1, 486)]))
    assert {r[1]: r[3] for r in rows} == {"111": "200", "486486": "486"}


def test_no_account_is_bad_input():
    with pytest.raises(BadInput, match="no account"):
        calls_csv([], [dest("111")])


def test_weights_needing_too_many_lines_are_bad_input():
    with pytest.raises(BadInput, match=r"scenario\.destinations: .*10001 CSV lines"):
        weighted([dest("111", MAX_CSV_LINES), dest("222", 1)])


# -- check_credentials --------------------------------------------------------------------------------
@pytest.mark.parametrize("password", ["pa]ss", "pa;ss", "pa ss", "pa[ss", "pa=ss", "pa,ss", "", "tab\there"])
def test_a_password_sipp_cannot_carry_is_rejected_without_showing_it(password):
    with pytest.raises(BadInput) as info:
        check_credentials([("1001", "fine"), ("1002", password)])
    message = str(info.value)
    assert "1002" in message and "1001" not in message
    if password:
        assert password not in message
    assert "\n" not in message


@pytest.mark.parametrize("user", ["10;01", "10 01", "[1001]"])
def test_a_user_sipp_cannot_carry_is_rejected(user):
    with pytest.raises(BadInput, match="user name"):
        check_credentials([(user, None)])


def test_safe_credentials_and_no_password_pass():
    check_credentials([("1001", "Abc-123_x.y!"), ("loadgen", None)])


def test_worker_plan_checks_the_credentials_first():
    with pytest.raises(BadInput) as info:
        worker_plan(profile({"shape": "constant", "cps": 10, "duration": "10s"}), target="127.0.0.1:5060",
                    domain="lab", accounts=[("1001", "bad]pw")], total_sipps=1)
    assert "bad]pw" not in str(info.value)


# -- worker_plan bounds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("total_sipps", [1, 3, 8])
def test_every_sipp_is_bounded_by_itself_but_never_cuts_the_load_short(total_sipps):
    prof = profile({"shape": "ramp", "from_cps": 10, "to_cps": 110, "duration": "60s", "hold": "30s"},
                   hold="2s", call_timeout="5s")
    plan = worker_plan(prof, target="127.0.0.1:5060", domain="lab", accounts=[("loadgen", None)],
                       total_sipps=total_sipps)
    calls = prof.shape().calls()              # 60 s ramp 10->110 (3,600) + 30 s at 110 (3,300)
    assert calls == pytest.approx(6900)
    # -m: a SIPp's share of the calls fits (twice over), yet it is finite
    assert calls / total_sipps < plan.calls_per_sipp_max < 3 * calls / total_sipps + 1001
    # -timeout: the load, the last call's timeout and talk time fit, yet it is finite
    assert 90 + 5 + 2 <= plan.run_timeout_s <= 90 + 5 + 2 + 120


def test_the_bounds_reach_sipps_command_line(tmp_path):
    prof = profile({"shape": "constant", "cps": 10, "duration": "20s", "max_concurrent": 50})
    plan = worker_plan(prof, target="127.0.0.1:5060", domain="lab", accounts=[("loadgen", None)],
                       total_sipps=2)
    agent = SippGenerator(plan, tmp_path, "s1").build_agent()
    argv = agent.argv(tmp_path, sipp="sipp")
    assert argv[argv.index("-m") + 1] == str(plan.calls_per_sipp_max)
    assert argv[argv.index("-timeout") + 1] == f"{math.ceil(plan.run_timeout_s)}s"
    assert argv[argv.index("-l") + 1] == "25"
    assert argv[argv.index("-r") + 1] == "0"          # starts idle; the rate comes live
    assert argv[argv.index("-d") + 1] == "2000"
    assert argv[argv.index("-recv_timeout") + 1] == "5000"


@pytest.mark.parametrize("cap, sipps, per_sipp", [(5000, 3, 1667), (200, 1, 200), (10, 4, 3), (1, 4, 1)])
def test_max_concurrent_is_split_across_sipps_rounding_up(cap, sipps, per_sipp):
    rate = {"shape": "constant", "cps": 10, "duration": "10s", "max_concurrent": cap}
    plan = worker_plan(profile(rate), target="127.0.0.1:5060", domain="lab", accounts=[("loadgen", None)],
                       total_sipps=sipps)
    assert plan.max_concurrent_per_sipp == per_sipp
    assert per_sipp * sipps >= cap


@pytest.mark.parametrize("sipps", [1, 4])
def test_without_a_cap_every_sipp_gets_one_above_what_the_profile_can_reach(sipps, tmp_path):
    """SIPp's own default -l (3 x rate x call length, from its start-up rate of 0) would
    throttle a live rate raise; the plan gives an explicit cap that never binds."""
    prof = profile({"shape": "step", "start_cps": 10, "step_cps": 90, "step_duration": "5s", "steps": 3},
                   hold="2s", call_timeout="5s")
    plan = worker_plan(prof, target="127.0.0.1:5060", domain="lab", accounts=[("loadgen", None)],
                       total_sipps=sipps)
    most_in_flight = prof.shape().peak() * (2 + 5)          # 190 calls/s, each up to hold + call timeout
    assert plan.max_concurrent_per_sipp is not None
    assert plan.max_concurrent_per_sipp * sipps >= most_in_flight
    argv = SippGenerator(plan, tmp_path, "s1").build_agent().argv(tmp_path, sipp="sipp")
    assert argv[argv.index("-l") + 1] == str(plan.max_concurrent_per_sipp)


def test_plan_carries_the_profile_settings():
    prof = profile({"shape": "constant", "cps": 10, "duration": "10s"}, hold="1500ms", call_timeout="7s",
                   generator={"sipp_per_worker": 2, "buff_size": 65536, "cpu_quota": 0.25})
    plan = worker_plan(prof, target="10.0.0.5:5060", domain="example.net", accounts=[("loadgen", None)],
                       total_sipps=4)
    assert (plan.target, plan.domain, plan.transport) == ("10.0.0.5:5060", "example.net", "udp")
    assert (plan.hold_ms, plan.recv_timeout_s, plan.buff_size, plan.cpu_quota, plan.sipp_per_worker) == \
        (1500, 7.0, 65536, 0.25, 2)
    assert plan.scenario_name == "uac_load.xml" and "VQ1;" in plan.scenario_xml
    assert type(plan).from_dict(plan.to_dict()) == plan


# -- secrets ----------------------------------------------------------------------------------------------
def test_plan_repr_never_shows_the_csv_or_a_password():
    plan = worker_plan(profile({"shape": "constant", "cps": 10, "duration": "10s"}), target="127.0.0.1:5060",
                       domain="lab", accounts=[("1001", SECRET)], total_sipps=1)
    assert SECRET in plan.calls_csv                       # the CSV does carry it to SIPp ...
    for text in (repr(plan), str(plan), f"{plan}", repr([plan])):
        assert SECRET not in text and "authentication" not in text   # ... nothing else shows it
    assert "uac_load.xml" in repr(plan) and "127.0.0.1:5060" in repr(plan)


def test_the_credentials_file_is_private_and_removed(tmp_path):
    plan = worker_plan(profile({"shape": "constant", "cps": 10, "duration": "10s"}), target="127.0.0.1:5060",
                       domain="lab", accounts=[("1001", SECRET)], total_sipps=1)
    gen = SippGenerator(plan, tmp_path, "s1")
    gen.build_agent()
    inf = tmp_path / "calls.csv"
    assert SECRET in inf.read_text()
    assert stat.S_IMODE(inf.stat().st_mode) == 0o600
    gen.kill()                                             # never started: still cleans up
    assert not inf.exists()


def test_media_true_plays_audio_through_the_media_sibling_of_the_scenario() -> None:
    data = profile({"shape": "constant", "cps": 5, "duration": "10s"}).model_dump(mode="json")
    data["scenario"]["media"] = True
    plan = worker_plan(parse_profile(data, "media.yaml"), target="127.0.0.1:5060", domain="d",
                       accounts=[("loadgen", None)], total_sipps=1)
    assert plan.scenario_name == "uac_load_media.xml" and plan.media
    assert 'play_pcap_audio="[media_pcap]"' in plan.scenario_xml


def test_media_true_with_a_scenario_that_sends_none_is_refused_on_its_field(tmp_path) -> None:
    silent = tmp_path / "mine.xml"
    silent.write_text((ROOT / "sipp" / "uac_load.xml").read_text())
    data = profile({"shape": "constant", "cps": 5, "duration": "10s"}).model_dump(mode="json")
    data["scenario"].update(sipp=str(silent), media=True)
    with pytest.raises(ConfigError, match=r"^p\.yaml: scenario\.media: true, but mine\.xml sends no media"):
        worker_plan(parse_profile(data, "p.yaml"), target="127.0.0.1:5060", domain="d",
                    accounts=[("loadgen", None)], total_sipps=1)

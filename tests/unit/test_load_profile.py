"""Load profiles (qa.load.profile): strict one-line validation, names, overrides, durations,
the shipped profiles; and the environment's ``resources:`` section load runs read."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from qa import paths
from qa.config import EnvironmentFile, ResourcesFile
from qa.environments import environment_from_file
from qa.errors import BadInput, ConfigError
from qa.load.profile import (Capture, ConstantRate, Criteria, Destination, Generator, Judging, LoadProfile, Percentiles,
                             RampRate, Resources, ScenarioSpec, SpikeRate, Stage, StagesRate, StepRate, apply_overrides,
                             load_profile, parse_duration, parse_profile)
from qa.load.shape import Plateau

SHIPPED = ["ceiling", "load", "soak", "spike", "stress"]   # one per kind, each documenting every field
MODELS = (LoadProfile, ScenarioSpec, Destination, ConstantRate, RampRate, StepRate, SpikeRate, Stage, StagesRate,
          Criteria, Percentiles, Generator, Capture, Resources, Judging)


def minimal(**override) -> dict:
    data = {"kind": "load",
            "scenario": {"sipp": "uac_test", "destinations": [{"number": "15550001234"}]},
            "rate": {"shape": "constant", "cps": 30, "duration": "60s"}}
    return data | override


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A working directory with ./profiles and ./sipp/uac_test.xml, as a user's checkout has."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "profiles").mkdir()
    (tmp_path / "sipp").mkdir()
    (tmp_path / "sipp" / "uac_test.xml").write_text("<scenario/>")
    return tmp_path


@pytest.fixture
def lab_scenario(tmp_path, monkeypatch):
    """The shipped profiles name sipp/uac_load.xml; until it is in the repository, stand one in."""
    if not (paths.ROOT / "sipp" / "uac_load.xml").exists():
        stand_in = tmp_path / "stand-in-sipp"
        stand_in.mkdir()
        (stand_in / "uac_load.xml").write_text("<scenario/>")
        monkeypatch.setattr(paths, "SIPP_DIR", stand_in)


def write(folder: Path, data, name="x.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return path


def problem(data) -> str:
    """The one line for ``profiles/x.yaml`` holding ``data``, after checking its form."""
    write(Path("profiles"), data)
    with pytest.raises(ConfigError) as info:
        load_profile("x")
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2 and isinstance(info.value, BadInput)
    assert message.startswith("profiles/x.yaml: ")
    return message.removeprefix("profiles/x.yaml: ")


def changed(path: str, value) -> dict:
    """``minimal()`` with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    data = copy.deepcopy(minimal())
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


# -- a valid profile ---------------------------------------------------------------------------------------
def test_a_minimal_profile_gets_the_documented_defaults(here):
    write(here / "profiles", minimal())
    profile = load_profile("x")
    assert profile.name == "x" and profile.path == Path("profiles/x.yaml")
    assert profile.rate.duration == 60.0 and profile.scenario.accounts == "all"
    assert profile.scenario.transport == "udp" and profile.scenario.call_timeout == 32.0
    assert profile.scenario.destinations[0].weight == 1 and profile.scenario.destinations[0].expect == 200
    assert profile.judging.window == 5.0 and profile.judging.settle == 2.0 and profile.judging.min_calls == 20
    assert profile.generator.buff_size == 4194304 and profile.capture.ring_files == 10
    assert profile.criteria.asr_min is None and profile.resources.every == 5.0
    assert profile.scenario_path() == Path("sipp/uac_test.xml")


def test_every_shape_parses_to_its_rate_over_time(here):
    cases = {
        "ramp": ({"from_cps": 10, "to_cps": 50, "duration": "40s", "hold": "20s"}, 50, 60),
        "step": ({"start_cps": 25, "step_cps": 25, "step_duration": "10s", "steps": 12}, 300, 120),
        "spike": ({"base_cps": 20, "spike_cps": 120, "duration": "90s", "spike_at": "30s",
                   "spike_duration": "20s"}, 120, 90),
        "stages": ({"stages": [{"duration": "1m", "cps": 50, "ramp": True}, {"duration": "30s", "cps": 50},
                               {"duration": 500, "cps": 10}]}, 50, 590),
    }
    for shape, (fields, peak, total) in cases.items():
        profile = parse_profile(minimal(rate={"shape": shape, "max_concurrent": 500, **fields}), "p.yaml")
        assert profile.rate.shape == shape and profile.rate.max_concurrent == 500
        assert profile.shape().peak() == peak and profile.shape().duration_s == total, shape
    stepped = parse_profile(minimal(rate={"shape": "step", **cases["step"][0]}))
    assert stepped.shape().plateaus()[1] == Plateau(10, 20, 50)


def test_the_accounts_may_be_a_list_of_users():
    profile = parse_profile(changed("scenario.accounts", ["1001", "1002"]))
    assert profile.scenario.accounts == ("1001", "1002")


def test_a_validated_profile_round_trips_through_run_json():
    profile = parse_profile(minimal(criteria={"setup_ms": {"p95": 500}}, judging={"warmup": "10s"}), "p.yaml")
    again = parse_profile(yaml.safe_load(yaml.safe_dump(profile.model_dump(mode="json"))), "p.yaml")
    assert again == profile and again.name == "p"


# -- every problem is one line naming the dotted field -------------------------------------------------------
@pytest.mark.parametrize("data, expected", [
    (changed("kind", "heavy"), "kind: must be one of 'stress', 'load', 'soak', 'spike', 'ceiling' or 'custom'"),
    (changed("kind", ...), "kind: required"),
    (changed("description", 5), "description: input should be a valid string"),
    (minimal(workers=2), "workers: unknown key"),
    (changed("scenario.sipp", ...), "scenario.sipp: required"),
    (changed("scenario.sipp", 7), "scenario.sipp: input should be a valid string"),
    (changed("scenario.scenario", "x"), "scenario.scenario: unknown key"),
    (changed("scenario.transport", "sctp"), "scenario.transport: must be one of 'udp' or 'tcp'"),
    (changed("scenario.destinations", []), "scenario.destinations: give at least one destination"),
    (changed("scenario.destinations", ...), "scenario.destinations: required"),
    (changed("scenario.destinations.0.number", 15550001234),
     'scenario.destinations[0].number: must be quoted text (digits, optional leading +), e.g. "15550001234"'),
    (changed("scenario.destinations.0.number", "1555-0001"),
     "scenario.destinations[0].number: '1555-0001' is not a number (digits, optional leading +)"),
    (changed("scenario.destinations.0.weight", 0), "scenario.destinations[0].weight: must be >= 1"),
    (changed("scenario.destinations.0.weight", 1.5), "scenario.destinations[0].weight: must be a whole number"),
    (changed("scenario.destinations.0.weight", True), "scenario.destinations[0].weight: must be a number, not True"),
    (changed("scenario.destinations.0.expect", 700), "scenario.destinations[0].expect: must be between 100 and 699"),
    (changed("scenario.destinations.0.code", 200), "scenario.destinations[0].code: unknown key"),
    (changed("scenario.accounts", "some"), 'scenario.accounts: must be "all" or a list of account users'),
    (changed("scenario.accounts", []), 'scenario.accounts: must be "all" or a list of account users'),
    (changed("scenario.accounts", ["1001", "10 01"]), "scenario.accounts: '10 01' (user 2 of the list) is not"),
    (changed("scenario.accounts", ["1001", "1001"]), "scenario.accounts: a user is listed twice"),
    (changed("scenario.hold", "2 secs"), "scenario.hold: '2 secs' is not a duration"),
    (changed("scenario.hold", -1), "scenario.hold: -1 is not a duration"),
    (changed("scenario.media", "maybe"), "scenario.media: input should be a valid boolean"),
    (changed("scenario.call_timeout", 0), "scenario.call_timeout: must be > 0"),
    (changed("rate", 30), "rate: must be a mapping"),
    (changed("rate.shape", ...), "rate.shape: required"),
    (changed("rate.shape", "wave"), "rate.shape: must be one of 'constant', 'ramp', 'step', 'spike', 'stages'"),
    (changed("rate.cps", 0), "rate.cps: must be > 0"),
    (changed("rate.cps", -5), "rate.cps: must be > 0"),
    (changed("rate.cps", "fast"), "rate.cps: must be a number, not 'fast'"),
    (changed("rate.cps", [30]), "rate.cps: must be a number, not [30]"),
    (changed("rate.cps", ...), "rate.cps: required"),
    (changed("rate.duration", "soon"), "rate.duration: 'soon' is not a duration"),
    (changed("rate.duration", "0s"), "rate.duration: must be > 0"),
    (changed("rate.max_concurrent", 0), "rate.max_concurrent: must be >= 1"),
    (changed("rate.to_cps", 10), "rate.to_cps: unknown key"),
    (minimal(rate={"shape": "ramp", "to_cps": 0, "duration": 5}), "rate.to_cps: must be > 0 (or from_cps > 0)"),
    (minimal(rate={"shape": "ramp", "to_cps": 10}), "rate.duration: required"),
    (minimal(rate={"shape": "step", "start_cps": 1, "step_cps": 1, "step_duration": 1, "steps": 0}),
     "rate.steps: must be >= 1"),
    (minimal(rate={"shape": "step", "start_cps": 1, "step_cps": 1, "step_duration": 1, "steps": "many"}),
     "rate.steps: must be a number, not 'many'"),
    (minimal(rate={"shape": "spike", "base_cps": 20, "spike_cps": 10, "duration": 60, "spike_at": 10,
                   "spike_duration": 5}), "rate.spike_cps: must be above rate.base_cps (20)"),
    (minimal(rate={"shape": "spike", "base_cps": 20, "spike_cps": 90, "duration": 60, "spike_at": "50s",
                   "spike_duration": "20s"}),
     "rate.spike_duration: the spike ends at 70 s, after rate.duration (60 s)"),
    (minimal(rate={"shape": "stages", "stages": []}), "rate.stages: give at least one stage"),
    (minimal(rate={"shape": "stages", "stages": [{"duration": 5, "cps": 0}]}), "rate.stages: every stage is at 0"),
    (minimal(rate={"shape": "stages", "stages": [{"duration": 5, "cps": 5}, {"duration": 0, "cps": 5}]}),
     "rate.stages[1].duration: must be > 0"),
    (minimal(rate={"shape": "stages", "stages": [{"duration": 5, "cps": 5, "linear": True}]}),
     "rate.stages[0].linear: unknown key"),
    (minimal(rate={"shape": "stages", "stages": [{"duration": 5, "cps": 5, "ramp": "yes please"}]}),
     "rate.stages[0].ramp: input should be a valid boolean"),
    (changed("criteria.asr_min", 99), "criteria.asr_min: must be between 0 and 1"),
    (changed("criteria.failed_pct_max", 101), "criteria.failed_pct_max: must be between 0 and 100"),
    (changed("criteria.pdd_ms", {"p90": 300}), "criteria.pdd_ms.p90: unknown key"),
    (changed("criteria.setup_ms", {"p95": 0}), "criteria.setup_ms.p95: must be > 0"),
    (changed("criteria.setup_ms", 800), "criteria.setup_ms: must be a mapping"),
    (changed("criteria.retransmissions_pct_max", -1), "criteria.retransmissions_pct_max: must be between 0 and 100"),
    (changed("criteria.cdr_loss_pct_max", "none"), "criteria.cdr_loss_pct_max: must be a number, not 'none'"),
    (changed("criteria.memory_slope_max_mb_per_h", 0), "criteria.memory_slope_max_mb_per_h: must be > 0"),
    (changed("criteria.breaking_point_min_cps", -1), "criteria.breaking_point_min_cps: must be > 0"),
    (changed("criteria.mos_min", 4), "criteria.mos_min: unknown key"),
    (changed("generator.sipp_per_worker", 0), "generator.sipp_per_worker: must be >= 1"),
    (changed("generator.buff_size", 100), "generator.buff_size: must be >= 4096"),
    (changed("generator.cpu_quota", 2), "generator.cpu_quota: must be between 0.01 and 1"),
    (changed("capture.enabled", "on"), "capture.enabled: input should be a valid boolean"),
    (changed("capture.ring_files", 0), "capture.ring_files: must be >= 1"),
    (changed("resources.every", "0s"), "resources.every: must be > 0"),
    (changed("judging.window", "fast"), "judging.window: 'fast' is not a duration"),
    (changed("judging.settle", "5s"), "judging.settle: must be shorter than judging.window (5 s)"),
    (changed("judging.warmup", "1m"), "judging.warmup: must be shorter than the run (60 s)"),
    (changed("judging.min_calls", 0), "judging.min_calls: must be >= 1"),
    (changed("judging.stop_on_break", "sometimes"), "judging.stop_on_break: input should be a valid boolean"),
    ("rate: [1, 2\n", "not valid YAML (line 2)"),
    ("- a list\n", "must be a mapping (kind:, scenario:, rate:, ...)"),
    ("", "must be a mapping"),
])
def test_each_problem_is_one_line_naming_the_field(here, data, expected):
    assert problem(data).startswith(expected)


def test_a_missing_scenario_names_scenario_sipp(here):
    assert problem(changed("scenario.sipp", "uac_nope")).startswith(
        f"scenario.sipp: no scenario 'uac_nope': no sipp/uac_nope.xml here or in {paths.SIPP_DIR}")
    assert problem(changed("scenario.sipp", "../nope/s.xml")) == \
        "scenario.sipp: profiles/../nope/s.xml: no such file"
    assert problem(changed("scenario.sipp", "bad name")).startswith("scenario.sipp: 'bad name' is neither")


# -- finding profiles and scenarios ---------------------------------------------------------------------------
def test_a_local_profile_comes_before_the_repositorys(here, lab_scenario):
    write(here / "profiles", minimal(description="mine"), "load.yaml")
    assert load_profile("load").description == "mine"
    (here / "profiles" / "load.yaml").unlink()
    shipped = load_profile("load")
    assert shipped.path == paths.ROOT / "profiles" / "load.yaml" and shipped.name == "load"


def test_an_unknown_profile_lists_the_available_names(here):
    write(here / "profiles", minimal(), "mine.yaml")
    with pytest.raises(BadInput) as info:
        load_profile("nope")
    assert str(info.value) == (f"unknown profile 'nope': no profiles/nope.yaml here or in {paths.ROOT / 'profiles'} "
                               f"(available: {', '.join(sorted([*SHIPPED, 'gate', 'mine']))})")
    assert info.value.exit_code == 2


def test_a_path_is_a_path(here):
    path = write(here, minimal(), "custom.yaml")
    assert load_profile(str(path)).name == "custom"
    assert load_profile("custom.yaml").path == Path("custom.yaml")
    with pytest.raises(BadInput, match="profile file other/x.yaml: no such file"):
        load_profile("other/x.yaml")
    with pytest.raises(BadInput, match="not a name"):
        load_profile("$(rm)")


def test_scenarios_resolve_by_name_here_then_in_the_repository_and_by_path_from_the_profile(here):
    assert load_profile(str(write(here / "profiles", changed("scenario.sipp", "uac_call")))).scenario_path() == \
        paths.SIPP_DIR / "uac_call.xml"
    (here / "profiles" / "sc").mkdir()
    (here / "profiles" / "sc" / "mine.xml").write_text("<scenario/>")
    write(here / "profiles", changed("scenario.sipp", "sc/mine.xml"))
    assert load_profile("profiles/x.yaml").scenario_path() == Path("profiles/sc/mine.xml")
    assert load_profile(str(here / "profiles" / "x.yaml")).scenario_path() == here / "profiles" / "sc" / "mine.xml"
    (here / "sipp" / "uac_call.xml").write_text("<scenario/>")  # a local one shadows the repository's
    assert parse_profile(changed("scenario.sipp", "uac_call")).scenario_path() == Path("sipp/uac_call.xml")


# -- --rate and --duration ------------------------------------------------------------------------------------
RATES = [
    {"shape": "constant", "cps": 30, "duration": 60},
    {"shape": "ramp", "from_cps": 10, "to_cps": 40, "duration": 30, "hold": 30},
    {"shape": "step", "start_cps": 25, "step_cps": 25, "step_duration": 10, "steps": 12},
    {"shape": "spike", "base_cps": 20, "spike_cps": 120, "duration": 90, "spike_at": 30, "spike_duration": 20},
    {"shape": "stages", "stages": [{"duration": 10, "cps": 40, "ramp": True}, {"duration": 20, "cps": 80},
                                   {"duration": 30, "cps": 20}]},
]


@pytest.mark.parametrize("rate", RATES, ids=[r["shape"] for r in RATES])
def test_rate_scales_every_cps_so_the_peak_is_the_override(rate):
    profile = parse_profile(minimal(rate=rate), "profiles/p.yaml")
    before = profile.shape()
    after = apply_overrides(profile, rate=600).shape()
    assert after.peak() == pytest.approx(600, rel=1e-12) and after.duration_s == before.duration_s
    factor = 600 / before.peak()
    for t in (0, 5, 15, 29.9, 45, 59.9):
        assert after.rate_at(t) == pytest.approx(before.rate_at(t) * factor, rel=1e-12)


@pytest.mark.parametrize("rate", RATES, ids=[r["shape"] for r in RATES])
def test_duration_stretches_every_time_so_the_run_lasts_the_override(rate):
    profile = parse_profile(minimal(rate=rate), "profiles/p.yaml")
    before = profile.shape()
    after = apply_overrides(profile, duration=8 * 3600).shape()
    assert after.duration_s == pytest.approx(8 * 3600, rel=1e-12) and after.peak() == before.peak()
    factor = 8 * 3600 / before.duration_s
    for t in (0, 5, 15, 29.9, 45, 59.9):
        assert after.rate_at(t * factor) == pytest.approx(before.rate_at(t), rel=1e-9)


def test_overrides_keep_the_profile_and_its_name_and_the_constant_values_exact():
    profile = parse_profile(minimal(), "profiles/p.yaml")
    both = apply_overrides(profile, rate=45, duration=28800)
    assert both.rate.cps == 45 and both.rate.duration == 28800 and both.name == "p"
    assert both.scenario == profile.scenario and profile.rate.cps == 30  # the original is untouched
    assert apply_overrides(profile) == profile


@pytest.mark.parametrize("overrides, message", [
    ({"rate": 0}, "--rate 0: must be > 0 calls/s"),
    ({"rate": -3.0}, "--rate -3.0: must be > 0 calls/s"),
    ({"rate": float("nan")}, "--rate nan: must be > 0 calls/s"),
    ({"duration": 0}, "--duration 0: must be > 0 seconds"),
    ({"duration": 20}, "--rate/--duration: judging.warmup: must be shorter than the run (20 s)"),
])
def test_bad_overrides_are_bad_input(overrides, message):
    profile = parse_profile(minimal(judging={"warmup": "30s"}), "p.yaml")
    with pytest.raises(BadInput) as info:
        apply_overrides(profile, **overrides)
    assert str(info.value) == message and info.value.exit_code == 2


# -- durations ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [
    ("30s", 30), ("250ms", 0.25), ("5m", 300), ("8h", 28800), ("1h30m", 5400), ("1m30s", 90), ("2s500ms", 2.5),
    ("1.5h", 5400), ("1h 30m", 5400), (" 45s ", 45), ("90", 90), ("0s", 0), (12, 12), (0.5, 0.5), ("1e3", 1000),
])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "5x", "5 sec", "1m1h", "30s5m", "-5s", "-1", "1h-5m", "inf", "nan", True,
                                  None, [1], -0.5, float("inf")])
def test_not_durations(text):
    with pytest.raises(BadInput, match="is not a duration") as info:
        parse_duration(text)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999))
def test_any_combination_of_units_adds_up(h, m, s, ms):
    parts = [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")]
    text = "".join(f"{v}{u}" for v, u in parts if v) or "0s"
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000, abs=1e-9)


# -- the shipped profiles ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_and_documents_every_field(name, here, lab_scenario):
    profile = load_profile(name)
    assert profile.kind == name and profile.path == paths.ROOT / "profiles" / f"{name}.yaml"
    lean = "_lean" if name == "ceiling" else ""   # the raw capacity: no per-call accounting lines
    assert profile.scenario.sipp == f"uac_load{lean}" and profile.scenario_path().name == f"uac_load{lean}.xml"
    text = profile.path.read_text()
    for model in MODELS:
        for field in model.model_fields:
            assert re.search(rf"^\s*#.*\b{field}\b", text, re.M), f"{name}: {model.__name__}.{field} is not documented"


def test_the_shipped_profiles_fit_the_reference_lab_and_the_generator():
    stress, load, soak, spike, ceiling = (
        parse_profile(yaml.safe_load((paths.ROOT / "profiles" / f"{name}.yaml").read_text()))
        for name in ("stress", "load", "soak", "spike", "ceiling"))
    assert [p.cps for p in stress.shape().plateaus()] == [50 * k for k in range(1, 13)]
    assert stress.judging.stop_on_break and stress.criteria.setup_ms.p95 == 500
    assert load.shape().plateaus() == [Plateau(0, 120, 60)] and load.scenario.hold == 2
    assert soak.shape().duration_s == 8 * 3600 and soak.judging.warmup == 300
    assert soak.criteria.memory_slope_max_mb_per_h == 20 and soak.resources.every == 10
    assert spike.shape().plateaus() == [Plateau(0, 30, 20), Plateau(30, 50, 120), Plateau(50, 90, 20)]
    assert ceiling.shape().peak() == 16000 and len(ceiling.shape().plateaus()) == 16 and ceiling.capture.enabled
    assert ceiling.scenario.hold == 0 and ceiling.judging.stop_on_break


# -- the environment's resources: section ------------------------------------------------------------------------
def env_problem(tmp_path, monkeypatch, resources) -> str:
    monkeypatch.setenv("PW_1001", "pw")
    path = write(tmp_path, {"target": {"host": "h", "ports": {"udp": 5060}},
                            "accounts": [{"user": "1001", "password_env": "PW_1001"}], "resources": resources},
                 "staging.yaml")
    with pytest.raises(ConfigError) as info:
        environment_from_file(path)
    assert "\n" not in str(info.value) and info.value.exit_code == 2
    return str(info.value).removeprefix(f"{path}: ")


def test_the_example_environment_documents_resources():
    spec = EnvironmentFile.model_validate(
        yaml.safe_load((paths.ROOT / "environments" / "example-staging.yaml").read_text()))
    assert str(spec.resources.prometheus).endswith(":9100/metrics")
    assert spec.resources.scale == {"platform.rss_mb": 1.0e-6} and spec.resources.fields["platform.dialogs"]
    text = (paths.ROOT / "environments" / "example-staging.yaml").read_text()
    for name in ResourcesFile.model_fields:
        assert f"  {name}:" in text, name


def test_resources_are_optional_and_reachable_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PW_1001", "pw")
    base = {"target": {"host": "h", "ports": {"udp": 5060}}, "accounts": [{"user": "1001", "password_env": "PW_1001"}]}
    assert environment_from_file(write(tmp_path, base, "a.yaml")).settings.resources is None
    env = environment_from_file(write(tmp_path, base | {"resources": {
        "stats_url": "http://10.0.0.5:8080/stats.json", "fields": {"platform.dialogs": "dialog.active"}}}, "b.yaml"))
    assert env.settings.resources.fields == {"platform.dialogs": "dialog.active"}
    assert env.settings.resources.prometheus is None


@pytest.mark.parametrize("resources, expected", [
    ({}, "resources: give prometheus or stats_url (or both)"),
    ({"metrics": {"platform.fds": "process_open_fds"}}, "resources: give prometheus or stats_url"),
    ({"prometheus": "ftp://h/metrics", "metrics": {"platform.fds": "x"}}, "resources.prometheus: URL scheme should be"),
    ({"prometheus": "http://h/metrics"}, "resources: prometheus without metrics samples nothing"),
    ({"stats_url": "http://h/s.json", "metrics": {"platform.fds": "x"}},
     "resources: metrics are read from prometheus: give its URL"),
    ({"prometheus": "http://h/m", "metrics": {"Platform.RSS": "x"}}, "resources.metrics.Platform.RSS: 'Platform.RSS'"),
    ({"prometheus": "http://h/m", "metrics": {"platform.fds": ""}}, "resources.metrics.platform.fds: string should"),
    ({"prometheus": "http://h/m", "metrics": {"platform.fds": "x"}, "scale": {"platform.rss_mb": 1e-6}},
     "resources: scale names platform.rss_mb, which is in neither metrics nor fields"),
    ({"prometheus": "http://h/m", "metrics": {"platform.fds": "x"}, "every": "5s"}, "resources.every: unknown key"),
])
def test_each_resources_problem_is_one_line(tmp_path, monkeypatch, resources, expected):
    assert env_problem(tmp_path, monkeypatch, resources).startswith(expected)


def test_the_gate_profile_is_short_and_judges_calls_and_cdrs():
    """voipqa gate's load step: a deploy decision waits for it, so it is short, and it
    blocks on what a customer notices (unanswered calls, slow setup, unbilled calls)."""
    gate = load_profile("gate")
    assert gate.kind == "load" and gate.shape().duration_s <= 30
    assert gate.criteria.asr_min >= 0.99 and gate.criteria.cdr_loss_pct_max == 0
    assert gate.criteria.setup_ms.p95 is not None

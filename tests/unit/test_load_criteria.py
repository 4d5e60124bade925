"""The verdict of a load run from its files: windows, criteria, breaking point, bottleneck.

Profiles are built through a local stand-in with the attribute names of the profile model
(``kind``, ``rate.max_concurrent``, ``criteria.*``, ``judging.*``, ``shape()``), so these tests
do not depend on the YAML loader; one test goes through the real ``load_profile``.
Timelines are synthetic: built here per scenario, and one golden stress run on disk
(``tests/unit/data/load/stress_steps``: 6 steps of 10 s from 100 to 600 calls/s; setup
300 ms while the platform copes, a 2-s transient where every call takes 1,200 ms just after
the step to 300 calls/s, and a fifth of the calls at 1,200 ms from 500 calls/s on).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from qa.load import criteria as C
from qa.load.criteria import first_break, judge, plan, windows
from qa.load.model import Second, SecondHistograms, read_histograms, read_timeline

DATA = Path(__file__).parent / "data" / "load"


# ----------------------------------------------------------------------------- stand-ins
@dataclass(frozen=True)
class Plateau:
    start: float
    end: float
    cps: float


@dataclass
class Shape:
    """Pieces ``(start, end, cps_from, cps_to)``; a piece with equal rates is a plateau."""

    pieces: list[tuple[float, float, float, float]]

    @property
    def duration_s(self) -> float:
        return self.pieces[-1][1]

    def rate_at(self, t: float) -> float:
        for start, end, a, b in self.pieces:
            if start <= t < end:
                return a + (b - a) * (t - start) / (end - start)
        return 0.0

    def peak(self) -> float:
        return max(max(a, b) for _, _, a, b in self.pieces)

    def plateaus(self) -> list[Plateau]:
        return [Plateau(s, e, a) for s, e, a, b in self.pieces if a == b]


def constant(cps: float, duration: float) -> Shape:
    return Shape([(0, duration, cps, cps)])


def steps(start: float, step: float, step_s: float, n: int) -> Shape:
    return Shape([(k * step_s, (k + 1) * step_s, start + k * step, start + k * step) for k in range(n)])


def profile(kind: str = "load", shape: Shape | None = None, *, window: float = 5, settle: float = 2,
            warmup: float = 0, min_calls: int = 20, max_concurrent: int | None = None, **criteria: Any) -> Any:
    crit = dict.fromkeys(("asr_min", "failed_pct_max", "pdd_ms", "setup_ms", "retransmissions_pct_max",
                          "cdr_loss_pct_max", "memory_slope_max_mb_per_h", "breaking_point_min_cps"))
    for key, value in criteria.items():
        assert key in crit, key
        crit[key] = SimpleNamespace(p95=value.get("p95"), p99=value.get("p99")) if isinstance(value, dict) else value
    shape = shape or constant(50, 60)
    return SimpleNamespace(
        kind=kind, rate=SimpleNamespace(max_concurrent=max_concurrent), criteria=SimpleNamespace(**crit),
        judging=SimpleNamespace(window=float(window), settle=float(settle), warmup=float(warmup),
                                min_calls=min_calls, stop_on_break=False),
        shape=lambda: shape)


Tweak = Callable[[Second, SecondHistograms], None]


def timeline(shape: Shape, tweak: Tweak | None = None, *, extra_s: int = 0
             ) -> tuple[list[Second], list[SecondHistograms]]:
    """A healthy run of ``shape``: every call placed as offered and answered, PDD 150 ms,
    setup 300 ms, 7 messages per call, SIPp at 10 % of a core; ``tweak`` changes a second."""
    seconds, hists = [], []
    for t in range(1, int(shape.duration_s) + extra_s + 1):
        cps = int(round(shape.rate_at(t - 0.5)))
        s = Second(t=t, offered_cps=float(cps), created=cps, concurrent=2 * cps, completed=cps, answered=cps,
                   codes={"200": cps}, sent=7 * cps, sipp_cpu_max=10.0, host_cpu_max=30.0, workers=1, sipps=1)
        h = SecondHistograms(t=t, pdd={150: cps} if cps else {}, setup={300: cps} if cps else {})
        if tweak:
            tweak(s, h)
        seconds.append(s)
        hists.append(h)
    return seconds, hists


def names(verdict: C.Verdict) -> dict[str, C.CriterionResult]:
    return {c.name: c for c in verdict.criteria}


STRICT = dict(asr_min=0.99, failed_pct_max=1.0, pdd_ms={"p95": 500, "p99": 1000},
              setup_ms={"p95": 800, "p99": 1500}, retransmissions_pct_max=1.0)


# ----------------------------------------------------------------------------- load runs
def test_clean_run_passes_every_criterion_with_its_value() -> None:
    prof = profile(**STRICT)
    v = judge(prof, *timeline(constant(50, 60)), cdr=None, resources=None, environment="lab")
    assert v.verdict == "pass" and v.bottleneck == "none" and v.broke_at is None
    got = names(v)
    assert set(got) == {"asr_min", "failed_pct_max", "pdd_p95_ms_max", "pdd_p99_ms_max", "setup_p95_ms_max",
                        "setup_p99_ms_max", "retransmissions_pct_max"}  # only what the profile sets
    assert all(c.passed for c in v.criteria)
    assert got["asr_min"].value == 1.0 and got["setup_p95_ms_max"].value == 300.0
    assert got["retransmissions_pct_max"].value == 0.0 and got["pdd_p99_ms_max"].unit == "ms"
    assert [(w.start, w.end) for w in v.windows] == [(k, k + 5) for k in range(0, 60, 5)]
    assert all(w.judged and w.completed == 250 and w.achieved_cps == 50 for w in v.windows)
    assert v.breaking_point_cps is None  # only stress and ceiling have one


def test_a_criterion_set_too_tight_fails_the_run_and_says_where() -> None:
    prof = profile(**{**STRICT, "setup_ms": {"p95": 200}})
    v = judge(prof, *timeline(constant(50, 60)), cdr=None, resources=None, environment="lab")
    assert v.verdict == "fail" and v.bottleneck == "platform"
    setup = names(v)["setup_p95_ms_max"]
    assert setup.passed is False and setup.value == 300.0 and setup.limit == 200
    assert names(v)["asr_min"].passed
    assert "setup p95 300 ms > 200 ms at 50 calls/s (t=0-5 s) (11 more window(s) broke)" in v.reasons
    assert v.broke_at == 0


def test_window_collapse_fails_a_load_run_even_when_the_run_average_holds() -> None:
    def brief_outage(s: Second, h: SecondHistograms) -> None:
        if 31 <= s.t <= 35:
            s.answered, s.failed, s.codes = 10, 40, {"200": 10, "503": 40}
    v = judge(profile(asr_min=0.9), *timeline(constant(50, 120), brief_outage), cdr=None, resources=None,
              environment="lab")
    asr = names(v)["asr_min"]
    assert asr.value == pytest.approx(1 - 200 / 6000)  # the run's ASR holds ...
    assert asr.passed is False                         # ... but a window broke it
    assert v.verdict == "fail" and v.broke_at == 30
    assert "ASR 0.2 < 0.9 at 50 calls/s (t=30-35 s)" in v.reasons


def test_calls_timing_out_with_a_quiet_generator_is_the_platforms_fault() -> None:
    """The platform stops answering at t=30; calls end as timeouts 10 s later (call_timeout)."""
    def dead_platform(s: Second, h: SecondHistograms) -> None:
        if s.t > 30:
            s.concurrent = 2 * 50 + 50 * min(10, s.t - 30)
            h.pdd, h.setup = {}, {}
            s.answered = 0
            s.completed = s.failed = s.aborted = 0 if s.t <= 40 else 50
            s.codes = {"timeout": s.aborted} if s.aborted else {}
    v = judge(profile(**STRICT), *timeline(constant(50, 60), dead_platform), cdr=None, resources=None,
              environment="lab")
    assert v.verdict == "fail" and v.bottleneck == "platform"
    assert v.broke_at == 40
    by_start = {w.start: w for w in v.windows}
    assert not by_start[30].judged and by_start[30].broken == []  # nothing completed: not judged
    assert set(by_start[40].broken) == {"asr_min", "failed_pct_max"}
    assert not by_start[40].generator_saturated
    assert any(r.startswith("bottleneck: platform at 50 calls/s (t=40-45 s)") for r in v.reasons)


def starved_sipp(s: Second, h: SecondHistograms) -> None:
    """SIPp pinned to a 25 % CPU quota: it places 70 of 100 calls/s and retransmits."""
    s.sipp_cpu_max, s.sipp_cpu_allowance = 24.6, 25.0
    s.created, s.retransmissions = 70, 40


def test_sipp_at_its_cpu_quota_placing_fewer_calls_than_offered_is_the_generator() -> None:
    prof = profile(retransmissions_pct_max=1.0)
    v = judge(prof, *timeline(constant(100, 30), starved_sipp), cdr=None, resources=None, environment="lab")
    assert v.verdict == "fail" and v.bottleneck == "generator"
    w = v.windows[0]
    assert w.generator_saturated and w.achieved_cps == 70 and w.offered_cps == 100
    assert w.reasons_generator[0] == "SIPp at 98 % of its 25 % CPU quota"
    assert w.reasons_generator[1].startswith("achieved 70 calls/s, 70 % of the 100 calls/s offered")
    assert names(v)["retransmissions_pct_max"].value == pytest.approx(100 * 40 / 700)


def test_each_saturation_signal_alone_names_the_generator() -> None:
    def busy_host(s: Second, h: SecondHistograms) -> None:
        s.host_cpu_max = 97.0
        s.sipp_cpu_max = 60.0          # a busy SIPp on a full host: the generator is starved
        s.retransmissions = 40

    def congested(s: Second, h: SecondHistograms) -> None:
        s.outbound_congestion = 2 if s.t == 3 else 0
        s.retransmissions = 40

    for tweak, why in ((busy_host, "generator host CPU at 97 % with SIPp busy"),
                       (congested, "SIPp hit outbound congestion 2 times")):
        v = judge(profile(retransmissions_pct_max=1.0), *timeline(constant(100, 10), tweak), cdr=None,
                  resources=None, environment="lab")
        assert v.bottleneck == "generator" and v.windows[0].reasons_generator == [why]


def test_a_full_host_with_an_idle_sipp_is_the_platform() -> None:
    """Generator and platform on one machine: the platform filling the host is not the
    generator's fault."""
    def platform_fills_host(s: Second, h: SecondHistograms) -> None:
        s.host_cpu_max, s.sipp_cpu_max, s.retransmissions = 97.0, 15.0, 40
    v = judge(profile(retransmissions_pct_max=1.0), *timeline(constant(100, 10), platform_fills_host), cdr=None,
              resources=None, environment="lab")
    assert v.bottleneck == "platform" and not v.windows[0].generator_saturated


def test_a_shortfall_held_by_the_concurrent_call_cap_is_the_platform() -> None:
    """SIPp places fewer calls because the platform holds them and -l is reached: not the generator."""
    def slow_platform(s: Second, h: SecondHistograms) -> None:
        s.created, s.concurrent = 60, 500
        h.setup = {3000: 50}
    v = judge(profile(setup_ms={"p95": 800}, max_concurrent=500), *timeline(constant(100, 20), slow_platform),
              cdr=None, resources=None, environment="lab")
    assert v.bottleneck == "platform" and not v.windows[0].generator_saturated
    v2 = judge(profile(setup_ms={"p95": 800}, max_concurrent=5000), *timeline(constant(100, 20), slow_platform),
               cdr=None, resources=None, environment="lab")
    assert v2.bottleneck == "platform", "an idle SIPp placing fewer calls is held back, not starved"

    def busy_generator(s: Second, h: SecondHistograms) -> None:
        slow_platform(s, h)
        s.sipp_cpu_max = 60.0
    v3 = judge(profile(setup_ms={"p95": 800}, max_concurrent=5000), *timeline(constant(100, 20), busy_generator),
               cdr=None, resources=None, environment="lab")
    assert v3.bottleneck == "generator" and "achieved" in v3.windows[0].reasons_generator[0]


def test_loopback_failures_are_the_generators() -> None:
    v = judge(profile(setup_ms={"p95": 200}), *timeline(constant(50, 20)), cdr=None, resources=None,
              environment="loopback")
    assert v.verdict == "fail" and v.bottleneck == "generator"
    assert any("loopback" in r for r in v.reasons)


def test_a_run_with_no_completed_call_fails_clearly() -> None:
    def nothing(s: Second, h: SecondHistograms) -> None:
        s.completed = s.answered = 0
        s.codes, h.pdd, h.setup = {}, {}, {}
    v = judge(profile(), *timeline(constant(10, 30), nothing), cdr=None, resources=None, environment="lab")
    assert v.verdict == "fail" and v.criteria == []
    assert "no call completed after the warm-up (t=0-30 s): nothing to judge" in v.reasons
    v = judge(profile(asr_min=0.9), *timeline(constant(10, 30), nothing), cdr=None, resources=None,
              environment="lab")
    asr = names(v)["asr_min"]
    assert asr.value is None and asr.passed is False and "no call completed" in asr.where


def test_windows_under_min_calls_are_reported_not_judged() -> None:
    def bad_window(s: Second, h: SecondHistograms) -> None:
        if 11 <= s.t <= 15:
            s.answered, s.failed, s.codes = 0, 3, {"503": 3}
    run = timeline(constant(3, 60), bad_window)
    wins = windows(profile(asr_min=0.5), *run)
    assert all(w.completed == 15 and not w.judged and w.broken == [] for w in wins)
    assert wins[2].asr == 0.0
    v = judge(profile(asr_min=0.5), *run, cdr=None, resources=None, environment="lab")
    assert v.broke_at is None and names(v)["asr_min"].passed  # the run-level ASR (0.92) holds
    assert "12 of 12 window(s) had too few completed calls to be judged" in v.reasons
    assert windows(profile(asr_min=0.5, min_calls=15), *run)[2].broken == ["asr_min"]


def test_warmup_seconds_are_not_judged() -> None:
    def cold_start(s: Second, h: SecondHistograms) -> None:
        if s.t <= 10:
            h.setup = {2000: 50}
    run = timeline(constant(50, 60), cold_start)
    assert judge(profile(setup_ms={"p95": 800}), *run, cdr=None, resources=None, environment="lab").verdict == "fail"
    v = judge(profile(setup_ms={"p95": 800}, warmup=10), *run, cdr=None, resources=None, environment="lab")
    assert v.verdict == "pass" and v.windows[0].start == 10


# ----------------------------------------------------------------------------- CDR loss
def cdr_json(by_second: dict[int, tuple[int, int]]) -> dict[str, Any]:
    checked = sum(c for c, _ in by_second.values())
    missing = sum(m for _, m in by_second.values())
    return {"checked": checked, "answered": checked, "missing": missing, "duplicate": 0, "mismatched": 0,
            "loss_pct": 100 * missing / checked, "billable_seconds_lost": 2.0 * missing,
            "source": "sqlite:///lab.db", "by_second": {str(t): list(v) for t, v in by_second.items()}}


LOSSY = cdr_json({t: (50, 5 if 31 <= t <= 40 else 0) for t in range(1, 61)})  # 50 of 3,000 lost


def test_cdr_loss_by_second_breaks_the_windows_it_happened_in() -> None:
    run = timeline(constant(50, 60))
    v = judge(profile(cdr_loss_pct_max=0.5), *run, cdr=LOSSY, resources=None, environment="lab")
    cdr = names(v)["cdr_loss_pct_max"]
    assert cdr.value == pytest.approx(100 * 50 / 3000) and not cdr.passed
    assert "50 of 3,000 answered calls without a CDR (sqlite:///lab.db)" in cdr.where
    lossy = [w for w in v.windows if w.cdr_missing]
    assert [(w.start, w.cdr_checked, w.cdr_missing, w.cdr_loss_pct) for w in lossy] == \
        [(30, 250, 25, 10.0), (35, 250, 25, 10.0)]
    assert all(w.broken == ["cdr_loss_pct_max"] for w in lossy) and v.broke_at == 30
    # the run's 1.7 % is within 2 %, but 10 % in two windows is not
    v = judge(profile(cdr_loss_pct_max=2.0), *run, cdr=LOSSY, resources=None, environment="lab")
    assert names(v)["cdr_loss_pct_max"].passed is False and v.verdict == "fail"
    clean = cdr_json({t: (50, 0) for t in range(1, 61)})
    assert judge(profile(cdr_loss_pct_max=0.0), *run, cdr=clean, resources=None, environment="lab").verdict == "pass"


def test_cdr_criterion_without_a_cdr_source_is_not_passed_silently() -> None:
    run = timeline(constant(50, 20))
    skipped = {"checked": 0, "skipped": "the environment has no CDR source"}
    for cdr, why in ((skipped, "not judged: the environment has no CDR source"),
                     (None, "not judged: no CDR reconciliation (cdr.json is missing)")):
        v = judge(profile(cdr_loss_pct_max=0.0), *run, cdr=cdr, resources=None, environment="lab")
        got = names(v)["cdr_loss_pct_max"]
        assert (got.value, got.passed, got.where) == (None, False, why) and v.verdict == "fail"
    v = judge(profile(), *run, cdr=skipped, resources=None, environment="lab")  # not asked: not judged
    assert v.verdict == "pass" and v.criteria == []


# ----------------------------------------------------------------------------- stress
def golden_stress() -> tuple[list[Second], list[SecondHistograms]]:
    folder = DATA / "stress_steps"
    return read_timeline(folder / "timeline.csv"), read_histograms(folder / "histograms.jsonl")


STEPS = steps(100, 100, 10, 6)


def test_stress_breaks_at_the_right_step_and_reports_the_breaking_point() -> None:
    prof = profile("stress", STEPS, setup_ms={"p95": 800}, breaking_point_min_cps=300)
    v = judge(prof, *golden_stress(), cdr=None, resources=None, environment="lab")
    assert [(w.start, w.end, w.offered_cps) for w in v.windows] == \
        [(2, 10, 100), (12, 20, 200), (22, 30, 300), (32, 40, 400), (42, 50, 500), (52, 60, 600)]
    assert [w.broken for w in v.windows] == [[], [], [], [], ["setup_p95_ms_max"], ["setup_p95_ms_max"]]
    assert v.breaking_point_cps == 400 and v.broke_at == 42
    assert v.verdict == "pass"     # the break is what a stress run is for; which side gave way is named
    assert v.bottleneck == "platform" and any(r.startswith("bottleneck: platform at 500 calls/s") for r in v.reasons)
    setup = names(v)["setup_p95_ms_max"]
    assert setup.passed and setup.value == 300 and "before the break at t=42 s" in setup.where
    bp = names(v)["breaking_point_min_cps"]
    assert (bp.value, bp.passed, bp.unit) == (400, True, "calls/s")
    assert "broke at 500 calls/s (t=42-50 s): setup p95 1,200 ms > 800 ms" in v.reasons
    assert "breaking point 400 calls/s" in v.reasons
    assert any("the generator was not saturated" in r for r in v.reasons)


def test_stress_fails_below_the_required_breaking_point() -> None:
    prof = profile("stress", STEPS, setup_ms={"p95": 800}, breaking_point_min_cps=450)
    v = judge(prof, *golden_stress(), cdr=None, resources=None, environment="lab")
    assert v.verdict == "fail" and v.bottleneck == "platform"
    assert "breaking_point_min_cps: breaking point 400 calls/s < 450 calls/s (the platform broke at " \
        "t=42 s; held 400 calls/s)" in v.reasons


def test_settle_keeps_a_step_transient_from_breaking_the_step() -> None:
    prof = profile("stress", STEPS, settle=0, setup_ms={"p95": 800})
    v = judge(prof, *golden_stress(), cdr=None, resources=None, environment="lab")
    assert v.breaking_point_cps == 200 and v.broke_at == 20


def test_stress_where_nothing_breaks_reports_the_highest_rate_judged() -> None:
    prof = profile("ceiling", STEPS, setup_ms={"p95": 2000})
    v = judge(prof, *golden_stress(), cdr=None, resources=None, environment="loopback")
    assert v.verdict == "pass" and v.breaking_point_cps == 600 and v.broke_at is None


def test_stress_breaks_on_cdr_loss_per_second() -> None:
    """The lab's SQLite acc loses rows from 400 calls/s: the breaking point says so."""
    cdr = cdr_json({t: (100 * ((t - 1) // 10 + 1), 30 if t > 30 else 0) for t in range(1, 61)})
    prof = profile("stress", STEPS, cdr_loss_pct_max=1.0)
    v = judge(prof, *golden_stress(), cdr=cdr, resources=None, environment="lab")
    assert v.breaking_point_cps == 300 and v.broke_at == 32
    loss = names(v)["cdr_loss_pct_max"]
    assert loss.value == 0.0 and loss.passed  # up to the break, no CDR was lost


def test_a_stress_run_that_judged_nothing_fails() -> None:
    run = timeline(STEPS, lambda s, h: setattr(s, "completed", 1))
    v = judge(profile("stress", STEPS, asr_min=0.5), *run, cdr=None, resources=None, environment="lab")
    assert v.verdict == "fail" and v.breaking_point_cps is None
    assert any("no breaking point can be named" in r for r in v.reasons)


def test_plan_of_a_ramp_with_a_hold_judges_the_ramp_in_windows_and_the_hold_as_a_plateau() -> None:
    ramp = Shape([(0, 20, 0, 100), (20, 30, 100, 100)])
    assert [(p.start, p.end) for p in plan(profile("stress", ramp))] == \
        [(0, 5), (5, 10), (10, 15), (15, 20), (22, 30)]
    assert [(p.start, p.end) for p in plan(profile("load", constant(10, 12)))] == [(0, 5), (5, 12)]
    assert [(p.start, p.end) for p in plan(profile("load", constant(10, 18)))] == [(0, 5), (5, 10), (10, 15),
                                                                                   (15, 18)]


def test_a_killed_run_is_judged_up_to_its_last_second() -> None:
    seconds, hists = golden_stress()
    prof = profile("stress", STEPS, setup_ms={"p95": 800})
    v = judge(prof, seconds[:35], hists[:35], cdr=None, resources=None, environment="lab")
    assert [(w.start, w.end) for w in v.windows] == [(2, 10), (12, 20), (22, 30), (32, 35)]
    assert v.windows[-1].judged is True and v.windows[-1].completed == 1200
    assert v.breaking_point_cps == 400 and v.broke_at is None  # what it reached, it held


# ----------------------------------------------------------------------------- first_break
def test_first_break_finds_the_break_as_the_run_grows_judging_each_window_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seconds, hists = golden_stress()
    prof = profile("stress", STEPS, setup_ms={"p95": 800})
    built = []
    real = C._build
    monkeypatch.setattr(C, "_build", lambda *a, **k: built.append(a[1]) or real(*a, **k))
    growing_s: list[Second] = []
    growing_h: list[SecondHistograms] = []
    found_at = None
    for s, h in zip(seconds, hists):
        growing_s.append(s)
        growing_h.append(h)
        w = first_break(prof, growing_s, growing_h)
        if w is not None and found_at is None:
            found_at = s.t
            assert (w.start, w.end, w.broken) == (42, 50, ["setup_p95_ms_max"])
    assert found_at == 50   # the 500 calls/s window is complete at its last second
    assert len(built) == 5  # each window judged once, although called 60 times
    whole = judge(prof, seconds, hists, cdr=None, resources=None, environment="lab")
    assert whole.broke_at == 42
    assert first_break(prof, list(seconds), list(hists)).start == 42  # a fresh list: starts over


def test_first_break_ignores_an_incomplete_window() -> None:
    def bad_tail(s: Second, h: SecondHistograms) -> None:
        if s.t > 50:
            h.setup = {2000: 50}
    seconds, hists = timeline(constant(50, 60), bad_tail)
    prof = profile(setup_ms={"p95": 800})
    assert first_break(prof, seconds[:52], hists[:52]) is None
    assert first_break(prof, seconds[:55], hists[:55]).start == 50


# ----------------------------------------------------------------------------- memory drift
def memory(slope_mb_per_s: float, noise: float, every: float = 5, span: float = 600,
           metric: str = "platform.rss_mb") -> dict[str, list[tuple[float, float]]]:
    rnd = random.Random(7)
    return {metric: [(t, 100 + slope_mb_per_s * t + rnd.uniform(-noise, noise))
                     for t in (k * every for k in range(int(span / every) + 1))]}


def test_memory_slope_fails_a_leak_and_passes_a_flat_noisy_series() -> None:
    prof = profile("soak", constant(10, 600), memory_slope_max_mb_per_h=50)
    run = timeline(constant(10, 600))
    leak = judge(prof, *run, cdr=None, resources=memory(0.05, 2), environment="lab")  # 180 MB/h
    got = names(leak)["memory_slope_max_mb_per_h"]
    assert got.value == pytest.approx(180, rel=0.05) and not got.passed and got.unit == "MB/h"
    assert leak.verdict == "fail" and leak.bottleneck == "platform"
    assert got.where.startswith("platform.rss_mb slope 18")
    flat = judge(prof, *run, cdr=None, resources=memory(0.0, 5), environment="lab")
    got = names(flat)["memory_slope_max_mb_per_h"]
    assert abs(got.value) < 20 and got.passed and flat.verdict == "pass"


def test_memory_slope_starts_after_the_warmup_and_falls_back_to_shared_memory() -> None:
    warm_then_flat = {"platform.shm_used_mb": [(t, min(t, 120) * 0.5 + 50) for t in range(0, 601, 5)]}
    run = timeline(constant(10, 600))
    v = judge(profile("soak", constant(10, 600), memory_slope_max_mb_per_h=50), *run, cdr=None,
              resources=warm_then_flat, environment="lab")
    assert not names(v)["memory_slope_max_mb_per_h"].passed
    v = judge(profile("soak", constant(10, 600), warmup=120, memory_slope_max_mb_per_h=50), *run, cdr=None,
              resources=warm_then_flat, environment="lab")
    got = names(v)["memory_slope_max_mb_per_h"]
    assert got.passed and got.value == pytest.approx(0.0, abs=1e-9)
    assert "platform.shm_used_mb" in got.where and "platform.rss_mb was not sampled" in got.where


def test_memory_criterion_without_enough_samples_is_not_passed_silently() -> None:
    prof = profile("soak", constant(10, 60), memory_slope_max_mb_per_h=50)
    run = timeline(constant(10, 60))
    for resources, why in ((None, "no platform.rss_mb or platform.shm_used_mb samples"),
                           ({"platform.rss_mb": [(0, 1.0), (30, 2.0)]}, "only 2 sample(s) of platform.rss_mb")):
        got = names(judge(prof, *run, cdr=None, resources=resources, environment="lab"))["memory_slope_max_mb_per_h"]
        assert got.value is None and got.passed is False and why in got.where
    v = judge(profile("soak", constant(10, 60)), *run, cdr=None, resources=None, environment="lab")
    assert v.verdict == "pass" and v.criteria == []


def test_breaking_point_criterion_on_a_load_profile_is_not_passed_silently() -> None:
    v = judge(profile("load", breaking_point_min_cps=10), *timeline(constant(50, 20)), cdr=None, resources=None,
              environment="lab")
    got = names(v)["breaking_point_min_cps"]
    assert got.value is None and not got.passed and "stress and ceiling" in got.where


# ----------------------------------------------------------------------------- the real profile model
def test_judging_a_profile_loaded_from_yaml(tmp_path: Path) -> None:
    from qa.load.profile import load_profile
    (tmp_path / "uac.xml").write_text("<scenario name='x'/>\n")
    path = tmp_path / "tight.yaml"
    path.write_text("""\
kind: stress
scenario:
  sipp: uac.xml
  destinations:
    - number: "15550001234"
rate:
  shape: step
  start_cps: 100
  step_cps: 100
  step_duration: 10s
  steps: 6
criteria:
  setup_ms: {p95: 800}
  breaking_point_min_cps: 300
judging:
  window: 5s
  settle: 2s
  min_calls: 20
""")
    prof = load_profile(str(path))
    v = judge(prof, *golden_stress(), cdr=None, resources=None, environment="lab")
    assert v.breaking_point_cps == 400 and v.broke_at == 42 and v.verdict == "pass"


def test_an_empty_run_directory_still_gets_a_verdict() -> None:
    v = judge(profile(asr_min=0.9), [], [], cdr=None, resources=None, environment="lab")
    assert v.verdict == "fail" and v.windows == [] and names(v)["asr_min"].value is None
    assert first_break(profile(asr_min=0.9), [], []) is None

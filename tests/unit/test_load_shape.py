"""Rate over time (qa.load.shape): boundaries, peaks, plateaus and the calls each shape offers.

The Locust master offers ``rate_at(t)`` every second and the verdict judges each plateau,
so an off-by-one-segment at a boundary or a wrong integral is a wrong load run.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa.load.shape import Plateau, Shape, constant, ramp, spike, stages, step


def integral(shape: Shape, cells: int = 4000) -> float:
    """Midpoint rule over ``rate_at``: independent of ``Shape.calls``."""
    dt = shape.duration_s / cells
    return math.fsum(shape.rate_at((i + 0.5) * dt) for i in range(cells)) * dt


def integral_tolerance(shape: Shape, cells: int = 4000) -> float:
    """The midpoint rule is exact on each line; only cells holding a corner are off (< dt*peak)."""
    return (len(shape.segments) + 1) * shape.duration_s / cells * shape.peak() + 1e-9


# -- each shape at its boundaries ---------------------------------------------------------------------
def test_constant():
    shape = constant(30, 60)
    assert shape.duration_s == 60 and shape.peak() == 30
    assert [shape.rate_at(t) for t in (0, 30, 59.999)] == [30, 30, 30]
    assert shape.rate_at(60) == 0.0 and shape.rate_at(61) == 0.0 and shape.rate_at(-0.5) == 0.0
    assert shape.plateaus() == [Plateau(0, 60, 30)]
    assert shape.calls() == 1800


def test_ramp_then_hold():
    shape = ramp(10, 110, duration=100, hold=20)
    assert shape.duration_s == 120 and shape.peak() == 110
    assert shape.rate_at(0) == 10 and shape.rate_at(50) == pytest.approx(60)
    assert shape.rate_at(100) == 110 and shape.rate_at(119.9) == 110 and shape.rate_at(120) == 0
    assert shape.plateaus() == [Plateau(100, 120, 110)]  # the ramp itself is not a plateau
    assert shape.calls() == pytest.approx(60 * 100 + 110 * 20)


def test_a_ramp_without_hold_has_no_plateau_and_a_ramp_down_peaks_at_its_start():
    assert ramp(0, 100, 10).plateaus() == []
    down = ramp(100, 0, 10)
    assert down.peak() == 100 and down.rate_at(5) == pytest.approx(50) and down.calls() == pytest.approx(500)


def test_step_boundaries_belong_to_the_later_step_even_in_decimal_seconds():
    shape = step(start_cps=25, step_cps=25, step_duration=0.1, steps=10)
    for k in range(1, 10):
        t = k / 10  # 3/10 is a hair below 3*0.1: it is still the start of step 3
        assert shape.rate_at(t) == 25 + 25 * k, t
        assert shape.rate_at(t - 1e-6) == 25 * k, t
    assert shape.rate_at(1.0) == 0.0 and shape.rate_at(0.9999) == 250


def test_each_step_is_one_plateau():
    shape = step(25, 25, 10, 12)
    plateaus = shape.plateaus()
    assert len(plateaus) == 12 and shape.peak() == 300 and shape.duration_s == 120
    assert plateaus[3] == Plateau(30, 40, 100)
    assert shape.calls() == 10 * sum(25 + 25 * k for k in range(12))


def test_spike():
    shape = spike(base_cps=20, spike_cps=120, duration=90, spike_at=30, spike_duration=20)
    assert [shape.rate_at(t) for t in (0, 29.999, 30, 49.999, 50, 89.9, 90)] == [20, 20, 120, 120, 20, 20, 0]
    assert shape.peak() == 120
    assert shape.plateaus() == [Plateau(0, 30, 20), Plateau(30, 50, 120), Plateau(50, 90, 20)]
    assert shape.calls() == 20 * 70 + 120 * 20


def test_a_spike_at_the_start_or_to_the_end():
    assert spike(10, 50, 60, 0, 10).plateaus() == [Plateau(0, 10, 50), Plateau(10, 60, 10)]
    assert spike(10, 50, 60, 50, 10).plateaus() == [Plateau(0, 50, 10), Plateau(50, 60, 50)]


def test_a_spike_from_nothing_has_no_plateau_without_load():
    assert spike(0, 50, 60, 20, 10).plateaus() == [Plateau(20, 30, 50)]


def test_stages_ramp_from_the_previous_stage_and_jump_otherwise():
    shape = stages([(10, 50, True), (20, 50, False), (10, 100, True), (5, 20, False)])
    assert shape.rate_at(5) == pytest.approx(25)          # first ramp starts from 0
    assert shape.rate_at(10) == 50 and shape.rate_at(35) == pytest.approx(75)
    assert shape.rate_at(40) == 20 and shape.rate_at(44.9) == 20 and shape.rate_at(45) == 0
    assert shape.plateaus() == [Plateau(10, 30, 50), Plateau(40, 45, 20)]
    assert shape.calls() == pytest.approx(250 + 1000 + 750 + 100)


def test_equal_neighbour_stages_are_one_plateau_and_stage_boundaries_are_exact():
    shape = stages([(0.1, 10, False), (0.2, 10, False), (0.3, 30, False)])
    assert shape.plateaus() == [Plateau(0, shape.segments[1].end, 10), Plateau(shape.segments[2].start, 0.6, 30)]
    assert shape.rate_at(0.3) == 30 and shape.rate_at(0.2999) == 10
    assert shape.duration_s == pytest.approx(0.6) and shape.rate_at(0.6) == 0


def test_mean_rate_over_a_window():
    shape = ramp(0, 100, 10, hold=10)
    assert shape.mean_rate(0, 10) == pytest.approx(50)
    assert shape.mean_rate(5, 15) == pytest.approx((75 * 5 + 100 * 5) / 10)
    assert shape.mean_rate(3, 3) == 0.0


# -- properties of every shape ---------------------------------------------------------------------------
cps = st.floats(0.5, 2000, allow_nan=False)
cps0 = st.one_of(st.just(0.0), cps)
secs = st.floats(0.05, 300, allow_nan=False)


@st.composite
def shapes(draw) -> tuple[Shape, float, int | None]:
    """A random shape, the calls it must offer (closed form) and, for steps, the step count."""
    kind = draw(st.sampled_from(["constant", "ramp", "step", "spike", "stages"]))
    if kind == "constant":
        c, d = draw(cps), draw(secs)
        return constant(c, d), c * d, None
    if kind == "ramp":
        f, t, d, h = draw(cps0), draw(cps), draw(secs), draw(st.one_of(st.just(0.0), secs))
        return ramp(f, t, d, h), (f + t) / 2 * d + t * h, None
    if kind == "step":
        s, k, sd, n = draw(cps), draw(cps), draw(secs), draw(st.integers(1, 30))
        return step(s, k, sd, n), sd * (n * s + k * n * (n - 1) / 2), n
    if kind == "spike":
        b, p = draw(cps0), draw(cps)
        b, p = min(b, p), max(b, p) + 1
        at, sd, rest = draw(st.one_of(st.just(0.0), secs)), draw(secs), draw(st.one_of(st.just(0.0), secs))
        return spike(b, p, at + sd + rest, at, sd), b * (at + rest) + p * sd, None
    items = draw(st.lists(st.tuples(secs, cps0, st.booleans()), min_size=1, max_size=8))
    expected, previous = 0.0, 0.0
    for d, c, is_ramp in items:
        expected += ((previous + c) / 2 if is_ramp else c) * d
        previous = c
    return stages(items), expected, None


@settings(max_examples=150, deadline=None)
@given(shapes())
def test_the_integral_of_the_rate_is_the_expected_number_of_calls(case):
    shape, expected, _ = case
    assert shape.calls() == pytest.approx(expected, rel=1e-9, abs=1e-9)
    assert integral(shape) == pytest.approx(expected, abs=integral_tolerance(shape))


@settings(max_examples=150, deadline=None)
@given(shapes(), st.floats(0, 1))
def test_the_peak_bounds_the_rate_and_nothing_is_offered_after_the_end(case, where):
    shape, _, _ = case
    assert 0 <= shape.rate_at(where * shape.duration_s) <= shape.peak() + 1e-9
    assert shape.rate_at(shape.duration_s) == 0.0 and shape.rate_at(shape.duration_s * 2) == 0.0
    reached = [shape.rate_at(s.start) for s in shape.segments]
    reached += [shape.rate_at(s.end - 1e-7 * (s.end - s.start)) for s in shape.segments]
    assert max(reached) == pytest.approx(shape.peak(), rel=1e-6)  # the peak is offered, not just bounded


@settings(max_examples=150, deadline=None)
@given(shapes())
def test_plateaus_are_ordered_disjoint_constant_and_maximal(case):
    shape, _, steps = case
    plateaus = shape.plateaus()
    if steps is not None:
        assert len(plateaus) == steps
    for a, b in zip(plateaus, plateaus[1:]):
        assert a.end <= b.start + 1e-9
        if abs(a.end - b.start) <= 1e-9:
            assert a.cps != b.cps  # two touching plateaus at one rate would be one
    for p in plateaus:
        assert 0 <= p.start < p.end <= shape.duration_s + 1e-9 and p.cps > 0
        for frac in (0.0, 0.5, 0.999):
            assert shape.rate_at(p.start + frac * (p.end - p.start)) == p.cps
    assert math.fsum(p.cps * (p.end - p.start) for p in plateaus) <= shape.calls() * (1 + 1e-9) + 1e-9

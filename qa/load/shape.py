"""Rate over time: a profile's ``rate:`` as a piecewise-linear function of seconds.

Pure arithmetic, no I/O, no pydantic: the Locust master asks ``rate_at`` once a second,
the verdict (``qa.load.criteria``) asks for ``plateaus`` to judge each step on its own,
and the report draws the offered rate. Every shape (constant, ramp, step, spike, stages)
compiles to the same list of linear segments, so the math below is written once.

Boundaries are computed from the profile's numbers without accumulating rounding (a step
starts at ``k * step_duration``, stages at an ``fsum`` of durations) and compared with a
nanosecond tolerance, so ``rate_at`` at a boundary always answers for the later segment.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Sequence

EPS = 1e-9  # seconds: times closer than this are the same instant


@dataclass(frozen=True)
class Plateau:
    """A maximal stretch of constant offered rate; seconds since the load started."""

    start: float
    end: float
    cps: float


@dataclass(frozen=True)
class Segment:
    """The rate goes linearly from ``from_cps`` at ``start`` to ``to_cps`` at ``end``."""

    start: float
    end: float
    from_cps: float
    to_cps: float

    def rate_at(self, t: float) -> float:
        if self.from_cps == self.to_cps:
            return self.from_cps
        frac = min(1.0, max(0.0, (t - self.start) / (self.end - self.start)))
        return self.from_cps + (self.to_cps - self.from_cps) * frac

    def calls(self, t0: float, t1: float) -> float:
        """Calls offered in ``[t0, t1]`` clipped to this segment (trapezoid: exact for a line)."""
        a, b = max(t0, self.start), min(t1, self.end)
        if b <= a:
            return 0.0
        return (self.rate_at(a) + self.rate_at(b)) / 2.0 * (b - a)


class Shape:
    """The offered rate of a run: contiguous segments from 0 to ``duration_s``."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        if not segments:
            raise ValueError("a shape needs at least one segment")
        self.segments = tuple(segments)
        self._starts = [s.start for s in self.segments]
        self.duration_s = self.segments[-1].end

    def rate_at(self, t: float) -> float:
        """Calls/s to offer at ``t``; 0.0 before the start and at or after the end."""
        if t < -EPS or t >= self.duration_s - EPS:
            return 0.0
        index = max(0, bisect.bisect_right(self._starts, t + EPS) - 1)
        return self.segments[index].rate_at(t)

    def peak(self) -> float:
        return max(max(s.from_cps, s.to_cps) for s in self.segments)

    def plateaus(self) -> list[Plateau]:
        """Maximal constant-rate intervals with load (> 0 calls/s), in order; ramps excluded.

        Adjacent constant segments at the same rate merge (two equal stages are one
        plateau); a ramp whose ends are equal is constant and counts as such.
        """
        out: list[Plateau] = []
        for seg in self.segments:
            if seg.from_cps != seg.to_cps or seg.from_cps <= 0:
                continue
            if out and out[-1].cps == seg.from_cps and abs(out[-1].end - seg.start) <= EPS:
                out[-1] = Plateau(out[-1].start, seg.end, seg.from_cps)
            else:
                out.append(Plateau(seg.start, seg.end, seg.from_cps))
        return out

    def calls(self, t0: float = 0.0, t1: float | None = None) -> float:
        """Expected calls offered between ``t0`` and ``t1`` (default: the whole run)."""
        end = self.duration_s if t1 is None else t1
        return math.fsum(seg.calls(t0, end) for seg in self.segments)

    def mean_rate(self, t0: float, t1: float) -> float:
        """Mean offered calls/s over ``[t0, t1)`` (a judged window's offered rate)."""
        return self.calls(t0, t1) / (t1 - t0) if t1 > t0 else 0.0


# -- the five shapes ---------------------------------------------------------------------------
def constant(cps: float, duration: float) -> Shape:
    return Shape([Segment(0.0, duration, cps, cps)])


def ramp(from_cps: float, to_cps: float, duration: float, hold: float = 0.0) -> Shape:
    segments = [Segment(0.0, duration, from_cps, to_cps)]
    if hold > 0:
        segments.append(Segment(duration, duration + hold, to_cps, to_cps))
    return Shape(segments)


def step(start_cps: float, step_cps: float, step_duration: float, steps: int) -> Shape:
    """Step ``k`` (0-based) offers ``start_cps + k * step_cps`` for ``step_duration``."""
    return Shape([Segment(k * step_duration, (k + 1) * step_duration, start_cps + k * step_cps,
                          start_cps + k * step_cps) for k in range(steps)])


def spike(base_cps: float, spike_cps: float, duration: float, spike_at: float, spike_duration: float) -> Shape:
    spike_end = min(duration, spike_at + spike_duration)
    segments = []
    if spike_at > EPS:
        segments.append(Segment(0.0, spike_at, base_cps, base_cps))
    segments.append(Segment(spike_at if spike_at > EPS else 0.0, spike_end, spike_cps, spike_cps))
    if duration - spike_end > EPS:
        segments.append(Segment(spike_end, duration, base_cps, base_cps))
    return Shape(segments)


def stages(items: Sequence[tuple[float, float, bool]]) -> Shape:
    """``(duration, cps, ramp)`` each; a ramp starts from the previous stage's cps (0 first)."""
    segments, previous, durations = [], 0.0, []
    for duration, cps, is_ramp in items:
        start = math.fsum(durations)
        durations.append(duration)
        segments.append(Segment(start, math.fsum(durations), previous if is_ramp else cps, cps))
        previous = cps
    return Shape(segments)

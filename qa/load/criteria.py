"""The verdict of a load run: windows, criteria, breaking point and bottleneck (DESIGN §8).

Everything here is computed from the run's files alone (the timeline, the per-second
histograms, ``cdr.json``, ``resources.csv``), so ``voipqa load report DIR`` reaches the same
verdict as the run did, even for a run that was killed.

Windows. ``stress`` and ``ceiling`` runs look for the rate at which the platform stops
coping, so each constant-rate plateau of their shape is one window (minus ``settle``
seconds after the rate changed: calls of the previous step are still ending); a ramp
between plateaus is cut into ``window``-second windows. Every other kind (and a shape
with no plateau) is cut into ``window``-second windows after the warm-up. A second ``t`` of
the timeline covers ``[t-1, t)``, so window ``[start, end)`` holds the rows
``start < t <= end``. Percentiles are exact: the per-second histograms are merged.

Judging. A window with fewer than ``min_calls`` completed calls is reported but not judged.
``stress``/``ceiling``: the breaking point is the highest offered rate of a judged window
that held, before the first broken one; run-level criteria are computed over the windows
before the break. Other kinds: run-level criteria over the whole run after the warm-up,
and a window that broke a criterion fails that criterion too.

Bottleneck (only when the run fails): ``generator`` when the generator was saturated in
the first broken window (or over the run when no window broke), or when the answering
side is our own SIPp (environment ``loopback``); otherwise ``platform``.

Length: windows, criteria, breaking point and bottleneck are one verdict, computed from
the same per-second rows; split, each part would re-read the timeline.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from qa.load.model import Histogram, Second, SecondHistograms, merge, percentiles
from qa.load.resources import memory_drift

STRESS_KINDS = ("stress", "ceiling")
#: Generator saturation thresholds (the brief's): SIPp near its CPU allowance, a busy host,
#: or fewer calls placed than asked while the concurrent-call cap was not what held them.
SIPP_CPU_SATURATED = 0.90
HOST_CPU_SATURATED = 95.0
ACHIEVED_MIN_RATIO = 0.90
#: Concurrent calls within 5 % of ``max_concurrent`` count as "at the cap": the cap is split
#: over several SIPps, whose shares round down.
CAP_TOLERANCE = 0.95
#: A shortfall of fewer calls than this is rounding at low rates, not a starved generator.
MIN_SHORTFALL_CALLS = 3
#: A shortfall counts against the generator only when its SIPp was busy: an idle SIPp that
#: places fewer calls than asked is held back by calls the platform does not end.
SIPP_CPU_BUSY = 0.5
_EPS = 1e-6


# ----------------------------------------------------------------------------- the records
@dataclass
class Window:
    """A judged stretch of the run, ``[start, end)`` in seconds since the load started."""

    start: int
    end: int
    offered_cps: float
    achieved_cps: float
    completed: int
    answered: int
    failed: int
    aborted: int
    asr: float | None
    failed_pct: float | None
    retransmissions_pct: float | None
    pdd: dict[str, float | None]
    setup: dict[str, float | None]
    cdr_checked: int | None
    cdr_missing: int | None
    cdr_loss_pct: float | None
    generator_saturated: bool
    reasons_generator: list[str]
    broken: list[str]
    judged: bool = True            # False: fewer than min_calls completed calls (reported only)

    @property
    def span(self) -> str:
        return f"t={self.start}-{self.end} s"


@dataclass
class CriterionResult:
    name: str
    limit: float
    value: float | None
    passed: bool
    unit: str
    where: str


@dataclass
class Verdict:
    verdict: str
    bottleneck: str
    breaking_point_cps: float | None
    broke_at: int | None
    criteria: list[CriterionResult]
    windows: list[Window]
    reasons: list[str]


# ----------------------------------------------------------------------------- profile access
def _get(obj: Any, name: str, default: Any = None) -> Any:
    """An attribute of the profile model (or a key, for plain mappings); None counts as absent."""
    if obj is None:
        return default
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return default if value is None else value


@dataclass(frozen=True)
class _Judging:
    window: int
    settle: float
    warmup: float
    min_calls: int

    @classmethod
    def of(cls, profile: Any) -> "_Judging":
        j = _get(profile, "judging")
        return cls(window=max(1, int(round(float(_get(j, "window", 5.0))))),
                   settle=float(_get(j, "settle", 2.0)), warmup=float(_get(j, "warmup", 0.0)),
                   min_calls=int(_get(j, "min_calls", 20)))


# ----------------------------------------------------------------------------- criteria table
@dataclass(frozen=True)
class _Spec:
    """A per-window criterion: where its limit is in the profile and its value in a window."""

    name: str
    label: str
    unit: str
    minimum: bool                                   # True: value must be >= limit
    limit: Callable[[Any], float | None]
    value: Callable[[Window], float | None]
    missing: str                                    # why the value can be None

    def holds(self, value: float, limit: float) -> bool:
        return value >= limit if self.minimum else value <= limit

    def sentence(self, value: float, limit: float) -> str:
        op = "<" if self.minimum else ">"
        if self.holds(value, limit):
            op = ">=" if self.minimum else "<="
        return f"{self.label} {_fmt(value)}{_unit(self.unit)} {op} {_fmt(limit)}{_unit(self.unit)}"


def _pct_limit(group: str, q: str) -> Callable[[Any], float | None]:
    return lambda c: _get(_get(c, group), q)


_SPECS: tuple[_Spec, ...] = (
    _Spec("asr_min", "ASR", "ratio", True, lambda c: _get(c, "asr_min"), lambda w: w.asr,
          "no call completed"),
    _Spec("failed_pct_max", "failed calls", "%", False, lambda c: _get(c, "failed_pct_max"),
          lambda w: w.failed_pct, "no call completed"),
    _Spec("pdd_p95_ms_max", "PDD p95", "ms", False, _pct_limit("pdd_ms", "p95"), lambda w: w.pdd.get("p95"),
          "no post-dial delay measured (no 18x received)"),
    _Spec("pdd_p99_ms_max", "PDD p99", "ms", False, _pct_limit("pdd_ms", "p99"), lambda w: w.pdd.get("p99"),
          "no post-dial delay measured (no 18x received)"),
    _Spec("setup_p95_ms_max", "setup p95", "ms", False, _pct_limit("setup_ms", "p95"),
          lambda w: w.setup.get("p95"), "no setup time measured (no call answered)"),
    _Spec("setup_p99_ms_max", "setup p99", "ms", False, _pct_limit("setup_ms", "p99"),
          lambda w: w.setup.get("p99"), "no setup time measured (no call answered)"),
    _Spec("retransmissions_pct_max", "retransmissions", "%", False,
          lambda c: _get(c, "retransmissions_pct_max"), lambda w: w.retransmissions_pct,
          "no SIP message counted as sent"),
    _Spec("cdr_loss_pct_max", "CDR loss", "%", False, lambda c: _get(c, "cdr_loss_pct_max"),
          lambda w: w.cdr_loss_pct, "no answered call checked against the CDRs"),
    _Spec("achieved_pct_min", "achieved rate", "%", True, lambda c: _get(c, "achieved_pct_min"),
          lambda w: 100.0 * w.achieved_cps / w.offered_cps if w.offered_cps > 0 else None,
          "no load was offered"),
)
_MEMORY = "memory_slope_max_mb_per_h"
_BREAKING = "breaking_point_min_cps"


def _active_specs(profile: Any) -> list[tuple[_Spec, float]]:
    criteria = _get(profile, "criteria")
    out = []
    for spec in _SPECS:
        limit = spec.limit(criteria)
        if limit is not None:
            out.append((spec, float(limit)))
    return out


def _fmt(value: float) -> str:
    """Numbers for people: thousands separated, 4 significant digits below 1,000."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _unit(unit: str) -> str:
    return "" if unit == "ratio" else f" {unit}"


def _at(w: Window) -> str:
    return f"at {_fmt(w.offered_cps)} calls/s ({w.span})"


# ----------------------------------------------------------------------------- the window plan
@dataclass(frozen=True)
class _Planned:
    start: int
    end: int
    cps: float | None          # the plateau's rate; None for a fixed window


def _tiles(a: int, b: int, width: int) -> list[_Planned]:
    """``[a, b)`` cut into ``width``-second windows; a tail under half a window joins the last."""
    if b - a < 1:
        return []
    n, rest = divmod(b - a, width)
    out = [_Planned(a + k * width, a + (k + 1) * width, None) for k in range(n)]
    if rest and (not out or rest * 2 >= width):
        out.append(_Planned(b - rest, b, None))
    elif rest:
        out[-1] = _Planned(out[-1].start, b, None)
    return out


def plan(profile: Any) -> list[_Planned]:
    """The windows a profile will be judged in, before any data (the same at run time and after)."""
    j = _Judging.of(profile)
    shape = profile.shape()
    duration = int(math.floor(float(shape.duration_s) + _EPS))
    warm = int(math.ceil(j.warmup - _EPS))
    plateaus = list(shape.plateaus()) if _get(profile, "kind") in STRESS_KINDS else []
    if not plateaus:
        return _tiles(warm, duration, j.window)
    out: list[_Planned] = []
    cursor = warm
    for p in plateaus:
        p_start, p_end = float(p.start), min(float(p.end), float(duration))
        gap_end = int(math.floor(p_start + _EPS))
        out.extend(_tiles(cursor, gap_end, j.window))       # a ramp before the plateau
        start = max(int(math.ceil(p_start + j.settle - _EPS)), warm)
        end = int(math.floor(p_end + _EPS))
        if end - start >= 1 and float(p.cps) > 0:
            out.append(_Planned(start, end, float(p.cps)))
        cursor = max(cursor, int(math.ceil(p_end - _EPS)))
    out.extend(_tiles(cursor, duration, j.window))
    return out


# ----------------------------------------------------------------------------- aggregation
@dataclass
class _Agg:
    """Sums over a set of timeline rows (and their histograms and CDR counts)."""

    rows: list[Second] = field(default_factory=list)
    pdd: Histogram = field(default_factory=dict)
    setup: Histogram = field(default_factory=dict)
    cdr_checked: int | None = None
    cdr_missing: int | None = None

    def add_rows(self, rows: Sequence[Second]) -> None:
        self.rows.extend(rows)

    def add_hists(self, hists: Sequence[SecondHistograms]) -> None:
        for h in hists:
            merge(self.pdd, h.pdd)
            merge(self.setup, h.setup)

    def add_cdr(self, cdr_by_second: dict[int, tuple[int, int]] | None, lo: int, hi: int) -> None:
        """CDR counts of the calls completed in seconds ``lo < t <= hi``."""
        if cdr_by_second is None:
            return
        checked = missing = 0
        for t in range(lo + 1, hi + 1):  # by second, not over the dict: a soak has 28,800 keys
            c, m = cdr_by_second.get(t, (0, 0))
            checked += c
            missing += m
        self.cdr_checked = (self.cdr_checked or 0) + checked
        self.cdr_missing = (self.cdr_missing or 0) + missing

    def total(self, name: str) -> int:
        return sum(int(getattr(r, name)) for r in self.rows)


def _ratio(num: float, den: float, scale: float = 1.0) -> float | None:
    return scale * num / den if den else None


def _make_window(start: int, end: int, agg: _Agg, planned_cps: float | None, min_calls: int,
                 max_concurrent: float | None) -> Window:
    rows = agg.rows
    # the seconds really in it: merged windows (a stress run's held part) leave gaps
    length = len(rows) or max(1, end - start)
    completed, answered = agg.total("completed"), agg.total("answered")
    failed, sent = agg.total("failed"), agg.total("sent")
    created = agg.total("created")
    offered = (sum(r.offered_cps for r in rows) / len(rows) if rows else (planned_cps or 0.0))
    achieved = created / length
    loss = _ratio(agg.cdr_missing or 0, agg.cdr_checked or 0, 100.0) if agg.cdr_checked is not None else None
    generator = _saturation(rows, offered, achieved, length, max_concurrent)
    return Window(
        start=start, end=end, offered_cps=offered, achieved_cps=achieved,
        completed=completed, answered=answered, failed=failed, aborted=agg.total("aborted"),
        asr=_ratio(answered, completed), failed_pct=_ratio(failed, completed, 100.0),
        retransmissions_pct=_ratio(agg.total("retransmissions"), sent, 100.0),
        pdd=percentiles(agg.pdd), setup=percentiles(agg.setup),
        cdr_checked=agg.cdr_checked, cdr_missing=agg.cdr_missing, cdr_loss_pct=loss,
        generator_saturated=bool(generator), reasons_generator=generator, broken=[],
        judged=completed >= min_calls,
    )


def _saturation(rows: Sequence[Second], offered: float, achieved: float, length: int,
                max_concurrent: float | None) -> list[str]:
    """Why the generator, not the platform, limited this stretch (empty: it did not).

    CPU signals use the median over the seconds, so one busy second (a SIPp starting) does
    not make a whole window the generator's fault.
    """
    out: list[str] = []
    cpu = [(r.sipp_cpu_max, r.sipp_cpu_allowance) for r in rows if r.sipp_cpu_allowance > 0]
    ratio = 0.0
    if cpu:
        ratio = statistics.median(c / a for c, a in cpu)
        allowance = statistics.median(a for _, a in cpu)
        if ratio >= SIPP_CPU_SATURATED:
            of = "one core" if allowance >= 100 else f"its {_fmt(allowance)} % CPU quota"
            out.append(f"SIPp at {ratio * 100:.0f} % of {of}")
    host = [r.host_cpu_max for r in rows]
    if host and statistics.median(host) >= HOST_CPU_SATURATED and ratio >= SIPP_CPU_BUSY:
        # a busy host alone does not say who: on one machine the platform may be what fills it
        out.append(f"generator host CPU at {statistics.median(host):.0f} % with SIPp busy")
    congestion = sum(r.outbound_congestion for r in rows)
    if congestion > 0:
        out.append(f"SIPp hit outbound congestion {congestion:,} times")
    concurrent = max((r.concurrent for r in rows), default=0)
    capped = max_concurrent is not None and concurrent >= CAP_TOLERANCE * max_concurrent
    short = (offered - achieved) * length
    if (offered > 0 and achieved < ACHIEVED_MIN_RATIO * offered and short >= MIN_SHORTFALL_CALLS and not capped
            and ratio >= SIPP_CPU_BUSY):
        cap = f"the cap of {max_concurrent:,.0f}" if max_concurrent is not None else "no concurrent-call cap"
        out.append(f"achieved {_fmt(achieved)} calls/s, {100 * achieved / offered:.0f} % of the "
                   f"{_fmt(offered)} calls/s offered, with at most {concurrent:,} concurrent calls ({cap})")
    return out


def _judge_window(w: Window, specs: list[tuple[_Spec, float]]) -> None:
    """Fill ``w.broken`` (a window under min_calls is not judged; a value that could not be
    measured in a window breaks nothing there: the run-level criterion says so)."""
    if not w.judged:
        return
    for spec, limit in specs:
        value = spec.value(w)
        if value is not None and not spec.holds(value, limit):
            w.broken.append(spec.name)


def _slice(items: Sequence[Any], lo: int, hi: int) -> Sequence[Any]:
    """The items with ``lo < t <= hi`` of a list sorted by ``t``."""
    a = bisect_right(items, lo, key=lambda x: x.t)
    b = bisect_right(items, hi, key=lambda x: x.t)
    return items[a:b]


def _max_concurrent(profile: Any) -> float | None:
    value = _get(_get(profile, "rate"), "max_concurrent")
    return float(value) if value is not None else None


def _build(profile: Any, p: _Planned, end: int, seconds: Sequence[Second],
           hists: Sequence[SecondHistograms], cdr_by_second: dict[int, tuple[int, int]] | None,
           specs: list[tuple[_Spec, float]], j: _Judging) -> Window:
    agg = _Agg()
    agg.add_rows(_slice(seconds, p.start, end))
    agg.add_hists(_slice(hists, p.start, end))
    agg.add_cdr(cdr_by_second, p.start, end)
    w = _make_window(p.start, end, agg, p.cps, j.min_calls, _max_concurrent(profile))
    _judge_window(w, specs)
    return w


def _sorted(items: Sequence[Any]) -> list[Any]:
    items = list(items)
    if any(items[i].t > items[i + 1].t for i in range(len(items) - 1)):
        items.sort(key=lambda x: x.t)
    return items


def windows(profile: Any, seconds: Sequence[Second], histograms: Sequence[SecondHistograms],
            cdr_by_second: dict[int, tuple[int, int]] | None = None) -> list[Window]:
    """Every window of the run, judged. A run that ended early (killed) ends its last window
    at its last second; windows it never reached are not reported."""
    seconds, histograms = _sorted(seconds), _sorted(histograms)
    if not seconds:
        return []
    last = seconds[-1].t
    j, specs = _Judging.of(profile), _active_specs(profile)
    out = []
    for p in plan(profile):
        end = min(p.end, last)
        if end - p.start >= 1:
            out.append(_build(profile, p, end, seconds, histograms, cdr_by_second, specs, j))
    return out


# ----------------------------------------------------------------------------- first_break
class BreakWatch:
    """Finds the first broken window while the run goes: each window is judged once, when its
    last second has arrived, so a call per second costs one window's rows, not the run's.
    The histograms of second ``t`` must be in ``histograms`` when row ``t`` is in ``seconds``.
    """

    def __init__(self, profile: Any) -> None:
        self.profile = profile
        self._plan = plan(profile)
        self._next = 0
        self._j = _Judging.of(profile)
        self._specs = _active_specs(profile)
        self.broken: Window | None = None

    def update(self, seconds: Sequence[Second], histograms: Sequence[SecondHistograms]) -> Window | None:
        if self.broken is not None or not seconds:
            return self.broken
        last = seconds[-1].t
        while self._next < len(self._plan) and self._plan[self._next].end <= last:
            p = self._plan[self._next]
            self._next += 1
            w = _build(self.profile, p, p.end, seconds, histograms, None, self._specs, self._j)
            if w.broken:
                self.broken = w
                break
        return self.broken


_WATCHES: list[tuple[Any, Any, int, BreakWatch]] = []
_MAX_WATCHES = 4


def first_break(profile: Any, seconds: Sequence[Second], histograms: Sequence[SecondHistograms]) -> Window | None:
    """The first complete window that broke a criterion (CDR loss is known only after the run).

    Cheap when called every second with the same, growing ``seconds`` list: the judged
    windows are remembered (:class:`BreakWatch`); with a new list it starts over, O(run).
    """
    for i, (prof, rows, seen, watch) in enumerate(_WATCHES):
        if prof is profile and rows is seconds and len(seconds) >= seen:
            _WATCHES[i] = (prof, rows, len(seconds), watch)
            return watch.update(seconds, histograms)
    watch = BreakWatch(profile)
    _WATCHES.insert(0, (profile, seconds, len(seconds), watch))
    del _WATCHES[_MAX_WATCHES:]
    return watch.update(seconds, histograms)


# ----------------------------------------------------------------------------- judge
def cdr_by_second(cdr: dict[str, Any] | None) -> dict[int, tuple[int, int]] | None:
    """``cdr.json``'s ``by_second`` as ``{t: (checked, missing)}`` (None: no per-second data)."""
    if not cdr or cdr.get("skipped") or not isinstance(cdr.get("by_second"), dict):
        return None
    out: dict[int, tuple[int, int]] = {}
    for key, value in cdr["by_second"].items():
        try:
            out[int(key)] = (int(value[0]), int(value[1]))
        except (TypeError, ValueError, IndexError):
            continue
    return out


@dataclass
class _Scope:
    """What run-level criteria are computed over, and how to say so."""

    window: Window
    text: str
    lo: int
    hi: int


def judge(profile: Any, seconds: Sequence[Second], histograms: Sequence[SecondHistograms], *,
          cdr: dict[str, Any] | None = None, resources: dict[str, list[tuple[float, float]]] | None = None,
          environment: str = "lab") -> Verdict:
    """The verdict of a run from its files (see the module docstring for the semantics)."""
    seconds, histograms = _sorted(seconds), _sorted(histograms)
    by_second = cdr_by_second(cdr)
    wins = windows(profile, seconds, histograms, by_second)
    j = _Judging.of(profile)
    stress = _get(profile, "kind") in STRESS_KINDS
    first = next((w for w in wins if w.broken), None)
    after_warmup = _window_of(profile, seconds, histograms, by_second, int(math.ceil(j.warmup - _EPS)))
    reasons: list[str] = []
    if after_warmup.window.completed == 0:
        reasons.append(f"no call completed after the warm-up ({after_warmup.window.span}): nothing to judge")

    breaking_point: float | None = None
    scope = after_warmup
    if stress:
        held = wins[:wins.index(first)] if first else wins
        breaking_point = max((w.offered_cps for w in held if w.judged), default=None)
        scope = _stress_scope(profile, held, first, seconds, histograms, by_second)
    results, run_failed = _run_criteria(profile, scope, wins, first, breaking_point, cdr, by_second, resources)
    if environment == LOOPBACK:
        results = [_not_applicable(r) if r.name in PLATFORM_ONLY else r for r in results]
        run_failed = [line for line in run_failed if not line.startswith(tuple(f"{n}:" for n in PLATFORM_ONLY))]

    judged_any = any(w.judged for w in wins)
    if stress and wins and not judged_any:
        reasons.append(f"no window had the {j.min_calls} completed calls needed to judge it: "
                       "no breaking point can be named")
    passed = (all(r.passed for r in results) and after_warmup.window.completed > 0
              and not (stress and not judged_any))
    reasons += run_failed  # run-level failures; the window that broke is said next
    reasons += _window_sentences(wins, first, stress, breaking_point, _active_specs(profile))
    bottleneck = "none"
    if not passed or (stress and first is not None):  # a stress run that broke names the side that gave way
        bottleneck, why = _bottleneck(environment, first, after_warmup.window)
        reasons.append(why)
    return Verdict(verdict="pass" if passed else "fail", bottleneck=bottleneck,
                   breaking_point_cps=breaking_point, broke_at=first.start if first else None,
                   criteria=results, windows=wins, reasons=reasons)


def _run_criteria(profile: Any, scope: _Scope, wins: list[Window], first: Window | None,
                  breaking_point: float | None, cdr: dict[str, Any] | None,
                  by_second: dict[int, tuple[int, int]] | None,
                  resources: dict[str, list[tuple[float, float]]] | None) -> tuple[list[CriterionResult], list[str]]:
    """Every criterion the profile sets, judged at run level, and the sentences of those that
    failed there (a criterion failed only by a window is said by the window's sentence)."""
    stress = _get(profile, "kind") in STRESS_KINDS
    j, specs, criteria = _Judging.of(profile), _active_specs(profile), _get(profile, "criteria")
    results = []
    for spec, limit in specs:
        if spec.name == "cdr_loss_pct_max" and (by_second is None or not stress):
            results.append(_cdr_from_json(limit, cdr, stress))
        else:
            results.append(_criterion(spec, limit, scope))
    if _get(criteria, _MEMORY) is not None:
        until = float(first.start) if stress and first else None
        results.append(_memory(float(_get(criteria, _MEMORY)), resources, j.warmup, until))
    if _get(criteria, _BREAKING) is not None:
        results.append(_breaking(profile, float(_get(criteria, _BREAKING)), breaking_point, first, j))
    failed = [_result_sentence(r) for r in results if not r.passed]
    if not stress:  # a window that broke a criterion fails it, whatever the run-level value
        by_name = {spec.name: spec for spec, _ in specs}
        results = [_with_window_breaks(r, by_name[r.name], wins) if r.name in by_name else r for r in results]
    return results, failed


def _window_of(profile: Any, seconds: Sequence[Second], hists: Sequence[SecondHistograms],
               by_second: dict[int, tuple[int, int]] | None, lo: int) -> _Scope:
    """Everything after ``lo`` as one window: the run-level aggregate."""
    hi = seconds[-1].t if seconds else lo
    agg = _Agg()
    agg.add_rows(_slice(seconds, lo, hi))
    agg.add_hists(_slice(hists, lo, hi))
    agg.add_cdr(by_second, lo, hi)
    w = _make_window(lo, max(hi, lo), agg, None, 0, _max_concurrent(profile))
    warm = " after the warm-up" if lo > 0 else ""
    return _Scope(w, f"over t={lo}-{max(hi, lo)} s{warm} ({w.completed:,} calls completed, "
                     f"{_fmt(w.offered_cps)} calls/s offered on average)", lo, hi)


def _stress_scope(profile: Any, held: list[Window], first: Window | None, seconds: Sequence[Second],
                  hists: Sequence[SecondHistograms], by_second: dict[int, tuple[int, int]] | None) -> _Scope:
    """The windows before the break, merged (settle seconds stay out, as in the windows)."""
    agg = _Agg()
    for w in held:
        agg.add_rows(_slice(seconds, w.start, w.end))
        agg.add_hists(_slice(hists, w.start, w.end))
        agg.add_cdr(by_second, w.start, w.end)
    lo = held[0].start if held else (first.start if first else 0)
    hi = held[-1].end if held else lo
    win = _make_window(lo, max(hi, lo + 1), agg, None, 0, _max_concurrent(profile))
    if not held:
        text = (f"before the break: the first window ({first.span}) already broke" if first
                else "over no window (the run judged none)")
    elif first:
        text = (f"over the {len(held)} window(s) before the break at t={first.start} s "
                f"(t={lo}-{hi} s, up to {_fmt(held[-1].offered_cps)} calls/s)")
    else:
        text = (f"over all {len(held)} window(s), none broke (t={lo}-{hi} s, "
                f"up to {_fmt(max(w.offered_cps for w in held))} calls/s)")
    return _Scope(win, text, lo, hi)


def _criterion(spec: _Spec, limit: float, scope: _Scope) -> CriterionResult:
    """A criterion over the run-level scope (``where`` says over what, and why not when None)."""
    value = spec.value(scope.window)
    if value is None:
        why = spec.missing if scope.window.completed else "no call completed"
        return CriterionResult(spec.name, limit, None, False, spec.unit, f"not judged: {why} {scope.text}")
    return CriterionResult(spec.name, limit, value, spec.holds(value, limit), spec.unit,
                           f"{spec.sentence(value, limit)} {scope.text}")


def _with_window_breaks(result: CriterionResult, spec: _Spec, wins: list[Window]) -> CriterionResult:
    """Load, soak, spike: a window that broke the criterion fails it, even if the whole run's
    value holds (a 30-s collapse in an hour of load is a failure, not noise to average away)."""
    broke = [w for w in wins if spec.name in w.broken]
    if not broke:
        return result
    w = broke[0]
    value = spec.value(w)
    detail = spec.sentence(value, result.limit) if value is not None else spec.name
    return CriterionResult(result.name, result.limit, result.value, False, result.unit,
                           f"{result.where}; broken in {len(broke)} window(s), first {_at(w)}: {detail}")


#: The environment whose answering side is voipqa's own SIPp (no platform at all).
LOOPBACK = "loopback"
#: Criteria about a platform's own records: meaningless on loopback.
PLATFORM_ONLY = ("cdr_loss_pct_max", _MEMORY)


def _not_applicable(result: CriterionResult) -> CriterionResult:
    """On loopback there are no CDRs and no platform memory: said, and not held against the run
    (the same profile runs against a platform, where these criteria count)."""
    return CriterionResult(result.name, result.limit, None, True, result.unit,
                           "not applicable on loopback: there is no platform (no CDRs, no platform memory)")


def _cdr_from_json(limit: float, cdr: dict[str, Any] | None, stress: bool) -> CriterionResult:
    """``cdr_loss_pct_max`` from cdr.json's whole-run ``loss_pct`` (the reconciliation's own)."""
    name, unit = "cdr_loss_pct_max", "%"
    if cdr is None:
        return CriterionResult(name, limit, None, False, unit,
                               "not judged: no CDR reconciliation (cdr.json is missing)")
    if cdr.get("skipped"):
        return CriterionResult(name, limit, None, False, unit, f"not judged: {cdr['skipped']}")
    loss, checked = cdr.get("loss_pct"), int(cdr.get("checked") or 0)
    if loss is None or checked == 0:
        return CriterionResult(name, limit, None, False, unit,
                               "not judged: no answered call was checked against the CDRs")
    loss = float(loss)
    source = f" ({cdr['source']})" if cdr.get("source") else ""
    whole = " over the whole run (cdr.json has no by_second to stop at the break)" if stress else ""
    return CriterionResult(name, limit, loss, loss <= limit, unit,
                           f"CDR loss {_fmt(loss)} % {'<=' if loss <= limit else '>'} {_fmt(limit)} %: "
                           f"{int(cdr.get('missing') or 0):,} of {checked:,} answered calls without a CDR"
                           f"{source}{whole}")


def _memory(limit: float, resources: dict[str, list[tuple[float, float]]] | None, warmup: float,
            until: float | None) -> CriterionResult:
    drift = memory_drift(resources, warmup, until)
    if drift.slope_per_h is None:
        return CriterionResult(_MEMORY, limit, None, False, "MB/h", f"not judged: {drift.why}")
    ok = drift.slope_per_h <= limit
    fallback = " (platform.rss_mb was not sampled)" if drift.metric != "platform.rss_mb" else ""
    return CriterionResult(_MEMORY, limit, drift.slope_per_h, ok, "MB/h",
                           f"{drift.metric} slope {_fmt(drift.slope_per_h)} MB/h {'<=' if ok else '>'} "
                           f"{_fmt(limit)} MB/h over {drift.samples} samples ({drift.span_s:.0f} s after the "
                           f"warm-up){fallback}")


def _breaking(profile: Any, limit: float, point: float | None, first: Window | None,
              j: _Judging) -> CriterionResult:
    unit = "calls/s"
    if _get(profile, "kind") not in STRESS_KINDS:
        return CriterionResult(_BREAKING, limit, None, False, unit,
                               f"not judged: applies to stress and ceiling profiles (this one is "
                               f"{_get(profile, 'kind')!r})")
    if point is None:
        why = (f"the first judged window already broke ({first.span})" if first
               else f"no window had {j.min_calls} completed calls to judge")
        return CriterionResult(_BREAKING, limit, None, False, unit, f"not judged: {why}")
    ok = point >= limit
    held = "held every criterion up to" if first is None else f"broke at t={first.start} s; held"
    return CriterionResult(_BREAKING, limit, point, ok, unit,
                           f"breaking point {_fmt(point)} calls/s {'>=' if ok else '<'} {_fmt(limit)} calls/s "
                           f"(the platform {held} {_fmt(point)} calls/s)")


def _result_sentence(r: CriterionResult) -> str:
    return f"{r.name}: {r.where}"


def _window_sentences(wins: list[Window], first: Window | None, stress: bool,
                      breaking_point: float | None, specs: list[tuple[_Spec, float]]) -> list[str]:
    out: list[str] = []
    if first is not None:
        detail = "; ".join(broken_detail(first, specs))
        if stress:
            out.append(f"broke {_at(first)}: {detail}")
        else:
            others = sum(1 for w in wins if w.broken) - 1
            more = f" ({others} more window(s) broke)" if others else ""
            out.append(f"{detail} {_at(first)}{more}")
    if stress and breaking_point is not None:
        out.append(f"breaking point {_fmt(breaking_point)} calls/s")
    unjudged = sum(1 for w in wins if not w.judged)
    if unjudged:
        out.append(f"{unjudged} of {len(wins)} window(s) had too few completed calls to be judged")
    return out


def broken_detail(w: Window, specs: list[tuple[_Spec, float]]) -> list[str]:
    """What a window broke, as sentences: ``["setup p95 1,240 ms > 800 ms", ...]``."""
    out = []
    for spec, limit in specs:
        value = spec.value(w)
        if spec.name in w.broken and value is not None:
            out.append(spec.sentence(value, limit))
    return out


def _bottleneck(environment: str, first: Window | None, run: Window) -> tuple[str, str]:
    """Which side broke first, and a sentence saying why."""
    if environment == "loopback":
        return "generator", ("bottleneck: generator (environment loopback: the answering side is "
                             "voipqa's own SIPp, so every limit found is the generator's)")
    w = first or run
    where = _at(first) if first else f"over the run ({run.span})"
    if w.generator_saturated:
        return "generator", f"bottleneck: generator {where}: " + "; ".join(w.reasons_generator)
    return "platform", (f"bottleneck: platform {where}: the generator was not saturated "
                        f"(achieved {_fmt(w.achieved_cps)} of {_fmt(w.offered_cps)} calls/s offered)")

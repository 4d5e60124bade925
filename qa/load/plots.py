"""The figures of ``load.html``: PNG bytes drawn with matplotlib, embedded base64 in the page.

Every figure is ~900x300 px and shares the x axis (time since the load started: seconds,
minutes or hours depending on the run's length), so a person can read the figures one
under the other and see what happened at the same moment. A figure with nothing to show
says "no data" instead of failing: a killed run or a run without platform metrics still
gets its whole report.

The Agg canvas is created explicitly (no ``pyplot``, no global backend, no display), so
drawing works in CI, in Robot, and beside anything else that imports matplotlib.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from qa.load.model import Histogram, Second, SecondHistograms, merge, percentile

WIDTH_IN, HEIGHT_IN, DPI = 9.0, 3.0, 100
BROKEN_COLOUR = "#cf222e"
MEMORY_METRICS = ("platform.rss_mb", "platform.shm_used_mb")
CPU_METRIC = "platform.cpu_pct"
#: Runs up to this long are drawn second by second; longer ones in bins (TimeAxis).
MAX_UNBINNED_S = 1800
TARGET_POINTS = 1200
#: At most this many failure codes get their own band; the rest are summed as "other".
MAX_CODE_BANDS = 7


@dataclass
class PlotData:
    """Everything the figures need, already read from the run directory and ``load.json``.

    ``limits`` maps criterion names (``setup_p95_ms_max``…) to their limits, so the
    figures mark exactly what was judged; ``slopes`` maps resource metrics to the
    ``slope_per_h`` of ``load.json`` so the drawn line is the judged one.
    """

    seconds: list[Second]
    duration_s: float
    histograms: list[SecondHistograms] = field(default_factory=list)
    resources: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    limits: dict[str, float] = field(default_factory=dict)
    breaking_point_cps: float | None = None
    broke_at: float | None = None
    warmup_s: float = 0.0
    max_concurrent: int | None = None
    expected_codes: frozenset[str] = frozenset({"200"})
    slopes: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class TimeAxis:
    """Seconds for short runs, minutes up to three hours, hours beyond (a soak).

    Runs longer than half an hour are drawn as means over ``bin_s``-second bins (about
    1,200 points a figure): 28,800 per-second points of an 8-hour soak are a solid band of
    noise at 900 px, and drawing them costs seconds.
    """

    divisor: float
    label: str
    bin_s: int = 1

    @classmethod
    def for_duration(cls, duration_s: float) -> "TimeAxis":
        bin_s = 1 if duration_s <= MAX_UNBINNED_S else math.ceil(duration_s / TARGET_POINTS)
        suffix = f", mean per {bin_s} s" if bin_s > 1 else ""
        if duration_s > 3 * 3600:
            return cls(3600.0, f"time since start (h{suffix})", bin_s)
        if duration_s > 20 * 60:
            return cls(60.0, f"time since start (min{suffix})", bin_s)
        return cls(1.0, f"time since start (s{suffix})", bin_s)

    def x(self, t: float) -> float:
        return t / self.divisor

    def series(self, points: Iterable[tuple[float, float | None]]) -> tuple[list[float], list[float]]:
        """``(xs, ys)`` of the points (None values skipped), binned for long runs."""
        if self.bin_s <= 1:
            kept = [(t, v) for t, v in points if v is not None]
            return [self.x(t) for t, _ in kept], [float(v) for _, v in kept]
        bins: dict[int, list[float]] = {}
        for t, v in points:
            if v is not None:
                bins.setdefault(int(t // self.bin_s), []).append(float(v))
        keys = sorted(bins)
        return [self.x(k * self.bin_s) for k in keys], [sum(bins[k]) / len(bins[k]) for k in keys]

    def of(self, seconds: list[Second], value: Callable[[Second], float | None]) -> tuple[list[float], list[float]]:
        """A timeline column (or anything computed from a second) as ``(xs, ys)``."""
        return self.series((s.t, value(s)) for s in seconds)


# -- the figures --------------------------------------------------------------------------------
def figures(data: PlotData) -> list[tuple[str, bytes]]:
    """``[(title, png), ...]``, one per figure, in the order the report shows them.

    A figure that cannot be drawn (a bug, odd data) becomes a figure that says so: the
    report of an eight-hour soak must not be lost to one plot.
    """
    out = []
    for title, draw in PLOTS:
        try:
            png = draw(data)
        except Exception as exc:  # noqa: BLE001 - the report outlives one broken figure
            png = _message_figure(title, f"could not draw: {type(exc).__name__}: {exc}")
        out.append((title, png))
    return out


def offered_vs_achieved(data: PlotData) -> bytes:
    """Target rate vs calls created per second, the break and the broken windows marked."""
    title = "offered vs achieved calls/s"
    if not data.seconds:
        return _message_figure(title, "no data")
    fig, ax, axis = _figure(title, data)
    ax.step(*axis.of(data.seconds, lambda s: s.offered_cps), where="post", linestyle="--", color="#57606a",
            label="offered")
    ax.plot(*axis.of(data.seconds, lambda s: s.created), color="#0969da", linewidth=1, label="achieved (created)")
    ax.plot(*axis.of(data.seconds, lambda s: s.completed), color="#1a7f37", linewidth=0.8, alpha=0.7,
            label="completed")
    _shade_broken(ax, axis, data.windows)
    if data.broke_at is not None:
        ax.axvline(axis.x(data.broke_at), color=BROKEN_COLOUR, linewidth=1.2)
        ax.annotate(f"break t={data.broke_at:g} s", xy=(axis.x(data.broke_at), 1.0), xycoords=("data", "axes fraction"),
                    xytext=(3, -12), textcoords="offset points", color=BROKEN_COLOUR, fontsize=8)
    if data.breaking_point_cps is not None:
        ax.axhline(data.breaking_point_cps, color=BROKEN_COLOUR, linestyle=":", linewidth=1,
                   label=f"breaking point {data.breaking_point_cps:g} calls/s")
    ax.set_ylabel("calls/s", fontsize=9)
    return _finish(fig, ax)


def concurrent_calls(data: PlotData) -> bytes:
    title = "concurrent calls"
    if not data.seconds:
        return _message_figure(title, "no data")
    fig, ax, axis = _figure(title, data)
    ax.plot(*axis.of(data.seconds, lambda s: s.concurrent), color="#8250df", label="concurrent")
    if data.max_concurrent:
        ax.axhline(data.max_concurrent, color="#57606a", linestyle="--", linewidth=1,
                   label=f"max_concurrent {data.max_concurrent}")
    _shade_broken(ax, axis, data.windows)
    ax.set_ylabel("calls", fontsize=9)
    return _finish(fig, ax)


def failures_by_code(data: PlotData) -> bytes:
    """Per second, the outcomes no destination expects, stacked by code or abort reason.

    The timeline does not say which destination a code came from, so a code that some
    destination expects (``expect: 486``) is not drawn; the black line is the timeline's
    own ``failed`` count, the judged one.
    """
    title = "failures per second by code"
    if not data.seconds:
        return _message_figure(title, "no data")
    totals: dict[str, int] = {}
    for s in data.seconds:
        for code, count in s.codes.items():
            if not _expected(code, data.expected_codes):
                totals[code] = totals.get(code, 0) + count
    if not totals and not any(s.failed for s in data.seconds):
        return _message_figure(title, "no failures")
    fig, ax, axis = _figure(title, data)
    ranked = sorted(totals, key=lambda c: (-totals[c], c))
    bands, rest = ranked[:MAX_CODE_BANDS], set(ranked[MAX_CODE_BANDS:])
    getters: list[Callable[[Second], float]] = [lambda s, code=code: s.codes.get(code, 0) for code in bands]
    labels = list(bands)
    if rest:
        getters.append(lambda s: sum(v for k, v in s.codes.items() if k in rest))
        labels.append("other")
    if getters:
        xs = axis.of(data.seconds, lambda s: 0)[0]
        ax.stackplot(xs, *(axis.of(data.seconds, g)[1] for g in getters), labels=labels, step="post", alpha=0.8)
    ax.step(*axis.of(data.seconds, lambda s: s.failed), where="post", color="black", linewidth=0.8, label="failed")
    _shade_broken(ax, axis, data.windows)
    ax.set_ylabel("calls/s", fontsize=9)
    return _finish(fig, ax)


def latency(data: PlotData) -> bytes:
    """PDD and setup-time percentiles over time, the judged limits as dashed lines.

    From the per-second histograms merged per bin (exact, as the judge computes them);
    the timeline's per-second percentile columns only when there are no histograms.
    """
    title = "PDD and setup time (p50 / p95 / p99)"
    axis = TimeAxis.for_duration(data.duration_s)
    lines = latency_series(data, axis)
    if not any(xs for xs, _ in lines.values()):
        return _message_figure(title, "no data")
    fig, ax, axis = _figure(title, data)
    colours = {"pdd": ("#9ecae1", "#4292c6", "#08519c"), "setup": ("#fdae6b", "#f16913", "#a63603")}
    for (kind, q), (xs, ys) in lines.items():
        if xs:
            ax.plot(xs, ys, color=colours[kind][QUANTILES.index(q)], linewidth=0.9, label=f"{kind} {q}")
    for kind in ("pdd", "setup"):
        for q in ("p95", "p99"):
            limit = data.limits.get(f"{kind}_{q}_ms_max")
            if limit is not None:
                ax.axhline(limit, color=colours[kind][QUANTILES.index(q)], linestyle="--", linewidth=1,
                           label=f"{kind} {q} limit {limit:g}")
    _shade_broken(ax, axis, data.windows)
    ax.set_ylabel("ms", fontsize=9)
    return _finish(fig, ax)


QUANTILES = ("p50", "p95", "p99")


def latency_series(data: PlotData, axis: TimeAxis) -> dict[tuple[str, str], tuple[list[float], list[float]]]:
    """``{(kind, quantile): (xs, ys)}`` for kind pdd/setup."""
    out: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    if not data.histograms:
        for kind in ("pdd", "setup"):
            for q in QUANTILES:
                out[kind, q] = axis.of(data.seconds, lambda s, name=f"{kind}_{q}": getattr(s, name))
        return out
    bins: dict[int, dict[str, Histogram]] = {}
    for h in data.histograms:
        merged = bins.setdefault(h.t // axis.bin_s, {"pdd": {}, "setup": {}})
        merge(merged["pdd"], h.pdd)
        merge(merged["setup"], h.setup)
    for kind in ("pdd", "setup"):
        for q in QUANTILES:
            points = [(b * axis.bin_s, percentile(bins[b][kind], float(q[1:]))) for b in sorted(bins)]
            kept = [(t, v) for t, v in points if v is not None]
            out[kind, q] = ([axis.x(t) for t, _ in kept], [v for _, v in kept])
    return out


def retransmissions(data: PlotData) -> bytes:
    title = "SIP retransmissions (% of messages sent)"
    points = [(s.t, s.retransmissions_pct) for s in data.seconds if s.sent]
    if not points:
        return _message_figure(title, "no data")
    fig, ax, axis = _figure(title, data)
    ax.plot(*axis.series(points), color="#bf8700", label="retransmissions %")
    limit = data.limits.get("retransmissions_pct_max")
    if limit is not None:
        ax.axhline(limit, color=BROKEN_COLOUR, linestyle="--", linewidth=1, label=f"limit {limit:g} %")
    _shade_broken(ax, axis, data.windows)
    ax.set_ylabel("%", fontsize=9)
    return _finish(fig, ax)


def platform_resources(data: PlotData) -> bytes:
    """Platform memory (left axis, with its drift line) and CPU (right axis)."""
    title = "platform memory (MB) and CPU (%)"
    memory = {m: data.resources[m] for m in MEMORY_METRICS if data.resources.get(m)}
    cpu = data.resources.get(CPU_METRIC) or []
    if not memory and not cpu:
        return _message_figure(title, "no data")
    fig, ax, axis = _figure(title, data)
    handles = []
    for metric, colour in zip(memory, ("#0969da", "#8250df")):
        samples = memory[metric]
        short = metric.split(".", 1)[-1]
        handles += ax.plot(*axis.series(samples), color=colour, linewidth=1, label=short)
        line = _drift_line(samples, data.warmup_s, data.slopes.get(metric))
        if line is not None:
            (t0, v0), (t1, v1), slope = line
            handles += ax.plot([axis.x(t0), axis.x(t1)], [v0, v1], color=colour, linestyle="--", linewidth=1,
                               label=f"{short} slope {slope:+.3g} MB/h")
    ax.set_ylabel("MB", fontsize=9)
    if cpu:
        right = ax.twinx()
        handles += right.plot(*axis.series(cpu), color="#bf8700", linewidth=0.8, alpha=0.8, label="cpu_pct (right)")
        right.set_ylabel("% of one core", fontsize=9)
        right.tick_params(labelsize=8)
        right.set_ylim(bottom=0)
    _legend(ax, handles, twin=bool(cpu))
    return _finish(fig, ax, legend=False, floor=False)


def generator_cpu(data: PlotData) -> bytes:
    """The generator watching itself: the busiest SIPp against what it may use, the host."""
    title = "generator CPU"
    if not data.seconds:
        return _message_figure(title, "no data")
    fig, ax, axis = _figure(title, data)
    ax.plot(*axis.of(data.seconds, lambda s: s.sipp_cpu_max), color="#0969da", linewidth=1,
            label="busiest SIPp (% core)")
    ax.step(*axis.of(data.seconds, lambda s: s.sipp_cpu_allowance), where="post", color="#0969da", linestyle="--",
            linewidth=1, label="SIPp allowance")
    ax.plot(*axis.of(data.seconds, lambda s: s.host_cpu_max), color="#cf222e", linewidth=1,
            label="busiest host (% all cores)")
    ax.plot(*axis.of(data.seconds, lambda s: s.worker_cpu_max), color="#57606a", linewidth=0.8, alpha=0.7,
            label="busiest worker (% core)")
    _shade_broken(ax, axis, data.windows)
    ax.set_ylabel("CPU %", fontsize=9)
    ax.set_ylim(bottom=0)
    return _finish(fig, ax)


#: (title, function) in report order; one ``<img>`` each.
PLOTS: list[tuple[str, Callable[[PlotData], bytes]]] = [
    ("offered vs achieved calls/s", offered_vs_achieved),
    ("concurrent calls", concurrent_calls),
    ("failures per second by code", failures_by_code),
    ("PDD and setup time", latency),
    ("retransmissions", retransmissions),
    ("platform memory and CPU", platform_resources),
    ("generator CPU", generator_cpu),
]


# -- helpers --------------------------------------------------------------------------------------
def _figure(title: str, data: PlotData) -> tuple[Figure, Any, TimeAxis]:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.07, right=0.74, top=0.88, bottom=0.17)
    axis = TimeAxis.for_duration(data.duration_s)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(axis.label, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(True, linewidth=0.3, alpha=0.6)
    if data.duration_s > 0:
        ax.set_xlim(0, axis.x(data.duration_s))
    return fig, ax, axis


def _finish(fig: Figure, ax: Any, legend: bool = True, floor: bool = True) -> bytes:
    """Legend, y from zero (but memory: its drift is what matters, not its size), PNG."""
    if legend and ax.get_legend_handles_labels()[0]:
        _legend(ax)
    if floor:
        ax.set_ylim(bottom=0)
    return _png(fig)


def _legend(ax: Any, handles: list[Any] | None = None, twin: bool = False) -> None:
    """Outside the plot, on the right: it never hides data, and every figure's x axis
    has the same position and length, so the figures line up one under the other."""
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.09 if twin else 1.01, 1.0), fontsize=7,
              frameon=False, borderaxespad=0)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _message_figure(title: str, message: str) -> bytes:
    """A figure of the usual size holding one sentence ("no data")."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    ax.text(0.5, 0.5, message[:160], ha="center", va="center", fontsize=12, color="#57606a",
            transform=ax.transAxes)
    return _png(fig)


def _expected(code: str, expected: frozenset[str]) -> bool:
    """A code a destination expects (2xx stands for "answered" when 200 is expected)."""
    if code in expected:
        return True
    return code.isdigit() and 200 <= int(code) < 300 and any(e.startswith("2") for e in expected)


def broken_spans(windows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Broken windows merged into contiguous spans (a soak has thousands of windows)."""
    spans: list[tuple[float, float]] = []
    for w in sorted((w for w in windows if w.get("broken")), key=lambda w: w["start"]):
        start, end = float(w["start"]), float(w["end"])
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def _shade_broken(ax: Any, axis: TimeAxis, windows: list[dict[str, Any]]) -> None:
    for i, (start, end) in enumerate(broken_spans(windows)):
        ax.axvspan(axis.x(start), axis.x(end), color=BROKEN_COLOUR, alpha=0.12, linewidth=0,
                   label="broken window" if i == 0 else None)


def _drift_line(samples: list[tuple[float, float]], warmup_s: float,
                slope_per_h: float | None) -> tuple[tuple[float, float], tuple[float, float], float] | None:
    """The least-squares line over the samples after warm-up, as two end points.

    With the judged slope given, the line is drawn through the samples' centroid (where
    every least-squares line passes) so the figure shows the very slope ``load.json`` has.
    """
    points = [(t, v) for t, v in samples if t >= warmup_s]
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    if slope_per_h is None:
        slope_per_h = 3600.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var_t
    per_s = slope_per_h / 3600.0
    t0, t1 = points[0][0], points[-1][0]
    return (t0, mean_v + per_s * (t0 - mean_t)), (t1, mean_v + per_s * (t1 - mean_t)), slope_per_h

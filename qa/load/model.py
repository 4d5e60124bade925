"""The files a load run writes as it goes, and the records in them (issue 7, DESIGN §8).

A load run is judged from files, never from memory: a run killed at hour 5 keeps 5 hours
of data and ``voipqa load report DIR`` rebuilds the verdict and the report from them.
Every writer appends and flushes once per second; every reader tolerates a torn last line.

=====================  =====================================================================
``run.json``           the resolved run: profile (as validated), environment, overrides,
                       workers, started; written before the first call
``timeline.csv``       one :class:`Second` per second of load (header row; columns below)
``histograms.jsonl``   per second, the PDD and setup-time histograms (exact window
                       percentiles are computed by merging these, not by averaging p95s)
``calls.csv``          one :class:`CallRow` per completed call (Call-IDs for the CDR check)
``resources.csv``      ``t,metric,value`` samples of the platform and of voipqa itself
``events.jsonl``       what happened when: start, stage change, worker joined/lost, break,
                       interrupted, end (``{"t": s, "event": name, ...}``)
``cdr.json``           the CDR reconciliation after the run (:mod:`qa.load.cdrcheck`)
=====================  =====================================================================

``t`` is always seconds since the load started (the master's clock).
Histogram keys are milliseconds rounded as Locust rounds response times (exact below
100 ms, to 10 ms below 1 s, to 100 ms above), so merging histograms is exact arithmetic.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator

from qa.jsonl import complete_lines, read_objects

RUN_FILE = "run.json"
TIMELINE_FILE = "timeline.csv"
HISTOGRAMS_FILE = "histograms.jsonl"
CALLS_FILE = "calls.csv"
RESOURCES_FILE = "resources.csv"
EVENTS_FILE = "events.jsonl"
CDR_FILE = "cdr.json"

#: Characters that make a CSV field need quoting.
_CSV_SPECIAL = (",", '"', "\n", "\r")

#: Pseudo status codes for calls that got no final response (``CallRow.code``).
NO_ANSWER = 0          # the scenario's own timeout fired (no final response in time)

Histogram = dict[int, int]


def round_ms(value: float) -> int:
    """Milliseconds rounded to two significant digits above 100 ms (Locust's rounding)."""
    if value < 100:
        return int(round(value))
    if value < 1000:
        return int(round(value, -1))
    if value < 10000:
        return int(round(value, -2))
    return int(round(value, -3))


def merge(into: Histogram, other: dict[Any, int]) -> Histogram:
    """Add ``other`` (keys may be strings, as JSON gives them) into ``into``."""
    for key, count in other.items():
        k = int(key)
        into[k] = into.get(k, 0) + int(count)
    return into


def percentile(hist: Histogram, q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0..100) of a histogram; ``None`` when it is empty."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * total))
    seen = 0
    for key in sorted(hist):
        seen += hist[key]
        if seen >= rank:
            return float(key)
    return float(max(hist))  # pragma: no cover - rank <= total always stops above


def percentiles(hist: Histogram) -> dict[str, float | None]:
    """``{"p50": .., "p95": .., "p99": ..}`` of a histogram."""
    return {name: percentile(hist, q) for name, q in (("p50", 50), ("p95", 95), ("p99", 99))}


def _codes_text(codes: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in sorted(codes.items()) if v)


def _codes_parse(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in text.split():
        key, _, value = item.partition(":")
        if value.isdigit():
            out[key] = out.get(key, 0) + int(value)
    return out


@dataclass
class Second:
    """What every generator together did and saw in one second of the run.

    Counts are of that second only (deltas). ``completed`` counts calls that ended in
    the second: ``answered`` (2xx) plus every other outcome; ``failed`` is the part of
    ``completed`` that did not get what its destination expects (``Destination.expect``,
    200 by default) including ``aborted`` calls (SIPp gave up: timeouts, unexpected
    messages, retransmissions exhausted, outbound congestion), which have no Call-ID line.
    ``codes`` counts final codes of completed calls as text keys (``"200"``, ``"503"``;
    ``"0"`` for no final response) and SIPp's abort reasons (``"timeout"``,
    ``"unexpected"``, ``"retrans"``, ``"congestion"``, ``"other"``).

    Generator health: ``sipp_cpu_max`` is the busiest SIPp's CPU in % of one core and
    ``sipp_cpu_allowance`` what it may use (100, or its cgroup quota in %);
    ``host_cpu_max`` the busiest generator host's CPU % (all cores, 0..100);
    ``worker_cpu_max`` the busiest voipqa worker process's own CPU % of one core.
    """

    t: int
    offered_cps: float = 0.0
    created: int = 0
    concurrent: int = 0
    completed: int = 0
    answered: int = 0
    failed: int = 0
    aborted: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    pdd_p50: float | None = None
    pdd_p95: float | None = None
    pdd_p99: float | None = None
    setup_p50: float | None = None
    setup_p95: float | None = None
    setup_p99: float | None = None
    sent: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    unexpected: int = 0
    outbound_congestion: int = 0
    dead_msgs: int = 0
    sipp_cpu_max: float = 0.0
    sipp_cpu_allowance: float = 100.0
    host_cpu_max: float = 0.0
    worker_cpu_max: float = 0.0
    workers: int = 0
    sipps: int = 0

    # -- CSV ------------------------------------------------------------------------------
    @classmethod
    def columns(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def to_row(self) -> list[str]:
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "codes":
                out.append(_codes_text(value))
            elif value is None:
                out.append("")
            elif isinstance(value, float):
                out.append(f"{value:.6g}")
            else:
                out.append(str(value))
        return out

    @classmethod
    def from_row(cls, row: dict[str, str]) -> "Second":
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            text = row.get(f.name)
            if text is None:
                continue
            if f.name == "codes":
                kwargs[f.name] = _codes_parse(text)
            elif text == "":
                kwargs[f.name] = None if "None" in str(f.type) else 0
            elif f.type in ("int", int):
                kwargs[f.name] = int(float(text))
            else:
                kwargs[f.name] = float(text)
        return cls(**kwargs)

    @property
    def retransmissions_pct(self) -> float | None:
        return 100.0 * self.retransmissions / self.sent if self.sent else None


@dataclass
class SecondHistograms:
    """The PDD and setup-time histograms of the calls completed in second ``t``."""

    t: int
    pdd: Histogram = field(default_factory=dict)
    setup: Histogram = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"t": self.t, "pdd": self.pdd, "setup": self.setup}, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> "SecondHistograms":
        data = json.loads(line)
        return cls(t=int(data["t"]), pdd=merge({}, data.get("pdd") or {}),
                   setup=merge({}, data.get("setup") or {}))


@dataclass(slots=True)
class CallRow:
    """One completed call as the customer (a SIPp UAC) saw it.

    ``started`` is the unix time of the first INVITE; ``pdd_ms`` first INVITE → first
    18x, ``setup_ms`` first INVITE → 2xx (both from the first INVITE, through any digest
    challenge); ``duration_s`` answer → end of the call (BYE answered); ``code`` the final
    response (0: none); ``expect`` what its destination should answer.
    """

    t: int
    worker: str
    call_id: str
    started: float
    pdd_ms: float | None
    setup_ms: float | None
    duration_s: float | None
    code: int
    expect: int
    from_user: str
    to_user: str

    COLUMNS = ("t", "worker", "call_id", "started", "pdd_ms", "setup_ms", "duration_s", "code", "expect",
               "from", "to")

    @property
    def answered(self) -> bool:
        return 200 <= self.code < 300

    @property
    def failed(self) -> bool:
        return self.code != self.expect and not (self.answered and 200 <= self.expect < 300)

    @property
    def answered_at(self) -> float | None:
        return None if self.setup_ms is None or not self.answered else self.started + self.setup_ms / 1000.0

    @property
    def ended(self) -> float | None:
        answered = self.answered_at
        if answered is None:
            return self.started + (self.setup_ms or self.pdd_ms or 0.0) / 1000.0
        return answered + (self.duration_s or 0.0)

    def to_row(self) -> list[str]:
        pdd, setup, duration = self.pdd_ms, self.setup_ms, self.duration_s
        return [str(self.t), self.worker, self.call_id, f"{self.started:.6f}",
                "" if pdd is None else f"{pdd:.1f}", "" if setup is None else f"{setup:.1f}",
                "" if duration is None else f"{duration:.3f}", str(self.code), str(self.expect),
                self.from_user, self.to_user]

    def csv_line(self) -> str:
        """The row as one calls.csv line; the csv module only for a field that needs quoting
        (SIPp's Call-IDs never do: this is the per-call hot path of a load run)."""
        pdd, setup, duration = self.pdd_ms, self.setup_ms, self.duration_s
        line = (f"{self.t},{self.worker},{self.call_id},{self.started:.6f},"
                f"{'' if pdd is None else f'{pdd:.1f}'},{'' if setup is None else f'{setup:.1f}'},"
                f"{'' if duration is None else f'{duration:.3f}'},{self.code},{self.expect},"
                f"{self.from_user},{self.to_user}")
        if line.count(",") != len(self.COLUMNS) - 1 or '"' in line or "\n" in line or "\r" in line:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerow(self.to_row())
            return buf.getvalue()
        return line + "\n"

    @classmethod
    def from_row(cls, values: list[str]) -> "CallRow":
        def opt(text: str) -> float | None:
            return float(text) if text else None
        t, worker, call_id, started, pdd, setup, duration, code, expect, from_user, to_user = values
        return cls(int(t), worker, call_id, float(started), opt(pdd), opt(setup), opt(duration), int(code),
                   int(expect), from_user, to_user)


# -- writing ------------------------------------------------------------------------------------
class CsvAppender:
    """A CSV file opened for appending; the header is written when the file is new."""

    def __init__(self, path: Path, header: Iterable[str]) -> None:
        self.path = Path(path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._fh = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._fh, lineterminator="\n")
        if new:
            self._writer.writerow(list(header))
            self._fh.flush()

    def write(self, row: Iterable[Any]) -> None:
        self._writer.writerow(list(row))

    def write_text(self, text: str) -> None:
        """Rows already formatted as CSV text (a worker's chunk of call rows)."""
        self._fh.write(text)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def call_rows_text(rows: Iterable[CallRow]) -> str:
    """Call rows as CSV text, the form workers ship them to the master in."""
    return "".join(row.csv_line() for row in rows)


def append_event(path: Path, t: float, event: str, **data: Any) -> None:
    """Append one event to ``events.jsonl`` (flushed; never raises on a full disk twice)."""
    line = json.dumps({"t": round(t, 3), "event": event, **data}, separators=(",", ":"), default=str)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


# -- reading (every reader skips a torn last line) -------------------------------------------------
def read_timeline(path: Path) -> list[Second]:
    lines = complete_lines(path)
    if not lines:
        return []
    out = []
    for row in csv.DictReader(lines):
        try:
            out.append(Second.from_row(row))
        except (TypeError, ValueError):
            continue
    return out


def read_histograms(path: Path) -> list[SecondHistograms]:
    out = []
    for line in complete_lines(path):
        if line.strip():
            try:
                out.append(SecondHistograms.from_json(line))
            except (ValueError, KeyError, TypeError):
                continue
    return out


def iter_calls(path: Path) -> Iterator[CallRow]:
    """Every complete row of ``calls.csv``, streamed (a soak has millions)."""
    try:
        fh = open(path, encoding="utf-8", newline="")
    except FileNotFoundError:
        return
    with fh:
        reader = csv.reader(fh)
        next(reader, None)
        for values in reader:
            if len(values) != len(CallRow.COLUMNS):
                continue
            try:
                yield CallRow.from_row(values)
            except ValueError:
                continue


def load_call_ids(calls: Path) -> Iterator[str]:
    """Call-IDs of a functional run's load runs (``load/**/calls.csv`` beside calls.jsonl):
    ``cdr check --calls`` must not call their CDRs unexpected."""
    folder = Path(calls).parent / "load"
    if not folder.is_dir():
        return
    for csv_path in sorted(folder.rglob("calls.csv")):
        for row in iter_calls(csv_path):
            yield row.call_id


def read_resources(path: Path) -> dict[str, list[tuple[float, float]]]:
    """``resources.csv`` as ``{metric: [(t, value), ...]}``."""
    out: dict[str, list[tuple[float, float]]] = {}
    lines = complete_lines(path)
    for row in csv.DictReader(lines):
        try:
            out.setdefault(row["metric"], []).append((float(row["t"]), float(row["value"])))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def read_events(path: Path) -> list[dict[str, Any]]:
    """``events.jsonl``: the run's events, whole lines only."""
    return read_objects(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically (a reader never sees half a file)."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def second_dict(second: Second) -> dict[str, Any]:
    return asdict(second)

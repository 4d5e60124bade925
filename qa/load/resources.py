"""Platform and self resource sampling during a load run, and the drift math (DESIGN §8).

A soak is judged on whether the platform's memory keeps growing, so the samples must be
written as they are taken (``resources.csv``, ``t,metric,value``, flushed each round: a
soak killed at hour 5 keeps 5 hours of samples) and a sampler that cannot read one metric
must not cost the others, nor the run: every problem is reported once and the metric is
left out of that round.

Samplers (each ``sample(problem) -> {metric: value}``):

* :class:`LabSampler` — the native lab, from ``RUN_DIR/lab.json``: Kamailio's process tree
  from ``/proc`` (RSS, open fds, CPU), its shared/private memory and active dialogs via
  ``kamcmd``; rtpengine's and the carriers' processes.
* :class:`ProcessSampler` — any set of pids (voipqa itself: runner, master, workers).
* :class:`HostCpuSampler` — this host's CPU from ``/proc/stat``.
* :class:`PrometheusSampler` / :class:`JsonStatsSampler` — an environment's ``resources:``
  section (a Prometheus text endpoint, an HTTP JSON stats document).

Memory is in MB of 10^6 bytes everywhere (the unit the environment's ``scale`` example
converts bytes to), CPU in % of one core summed over processes.

Length: five samplers with one interface and the drift math they feed; each sampler is
short, and they share the problem reporting that keeps one bad metric from costing the run.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from qa.errors import ConfigError, VoipqaError
from qa.load.model import CsvAppender

Problem = Callable[[str], None]
Points = Sequence[tuple[float, float]]

MB = 1e6
HTTP_TIMEOUT_S = 2.0
KAMCMD_TIMEOUT_S = 2.0
#: A drift slope needs at least this many samples over at least this many seconds.
MIN_SLOPE_POINTS = 3
MIN_SLOPE_SPAN_S = 60.0


def _ignore(_message: str) -> None:
    """The default problem sink: a caller that does not care about unreadable metrics."""


class Sampler(Protocol):
    """One source of resource metrics; ``sample`` never raises for an unreadable metric."""

    name: str

    def sample(self, problem: Problem = _ignore) -> dict[str, float]: ...


# ----------------------------------------------------------------------------- /proc reading
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the samplers need (``starttime`` tells pid reuse)."""

    pid: int
    ppid: int
    ticks: int        # utime + stime, in clock ticks
    starttime: int


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/PID/stat`` of a live process; None once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    rest = data.rsplit(b")", 1)[-1].split()  # the command name may contain spaces and ')'
    if len(rest) < 20 or rest[0] in (b"Z", b"X"):
        return None
    return ProcStat(pid, int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19]))


def all_stats() -> dict[int, ProcStat]:
    """Every live process's stat, read once per round (the tree walk needs ppids)."""
    out: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                out[stat.pid] = stat
    return out


def descendants(root: int, stats: dict[int, ProcStat]) -> list[int]:
    """``root`` and every process below it (Kamailio forks its workers from the main pid)."""
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return sorted(out)


def rss_mb(pid: int) -> float | None:
    """Resident set size from ``/proc/PID/status`` (``VmRSS``, kB) in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / MB
    except (OSError, ValueError, IndexError):
        return None
    return None  # kernel threads have no VmRSS


def open_fds(pid: int) -> int:
    """Entries of ``/proc/PID/fd``; raises OSError when the process is not ours to inspect."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class CpuMeter:
    """CPU of a changing set of processes as Δ(utime+stime)/Δwall, in % of one core, summed.

    The first round has nothing to compare with (None). A pid seen in both rounds with the
    same start time counts; a process that started or ended in between is left out of that
    round rather than guessed.
    """

    def __init__(self) -> None:
        self._prev: dict[int, tuple[int, int]] = {}
        self._wall: float | None = None

    def update(self, stats: Iterable[ProcStat], now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        current = {st.pid: (st.starttime, st.ticks) for st in stats}
        prev, wall = self._prev, self._wall
        self._prev, self._wall = current, now
        if wall is None or now <= wall:
            return None
        common = [pid for pid in current if pid in prev and prev[pid][0] == current[pid][0]]
        if not common:
            return None
        ticks = sum(max(0, current[pid][1] - prev[pid][1]) for pid in common)
        return 100.0 * ticks / _CLK_TCK / (now - wall)


def _process_metrics(prefix: str, pids: list[int], stats: dict[int, ProcStat], meter: CpuMeter,
                     problem: Problem, *, fds: bool = False) -> dict[str, float]:
    """``PREFIX.rss_mb``, ``PREFIX.cpu_pct`` (and ``PREFIX.fds``) of a set of processes."""
    live = [stats[p] for p in pids if p in stats]
    if not live:
        problem(f"{prefix}: no live process to sample")
        meter.update([])
        return {}
    out: dict[str, float] = {}
    rss = [v for v in (rss_mb(st.pid) for st in live) if v is not None]
    if rss:
        out[f"{prefix}.rss_mb"] = sum(rss)
    else:
        problem(f"{prefix}.rss_mb: no VmRSS in /proc/PID/status")
    if fds:
        try:
            out[f"{prefix}.fds"] = float(sum(open_fds(st.pid) for st in live))
        except OSError as exc:
            problem(f"{prefix}.fds: cannot list /proc/PID/fd: {exc.strerror}")
    cpu = meter.update(live)
    if cpu is not None:
        out[f"{prefix}.cpu_pct"] = cpu
    return out


# ----------------------------------------------------------------------------- kamcmd parsing
_USED_RE = re.compile(r"^\s*used:\s*(\d+)\s*$", re.MULTILINE)
_ACTIVE_DIALOGS_RE = re.compile(r"^\s*dialog:active_dialogs\s*=\s*(\d+)\s*$", re.MULTILINE)


def parse_shmmem_used(text: str) -> float | None:
    """``kamcmd core.shmmem`` → ``used`` bytes in MB (``real_used`` adds allocator overhead)."""
    match = _USED_RE.search(text)
    return int(match.group(1)) / MB if match else None


def parse_pkg_used(text: str) -> float | None:
    """``kamcmd pkg.stats`` → the sum of every process's private-memory ``used``, in MB."""
    used = [int(m) for m in _USED_RE.findall(text)]
    return sum(used) / MB if used else None


def parse_active_dialogs(text: str) -> float | None:
    """``kamcmd stats.get_statistics dialog:`` → ``dialog:active_dialogs``.

    Kamailio 5.6 answers ``stats.get_statistics dialog:active_dialogs`` with nothing at all;
    the group form ``dialog:`` (or the bare ``active_dialogs``) is what works.
    """
    match = _ACTIVE_DIALOGS_RE.search(text)
    return float(match.group(1)) if match else None


# ----------------------------------------------------------------------------- samplers
class LabSampler:
    """The native lab's platform, read from its run directory.

    ``lab.json`` is read every round: a carrier restarted by a failover case gets a new pid,
    and a lab that went away is reported instead of sampling stale pids.
    """

    name = "lab"
    KAMCMD = (("platform.shm_used_mb", ("core.shmmem",), parse_shmmem_used),
              ("platform.pkg_used_mb", ("pkg.stats",), parse_pkg_used),
              ("platform.dialogs", ("stats.get_statistics", "dialog:"), parse_active_dialogs))

    def __init__(self, run_dir: Path | str, *, kamcmd_timeout: float = KAMCMD_TIMEOUT_S) -> None:
        self.run_dir = Path(run_dir)
        self.kamcmd_timeout = kamcmd_timeout
        self._meters = {"platform": CpuMeter(), "rtpengine": CpuMeter(), "carrier": CpuMeter()}

    def sample(self, problem: Problem = _ignore) -> dict[str, float]:
        from qa.lab.state import load_state  # the lab is a service; imported when a lab is sampled
        state = load_state(self.run_dir)
        if state is None:
            problem(f"lab: no lab.json in {self.run_dir} (is the lab running?)")
            return {}
        stats = all_stats()
        out: dict[str, float] = {}
        groups = self._groups(state.processes, set(state.carrier_cdr), stats)
        for prefix, pids in groups.items():
            metrics = _process_metrics(prefix, pids, stats, self._meters[prefix], problem,
                                       fds=prefix == "platform")
            if prefix == "carrier":  # the carriers are the lab's far end: only their CPU matters
                metrics = {k: v for k, v in metrics.items() if k == "carrier.cpu_pct"}
            out.update(metrics)
        if groups.get("platform"):
            out.update(self._kamcmd(state, problem))
        return out

    @staticmethod
    def _groups(processes: dict[str, int], carriers: set[str], stats: dict[int, ProcStat]) -> dict[str, list[int]]:
        """Process trees by metric prefix; a name that is neither Kamailio, rtpengine nor a
        carrier of the lab's plan is not the platform's and is left out."""
        groups: dict[str, list[int]] = {}
        for name, pid in processes.items():
            prefix = {"kamailio": "platform", "rtpengine": "rtpengine"}.get(name)
            if prefix is None and name in carriers:
                prefix = "carrier"
            if prefix is not None:  # recorded but dead: an empty group, reported by the caller
                groups.setdefault(prefix, []).extend(descendants(int(pid), stats))
        return groups

    def _kamcmd(self, state: Any, problem: Problem) -> dict[str, float]:
        from qa import lab
        out: dict[str, float] = {}
        for metric, args, parse in self.KAMCMD:
            try:
                text = lab.kamcmd(state, *args, timeout=self.kamcmd_timeout)
            except subprocess.TimeoutExpired:
                problem(f"{metric}: kamcmd {' '.join(args)} gave no answer in {self.kamcmd_timeout:g} s")
                continue
            except (VoipqaError, OSError) as exc:
                problem(f"{metric}: {exc}")
                continue
            value = parse(text)
            if value is None:
                problem(f"{metric}: kamcmd {' '.join(args)}: unexpected output {text.strip()[:80]!r}")
            else:
                out[metric] = value
        return out


class ProcessSampler:
    """``PREFIX.rss_mb`` and ``PREFIX.cpu_pct`` of the pids ``pids()`` returns each round
    (voipqa itself: the runner, the Locust master and its workers, which come and go)."""

    def __init__(self, prefix: str, pids: Callable[[], list[int]]) -> None:
        self.name = prefix
        self.prefix = prefix
        self.pids = pids
        self._meter = CpuMeter()

    def sample(self, problem: Problem = _ignore) -> dict[str, float]:
        stats = {}
        for pid in self.pids():
            st = read_stat(pid)
            if st is not None:
                stats[pid] = st
        if not stats:  # they come and go (a run ending): nothing to sample is not a problem
            self._meter.update([])
            return {}
        return _process_metrics(self.prefix, list(stats), stats, self._meter, problem)


class HostCpuSampler:
    """``generator.host_cpu_pct``: this host's busy time over all cores, 0..100 (``/proc/stat``)."""

    name = "host"

    def __init__(self, path: str = "/proc/stat") -> None:
        self.path = path
        self._prev: tuple[int, int] | None = None

    def sample(self, problem: Problem = _ignore) -> dict[str, float]:
        try:
            with open(self.path, encoding="ascii") as fh:
                fields = fh.readline().split()
            values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
        except (OSError, ValueError) as exc:
            problem(f"generator.host_cpu_pct: cannot read {self.path}: {exc}")
            return {}
        total, idle = sum(values), values[3] + values[4]
        prev, self._prev = self._prev, (total, idle)
        if prev is None or total <= prev[0]:
            return {}
        d_total, d_idle = total - prev[0], idle - prev[1]
        return {"generator.host_cpu_pct": 100.0 * (d_total - d_idle) / d_total}


# ----------------------------------------------------------------------------- Prometheus
Labels = dict[str, str]
_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_RE = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)\s*\"")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _labels(text: str, pos: int) -> tuple[Labels, int]:
    """Parse ``{a="x",b="y"}`` starting at ``text[pos] == '{'``; returns labels and the end."""
    labels: Labels = {}
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t,":
            pos += 1
        if pos < len(text) and text[pos] == "}":
            return labels, pos + 1
        match = _LABEL_RE.match(text, pos)
        if not match:
            raise ValueError(f"bad label at {text[pos:pos + 20]!r}")
        if match.group(2) != "=":
            raise ValueError(f"only exact label matches (label=\"value\") are supported, "
                             f"not {match.group(2)}")
        pos, value = match.end(), []
        while True:
            if pos >= len(text):
                raise ValueError("unterminated label value")
            char = text[pos]
            if char == "\\" and pos + 1 < len(text):
                value.append(_ESCAPES.get(text[pos + 1], "\\" + text[pos + 1]))
                pos += 2
            elif char == '"':
                pos += 1
                break
            else:
                value.append(char)
                pos += 1
        labels[match.group(1)] = "".join(value)


def parse_selector(text: str) -> tuple[str, Labels]:
    """``name`` or ``name{label="value",...}`` (exact matches only) → (name, labels)."""
    text = text.strip()
    match = _NAME_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Prometheus series name")
    name, pos, labels = match.group(0), match.end(), {}
    if pos < len(text) and text[pos] == "{":
        labels, pos = _labels(text, pos)
    if text[pos:].strip():
        raise ValueError(f"unexpected {text[pos:].strip()!r} after the series")
    return name, labels


def parse_exposition(text: str) -> Iterator[tuple[str, Labels, float]]:
    """Every sample of a Prometheus text exposition (``# HELP``/``# TYPE`` and bad lines skipped)."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _NAME_RE.match(line)
        if not match:
            continue
        name, pos, labels = match.group(0), match.end(), {}
        try:
            if pos < len(line) and line[pos] == "{":
                labels, pos = _labels(line, pos)
            value = float(line[pos:].split()[0])
        except (ValueError, IndexError):
            continue
        yield name, labels, value


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 (configured URL)
        return response.read()


def _fetch(url: str, problem: Problem, what: str) -> str | None:
    try:
        return _http_get(url).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        problem(f"{what} {url}: HTTP {exc.code}")
    except urllib.error.URLError as exc:
        problem(f"{what} {url}: {exc.reason}")
    except (OSError, ValueError) as exc:  # timeouts, resets, a malformed URL
        problem(f"{what} {url}: {exc.__class__.__name__}: {exc}")
    return None


class PrometheusSampler:
    """Metrics from a Prometheus text endpoint: ``{voipqa metric: series selector}``.

    Selector labels match exactly (``=`` only); a series may carry more labels than the
    selector names, and when several series match, their values are summed (the platform's
    processes add up, as ``platform.rss_mb`` does for the lab).
    """

    name = "prometheus"

    def __init__(self, url: str, metrics: dict[str, str], scale: dict[str, float] | None = None) -> None:
        self.url = url
        self.scale = dict(scale or {})
        self.selectors = {metric: parse_selector(sel) for metric, sel in metrics.items()}

    def sample(self, problem: Problem = _ignore) -> dict[str, float]:
        text = _fetch(self.url, problem, "prometheus")
        if text is None:
            return {}
        sums: dict[str, float] = {}
        wanted: dict[str, list[tuple[str, Labels]]] = {}
        for metric, (name, labels) in self.selectors.items():
            wanted.setdefault(name, []).append((metric, labels))
        for name, labels, value in parse_exposition(text):
            if math.isnan(value):
                continue
            for metric, want in wanted.get(name, ()):
                if all(labels.get(k) == v for k, v in want.items()):
                    sums[metric] = sums.get(metric, 0.0) + value
        for metric, (name, labels) in self.selectors.items():
            if metric not in sums:
                sel = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
                problem(f"{metric}: no series {sel} at {self.url}")
        return {m: v * self.scale.get(m, 1.0) for m, v in sums.items()}


def _dotted(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            raise KeyError(part)
    return data


class JsonStatsSampler:
    """Metrics from an HTTP JSON document: ``{voipqa metric: dotted.path}`` (list indexes allowed)."""

    name = "stats"

    def __init__(self, url: str, fields: dict[str, str], scale: dict[str, float] | None = None) -> None:
        self.url = url
        self.fields = dict(fields)
        self.scale = dict(scale or {})

    def sample(self, problem: Problem = _ignore) -> dict[str, float]:
        text = _fetch(self.url, problem, "stats")
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except ValueError:
            problem(f"stats {self.url}: not JSON")
            return {}
        out: dict[str, float] = {}
        for metric, path in self.fields.items():
            try:
                value = _dotted(data, path)
            except KeyError as exc:
                problem(f"{metric}: no {path} in {self.url} (missing {exc.args[0]!r})")
                continue
            number = _number(value)
            if number is None:
                problem(f"{metric}: {path} in {self.url} is not a number")
            else:
                out[metric] = number * self.scale.get(metric, 1.0)
        return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def samplers_for_environment(env: Any) -> list[Sampler]:
    """The platform samplers of an environment: the lab's own, and/or its ``resources:`` section.

    A selector that is not a series (``resources.metrics.X``) is the user's to fix: ConfigError.
    voipqa's own processes and the generator host are the runner's (:class:`ProcessSampler`,
    :class:`HostCpuSampler`), since only it knows its pids.
    """
    out: list[Sampler] = []
    if getattr(env, "name", None) == "lab" and (getattr(env, "extra", None) or {}).get("run_dir"):
        out.append(LabSampler(env.extra["run_dir"]))
    res = getattr(getattr(env, "settings", None), "resources", None)
    if res is None:
        return out
    where = getattr(env, "path", None) or getattr(env, "name", "environment")
    scale = dict(getattr(res, "scale", None) or {})
    if getattr(res, "prometheus", None):
        metrics = dict(getattr(res, "metrics", None) or {})
        for metric, selector in metrics.items():
            try:
                parse_selector(selector)
            except ValueError as exc:
                raise ConfigError(where, f"resources.metrics.{metric}", str(exc)) from None
        out.append(PrometheusSampler(str(res.prometheus), metrics, scale))
    if getattr(res, "stats_url", None):
        out.append(JsonStatsSampler(str(res.stats_url), dict(getattr(res, "fields", None) or {}), scale))
    return out


# ----------------------------------------------------------------------------- the recorder
class Recorder:
    """Samples every ``every_s`` on a daemon thread and appends to ``resources.csv``.

    ``t`` is ``clock()`` (seconds since the load started) taken at the start of each round;
    rounds are scheduled on a fixed grid, so a slow kamcmd delays one round, not all later
    ones. Nothing raises into the caller: a failure goes to ``on_error`` once per distinct
    message (a soak of 8 h must not print the same complaint 5,760 times).
    """

    HEADER = ("t", "metric", "value")

    def __init__(self, path: Path | str, samplers: Sequence[Sampler], every_s: float,
                 clock: Callable[[], float], on_error: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.samplers = list(samplers)
        self.every_s = max(0.01, float(every_s))
        self.clock = clock
        self.on_error = on_error or _ignore
        self.rounds = 0
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._out: CsvAppender | None = None

    def __enter__(self) -> "Recorder":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> "Recorder":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="voipqa-resources", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop sampling and close the file; returns once the thread has ended (or ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def problem(self, message: str) -> None:
        """Report ``message`` once; never raises (a broken callback must not end sampling)."""
        if message in self._seen:
            return
        self._seen.add(message)
        try:
            self.on_error(message)
        except Exception:  # noqa: BLE001 - the callback is the caller's; sampling goes on
            pass

    def sample_once(self) -> dict[str, float]:
        """One round: every sampler, rows appended and flushed. Used by the thread and by tests."""
        t = self.clock()
        values: dict[str, float] = {}
        for sampler in self.samplers:
            try:
                values.update(sampler.sample(self.problem))
            except Exception as exc:  # noqa: BLE001 - one sampler's bug must not cost the others
                self.problem(f"{getattr(sampler, 'name', sampler)}: {exc.__class__.__name__}: {exc}")
        if self._out is None:
            self._out = CsvAppender(self.path, self.HEADER)
        for metric, value in values.items():
            if math.isfinite(value):
                self._out.write((f"{t:.3f}", metric, f"{value:.6g}"))
        self._out.flush()
        self.rounds += 1
        return values

    def _run(self) -> None:
        start = time.monotonic()
        k = 0
        try:
            while not self._stop.is_set():
                try:
                    self.sample_once()
                except Exception as exc:  # noqa: BLE001 - e.g. the disk is full
                    self.problem(f"resources: {self.path}: {exc.__class__.__name__}: {exc}")
                k = max(k + 1, math.floor((time.monotonic() - start) / self.every_s) + 1)
                self._stop.wait(max(0.0, start + k * self.every_s - time.monotonic()))
        finally:
            self.close()

    def close(self) -> None:
        """Close resources.csv (the thread does it on stop; direct ``sample_once`` users call it)."""
        out, self._out = self._out, None
        if out is not None:
            try:
                out.close()
            except OSError:
                pass


# ----------------------------------------------------------------------------- drift math
def slope_per_hour(points: Points) -> float | None:
    """Least-squares slope of ``(t seconds, value)`` in value units per hour.

    None with fewer than 3 points or under 60 s of span: two samples make a line through any
    noise, and a minute is the least that says anything about growth.
    """
    if len(points) < MIN_SLOPE_POINTS:
        return None
    ts = [float(t) for t, _ in points]
    if max(ts) - min(ts) < MIN_SLOPE_SPAN_S:
        return None
    n = len(points)
    mean_t = sum(ts) / n
    mean_v = sum(v for _, v in points) / n
    sxx = sum((t - mean_t) ** 2 for t in ts)
    sxy = sum((t - mean_t) * (v - mean_v) for t, (_, v) in zip(ts, points))
    return sxy / sxx * 3600.0 if sxx else None


def after(points: Points, warmup_s: float) -> list[tuple[float, float]]:
    """The points at or after the warm-up (the first seconds are the platform filling caches)."""
    return [(t, v) for t, v in points if t >= warmup_s]


def summarize(resources: dict[str, list[tuple[float, float]]], warmup_s: float = 0.0) -> dict[str, dict[str, Any]]:
    """Per metric, after warm-up: ``{first, last, min, max, mean, slope_per_h, samples}``
    (values None and samples 0 when nothing was sampled after the warm-up)."""
    out: dict[str, dict[str, Any]] = {}
    for metric, points in sorted(resources.items()):
        pts = sorted(after(points, warmup_s))
        values = [v for _, v in pts]
        out[metric] = {
            "first": values[0] if values else None,
            "last": values[-1] if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "mean": sum(values) / len(values) if values else None,
            "slope_per_h": slope_per_hour(pts),
            "samples": len(values),
        }
    return out


@dataclass(frozen=True)
class Drift:
    """A memory series judged for growth: which metric, its slope and what it rests on."""

    metric: str | None
    slope_per_h: float | None
    samples: int
    span_s: float
    why: str          # when slope_per_h is None: why it could not be computed


MEMORY_METRICS = ("platform.rss_mb", "platform.shm_used_mb")


def memory_drift(resources: dict[str, list[tuple[float, float]]] | None, warmup_s: float,
                 until_s: float | None = None) -> Drift:
    """The platform memory slope after warm-up (and before ``until_s``): ``platform.rss_mb``,
    else ``platform.shm_used_mb`` (environments that only expose Kamailio's shared memory)."""
    resources = resources or {}
    for metric in MEMORY_METRICS:
        points = [(t, v) for t, v in after(resources.get(metric, ()), warmup_s)
                  if until_s is None or t <= until_s]
        if not points:
            continue
        span = max(t for t, _ in points) - min(t for t, _ in points)
        slope = slope_per_hour(points)
        why = "" if slope is not None else (
            f"only {len(points)} sample(s) of {metric} over {span:.0f} s after warm-up "
            f"(need >= {MIN_SLOPE_POINTS} over >= {MIN_SLOPE_SPAN_S:.0f} s)")
        return Drift(metric, slope, len(points), span, why)
    return Drift(None, None, 0, 0.0, "no platform.rss_mb or platform.shm_used_mb samples after warm-up"
                 " (the environment has no resource source?)")

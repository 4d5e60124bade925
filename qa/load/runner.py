"""``voipqa load run``: one load run from the profile to the report (DESIGN §8, issue 7).

The runner is the process the user started. It resolves the profile and the environment,
checks the target answers OPTIONS before any load, writes ``run.json``, starts the
capture (a ring buffer) and the resource recorder, then the Locust master and N local
Locust workers as child processes (``python -m locust -f qa/load/locustfile.py``: locust
and gevent never enter this process, nor Robot's, nor pytest's). While the master's
conductor writes the run directory second by second, the runner shows progress from
those files. At the end it reconciles the CDRs (``cdr.json``) and builds the verdict and
the reports (``qa.load.report``).

Ctrl-C or SIGTERM: the runner asks the master to drain (SIGUSR1: rate 0, every SIPp
finishes its calls), then writes the report of what ran and exits 130/143. The children
run in their own sessions (the terminal's Ctrl-C reaches only the runner) and die with
their parent (PR_SET_PDEATHSIG), so a SIGKILLed runner leaves no SIPp behind; its run
directory still holds everything written so far (``voipqa load report DIR``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from qa.errors import BadInput, VoipqaError
from qa.load import model
from qa.load.plan import worker_plan
from qa.load.processes import WORKERS_WAIT_S, LocustProcesses, socket_buffers
from qa.load.profile import LoadProfile, apply_overrides, load_profile
from qa.load.targets import Platform, platform_for, probe
from qa.ports import allocate_ports
from qa.tools import require_tool

#: Seconds between progress lines when nobody asked for every second (logs, CI).
PROGRESS_EVERY_S = 10
Echo = Callable[[str], None]


@dataclass
class LoadRequest:
    """What the user asked for (the CLI's options, the Robot keyword's arguments)."""

    profile: str
    env: str | None = None
    rate: float | None = None
    duration: float | None = None
    workers: int = 1
    expect_workers: int = 0          # remote workers to wait for, besides the local ones
    output: Path | None = None
    master_bind: str = "127.0.0.1"
    master_port: int | None = None
    web_ui: bool = False


@dataclass
class LoadOutcome:
    """A finished run: load.json, where it is, and the signal that interrupted it."""

    result: dict[str, Any]
    directory: Path
    signal: int | None = None

    @property
    def exit_code(self) -> int:
        """0 pass, 1 fail, 128+signal when interrupted (the report is written either way)."""
        if self.signal is not None:
            return 128 + self.signal
        return 0 if self.result["verdict"] == "pass" else 1


# -- the run ------------------------------------------------------------------------------------------
def run_load(req: LoadRequest, *, echo: Echo = print, progress: Callable[[dict[str, Any]], None] | None = None
             ) -> LoadOutcome:
    """Run the load; return its outcome (load.json is written to the output directory).

    Raises BadInput for anything the user must fix, before any call is placed.
    """
    profile = _profile(req)
    require_tool("sipp")
    out, fresh = _output_dir(req, profile)
    try:
        return _run(req, profile, out, echo, progress)
    except BadInput:
        if fresh and not (out / model.RUN_FILE).exists():
            shutil.rmtree(out, ignore_errors=True)  # bad input leaves no half-made run directory
        raise


def _run(req: LoadRequest, profile: LoadProfile, out: Path, echo: Echo,
         progress: Callable[[dict[str, Any]], None] | None) -> LoadOutcome:
    with _signals() as stop, contextlib.ExitStack() as stack:
        platform = stack.enter_context(platform_for(req.env, profile, out, echo))
        probe(platform, profile)
        stack.enter_context(socket_buffers(profile.generator.buff_size))
        total_sipps = (req.workers + req.expect_workers) * profile.generator.sipp_per_worker
        plan = worker_plan(profile, target=f"{platform.host}:{platform.port}", domain=platform.domain,
                           accounts=platform.accounts, total_sipps=total_sipps)
        _write_run(out, req, profile, platform)
        capture = stack.enter_context(_capture(out, profile, platform, echo))
        children = LocustProcesses(out, echo)
        stack.callback(children.stop)
        port = req.master_port or allocate_ports(1, "127.0.0.1")[0]
        children.master(req, port, plan.to_dict())
        for n in range(1, req.workers + 1):
            children.worker(port, n)
        if req.expect_workers:
            echo(f"waiting for {req.expect_workers} remote worker(s): voipqa load worker --master "
                 f"{req.master_bind}:{port}")
        _follow(out, profile, platform, children, stop, echo, progress)
        capture_files = capture()
        cdr = _check_cdrs(out, platform, echo)
    result = _finish(out, stop.signal is not None, capture_files, cdr, echo)
    return LoadOutcome(result, out, stop.signal)


def _profile(req: LoadRequest) -> LoadProfile:
    profile = load_profile(req.profile)
    profile = apply_overrides(profile, rate=req.rate, duration=req.duration)
    if req.workers < 0 or req.expect_workers < 0 or req.workers + req.expect_workers < 1:
        raise BadInput("--workers/--expect-workers: at least one worker is needed")
    if profile.generator.cpu_quota is not None and req.workers:
        from qa.load.cgroup import CpuQuota

        CpuQuota(f"voipqa-check-{os.getpid()}", profile.generator.cpu_quota).remove()  # BadInput when it cannot
    return profile


def _output_dir(req: LoadRequest, profile: LoadProfile) -> tuple[Path, bool]:
    """The run directory, and whether this run made it."""
    out = Path(req.output or Path("results") / "load" / f"{profile.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and not out.is_dir():
        raise BadInput(f"--output {out}: is a file, not a directory")
    if (out / model.RUN_FILE).exists():
        raise BadInput(f"--output {out}: already holds a load run (run.json); give another directory")
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    return out, fresh


# -- signals ---------------------------------------------------------------------------------------------
class _Stop:
    signal: int | None = None


@contextlib.contextmanager
def _signals() -> Iterator[_Stop]:
    """SIGINT/SIGTERM become a request to drain, remembered for the exit code."""
    stop = _Stop()

    def handler(signum: int, _frame: Any) -> None:
        if stop.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the drain
        stop.signal = signum

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    in_main = _main_thread()
    if in_main:
        for s in old:
            signal.signal(s, handler)
    try:
        yield stop
    finally:
        if in_main:
            for s, h in old.items():
                signal.signal(s, h)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# -- the environment ---------------------------------------------------------------------------------------
def _write_run(out: Path, req: LoadRequest, profile: LoadProfile, platform: Platform) -> None:
    model.write_json(out / model.RUN_FILE, {
        "profile_name": profile.name,
        "profile_path": str(profile.path) if profile.path else None,
        "profile": profile.model_dump(mode="json"),
        "kind": profile.kind,
        "environment": platform.name,
        "target": f"{platform.host}:{platform.port}",
        "workers": req.workers + req.expect_workers,
        "local_workers": req.workers,
        "started": _now(),
        "overrides": {"rate": req.rate, "duration": req.duration},
        "capture": {"enabled": profile.capture.enabled},
        "interrupted": False,
    })


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@contextlib.contextmanager
def _capture(out: Path, profile: LoadProfile, platform: Platform, echo: Echo) -> Iterator[Callable[[], list[str]]]:
    """The run's SIP on a ring buffer (disk bounded: ring_files x ring_file_mb)."""
    files: list[str] = []
    if not profile.capture.enabled:
        yield lambda: files
        return
    from qa.capture import CaptureUnavailable
    from qa.capture.live import Capture, build_bpf

    ring = (profile.capture.ring_file_mb, max(2, profile.capture.ring_files))
    capture = Capture(out / "capture.pcapng", bpf=build_bpf([platform.port]), ring=ring)
    try:
        capture.start()
    except CaptureUnavailable as exc:
        echo(f"capture off: {exc}")
        yield lambda: files
        return
    echo(f"capturing the target's SIP to {out}/capture* (ring of {ring[1]} x {ring[0]} MB)")
    stopped: list[bool] = []

    def stop() -> list[str]:
        if not stopped:
            stopped.append(True)
            files.extend(str(p) for p in capture.stop())
        return files

    try:
        yield stop
    finally:
        stop()


# -- following the run -----------------------------------------------------------------------------------
def _follow(out: Path, profile: LoadProfile, platform: Platform, children: LocustProcesses, stop: _Stop,
            echo: Echo, progress: Callable[[dict[str, Any]], None] | None) -> None:
    """Show progress until the master exits (or, interrupted, until the drain's bound)."""
    from qa.load.resources import HostCpuSampler, ProcessSampler, Recorder

    shape = profile.shape()
    follow = _Progress(out, shape.duration_s)
    recorder: Recorder | None = None
    asked_at: float | None = None
    master = children.master_proc
    assert master is not None
    limit = shape.duration_s + profile.scenario.hold + profile.scenario.call_timeout + WORKERS_WAIT_S + 60
    started = time.monotonic()
    printed = -PROGRESS_EVERY_S
    try:
        while master.poll() is None:
            time.sleep(0.5)
            if stop.signal is not None and asked_at is None:
                asked_at = time.monotonic()
                echo(f"{signal.Signals(stop.signal).name}: stopping the load, letting calls finish ...")
                children.interrupt()
            if recorder is None and follow.started_at() is not None:
                def alive(procs: list[subprocess.Popen[bytes]]) -> list[int]:
                    return [p.pid for p in procs if p.poll() is None]

                own = [ProcessSampler("voipqa", lambda: [os.getpid(), *alive([master, *children.workers])]),
                       ProcessSampler("voipqa.master", lambda: alive([master])),
                       ProcessSampler("voipqa.workers", lambda: alive(children.workers))]
                recorder = Recorder(out / model.RESOURCES_FILE, [*platform.samplers, *own, HostCpuSampler()],
                                    profile.resources.every, clock=follow.clock,
                                    on_error=lambda msg: echo(f"resources: {msg}"))
                recorder.start()
            line = follow.update()
            if line is not None:
                if progress is not None:
                    progress(line)
                elif line["t"] - printed >= PROGRESS_EVERY_S:
                    printed = line["t"]
                    echo(follow.describe(line))
            if time.monotonic() - started > limit + (60 if asked_at else 0):
                echo("the master did not finish in time: stopping it")
                break
            if asked_at is not None and time.monotonic() - asked_at > profile.scenario.hold + \
                    profile.scenario.call_timeout + 30:
                break
    except KeyboardInterrupt:
        echo("second interrupt: stopping now")
    finally:
        if recorder is not None:
            recorder.stop()
        children.stop()
    _check_master(out, master, follow)


def _check_master(out: Path, master: subprocess.Popen[bytes], follow: "_Progress") -> None:
    """A load that never started is an error in the words of whoever stopped it."""
    if follow.started_at() is not None:
        return
    events = model.read_events(out / model.EVENTS_FILE)
    errors = [e.get("message", "") for e in events if e.get("event") == "generator-error"]
    if errors:
        raise VoipqaError(f"the load never started: SIPp could not start: {errors[-1]}")
    if not any(e.get("event") == "worker-joined" for e in events):
        raise VoipqaError(f"the load never started: no worker joined within {WORKERS_WAIT_S} s "
                          f"(see {out / 'locust-master.log'})")
    raise VoipqaError(f"the load never started (exit code {master.returncode}; see {out / 'locust-master.log'})")


class _Progress:
    """Reads the run directory as the master writes it: new seconds, the start event."""

    def __init__(self, out: Path, duration_s: float) -> None:
        self.out = out
        self.duration_s = duration_s
        self._offset = 0
        self._header: list[str] | None = None
        self._t0: float | None = None
        self.totals = {"created": 0, "answered": 0, "failed": 0}

    def started_at(self) -> float | None:
        if self._t0 is None:
            for event in model.read_events(self.out / model.EVENTS_FILE):
                if event.get("event") == "start":
                    self._t0 = time.monotonic() - max(0.0, float(event.get("t", 0.0)))
                    break
        return self._t0

    def clock(self) -> float:
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    def update(self) -> dict[str, Any] | None:
        """The newest second written since the last call (None when nothing new)."""
        import csv

        path = self.out / model.TIMELINE_FILE
        try:
            with open(path, encoding="utf-8") as fh:
                fh.seek(self._offset)
                text = fh.read()
        except FileNotFoundError:
            return None
        cut = text.rfind("\n")
        if cut < 0:
            return None
        self._offset += len(text[:cut + 1].encode("utf-8"))
        rows = list(csv.reader(text[:cut].split("\n")))
        if self._header is None and rows:
            self._header, rows = rows[0], rows[1:]
        last = None
        for values in rows:
            if not values:
                continue
            second = model.Second.from_row(dict(zip(self._header or [], values)))
            for k in self.totals:
                self.totals[k] += getattr(second, k)
            last = second
        if last is None:
            return None
        return {"t": last.t, "duration_s": self.duration_s, "offered_cps": last.offered_cps,
                "achieved_cps": last.created, "concurrent": last.concurrent, "setup_p95": last.setup_p95,
                **self.totals}

    @staticmethod
    def describe(line: dict[str, Any]) -> str:
        """One short line: elapsed/left, offered/achieved rate, calls up, totals, setup p95."""
        p95 = "-" if line["setup_p95"] is None else f"{line['setup_p95']:.0f}"
        left = max(0.0, line["duration_s"] - line["t"])
        return (f"{_clock(line['t'])} (-{_clock(left)})  {line['offered_cps']:.0f}/{line['achieved_cps']} calls/s  "
                f"up {line['concurrent']}  calls {line['created']}  ok {line['answered']}  "
                f"failed {line['failed']}  setup p95 {p95} ms")


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# -- after the load ------------------------------------------------------------------------------------------
def _check_cdrs(out: Path, platform: Platform, echo: Echo) -> dict[str, Any]:
    from qa.load.cdrcheck import check

    result = check(out, platform.cdr_source, describe=platform.cdr_describe)
    if result.get("skipped"):
        echo(f"CDR check skipped: {result['skipped']}")
    else:
        echo(f"CDR check: {result['answered']} answered calls checked, {result['missing']} without a CDR "
             f"({result['loss_pct']} %), {result['billable_seconds_lost']} billable seconds lost")
    return result


def _finish(out: Path, interrupted: bool, capture: list[str], cdr: dict[str, Any], echo: Echo) -> dict[str, Any]:
    from qa.load.report import write

    run = model.read_json(out / model.RUN_FILE) or {}
    run["interrupted"] = interrupted
    run["ended"] = _now()
    run["capture"] = {**run.get("capture", {}), "files": [str(Path(f).relative_to(out.resolve()))
                                                          if Path(f).is_absolute() and
                                                          Path(f).resolve().is_relative_to(out.resolve())
                                                          else f for f in capture]}
    model.write_json(out / model.RUN_FILE, run)
    return write(out)


describe_progress = _Progress.describe

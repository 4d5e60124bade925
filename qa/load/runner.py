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
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from qa.errors import BadInput, VoipqaError
from qa.load import model
from qa.load.plan import ANONYMOUS, worker_plan
from qa.load.profile import LoadProfile, apply_overrides, load_profile
from qa.ports import allocate_ports
from qa.tools import die_with_parent, require_tool

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: How long the master waits for its workers before giving up.
WORKERS_WAIT_S = 60
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
class Platform:
    """The environment as a load run needs it."""

    name: str
    host: str
    port: int
    domain: str
    accounts: list[tuple[str, str | None]]
    cdr_source: Any = None
    cdr_describe: str = ""
    samplers: list[Any] = field(default_factory=list)
    pids: Callable[[], list[int]] = lambda: []
    mask: Callable[[str], str] = lambda text: text


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
        platform = stack.enter_context(_platform(req.env, profile, out, echo))
        _probe(platform, profile)
        stack.enter_context(_socket_buffers(profile.generator.buff_size))
        total_sipps = (req.workers + req.expect_workers) * profile.generator.sipp_per_worker
        plan = worker_plan(profile, target=f"{platform.host}:{platform.port}", domain=platform.domain,
                           accounts=platform.accounts, total_sipps=total_sipps)
        _write_run(out, req, profile, platform)
        capture = stack.enter_context(_capture(out, profile, platform, echo))
        children = _Children(out, echo)
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
@contextlib.contextmanager
def _platform(name: str | None, profile: LoadProfile, out: Path, echo: Echo) -> Iterator[Platform]:
    if name == "loopback":
        with _loopback(profile, out) as platform:
            yield platform
        return
    if name in (None, "lab"):
        with _lab(out, echo) as run_dir:
            yield _from_environment("lab", profile, run_dir)
        return
    yield _from_environment(name, profile, None)


@contextlib.contextmanager
def _lab(out: Path, echo: Echo) -> Iterator[Path]:
    """The running lab, or a load-shaped one started for this run (stopped after it)."""
    from qa import lab

    run_dir = Path(os.environ.get("VOIPQA_LAB_DIR") or lab.default_run_dir())
    state = lab.load_state(run_dir)
    if state is not None:
        echo(f"using the running lab in {run_dir} ({state.shape} shape)")
        if state.shape != "load":
            echo("  note: a functional lab has 1 Kamailio worker; 'voipqa lab up --shape load' suits load runs")
        yield run_dir
        return
    run_dir = out / "lab"
    echo(f"no lab running: starting one in the load shape in {run_dir}")
    try:
        lab.up(run_dir, owner_pid=os.getpid(), shape="load")
        yield run_dir
    finally:
        lab.down(run_dir)
        echo("lab stopped")


def _from_environment(name: str, profile: LoadProfile, lab_dir: Path | None) -> Platform:
    from qa.config import lab_environment, load_environment
    from qa.load.resources import samplers_for_environment

    env = lab_environment(lab_dir) if lab_dir is not None else load_environment(name)
    return Platform(
        name=env.name, host=env.target.host, port=env.target.port,
        domain=env.target.domain or env.target.address(),
        accounts=_accounts(env, profile), cdr_source=env.platform_cdr,
        cdr_describe=env.mask(env.cdr.dsn) if env.cdr else "", samplers=samplers_for_environment(env),
        mask=env.mask,
    )


def _accounts(env: Any, profile: LoadProfile) -> list[tuple[str, str | None]]:
    """The profile's accounts with their passwords: ``all`` means the load accounts of a
    load-shaped lab, else the accounts with a positive balance."""
    wanted = profile.scenario.accounts
    if wanted == "all":
        extra = env.extra or {}
        if extra.get("load_accounts"):
            users = list(extra["load_accounts"])
        elif "positive_accounts" in extra:
            users = list(extra["positive_accounts"])
        elif env.settings is not None:
            users = [a.user for a in env.settings.accounts if a.balance_class == "positive"]
        else:
            users = sorted(env.accounts)
    else:
        users = list(wanted)
    if not users:
        raise BadInput(f"environment {env.name}: no account with a positive balance to place calls with")
    return [(user, env.password(user)) for user in users]


@contextlib.contextmanager
def _loopback(profile: LoadProfile, out: Path) -> Iterator[Platform]:
    """A SIPp UAS answering every call on 127.0.0.1: no platform, the generator's own ceiling."""
    import psutil

    sipp = require_tool("sipp")
    port, control = allocate_ports(2, "127.0.0.1")
    from qa.ports import AGENT_MEDIA_POOL, allocate_udp_block

    media = allocate_udp_block(4, "127.0.0.1", AGENT_MEDIA_POOL)
    work = out / "loopback"
    work.mkdir(parents=True, exist_ok=True)
    transport = {"udp": "u1", "tcp": "t1"}[profile.scenario.transport]
    bound = profile.shape().duration_s + profile.scenario.hold + profile.scenario.call_timeout + 120
    argv = [sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-cp", str(control), "-ci", "127.0.0.1",
            "-mp", str(media), "-t", transport, "-aa", "-nostdin", "-buff_size", str(profile.generator.buff_size),
            "-timeout", f"{int(bound)}s", "-trace_err", "-error_file", str(work / "errors.log")]
    with open(work / "sipp.stdout", "wb") as so, open(work / "sipp.stderr", "wb") as se:
        proc = subprocess.Popen(argv, cwd=work, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                preexec_fn=die_with_parent, start_new_session=True)
    try:
        from qa.load.resources import ProcessSampler

        yield Platform(name="loopback", host="127.0.0.1", port=port, domain=f"127.0.0.1:{port}",
                       accounts=[(ANONYMOUS, None)], samplers=[ProcessSampler("platform", lambda: [proc.pid])])
    finally:
        _terminate(proc)
        del psutil


def _probe(platform: Platform, profile: LoadProfile, attempts: int = 10) -> None:
    """OPTIONS before any load: an unreachable target is bad input (exit 2), not a failed run."""
    from qa.transport.probe import sip_options

    transport = profile.scenario.transport
    last = ""
    for _ in range(attempts):
        try:
            sip_options(platform.host, platform.port, transport, 1.0)
            return
        except OSError as exc:
            last = str(exc) or type(exc).__name__
            time.sleep(0.2)
    raise BadInput(f"target {platform.host}:{platform.port} ({platform.name}) does not answer OPTIONS over "
                   f"{transport}: {last}")


def raise_socket_buffers(size: int) -> dict[Path, str]:
    """Raise net.core.rmem_max/wmem_max to ``size`` where we may (root); the old values of
    what changed (SIPp's -buff_size is capped by them: KAMAILIO-NOTES, 3,000 vs 12,000
    calls/s)."""
    changed: dict[Path, str] = {}
    for name in ("rmem_max", "wmem_max"):
        path = Path("/proc/sys/net/core") / name
        try:
            current = path.read_text().strip()
            if int(current) < size:
                path.write_text(str(size))
                changed[path] = current
        except (OSError, ValueError):
            continue
    return changed


@contextlib.contextmanager
def _socket_buffers(size: int) -> Iterator[None]:
    """The kernel's socket buffer maximums raised for the run, restored after it."""
    changed = raise_socket_buffers(size)
    try:
        yield
    finally:
        for path, value in changed.items():
            with contextlib.suppress(OSError):
                path.write_text(value)


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


# -- the Locust processes --------------------------------------------------------------------------------
class _Children:
    """The Locust master and local workers: own sessions, die with the runner, logs in the run dir."""

    def __init__(self, out: Path, echo: Echo) -> None:
        self.out = out
        self.echo = echo
        self.master_proc: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.private = Path(tempfile.mkdtemp(prefix="voipqa-load-"))

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        with open(self.out / log, "ab") as fh:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent, start_new_session=True, env=env,
                                    cwd=self.out)

    def master(self, req: LoadRequest, port: int, plan: dict[str, Any]) -> None:
        plan_file = self.private / "plan.json"
        fd = os.open(plan_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(plan, fh)
        total = req.workers + req.expect_workers
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master",
                "--master-bind-host", req.master_bind, "--master-bind-port", str(port),
                "--expect-workers", str(total), "--expect-workers-max-wait", str(WORKERS_WAIT_S),
                "--csv", str(self.out.resolve() / "locust"), "--html", str(self.out.resolve() / "locust.html"),
                "--loglevel", "WARNING", "--voipqa-run", str(self.out.resolve()), "--voipqa-plan", str(plan_file)]
        if req.web_ui:
            argv += ["--autostart", "--autoquit", "5", "--web-host", "127.0.0.1"]
        else:
            argv += ["--headless", "--only-summary"]
        self.master_proc = self._spawn(argv, "locust-master.log")

    def worker(self, port: int, n: int) -> None:
        workdir = self.out.resolve() / "workers" / f"local{n}"
        argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
                "--master-port", str(port), "--loglevel", "WARNING", "--voipqa-workdir", str(workdir)]
        self.workers.append(self._spawn(argv, f"locust-worker{n}.log"))

    def interrupt(self) -> None:
        if self.master_proc is not None and self.master_proc.poll() is None:
            os.kill(self.master_proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        for proc in [*self.workers, self.master_proc]:
            if proc is not None:
                _terminate(proc)
        for path in self.private.glob("*"):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.private.rmdir()


def _terminate(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, by PID; waits."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


# -- following the run -----------------------------------------------------------------------------------
def _follow(out: Path, profile: LoadProfile, platform: Platform, children: _Children, stop: _Stop,
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

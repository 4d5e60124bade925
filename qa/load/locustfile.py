"""Locust glue of voipqa's load runs: the only module that imports locust (DESIGN §8).

Locust is the distributed runner; SIPp is the traffic engine. Both the master and the
workers load this file (``python -m locust -f qa/load/locustfile.py --master|--worker``,
started by ``qa.load.runner`` or ``voipqa load worker``):

* the master runs :class:`ProfileShape` (a ``LoadTestShape``: one Locust user per SIPp,
  until the conductor says the run is over), hands each joining worker the run's plan,
  and feeds the workers' per-second reports to :class:`qa.load.conductor.Conductor`,
  which writes the run directory and sends each second's rate;
* a worker runs one :class:`SippUser` per SIPp: the user starts its SIPp, applies the
  rate, reads SIPp's files once a second (:mod:`qa.load.generator`) and reports to the
  master through Locust messages; its calls also enter Locust's own statistics in bulk
  (one ``StatsEntry`` merge per second, never one event per call), so Locust's CSV and
  HTML reports describe the run too.

Messages (master → worker): ``voipqa:plan`` {plan, worker}, ``voipqa:start``,
``voipqa:rate`` {per_sipp, total}, ``voipqa:drain``; (worker → master): ``voipqa:hello``
(send me the plan), ``voipqa:ready`` {sipp}, ``voipqa:report`` (``qa.load.generator.report``),
``voipqa:error`` {worker, message}.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent
import psutil
from locust import LoadTestShape, User, events, task
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry, StatsError

from qa.errors import VoipqaError
from qa.load.generator import GeneratorError, SippGenerator, report
from qa.load.plan import WorkerPlan

PLAN_WAIT_S = 60.0


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--voipqa-run", default="", help="voipqa: the run directory (master)")
    parser.add_argument("--voipqa-plan", default="", help="voipqa: the plan file, read once and deleted (master)")
    parser.add_argument("--voipqa-workdir", default="", help="voipqa: where this worker's SIPps work")
    parser.add_argument("--voipqa-name", default="", help="voipqa: this worker's name in reports")


# == worker ======================================================================================
class _Worker:
    """What one worker process knows: the plan, the run's clock, the current rate."""

    def __init__(self) -> None:
        self.plan: WorkerPlan | None = None
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.workdir = Path(tempfile.mkdtemp(prefix="voipqa-worker-"))
        self.t0: float | None = None
        self.epoch: float | None = None      # the run's start as unix time (start lines)
        self.per_sipp = 0.0
        self.draining = False
        self.count = 0
        self.generators: list[SippGenerator] = []
        self.me = psutil.Process()
        self.me.cpu_percent(None)
        psutil.cpu_percent(None)

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else time.monotonic() - self.t0


WORKER = _Worker()


def _on_plan(environment: Any, msg: Any, **_: Any) -> None:
    WORKER.plan = WorkerPlan.from_dict(msg.data["plan"])
    WORKER.name = msg.data.get("worker") or WORKER.name


def _on_start(environment: Any, msg: Any, **_: Any) -> None:
    WORKER.t0 = time.monotonic()
    WORKER.epoch = time.time()


def _on_rate(environment: Any, msg: Any, **_: Any) -> None:
    """Applied at once (not at the users' next second: that would shift the shape by one)."""
    WORKER.per_sipp = float(msg.data["per_sipp"])
    if not WORKER.draining:
        for gen in WORKER.generators:
            gen.set_rate(WORKER.per_sipp)


def _on_drain(environment: Any, msg: Any, **_: Any) -> None:
    WORKER.draining = True
    for gen in WORKER.generators:
        gen.set_rate(0)
        gen.finish()


class SippUser(User):
    """One SIPp UAC of this worker (Locust's users are the generators)."""

    # the task paces itself on the run's clock; Locust's wait_time is not used
    def wait_time(self) -> float:
        return 0.0

    def on_start(self) -> None:
        """Start this user's SIPp (at rate 0) once the plan is here, then say it is ready:
        the run's clock starts when every SIPp is, so no second is offered to nobody."""
        deadline = time.monotonic() + PLAN_WAIT_S
        asked = 0.0
        while WORKER.plan is None and time.monotonic() < deadline:
            if time.monotonic() - asked > 2.0:
                asked = time.monotonic()
                self.environment.runner.send_message("voipqa:hello", {})
            gevent.sleep(0.05)
        WORKER.count += 1
        self.sipp = f"{WORKER.name}/{WORKER.count}"
        self.generator: SippGenerator | None = None
        self.final_sent = False
        if WORKER.plan is None:
            self._error("no plan from the master")
            return
        generator = SippGenerator(WORKER.plan, WORKER.workdir / f"sipp{WORKER.count}", self.sipp)
        try:
            generator.start()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the master must hear it
            generator.kill()
            self._error(str(exc) if isinstance(exc, (GeneratorError, VoipqaError)) else f"{type(exc).__name__}: {exc}")
            return
        self.generator = generator
        WORKER.generators.append(generator)
        self.environment.runner.send_message("voipqa:ready", {"sipp": self.sipp})

    def _error(self, message: str) -> None:
        self.environment.runner.send_message("voipqa:error", {"worker": WORKER.name, "message": message})
        self.final_sent = True

    @task
    def drive(self) -> None:
        """Once a second: apply the rate, read SIPp, report. Idle once the final report went."""
        gen = self.generator
        if gen is None or self.final_sent:
            gevent.sleep(1.0)
            return
        if WORKER.t0 is None:  # the run's clock has not started yet
            gevent.sleep(0.02)
            return
        elapsed = WORKER.elapsed()
        gevent.sleep(max(0.0, int(elapsed) + 1 - elapsed))
        t = int(round(WORKER.elapsed()))
        if WORKER.draining:
            gen.set_rate(0)
            gen.finish()
        else:
            gen.set_rate(WORKER.per_sipp)
        sample = gen.poll(t, WORKER.epoch)
        final = sample.exited
        data = report(sample, t=t, worker=WORKER.name, sipp=self.sipp, rate=gen.rate,
                      host_cpu=psutil.cpu_percent(None), worker_cpu=WORKER.me.cpu_percent(None), final=final)
        self.environment.runner.send_message("voipqa:report", data)
        _log_bulk(self.environment.stats, data)
        if final:
            self.final_sent = True
            gen.kill()

    def on_stop(self) -> None:
        if self.generator is not None:
            self.generator.kill()


def _log_bulk(stats: Any, data: dict[str, Any]) -> None:
    """A second of calls into Locust's statistics as one merge (what ``log_request`` would
    have done call by call): the call is the request, its setup time the response time."""
    completed = int(data["completed"])
    if not completed:
        return
    now = time.time()
    hist = {int(k): int(v) for k, v in data["setup"].items()}
    timed = sum(hist.values())
    failed = int(data["failed"])
    entry = StatsEntry.unserialize({
        "name": "call", "method": "INVITE", "last_request_timestamp": now, "start_time": now,
        "num_requests": completed, "num_none_requests": completed - timed, "num_failures": failed,
        "total_response_time": sum(k * v for k, v in hist.items()),
        "max_response_time": max(hist, default=0), "min_response_time": min(hist) if hist else None,
        "total_content_length": 0, "response_times": hist,
        "num_reqs_per_sec": {int(now): completed}, "num_fail_per_sec": {int(now): failed} if failed else {},
    }, stats)
    stats.get("call", "INVITE").extend(entry)
    stats.total.extend(entry)
    for code, n in data["codes"].items():
        if not code.startswith("2"):
            key = StatsError.create_key("INVITE", "call", f"final {code}")
            error = stats.errors.setdefault(key, StatsError("INVITE", "call", f"final {code}"))
            error.occurrences += int(n)


# == master ======================================================================================
_ENV: list[Any] = []


class _Master:
    conductor: Any = None
    plan: dict[str, Any] | None = None
    total_sipps = 0
    workers: dict[str, str] = {}


MASTER = _Master()


class ProfileShape(LoadTestShape):
    """One Locust user per SIPp for as long as the conductor says the run goes on."""

    def tick(self) -> tuple[int, float] | None:
        conductor = MASTER.conductor
        if conductor is None:
            return (0, 1) if self.get_run_time() < 5 else None
        if conductor.done:
            return None
        return (MASTER.total_sipps, float(MASTER.total_sipps))


def _master_init(environment: Any) -> None:
    from qa.load.conductor import Conductor
    from qa.load.model import RUN_FILE, read_json
    from qa.load.profile import parse_profile

    opts = environment.parsed_options
    run_dir = Path(opts.voipqa_run)
    run = read_json(run_dir / RUN_FILE) or {}
    plan_file = Path(opts.voipqa_plan)
    MASTER.plan = json.loads(plan_file.read_text())
    plan_file.unlink(missing_ok=True)  # it holds credentials
    profile = parse_profile(run["profile"], run_dir / RUN_FILE)
    MASTER.total_sipps = int(run["workers"]) * profile.generator.sipp_per_worker
    runner = environment.runner

    def send(kind: str, data: dict[str, Any]) -> None:
        for client_id in list(runner.clients.keys()):
            runner.send_message(kind, data, client_id)

    MASTER.conductor = Conductor(run_dir, profile, total_sipps=MASTER.total_sipps, send=send)
    runner.register_message("voipqa:hello", lambda environment, msg, **kw: _send_plan(msg.node_id))
    runner.register_message("voipqa:ready", lambda environment, msg, **kw: MASTER.conductor.ready(msg.data["sipp"]))
    runner.register_message("voipqa:report", lambda environment, msg, **kw: MASTER.conductor.on_report(msg.data))
    runner.register_message("voipqa:error", lambda environment, msg, **kw:
                            MASTER.conductor.on_error(msg.data["message"], msg.data["worker"]))
    gevent.signal_handler(signal.SIGUSR1, lambda: MASTER.conductor.request_stop("interrupted"))


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    _ENV.append(environment)
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _master_init(environment)
    elif isinstance(runner, WorkerRunner):
        opts = environment.parsed_options
        if opts.voipqa_workdir:
            WORKER.workdir = Path(opts.voipqa_workdir)
            WORKER.workdir.mkdir(parents=True, exist_ok=True)
        if opts.voipqa_name:
            WORKER.name = opts.voipqa_name
        for kind, handler in (("voipqa:plan", _on_plan), ("voipqa:start", _on_start),
                              ("voipqa:rate", _on_rate), ("voipqa:drain", _on_drain)):
            runner.register_message(kind, handler)
        runner.send_message("voipqa:hello", {})


@events.worker_connect.add_listener
def _joined(client_id: str, **_: Any) -> None:
    """Each joining worker gets the plan (and its name) before any user is spawned."""
    _send_plan(client_id)


def _send_plan(client_id: str) -> None:
    """The plan to one worker: when it joins, and again when it asks (``voipqa:hello``: a
    message that arrives before the worker registered its handlers is dropped by Locust)."""
    runner = _runner()
    if runner is None or MASTER.plan is None:
        return
    new = client_id not in MASTER.workers
    name = MASTER.workers.setdefault(client_id, f"w{len(MASTER.workers) + 1}")
    runner.send_message("voipqa:plan", {"plan": MASTER.plan, "worker": name}, client_id)
    if new:
        MASTER.conductor.event("worker-joined", worker=name, client=client_id)


def _runner() -> Any:
    return _ENV[0].runner if _ENV and isinstance(_ENV[0].runner, MasterRunner) else None


@events.test_start.add_listener
def _test_start(environment: Any, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner) or MASTER.conductor is None:
        return
    gevent.spawn(_clock, MASTER.conductor)


def _clock(conductor: Any) -> None:
    """Wait for every SIPp to be ready, then the conductor's second until the run is done."""
    while conductor.state == "waiting":
        conductor.tick()
        gevent.sleep(0.05)
    start = time.monotonic()
    n = 0
    while not conductor.done:
        n += 1
        gevent.sleep(max(0.0, start + n - time.monotonic()))
        conductor.tick()

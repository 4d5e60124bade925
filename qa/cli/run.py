"""``voipqa run [SUITE…]``: Robot suites against the platform, reports, summary.

Bad input (a suite, ``--output``, ``--env``, filters that select no case) is exit 2 with
one line, before a lab, a capture or a case starts. SIGINT and SIGTERM (a terminal's
Ctrl-C, a CI runner's cancel, ``timeout``) end the run the same way: no case starts
after them, the running Robot processes end their case, the capture and a lab the run
started are stopped, the reports are written for the cases that finished, and the exit
code is 130 (SIGINT) or 143 (SIGTERM). The handlers are installed explicitly: a process
started in the background by a shell has SIGINT ignored.
"""

from __future__ import annotations

import argparse
import os
import signal
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from qa.cli.output import console, echo, escape
from qa.errors import BadInput

if TYPE_CHECKING:  # imported late at run time: they load Robot
    from qa.cases.parallel import StopRequest
    from qa.cases.suites import RunCapture
    from qa.report.summary import CaseRow, RunSummary

#: Exit code of a run ended by each signal (128 + the signal's number, as shells report it).
EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run Robot suites against the platform",
                       epilog="exit status: 0 all cases passed, 1 some failed, 2 bad input (nothing started), "
                              "130/143 stopped by SIGINT/SIGTERM (reports of the finished cases written)")
    p.add_argument("suites", nargs="*", help="Robot suite files or folders, and your own SIPp scenarios (.xml) (default: robot_suites/)")
    p.add_argument("--env", default=None, help="environment (default: the native lab)")
    p.add_argument("--output", default="results", help="report directory (default: results)")
    p.add_argument("--include", action="append", help="run only cases with this tag")
    p.add_argument("--exclude", action="append", help="skip cases with this tag")
    p.add_argument("--test", action="append", metavar="NAME", help="run only this case (Robot name pattern)")
    p.add_argument("--parallel", type=int, default=None, metavar="N",
                   help="cases run at once, each in its own Robot process (default: 6 per core; 1: one at a time)")
    p.add_argument("--backend", default="native", metavar="native|docker",
                   help="where the customers run: here (default) or in the runner container against the "
                        "docker lab (started for the run when none runs; see voipqa lab up --backend docker)")
    p.set_defaults(func=cmd_run)


class RunInterrupted(KeyboardInterrupt):
    """Raised by the signal handler while nothing else can end the run cleanly (lab start)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


class _Signals:
    """SIGINT/SIGTERM become a stop request (``qa.cases.parallel.StopRequest``).

    Before the cases start (``hard``) the first signal raises ``RunInterrupted``, which
    unwinds the lab and capture contexts. Once they run it only asks: the Robot processes
    are stopped by ``run_items``, the rest of the run (reports) still happens. Later
    signals are noted, never raised: cleanup is not cut short (SIGKILL still is; a lab
    the run started dies with it, see ``qa.lab.up(owner_pid=)``).
    """

    def __init__(self, stop: StopRequest) -> None:
        self.stop = stop
        self.hard = True
        self._saved: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        for signum in EXIT_ON_SIGNAL:
            self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = not self.stop.requested
        self.stop.request(signum)
        name = signal.Signals(signum).name
        # os.write, not print: the handler may run while the main thread is printing
        os.write(2, (f"voipqa: {name}: stopping the run (cases that finished are reported)\n" if first
                     else f"voipqa: {name}: already stopping\n").encode())
        if first and self.hard:
            raise RunInterrupted(signum)


def cmd_run(args: argparse.Namespace) -> int:
    from qa.cases.parallel import StopRequest

    if args.backend == "docker":
        return _run_in_container(args)
    if args.backend != "native":
        raise BadInput(f"--backend {args.backend}: expected native or docker")
    stop = StopRequest()
    with _Signals(stop) as signals:
        try:
            return _run(args, stop, signals)
        except RunInterrupted:
            pass
    return EXIT_ON_SIGNAL[signal.Signals(stop.signum)]


def _run(args: argparse.Namespace, stop: StopRequest, signals: _Signals) -> int:
    from qa.cases import suites as run
    from qa.cases.byo import with_scenarios  # .xml sources: the user's own SIPp scenarios

    output = Path(args.output)
    run.check_output(output)
    sources = run.resolve_suites(with_scenarios(args.suites, output))
    parallel = _parallel(args.parallel)
    run.check_environment(args.env)
    items = run.select_items(sources, args.include, args.exclude, args.test)
    run.quiet_robot_console()
    with run.lab_for_run(args.env, output, echo=echo) as lab_dir, \
            run.capture_for_run(lab_dir, output, echo=echo, env=args.env) as capture:
        signals.hard = False
        failed = run.run_suites(sources, output, items=items, env=args.env, lab_dir=lab_dir, parallel=parallel,
                                stop=stop, echo=echo)
        run.keep_cdr_sources(output, args.env, lab_dir, echo=echo)
    if failed is None:
        echo("no case finished: no report written")
        return EXIT_ON_SIGNAL[signal.Signals(stop.signum)]
    code = _report(output, capture, failed)
    return EXIT_ON_SIGNAL[signal.Signals(stop.signum)] if stop.requested else code


def _run_in_container(args: argparse.Namespace) -> int:
    """``voipqa run --backend docker``: the same run inside the runner container.

    Bad input is refused here first, as for a native run. With no ``--env`` (or ``lab``)
    the run is against the docker lab: the running one, or one started for the run and
    stopped after it; with ``--env E`` the customers in the container test E, and the
    variables E names (passwords, the DSN's) are passed in."""
    from qa import dockerlab
    from qa.cases import suites as run

    output = Path(args.output).resolve()
    run.check_output(output)
    run.resolve_suites(args.suites)
    # half the native default: measured on 2 cores, 12 cases at once beside the lab's
    # containers lost media timing (jitter over 40 ms, DTMF digits) in 3 catalogue runs
    # of 5; 6 at once passed 2 of 2 in the same wall time (the longest cases set it)
    parallel = _parallel(args.parallel if args.parallel is not None else max(1, _parallel(None) // 2))
    lab_env = args.env in (None, "lab", *dockerlab.RUNNER_ENV.values())
    passthrough = [] if lab_env else _env_variables(args.env)  # the file is checked here, its paths in there
    mounts = [Path(s).resolve() for s in args.suites if Path(s).exists()]
    started = False
    if lab_env and dockerlab.running_network(dockerlab.engine()) is None:
        echo("no docker lab running: starting one for this run")
        dockerlab.up("host", echo=echo)
        started = True
    try:
        env = args.env
        if lab_env:
            env = dockerlab.RUNNER_ENV[dockerlab.running_network(dockerlab.engine()) or "host"]
        if env and Path(env).exists():
            mounts.append(Path(env).resolve().parent)
            env = str(Path(env).resolve())
        run_args = [*args.suites, "--env", env, "--output", str(output), "--parallel", str(parallel),
                    *(a for t in args.include or () for a in ("--include", t)),
                    *(a for t in args.exclude or () for a in ("--exclude", t)),
                    *(a for t in args.test or () for a in ("--test", t))]
        return dockerlab.run_in_runner(run_args, output=output, mounts=mounts, passthrough=passthrough, echo=echo)
    finally:
        if started:
            dockerlab.down()
            echo("docker lab stopped")


def _env_variables(env: str) -> list[str]:
    """The variables an environment file reads (account passwords, ``${VAR}`` in the DSN)
    that this shell has: passed into the runner container by name, never by value."""
    import re

    from qa.config import find_environment, parse_environment_file

    spec = parse_environment_file(find_environment(env))
    names = {a.password_env for a in spec.accounts if a.password_env}
    if spec.cdr is not None:
        names |= set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", spec.cdr.dsn))
    return sorted(n for n in names if n in os.environ)


def _parallel(value: int | None) -> int:
    from qa.cases.parallel import default_parallel

    parallel = default_parallel() if value is None else value
    if parallel < 1:
        raise BadInput(f"--parallel {value}: must be at least 1")
    return parallel


def _report(output: Path, capture: RunCapture, failed: int) -> int:
    """The wire witness into the reports, plain xunit messages, the summary; the exit code."""
    from qa.cases.suites import plain_xunit
    from qa.cases.wire import annotate_report, join_wire
    from qa.report.summary import print_summary, read_summary

    if not (output / "output.xml").exists():
        raise BadInput("robot could not run the suites; see above")
    wire = join_wire(capture.files, output / "calls.jsonl", output)
    annotate_report(output / "output.xml", wire, output, capture=capture.describe())
    plain_xunit(output / "xunit.xml")
    summary = read_summary(output / "output.xml")
    print_summary(_printable(summary), output, console)
    _print_wire(wire, capture)
    # a capture the analyser could not read leaves every call unjudged on the wire: a failed run
    return 0 if summary.failed == 0 and failed == 0 and not wire.failed_by_wire and not wire.problem else 1


def _printable(summary: RunSummary) -> RunSummary:
    """The summary with its data made verbatim for rich: names and messages are escaped,
    ``*HTML*`` messages turned to text (the summary prints them as markup strings)."""
    from qa.cases.suites import plain_message

    def row(case: CaseRow) -> CaseRow:
        first = (plain_message(case.message).splitlines() or [""])[0]  # the headline, already bounded
        return replace(case, suite=escape(case.suite), name=escape(case.name), message=escape(first))

    return replace(summary, cases=[row(c) for c in summary.cases])



def _print_wire(wire, capture) -> None:  # noqa: ANN001 - qa.cases.wire.WireResult, RunCapture
    from qa.cases.wire import key_name

    if not capture.files:
        echo(f"wire witness: capture {capture.describe()}")
        return
    echo(f"wire witness: {wire.calls_seen} calls found in {capture.describe()}"
          + (f"; {len(wire.failed_by_wire)} cases failed on the wire" if wire.failed_by_wire else ""))
    if wire.problem:
        echo(f"  {wire.problem}")
    for key, path in wire.ladders.items():
        echo(f"  ladder of {key_name(key)}: {path}")

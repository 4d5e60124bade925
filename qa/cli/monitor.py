"""``voipqa monitor [run|status]``: the smoke test on a schedule, its history (qa.monitor)."""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.cli.output import echo
from qa.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("monitor", help="run the smoke suite on a schedule, keep its history, alert on changes",
                       epilog="exit status (run): 0 the last run passed, 1 it failed, 2 bad input, "
                              "130/143 stopped by SIGINT/SIGTERM; (status): 0 the newest result passed, "
                              "1 it failed or there is none")
    p.add_argument("action", nargs="?", choices=["run", "status"], default="run",
                   help="run (default): monitor; status: the last results")
    p.add_argument("--env", default=None, help="environment (default: the lab)")
    p.add_argument("--every", default="5m", help="time between runs (default 5m; e.g. 30s, 1h)")
    p.add_argument("--suite", default="smoke", help="suite name in robot_suites/ or a path (default smoke)")
    p.add_argument("--include", action="append", help="run only cases with this tag")
    p.add_argument("--count", type=int, default=None, help="stop after this many runs")
    p.add_argument("--until", default=None, help="stop at this time (HH:MM) or after this long (e.g. 8h)")
    p.add_argument("--history", default=None,
                   help="where results are kept: a SQLite file or an SQLAlchemy URL (default .voipqa/monitor.db)")
    p.add_argument("--config", type=Path, default=None, help="YAML with an alerts: section (as for voipqa gate)")
    p.add_argument("--output", type=Path, default=Path("results/monitor"),
                   help="run directories, the newest 20 kept (default results/monitor)")
    p.add_argument("--last", type=int, default=10, help="status: how many results to show (default 10)")
    p.set_defaults(func=cmd_monitor)


def cmd_monitor(args: argparse.Namespace) -> int:
    from qa.monitor import DEFAULT_HISTORY, History

    history = History(args.history or DEFAULT_HISTORY)
    if args.action == "status":
        return _status(history, args.env, args.last)
    return _run(args, history)


def _run(args: argparse.Namespace, history) -> int:  # noqa: ANN001 - qa.monitor.History
    from qa.cases.suites import check_output, resolve_suites
    from qa.gate import gate_settings
    from qa.load.profile import parse_duration
    from qa.monitor import monitor, parse_until
    from qa.paths import SUITES_DIR

    env = args.env or "lab"
    every = parse_duration(args.every)
    if every < 1:
        raise BadInput(f"--every {args.every}: at least 1s")
    if args.count is not None and args.count < 1:
        raise BadInput(f"--count {args.count}: at least 1")
    suite = Path(args.suite)
    if not suite.exists() and (SUITES_DIR / f"{args.suite}.robot").is_file():
        suite = SUITES_DIR / f"{args.suite}.robot"
    resolve_suites([str(suite)])
    check_output(args.output)
    until = parse_until(args.until) if args.until else None
    settings = gate_settings(env, args.config)
    args.output.mkdir(parents=True, exist_ok=True)
    return monitor(env=env, suite=suite, include=args.include or [], every=every, count=args.count, until=until,
                   history=history, output=args.output, alerts=settings.alerts, mask=settings.mask,
                   echo=echo)


def _status(history, env: str | None, last: int) -> int:  # noqa: ANN001
    runs = history.last(env, last)
    if not runs:
        echo(f"no monitor results in {history.url}" + (f" for {env}" if env else ""))
        return 1
    echo(f"{'started':25} {'env':10} {'result':6} {'s':>6}  detail")
    for run in runs:
        echo(f"{run.started:25} {run.environment:10} {'PASS' if run.ok else 'FAIL':6} {run.duration_s:>6.0f}  "
              f"{run.detail}")
    return 0 if runs[0].ok else 1


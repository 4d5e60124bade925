"""The ``voipqa`` command (DESIGN §7): argument parsing and output only.

Every command delegates to a service module; errors become one line on stderr and
the exit code of the contract (2 bad input, 1 failure).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qa import __version__
from qa.carrier.cli import add_serve_arguments
from qa.errors import BadInput, VoipqaError
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED

console = Console(stderr=False)


def _lab_dir(args: argparse.Namespace) -> Path:
    from qa import lab

    return Path(args.run_dir) if args.run_dir else lab.default_run_dir()


def cmd_lab_up(args: argparse.Namespace) -> int:
    from qa import lab

    if args.backend != "native":
        raise BadInput(f"--backend {args.backend}: no Docker engine runs here; "
                       "use the native backend (the container path is checked statically)")
    state, already = lab.up(_lab_dir(args), seed=Path(args.seed), plan=Path(args.plan),
                            ports=_parse_ports(args.port))
    console.print(("lab already running" if already else "lab up") + f" in {state.run_dir}")
    _print_status(lab.status(Path(state.run_dir)))
    return 0


def _parse_ports(items: list[str] | None) -> dict[str, int] | None:
    """``--port sip=5060 --port sip_tls=5061`` -> {"sip": 5060, "sip_tls": 5061}."""
    ports: dict[str, int] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise BadInput(f"--port {item}: expected NAME=PORT, e.g. sip=5060")
        ports[name] = int(value)
    return ports or None


def cmd_lab_down(args: argparse.Namespace) -> int:
    from qa import lab

    stopped = lab.down(_lab_dir(args))
    console.print("lab stopped" if stopped else f"no lab running in {_lab_dir(args)}")
    return 0


def _print_status(rows) -> None:  # noqa: ANN001 - list of qa.lab ProcessStatus
    table = Table(title="voipqa lab")
    for col in ("process", "pid", "alive", "ports", "health"):
        table.add_column(col)
    for row in rows:
        ports = ", ".join(f"{k}={v}" for k, v in (row.ports or {}).items())
        table.add_row(row.name, str(row.pid), "[green]yes[/]" if row.alive else "[red]no[/]", ports, str(row.health))
    console.print(table)


def cmd_lab_status(args: argparse.Namespace) -> int:
    from qa import lab

    rows = lab.status(_lab_dir(args))
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], default=str, indent=2))
    elif not rows:
        console.print(f"no lab running in {_lab_dir(args)}")
    else:
        _print_status(rows)
    return 0 if rows and all(r.alive for r in rows) else 1


def cmd_run(args: argparse.Namespace) -> int:
    from qa.cases.suites import lab_for_run, resolve_suites, run_suites
    from qa.report.summary import print_summary, read_summary

    suites = resolve_suites(args.suites)
    output = Path(args.output)
    with lab_for_run(args.env, output, echo=console.print) as lab_dir:
        failed = run_suites(suites, output, env=args.env, lab_dir=lab_dir,
                            include=args.include, exclude=args.exclude)
    if failed >= 250 or not (output / "output.xml").exists():
        raise BadInput(f"robot could not run the suites (robot exit code {failed}); see above")
    summary = read_summary(output / "output.xml")
    print_summary(summary, output, console)
    return 0 if summary.failed == 0 and failed == 0 else 1


def cmd_carrier_serve(args: argparse.Namespace) -> int:
    from qa.carrier.cli import serve_from_args

    return serve_from_args(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voipqa", description="VoIP QA and performance testing")
    parser.add_argument("--version", action="version", version=f"voipqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    lab_p = sub.add_parser("lab", help="start, stop and inspect the reference lab")
    lab_sub = lab_p.add_subparsers(dest="lab_command", required=True)
    for name, func, helptext in (("up", cmd_lab_up, "start the lab"), ("down", cmd_lab_down, "stop the lab"),
                                 ("status", cmd_lab_status, "show processes, ports, health")):
        p = lab_sub.add_parser(name, help=helptext)
        p.add_argument("--run-dir", help="lab state directory (default: $VOIPQA_LAB_DIR or ./.voipqa/lab)")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument("--backend", choices=["native", "docker"], default="native")
            p.add_argument("--seed", default=str(DEFAULT_SEED), help="accounts, balances, prefixes")
            p.add_argument("--plan", default=str(DEFAULT_PLAN), help="the carriers' number plan")
            p.add_argument("--port", action="append", metavar="NAME=PORT",
                           help="fix a port instead of allocating it (sip, sip_tls, carrier-a, carrier-b)")
        if name == "status":
            p.add_argument("--json", action="store_true")

    run_p = sub.add_parser("run", help="run Robot suites against the platform")
    run_p.add_argument("suites", nargs="*", help="suite files or folders (default: robot_suites/)")
    run_p.add_argument("--env", default=None, help="environment (default: the native lab)")
    run_p.add_argument("--output", default="results", help="report directory (default: results)")
    run_p.add_argument("--include", action="append", help="run only cases with this tag")
    run_p.add_argument("--exclude", action="append", help="skip cases with this tag")
    run_p.set_defaults(func=cmd_run)

    carrier_p = sub.add_parser("carrier", help="the native mock carrier")
    carrier_sub = carrier_p.add_subparsers(dest="carrier_command", required=True)
    serve_p = carrier_sub.add_parser("serve", help="answer calls per the number plan, on UDP and TCP")
    add_serve_arguments(serve_p)
    serve_p.set_defaults(func=cmd_carrier_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VoipqaError as exc:
        print(f"voipqa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("voipqa: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("VOIPQA_DEBUG"):
            raise
        print(f"voipqa: internal error: {type(exc).__name__}: {exc} (set VOIPQA_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

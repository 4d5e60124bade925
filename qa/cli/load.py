"""``voipqa load run | report | worker``: stress, load, soak, spike and ceiling runs.

``run`` exits 0 when every pass criterion held, 1 when one failed, 2 for bad input
(unknown profile, a wrong field, an unreachable target, SIPp missing), 130/143 when
interrupted (after writing the report of what ran). ``report DIR`` rebuilds load.json,
load.html and xunit.xml from a run directory (a killed soak's included) and exits like
``run``. ``worker --master HOST[:PORT]`` joins a run from another machine as a Locust
worker (it needs voipqa and SIPp, nothing else: the master sends the scenario and calls).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from qa.cli.output import console, echo, escape
from qa.errors import BadInput



def register(sub: argparse._SubParsersAction) -> None:
    load_p = sub.add_parser("load", help="stress, load and soak runs (SIPp driven live, Locust distributed)")
    load_sub = load_p.add_subparsers(dest="load_command", required=True)

    p = load_sub.add_parser("run", help="run a load profile against the platform")
    p.add_argument("profile", help="a profile name (profiles/NAME.yaml) or a path")
    p.add_argument("--env", default=None, help="environment: lab (default), loopback, NAME or a file")
    p.add_argument("--rate", type=float, help="scale the shape so its peak is this many calls/s")
    p.add_argument("--duration", help="stretch the shape to last this long (30s, 5m, 8h)")
    p.add_argument("--workers", type=int, default=1, help="local Locust worker processes (default 1)")
    p.add_argument("--expect-workers", type=int, default=0, metavar="N",
                   help="also wait for N remote workers (voipqa load worker --master HOST:PORT)")
    p.add_argument("--master-bind", default="127.0.0.1", metavar="HOST",
                   help="address the Locust master listens on for workers (default 127.0.0.1)")
    p.add_argument("--master-port", type=int, help="port for the workers (default: a free one)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML with an alerts: section overriding the environment's (the lab has no file)")
    p.add_argument("--web-ui", action="store_true", help="also serve Locust's web UI on 127.0.0.1:8089")
    p.add_argument("--output", help="run directory (default results/load/PROFILE-TIME)")
    p.set_defaults(func=cmd_run)

    p = load_sub.add_parser("report", help="rebuild load.json, load.html and xunit.xml from a run directory")
    p.add_argument("dir", help="the run directory")
    p.set_defaults(func=cmd_report)

    p = load_sub.add_parser("worker", help="join a load run as a Locust worker")
    p.add_argument("--master", required=True, metavar="HOST[:PORT]", help="the master's address")
    p.add_argument("--workdir", help="where this worker's SIPps write (default: a temporary directory)")
    p.set_defaults(func=cmd_worker)


def cmd_run(args: argparse.Namespace) -> int:
    from qa.load.profile import parse_duration
    from qa.load.runner import LoadRequest, run_load

    duration = None
    if args.duration is not None:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            raise BadInput(f"--duration {args.duration}: {exc}") from None
    alerts, mask = _alerts(args.env, args.config)
    req = LoadRequest(profile=args.profile, env=args.env, rate=args.rate, duration=duration, workers=args.workers,
                      expect_workers=args.expect_workers, output=Path(args.output) if args.output else None,
                      master_bind=args.master_bind, master_port=args.master_port, web_ui=args.web_ui)
    if console.is_terminal:  # a live line each second; logs and CI get one every 10 s
        from qa.load.runner import describe_progress

        with console.status("starting the load ...") as status:
            outcome = run_load(req, echo=echo,
                               progress=lambda line: status.update(describe_progress(line)))
    else:
        outcome = run_load(req, echo=echo)
    print_result(outcome.result, outcome.directory)
    if alerts is not None:
        from qa.alerts import load_alerts, send

        for alert in load_alerts(outcome.result, str((outcome.directory / "load.html").resolve())):
            for delivery in send(alert, alerts, mask):
                echo(f"alert {alert.name} via {delivery.channel}: {delivery.detail}")
    return outcome.exit_code


def _alerts(env: str | None, config: Path | None):  # noqa: ANN202 - (AlertsFile | None, mask)
    """Where a failed run is told: the environment file's ``alerts:``, or ``--config``'s;
    read before the run, so a bad file is exit 2 before any call."""
    if env in (None, "lab", "loopback") and config is None:
        return None, lambda text: text
    from qa.gate import gate_settings

    settings = gate_settings("lab" if env in (None, "loopback") else env, config)
    return settings.alerts, settings.mask


def cmd_report(args: argparse.Namespace) -> int:
    from qa.load.report import write

    result = write(Path(args.dir))
    print_result(result, Path(args.dir))
    return 0 if result["verdict"] == "pass" else 1


def print_result(result: dict[str, Any], out: Path) -> None:
    """The verdict, the criteria and where the reports are."""
    from rich.table import Table

    colour = "green" if result["verdict"] == "pass" else "red"
    head = (f"[bold {colour}]{result['verdict'].upper()}[/] {result['profile']} ({result['kind']}) on "
            f"{result['environment']}: {result['calls']['attempted']} calls, {result['calls']['answered']} answered, "
            f"{result['calls']['failed']} failed; bottleneck {result['bottleneck']}")
    if result.get("breaking_point_cps") is not None:
        head += f"; breaking point {result['breaking_point_cps']:g} calls/s"
    if result.get("interrupted"):
        head += " [yellow](interrupted)[/]"
    console.print(head)
    if result["criteria"]:
        table = Table("criterion", "limit", "value", "", "where")
        for c in result["criteria"]:
            value = "-" if c["value"] is None else f"{c['value']:g}"
            table.add_row(c["name"], f"{c['limit']:g}", value, "ok" if c["pass"] else "[red]FAIL[/]",
                          escape(c["where"]))
        console.print(table)
    for reason in result.get("reasons", [])[:5]:
        console.print(f"  {reason}", markup=False)
    for name in ("load.json", "load.html", "xunit.xml"):
        console.print(f"  {out / name}", markup=False)


def cmd_worker(args: argparse.Namespace) -> int:
    """Become a Locust worker (exec: Locust owns the process from here)."""
    from qa.load.processes import LOCUSTFILE, raise_socket_buffers
    from qa.tools import require_tool

    require_tool("sipp")
    for path, old in raise_socket_buffers(4 * 1024 * 1024).items():  # a generator host: left raised
        console.print(f"raised {path.name} from {old} to 4194304 for SIPp's -buff_size")
    host, _, port = args.master.rpartition(":") if ":" in args.master else (args.master, "", "5557")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadInput(f"--master {args.master}: expected HOST or HOST:PORT")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="voipqa-worker-"))
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", host,
            "--master-port", port, "--loglevel", "WARNING", "--voipqa-workdir", str(workdir)]
    console.print(f"joining the load run at {host}:{port} (SIPp files in {workdir})")
    sys.stdout.flush()
    os.execv(sys.executable, argv)
    return 0  # pragma: no cover - execv does not return

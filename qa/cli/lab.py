"""``voipqa lab up [--shape functional|load] | down | status``: the reference lab."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from qa.cli.output import console, echo
from qa.errors import BadInput
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED


def register(sub: argparse._SubParsersAction) -> None:
    lab_p = sub.add_parser("lab", help="start, stop and inspect the reference lab")
    lab_sub = lab_p.add_subparsers(dest="lab_command", required=True)
    for name, func, helptext in (("up", cmd_up, "start the lab"), ("down", cmd_down, "stop the lab"),
                                 ("status", cmd_status, "show processes, ports, health")):
        p = lab_sub.add_parser(name, help=helptext)
        p.add_argument("--run-dir", help="lab state directory (default: $VOIPQA_LAB_DIR or ./.voipqa/lab)")
        p.add_argument("--backend", choices=["native", "docker"], default="native",
                       help="native processes (default) or the containers of docker-compose.yml")
        p.set_defaults(func=func)
        if name == "up":
            p.add_argument("--profile", action="append", default=[],
                           help="docker: also start this compose profile (freeswitch, run)")
            p.add_argument("--network", default="host", metavar="host|bridge",
                           help="docker: the host's network, each role on its own 127.0.0.x (default), "
                                "or the compose bridge 172.31.250.0/24 where your host allows one")
            p.add_argument("--build", action="store_true", help="docker: rebuild the images first")
            p.add_argument("--seed", default=str(DEFAULT_SEED), help="accounts, balances, prefixes")
            p.add_argument("--plan", default=str(DEFAULT_PLAN), help="the carriers' number plan")
            p.add_argument("--port", action="append", metavar="NAME=PORT",
                           help="fix a port instead of allocating it (sip, sip_tls, carrier-a, carrier-b)")
            # no argparse choices: an unknown shape is one line of BadInput (exit 2), not a usage dump
            p.add_argument("--shape", default="functional", metavar="SHAPE",
                           help="functional (default: the catalogue's lab) or load (the seed's load_shape: "
                                "more Kamailio workers and memory, raised anti-flood, round-robin carriers, "
                                "load accounts) for stress/load/soak runs")
        if name == "status":
            p.add_argument("--json", action="store_true")
        if name == "down":
            p.add_argument("--volumes", action="store_true",
                           help="docker: also remove the volumes (the platform's CDRs, captures, results)")
    p = lab_sub.add_parser("build", help="build the docker lab's images (the docker backend; cached layers reused)")
    p.add_argument("--network", default="host", metavar="host|bridge", help="the compose variant (default host)")
    p.set_defaults(func=cmd_build)


def _run_dir(args: argparse.Namespace) -> Path:
    from qa import lab

    return Path(args.run_dir) if args.run_dir else lab.default_run_dir()


def _parse_ports(items: list[str] | None) -> dict[str, int] | None:
    """``--port sip=5060 --port sip_tls=5061`` -> {"sip": 5060, "sip_tls": 5061}."""
    ports: dict[str, int] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise BadInput(f"--port {item}: expected NAME=PORT, e.g. sip=5060")
        ports[name] = int(value)
    return ports or None


def cmd_up(args: argparse.Namespace) -> int:
    from qa.lab.seed import check_shape

    check_shape(args.shape)
    if args.backend == "docker":
        if args.shape != "functional":
            raise BadInput(f"--shape {args.shape}: the docker lab has only the functional shape (use --backend native)")
        from qa import dockerlab

        rows = dockerlab.up(args.network, profiles=args.profile, build=args.build, echo=echo)
        echo(f"docker lab up (compose project {dockerlab.PROJECT}, {args.network} network)")
        _print_docker_status(rows)
        return 0
    from qa import lab

    state, already = lab.up(_run_dir(args), seed=Path(args.seed), plan=Path(args.plan),
                            ports=_parse_ports(args.port), shape=args.shape)
    console.print(("lab already running" if already else "lab up") + f" in {state.run_dir}", markup=False)
    _print_status(lab.status(Path(state.run_dir)))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from qa import dockerlab

    for tag, size in dockerlab.build(args.network, echo=echo):
        echo(f"  {tag}: {size / 1e6:.0f} MB")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if args.backend == "docker":
        from qa import dockerlab

        removed = dockerlab.down(volumes=args.volumes)
        kept = "volumes removed" if args.volumes else "volumes kept"
        echo(f"docker lab stopped ({len(removed)} containers removed; {kept})" if removed
             else f"no docker lab running{' (volumes removed)' if args.volumes else ''}")
        return 0
    from qa import lab

    stopped = lab.down(_run_dir(args))
    console.print("lab stopped" if stopped else f"no lab running in {_run_dir(args)}", markup=False)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.backend == "docker":
        return _docker_status(args)
    from qa import lab

    rows = lab.status(_run_dir(args))
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], default=str, indent=2))
    elif not rows:
        console.print(f"no lab running in {_run_dir(args)}", markup=False)
    else:
        _print_status(rows)
    return 0 if rows and all(r.alive for r in rows) else 1


def _shape_text(details: dict) -> str:
    """``shape load: 4 Kamailio workers, shm 1024 MB, pkg 16 MB`` (from the kamailio row)."""
    text = (f"shape {details.get('shape', 'functional')}: {details.get('workers', 1)} Kamailio worker(s), "
            f"shm {details.get('shm_mb', 64)} MB")
    return text + (f", pkg {details['pkg_mb']} MB" if details.get("pkg_mb") else "")


def _print_status(rows) -> None:  # noqa: ANN001 - list of qa.lab.ProcessStatus
    kamailio = next((r for r in rows if r.name == "kamailio"), None)
    if kamailio is not None and kamailio.details:
        console.print(_shape_text(kamailio.details), soft_wrap=True)
    table = Table(title="voipqa lab")
    for col in ("process", "pid", "alive", "ports", "health"):
        table.add_column(col)
    for row in rows:
        ports = ", ".join(f"{k}={v}" for k, v in (row.ports or {}).items())
        table.add_row(row.name, str(row.pid), "[green]yes[/]" if row.alive else "[red]no[/]", ports, str(row.health))
    console.print(table)


def _docker_status(args: argparse.Namespace) -> int:
    from qa import dockerlab

    rows = dockerlab.status()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        _print_docker_status(rows)
    active = [r for r in rows if r.state != "missing"]
    return 0 if active and all(r.alive for r in active) else 1


def _print_docker_status(rows) -> None:  # noqa: ANN001 - list of qa.dockerlab.ServiceStatus
    table = Table(title="voipqa docker lab")
    for col in ("service", "role", "container", "state", "health", "address"):
        table.add_column(col)
    for r in rows:
        state = f"[green]{r.state}[/]" if r.alive else f"[red]{r.state}[/]"
        table.add_row(r.service, r.role or "", r.container or "-", state, r.health or "-", r.address or "-")
    console.print(table)

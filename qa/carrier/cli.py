"""``python -m qa.carrier serve`` / ``voipqa carrier serve``: run the native mock carrier;
``voipqa carrier render-freeswitch [--plan FILE] [--out DIR] [--check]``: its FreeSWITCH twin.

    python -m qa.carrier serve --plan carriers/numberplan.yaml --listen 127.0.0.1:5070 \\
        --cdr results/carrier-a.jsonl --name carrier-a [--transport udp,tcp] [-v]

Prints one line ``carrier <name> listening on <host>:<port> udp,tcp`` on stdout when ready.
Exit codes: 0 stopped by SIGTERM/SIGINT, 2 bad input (plan invalid, bad --listen, port
taken; one line on stderr), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import sys
from pathlib import Path

from qa.errors import BadInput, VoipqaError

DEFAULT_PLAN = Path("carriers/numberplan.yaml")
DEFAULT_FREESWITCH = Path("carriers/freeswitch")
DEFAULT_LISTEN = "127.0.0.1:5070"


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); BadInput when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise BadInput(f"--listen: {listen!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def parse_transports(value: str | list[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [t.strip().lower() for t in items if t.strip()]
    if not names or any(n not in ("udp", "tcp") for n in names):
        raise BadInput(f"--transport: {value!r} must be udp, tcp or udp,tcp")
    return list(dict.fromkeys(names))


def serve(plan: Path | str, listen: str, cdr: Path | str, name: str,
          transports: list[str] | str = ("udp", "tcp"), *, t1: float = 0.5) -> int:
    """Run the carrier until SIGTERM/SIGINT. Returns the exit code (0/1/2)."""
    from qa.carrier.plan import load_plan
    from qa.carrier.server import UDP_BUFFER_BYTES, CarrierServer, run

    try:
        host, port = parse_listen(listen)
        names = parse_transports(transports)
        number_plan = load_plan(plan)
        server = CarrierServer(number_plan, name or number_plan.carrier or "carrier", host, port,
                               cdr, names, t1=t1)
    except VoipqaError as exc:
        print(f"carrier: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except OSError as exc:
        print(f"carrier: --cdr {cdr}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 2

    def ready(srv: CarrierServer) -> None:
        print(f"carrier {srv.name} listening on {srv.host}:{srv.port} {','.join(srv.transports)}",
              flush=True)
        if srv.udp_buffers is not None:
            print(f"carrier {srv.name} udp socket buffers: receive {srv.udp_buffers[0]} bytes, "
                  f"send {srv.udp_buffers[1]} bytes (asked {UDP_BUFFER_BYTES} each; the kernel "
                  f"doubles what it grants, capped by net.core.rmem_max/wmem_max)", file=sys.stderr, flush=True)

    try:
        asyncio.run(run(server, ready))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            print(f"carrier: cannot listen on {listen}: {exc.strerror}", file=sys.stderr, flush=True)
            server.cdr.close()
            return 2
        print(f"carrier: {exc}", file=sys.stderr, flush=True)
        return 1
    except VoipqaError as exc:
        print(f"carrier: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        pass
    return 0


def render_freeswitch(plan: Path | str, out: Path | str, *, check_only: bool = False) -> int:
    """Render the FreeSWITCH configuration; ``check_only``: exit 1 naming the files that differ
    and every problem :func:`qa.carrier.freeswitch_check.check_files` finds in the rendering
    (routing unlike the native carrier, modules, XML shape: what only a FreeSWITCH would show).

    Exit codes: 0 written / up to date, 1 drift or problems (``--check``), 2 bad plan (one line).
    """
    from qa.carrier.freeswitch import check, render, write
    from qa.carrier.freeswitch_check import check_files
    from qa.carrier.plan import load_plan

    try:
        number_plan = load_plan(plan)
        files = render(number_plan)
    except VoipqaError as exc:
        print(f"carrier: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    if check_only:
        stale = check(files, out)
        for rel in stale:
            print(f"{Path(out) / rel}: differs from a fresh render of {plan}", flush=True)
        problems = check_files(files, number_plan, str(out))   # the fresh render: equal to out when not stale
        for line in problems:
            print(line, flush=True)
        if stale:
            print("run: voipqa carrier render-freeswitch", file=sys.stderr, flush=True)
        if problems:
            print("the rendering would not behave like the native carrier in FreeSWITCH 1.10: "
                  "fix qa/carrier/freeswitch.py", file=sys.stderr, flush=True)
        if stale or problems:
            return 1
        print(f"{out}: up to date with {plan}, checked (routing, modules, XML shape)", flush=True)
        return 0
    try:
        written = write(files, out)
    except OSError as exc:
        print(f"carrier: --out {out}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 2
    for path in written:
        print(path, flush=True)
    return 0


def add_render_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--plan", type=Path, default=DEFAULT_PLAN, help="number plan YAML")
    sp.add_argument("--out", type=Path, default=DEFAULT_FREESWITCH, help="output directory")
    sp.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 naming the files that differ from a fresh render, "
                         "or problems of the rendering (routing vs the native carrier, modules, XML shape)")


def build_parser(prog: str = "python -m qa.carrier") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="The native mock carrier (SIP UAS).")
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("serve", help="answer calls per the number plan")
    add_serve_arguments(sp)
    rp = sub.add_parser("render-freeswitch", help="generate carriers/freeswitch/ from the number plan")
    add_render_arguments(rp)
    return parser


def add_serve_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--plan", type=Path, default=DEFAULT_PLAN, help="number plan YAML")
    sp.add_argument("--listen", default=DEFAULT_LISTEN, help="HOST:PORT (UDP and TCP)")
    sp.add_argument("--cdr", type=Path, default=Path("carrier-cdr.jsonl"), help="carrier CDR JSONL file")
    sp.add_argument("--name", default="", help="carrier name in the CDR (default: plan's, or 'carrier')")
    sp.add_argument("--transport", default="udp,tcp", help="udp, tcp or udp,tcp (default)")
    sp.add_argument("--t1", type=float, default=0.5, help=argparse.SUPPRESS)
    sp.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")


def main(argv: list[str] | None = None) -> int:
    """``python -m qa.carrier serve ...``; also accepts argv without the 'serve' word."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if not args_in or args_in[0] not in ("serve", "render-freeswitch", "-h", "--help"):
        args_in = ["serve", *args_in]
    try:
        args = build_parser().parse_args(args_in)
    except SystemExit as exc:     # argparse: usage error -> 2
        return int(exc.code or 0)
    if args.command == "render-freeswitch":
        return render_freeswitch(args.plan, args.out, check_only=args.check)
    return serve_from_args(args)


def serve_from_args(args: argparse.Namespace) -> int:
    """Serve with options parsed by ``add_serve_arguments`` (here or in ``voipqa carrier serve``)."""
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return serve(args.plan, args.listen, args.cdr, args.name, args.transport, t1=args.t1)

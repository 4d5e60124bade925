"""``voipqa security``: attack the platform and judge each defence (qa.security)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from qa.cli.output import echo


def register(sub: argparse._SubParsersAction) -> None:
    from qa.security.model import ATTACKS

    p = sub.add_parser("security", help="attack the platform as an intruder would; judge each defence",
                       epilog=f"attacks: {', '.join(ATTACKS)}. exit status: 0 every defence held, "
                              "1 a defence failed (or the platform was unhealthy after), 2 bad input "
                              "(nothing attacked), 130 interrupted (security.json has what finished)")
    p.add_argument("--env", default=None, help="environment (default: the running lab)")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None, help="run only these attacks")
    p.add_argument("--output", type=Path, default=Path("results/security"),
                   help="directory for security.json and the capture (default: results/security)")
    p.add_argument("--torture-dir", type=Path, default=None,
                   help="more torture messages: a directory of *.dat files (e.g. RFC 4475's), INDEX.tsv optional")
    p.add_argument("--no-capture", action="store_true", help="do not capture the attacks on the wire")
    p.set_defaults(func=cmd_security)


def cmd_security(args: argparse.Namespace) -> int:
    from qa.environments import load_environment
    from qa.security.runner import REPORT, check_names, run_security

    check_names(args.only)   # an unknown attack is bad input before anything starts
    env = load_environment(args.env)
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    saved = signal.signal(signal.SIGTERM, stop)
    try:
        report = run_security(env, args.output, only=args.only, torture_dir=args.torture_dir,
                              capture=not args.no_capture, log=echo)
    except KeyboardInterrupt:
        echo(f"\nsecurity interrupted: {args.output / REPORT} has the attacks that finished")
        return 143 if received else 130
    finally:
        signal.signal(signal.SIGTERM, saved)
    echo(f"\nsecurity {report.verdict.upper()} ({env.name}, {report.duration_s:.0f} s): {args.output / REPORT}")
    for entry in report.to_dict()["attacks"]:
        echo(f"  {entry['verdict']:14} {entry['name']:17} {entry['duration_s']:5.1f} s  {env.mask(entry['summary'])}")
    if report.healthy_after is False:
        echo(f"  platform unhealthy after the attacks: {report.health_detail}")
    return 0 if report.verdict == "pass" else 1

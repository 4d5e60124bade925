"""``voipqa gate``: deploy or block, from the suites, a short load and the limits (qa.gate)."""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.cli.output import echo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gate", help="deploy decision: functional suites, a short load, the environment's limits",
                       epilog="exit status: 0 deploy, 1 block, 2 bad input (nothing started), "
                              "130/143 interrupted (gate.json written, decision block)")
    p.add_argument("--env", default=None, help="environment (default: the lab, started for the gate if none runs)")
    p.add_argument("--profile", default=None,
                   help="load profile of the short load (default: the environment's gate.profile, 'gate')")
    p.add_argument("--no-load", action="store_true", help="skip the load step")
    p.add_argument("--include", action="append", help="run only cases with this tag (default: gate.include)")
    p.add_argument("--exclude", action="append", help="skip cases with this tag (default: gate.exclude)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML with gate:, thresholds: and alerts: sections overriding the environment's")
    p.add_argument("--output", type=Path, default=Path("results/gate"), help="gate directory (default: results/gate)")
    p.set_defaults(func=cmd_gate)


def cmd_gate(args: argparse.Namespace) -> int:
    from qa.gate import plan_gate, run_gate

    plan = plan_gate(args.env, args.output, args.include, args.exclude, args.profile, args.no_load, args.config)
    result = run_gate(plan, echo=echo)
    echo(f"\ngate {result.decision.upper()} ({plan.env}, {result.duration_s:.0f} s): {args.output / 'gate.json'}")
    for check in result.checks:
        limit = "" if check.status == "skipped" else f" (limit {check.limit})"
        echo(f"  {check.status:7} {check.name:14} {check.value!s:>6}{limit}  {check.detail}")
    if result.interrupted:
        return 130
    return 0 if result.decision == "deploy" else 1


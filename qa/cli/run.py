"""``voipqa run [SUITE…]``: Robot suites against the platform, reports, summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.cli.output import console
from qa.errors import BadInput


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run Robot suites against the platform")
    p.add_argument("suites", nargs="*", help="suite files or folders (default: robot_suites/)")
    p.add_argument("--env", default=None, help="environment (default: the native lab)")
    p.add_argument("--output", default="results", help="report directory (default: results)")
    p.add_argument("--include", action="append", help="run only cases with this tag")
    p.add_argument("--exclude", action="append", help="skip cases with this tag")
    p.add_argument("--test", action="append", metavar="NAME", help="run only this case (Robot name pattern)")
    p.add_argument("--parallel", type=int, default=None, metavar="N",
                   help="cases run at once, each in its own Robot process (default: 6 per core; 1: one process)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from qa.cases.suites import capture_for_run, lab_for_run, resolve_suites, run_suites
    from qa.cases.wire import annotate_report, join_wire
    from qa.report.summary import print_summary, read_summary

    from qa.cases.parallel import default_parallel

    suites = resolve_suites(args.suites)
    parallel = default_parallel() if args.parallel is None else args.parallel
    if parallel < 1:
        raise BadInput(f"--parallel {args.parallel}: must be at least 1")
    output = Path(args.output)
    with lab_for_run(args.env, output, echo=console.print) as lab_dir, \
            capture_for_run(lab_dir, output, echo=console.print) as capture:
        failed = run_suites(suites, output, env=args.env, lab_dir=lab_dir, include=args.include,
                            exclude=args.exclude, tests=args.test, parallel=parallel, echo=console.print)
    if failed >= 250 or not (output / "output.xml").exists():
        raise BadInput(f"robot could not run the suites (robot exit code {failed}); see above")
    wire = join_wire(capture.files, output / "calls.jsonl", output)
    annotate_report(output / "output.xml", wire, output, capture=capture.describe())
    summary = read_summary(output / "output.xml")
    print_summary(summary, output, console)
    _print_wire(wire, capture)
    return 0 if summary.failed == 0 and failed == 0 and not wire.failed_by_wire else 1


def _print_wire(wire, capture) -> None:  # noqa: ANN001 - qa.cases.wire.WireResult, RunCapture
    if not capture.files:
        console.print(f"wire witness: capture {capture.describe()}")
        return
    console.print(f"wire witness: {wire.calls_seen} calls found in {capture.describe()}"
                  + (f"; malformed SIP/SDP on {len(wire.failed_by_wire)} calls" if wire.failed_by_wire else ""))
    if wire.problem:
        console.print(f"  {wire.problem}")
    for case, path in wire.ladders.items():
        console.print(f"  ladder of {case}: {path}")

"""``voipqa cdr check``: reconcile a run's calls with the platform's and the carrier's CDRs.

Exit 0 when every call reconciles, 1 on any discrepancy, 2 on bad input (missing or
garbled calls file — the line number named —, bad DSN, unknown column in a mapping: one
line naming it).

Where the CDRs are, first match wins: ``--source``/``--env``; else what the run left
beside calls.jsonl (``cdr/sources.json``, ``qa.cdr.snapshot``: a copy of the lab's CDRs
taken at the end of the run, so the check works after the run stopped its lab); else the
running lab. Records that are not calls (REGISTER cases) are not reconciled; the run's
load runs' Call-IDs (``load/**/calls.csv``) are not orphans.

``--json`` prints one object with these stable keys::

    ok                 true when nothing is wrong (exit 0)
    tolerance_s        allowed duration difference, seconds
    carrier_checked    whether carrier CDRs were read (env carrier.cdr or --carrier)
    window             {start, end} unix seconds searched for orphan CDRs, or null
    totals             {calls, ok, missing, duplicate, billed_but_failed, mismatched,
                        carrier_saw_unrouted, routed_carrier_never_saw, orphans,
                        carrier_orphans, not_placed}
    seconds            {customer_answered, billed, lost_missing, lost_under_billed,
                        over_billed, orphan_billed, lost}   (lost = billed seconds lost)
    calls[]            {status, case, call_id, final_code, answered, customer_duration_s,
                        platform_rows, carrier_rows, platform_duration_s, carrier_duration_s,
                        billed_lost_s, over_billed_s,
                        problems[]: {kind, detail, field, customer, platform, carrier}}
    orphans[]          platform CDRs of the run's window no customer placed:
                       {call_id, from_user, to_user, account, start_time, duration, sip_code, carrier}
    carrier_orphans[]  the same for the carrier's CDRs
    not_placed[]       cases whose call never got a Call-ID
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from rich.table import Table

from qa.cli.output import console, escape, plain
from qa.errors import BadInput

_TOLERANCE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s)?$")


def register(sub: argparse._SubParsersAction) -> None:
    cdr_p = sub.add_parser("cdr", help="reconcile calls with platform and carrier CDRs")
    cdr_sub = cdr_p.add_subparsers(dest="cdr_command", required=True)
    p = cdr_sub.add_parser("check", help="three-way reconciliation of a run's calls.jsonl")
    p.add_argument("--calls", required=True, help="the run's calls.jsonl")
    p.add_argument("--source", help="platform CDRs: SQLAlchemy URL, .csv or .jsonl (default: the env's cdr.dsn)")
    p.add_argument("--env", help="environment (NAME or file; default: the native lab)")
    p.add_argument("--table", help="table or view of a SQL source (default: the env's, or voipqa_cdr)")
    p.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN",
                   help="the source column of a canonical column (repeatable)")
    p.add_argument("--carrier", action="append", default=[], metavar="JSONL",
                   help="carrier CDR file (repeatable; default: the env's carrier.cdr)")
    p.add_argument("--tolerance", default="1s", help="allowed duration difference (default 1s; e.g. 500ms)")
    p.add_argument("--orphans", action=argparse.BooleanOptionalAction, default=True,
                   help="look for CDRs in the run's time window that no customer placed (default: yes)")
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    p.set_defaults(func=cmd_check)


def parse_tolerance(text: str) -> float:
    """``1s``, ``1.5``, ``500ms`` -> seconds."""
    match = _TOLERANCE_RE.match(text.strip())
    if not match:
        raise BadInput(f"--tolerance {text}: not a duration (e.g. 1s, 0.5, 500ms)")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``canonical=column`` pairs; an unknown canonical column is bad input."""
    from qa.cdr import CANONICAL_COLUMNS

    mapping = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not column:
            raise BadInput(f"--map {item}: use CANONICAL=COLUMN (e.g. duration=billsec)")
        if key not in CANONICAL_COLUMNS:
            raise BadInput(f"--map {item}: {key!r} is not a CDR column (known: {', '.join(CANONICAL_COLUMNS)})")
        mapping[key] = column
    return mapping


def _records(path: Path) -> list[Any]:
    if not path.is_file():
        raise BadInput(f"calls file {path}: no such file")
    records = list(read_calls(path))
    if not records:
        raise BadInput(f"calls file {path}: no call records in it")
    return records


def read_calls(path: Path) -> list[Any]:
    """Every record of a calls.jsonl; a line that is not one is bad input naming its number.

    Only an unterminated last line after good records is skipped: that is what a killed
    run leaves (records are appended whole and flushed one by one); anything else is not
    a calls file.
    """
    from qa.record import CallRecord

    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        torn = number == len(lines) and bool(records)  # unterminated, after good records
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("case"), str):
                raise ValueError("no \"case\"")
            records.append(CallRecord.from_json(raw.decode()))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            if torn:
                continue
            raise BadInput(f"calls file {path}: line {number}: not a call record ({_brief_error(exc)})") from None
    return records


def _brief_error(exc: Exception) -> str:
    return str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__


def _sources(args: argparse.Namespace) -> tuple[Any, Any]:
    """The platform source (checked now, so a bad column is exit 2) and the carrier's."""
    from qa.cdr import carrier_source, open_source
    from qa.cdr.snapshot import find_run_sources
    from qa.environments import load_environment, open_cdr

    mapping = parse_mapping(args.map)
    run = None if (args.env or args.source) else find_run_sources(Path(args.calls))
    if run is not None and run.platform_dsn:
        platform = open_source(run.platform_dsn, mapping, args.table or run.table, base=run.folder)
        platform.check()
        paths = [Path(p) for p in args.carrier] or list(run.carrier)
        return platform, carrier_source(paths) if paths else None
    env_name = run.env if run is not None and run.env else args.env
    env = load_environment(env_name) if (env_name or not args.source) else None
    if env is not None and env.cdr is not None:
        platform = open_cdr(env.cdr, args.source, args.table, mapping)
    elif args.source:
        platform = open_source(args.source, mapping, args.table or "voipqa_cdr")
    else:
        raise BadInput(f"environment {env.name if env else args.env}: no cdr: section; give --source DSN")
    platform.check()
    paths = [Path(p) for p in args.carrier] or list(env.carrier_cdr_paths if env else [])
    return platform, carrier_source(paths) if paths else None


def cmd_check(args: argparse.Namespace) -> int:
    from qa.cdr.reconcile import reconcile

    records = _records(Path(args.calls))
    tolerance = parse_tolerance(args.tolerance)
    platform, carrier = _sources(args)
    from qa.load.model import load_call_ids

    result = reconcile(records, platform, carrier, tolerance_s=tolerance, find_orphans=args.orphans,
                       known_call_ids=load_call_ids(Path(args.calls)))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_report(result, platform.describe(), carrier.describe() if carrier else None)
    return 0 if result.ok else 1


def _print_report(result: Any, platform: str, carrier: str | None) -> None:
    console.print(f"platform CDRs: {escape(platform)}")
    console.print(f"carrier CDRs:  {escape(carrier or 'not checked (no carrier.cdr in the env, no --carrier)')}")
    if result.not_calls:
        console.print(f"not calls:     {result.not_calls} records (REGISTER...), nothing to bill")
    console.print(_summary(result))
    problems = [c for c in result.calls if c.problems]
    if problems:
        console.print(_problem_table(problems))
    for title, rows in (("Orphan platform CDRs (no customer placed these calls)", result.orphans),
                        ("Orphan carrier CDRs", result.carrier_orphans)):
        if rows:
            console.print(_orphan_table(title, rows))
    verdict = "[green]all calls reconciled[/]" if result.ok else "[red]discrepancies found[/]"
    console.print(f"{verdict}: billed seconds lost {result.seconds.lost:.2f}, "
                  f"over-billed {result.seconds.over_billed:.2f}")


def _summary(result: Any) -> Table:
    table = Table(title="CDR reconciliation", show_header=True)
    table.add_column("what")
    table.add_column("count / seconds", justify="right")
    for key, value in result.totals().items():
        style = "red" if value and key not in ("calls", "ok") else ""
        table.add_row(key.replace("_", " "), f"[{style}]{value}[/]" if style else str(value))
    seconds = result.seconds
    for label, value in (("customer answered s", seconds.customer_answered), ("billed s", seconds.billed),
                         ("billed s lost (no CDR)", seconds.lost_missing),
                         ("billed s lost (under-billed)", seconds.lost_under_billed),
                         ("over-billed s", seconds.over_billed), ("orphan billed s", seconds.orphan_billed)):
        table.add_row(label, f"{value:.2f}")
    return table


def _problem_table(calls: list[Any]) -> Table:
    table = Table(title="Calls with discrepancies")
    for column in ("case", "call-id", "problem", "field", "detail"):
        # Call-IDs and kinds are what users grep for: never broken across lines
        table.add_column(column, overflow="fold", no_wrap=column in ("call-id", "problem"))
    for call in calls:
        for problem in call.problems:
            table.add_row(plain(call.case), plain(call.call_id), problem.kind, plain(problem.field),
                          plain(problem.detail))
    return table


def _orphan_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("call-id", "from", "to", "duration", "code"):
        table.add_column(column, overflow="fold", no_wrap=column == "call-id")
    for row in rows:
        table.add_row(*(plain(row.get(k)) for k in ("call_id", "from_user", "to_user", "duration", "sip_code")))
    return table

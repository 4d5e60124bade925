"""``voipqa sip check FILE… [--json]``: strict RFC 3261 / RFC 8866 check of message files."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sip", help="SIP message conformance (RFC 3261, RFC 4475, RFC 5118)")
    sip_sub = p.add_subparsers(dest="sip_command", required=True)
    check = sip_sub.add_parser(
        "check", help="strict check of raw SIP message files (one message per file, exact bytes)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--json", action="store_true", help="findings as JSON (schema of pcap check)")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when no finding is an error (warnings allowed), 1 otherwise; 2 unreadable."""
    from qa.analysis.sipfile import check_files

    reports = check_files(args.files)
    if args.json:
        print(json.dumps({"files": [r.to_json() for r in reports]}, indent=2, ensure_ascii=False))
    else:
        _print_table(reports)
    return 1 if any(r.errors for r in reports) else 0


def _print_table(reports: list) -> None:
    from rich.markup import escape
    from rich.table import Table

    from qa.cli.output import console

    table = Table("file", "severity", "rule", "offset", "reason")
    table.columns[0].overflow = "fold"
    for report in reports:
        for f in report.findings:
            style = "red" if f.severity == "error" else "yellow"
            table.add_row(escape(str(report.path)), f"[{style}]{f.severity}[/]", escape(f.rule),
                          str(f.offset), escape(f.reason))
        if not report.findings:
            table.add_row(escape(str(report.path)), "[green]ok[/]", "", "", "")
    console.print(table)
    errors = sum(r.errors for r in reports)
    console.print(f"{len(reports)} file(s), {errors} error(s), "
                  f"{sum(len(r.findings) for r in reports) - errors} warning(s)")

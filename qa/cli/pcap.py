"""``voipqa pcap check | calls | ladder | filter``: what went over the wire (DESIGN §7, §9).

``check`` exits 0 when no finding reaches ``--fail-on`` (default ``error``: warnings and
infos are printed but do not fail; ``--fail-on warning`` fails on warnings too), 1 when
one does, 2 when a file is unreadable, truncated before its first packet or not a
capture (one line naming it). ``--json`` prints one object per file, one per line, as
``docs/pcap-json.md`` documents.

Everything printed from a capture (headers, Call-IDs, reasons, file names) is verbatim:
``qa.cli.output.verbatim`` / ``plain`` keep rich from reading it as markup.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from qa.cli.output import console, escape, plain, verbatim
from qa.errors import BadInput, VoipqaError

#: Files smaller than this get no progress bar.
_PROGRESS_MIN_BYTES = 20 << 20
#: ``--fail-on`` levels and the finding severities each one fails on.
FAIL_ON = {"error": ("error",), "warning": ("error", "warning")}
_CHECK_EPILOG = ("exit status: 0 no finding at or above --fail-on (default error: warnings and infos "
                 "are reported but do not fail), 1 at least one such finding, 2 a file is missing, "
                 "unreadable, truncated before its first packet or not a capture")


def register(sub: argparse._SubParsersAction) -> None:
    pcap = sub.add_parser("pcap", help="check captures: malformed SIP/SDP, failed calls, media")
    pcap_sub = pcap.add_subparsers(dest="pcap_command", required=True)

    check = pcap_sub.add_parser("check", help="findings per file (exit 0 clean, 1 findings at --fail-on, "
                                              "2 unreadable)", epilog=_CHECK_EPILOG)
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--fail-on", choices=list(FAIL_ON), default="error",
                       help="lowest finding severity that makes the exit status 1 (default: error; "
                            "warnings do not fail unless --fail-on warning)")
    check.add_argument("--json", action="store_true", help="one JSON object per file (docs/pcap-json.md)")
    check.add_argument("--second-opinion", choices=["tshark", "wireshark"], default=None,
                       help="tshark: list where tshark disagrees on malformed SIP; wireshark: Wireshark's "
                            "verdict on each flagged frame (its expert info, or 'no complaint'), through pyshark")
    check.add_argument("--all-findings", action="store_true", help="print every kept finding, not the first 50")
    check.add_argument("--one-process", action="store_true",
                       help="read, check and correlate in this process only (default: a capture over "
                            "4 MB is read and checked by a second process when a second CPU is free)")
    check.set_defaults(func=cmd_check)

    calls = pcap_sub.add_parser("calls", help="one row per call")
    calls.add_argument("file", metavar="FILE")
    calls.add_argument("--json", action="store_true")
    calls.add_argument("--all", action="store_true", help="also Call-IDs without INVITE (REGISTER, OPTIONS...)")
    calls.set_defaults(func=cmd_calls)

    ladder = pcap_sub.add_parser("ladder", help="HTML ladder diagram of one call")
    ladder.add_argument("file", metavar="FILE")
    ladder.add_argument("--call-id", required=True)
    ladder.add_argument("--html", required=True, metavar="OUT")
    ladder.set_defaults(func=cmd_ladder)

    flt = pcap_sub.add_parser("filter", help="a Wireshark display filter over one call (or the whole file)",
                              epilog="exit status: 0 a frame matched, 1 none did, 2 a bad filter (tshark's "
                                     "reason), no frames for the call, or an unreadable file")
    flt.add_argument("file", metavar="FILE")
    flt.add_argument("filter", metavar="DISPLAY_FILTER", help='e.g. \'sip.Method == "INVITE"\'')
    flt.add_argument("--call-id", default=None, help="only this call's frames (its SIP and its RTP)")
    flt.add_argument("--field", action="append", default=[], metavar="NAME",
                     help="print this field of each matching frame (repeatable), e.g. sip.Via.transport")
    flt.add_argument("--json", action="store_true", help="one JSON object: the matches and their fields")
    flt.set_defaults(func=cmd_filter)


def _existing(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such file")
    return p


@contextmanager
def _progress(path: Path, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over the file's bytes, on a terminal and for big files only."""
    size = path.stat().st_size
    if quiet or not console.is_terminal or size < _PROGRESS_MIN_BYTES:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), console=console, transient=True) as bar:
        task = bar.add_task(path.name, total=size)
        yield lambda done: bar.update(task, completed=min(done, size))


def _analyze(path: Path, quiet: bool, **kwargs):
    from qa.analysis.engine import analyze

    with _progress(path, quiet) as progress:
        return analyze(path, progress=progress, **kwargs)


# -- check -------------------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    worst = 0
    for name in args.files:
        try:
            code = _check_one(_existing(name), args)
        except BadInput as exc:
            if len(args.files) == 1:
                raise
            print(f"voipqa: error: {exc}", file=sys.stderr)
            code = exc.exit_code
        worst = max(worst, code)
    return worst


def _check_one(path: Path, args: argparse.Namespace) -> int:
    from qa.report import pcap as rep

    report = _analyze(path, args.json, keep_calls=0, parallel=False if args.one_process else None)
    comparison = None
    verdicts: dict[int, str] | None = None
    if args.second_opinion == "tshark":
        from qa.analysis.tshark import second_opinion

        comparison = second_opinion(report)
    elif args.second_opinion == "wireshark":
        from qa.analysis.wireshark import frame_verdicts

        ports = [int(p) for p in report.stats.get("sip_ports", [])]  # type: ignore[union-attr]
        verdicts = frame_verdicts(path, (f.frame for f in report.findings if f.frame is not None), ports)
    if args.json:
        doc = rep.check_json(report)
        if comparison is not None:
            doc["second_opinion"] = comparison.to_json()
        if verdicts is not None:
            for finding in doc["findings"]:  # type: ignore[attr-defined]
                if finding.get("frame") in verdicts:
                    finding["wireshark"] = verdicts[finding["frame"]]
        print(json.dumps(doc, sort_keys=False))
    else:
        console.print(verbatim(rep.summary_table(report)))
        if report.findings:
            table = rep.findings_table(report, limit=10**9 if args.all_findings else 50)
            console.print(verbatim(table, markup_columns=("severity",)))
        if comparison is not None:
            _print_comparison(comparison)
        if verdicts is not None:
            _print_verdicts(report, verdicts)
    return exit_code(report.severity_counts, args.fail_on)


def _print_verdicts(report, verdicts: dict[int, str]) -> None:
    """One row per flagged frame: voipqa's findings and Wireshark's verdict on that frame."""
    from rich.table import Table

    table = Table(title=plain(f"Wireshark's verdict on the flagged frames of {report.file}"), title_justify="left")
    for col in ("frame", "voipqa", "wireshark"):
        table.add_column(col, overflow="fold")
    ours: dict[int, list[str]] = {}
    for f in report.findings:
        if f.frame in verdicts:
            ours.setdefault(f.frame, []).append(f.rule)
    for frame in sorted(ours):
        table.add_row(plain(frame), plain(", ".join(ours[frame])), plain(verdicts[frame]))
    console.print(table)


def exit_code(severities: dict[str, int], fail_on: str = "error") -> int:
    """1 when any finding is at or above ``fail_on`` (see FAIL_ON), else 0."""
    return 1 if any(severities.get(level, 0) for level in FAIL_ON[fail_on]) else 0


def _print_comparison(comparison) -> None:
    from rich.table import Table

    table = Table(title=plain(f"second opinion (tshark) on {comparison.file}"), title_justify="left")
    for col in ("frame", "who", "voipqa", "tshark"):
        table.add_column(col, overflow="fold")
    rows = [(k, "both", "; ".join(a), "; ".join(b)) for k, (a, b) in comparison.both.items()]
    rows += [(k, "voipqa only", "; ".join(v), "") for k, v in comparison.only_voipqa.items()]
    rows += [(k, "tshark only", "", "; ".join(v)) for k, v in comparison.only_tshark.items()]
    for frame, who, ours, theirs in sorted(rows):
        table.add_row(plain(frame), who, plain(ours), plain(theirs))
    if not rows:
        table.add_row("", "agree", "no malformed SIP", "no malformed SIP")
    console.print(table)


# -- calls -------------------------------------------------------------------------------
def cmd_calls(args: argparse.Namespace) -> int:
    from qa.report import pcap as rep

    path = _existing(args.file)
    wanted = (lambda c: True) if args.all else (lambda c: c.kind == "call")
    if args.json:
        return _calls_json(path, wanted)
    kept = []
    report = _analyze(path, False, keep_calls=0,
                      on_call=lambda c: kept.append(c) if wanted(c) and len(kept) < 10_000 else None)
    kept.sort(key=lambda c: c.start)
    console.print(verbatim(rep.calls_table(kept)))
    console.print(f"{report.calls} calls, {report.dialogs} Call-IDs in {escape(str(path))}")
    return 0


def _calls_json(path: Path, wanted: Callable) -> int:
    """Streams the calls as they end, so memory stays flat on any capture size."""
    from qa.report.pcap import SCHEMA, call_json

    out = sys.stdout
    first = True

    def emit(call) -> None:
        nonlocal first
        if wanted(call):
            out.write(("" if first else ",\n") + json.dumps(call_json(call)))
            first = False

    head = json.dumps({"schema": SCHEMA, "file": str(path)})[:-1]
    out.write(head + ', "calls": [\n')
    try:
        _analyze(path, True, keep_calls=0, on_call=emit)
    finally:
        out.write("\n]}\n")
    return 0


# -- ladder ------------------------------------------------------------------------------
def cmd_ladder(args: argparse.Namespace) -> int:
    from qa.report.ladder import render_ladder

    path = _existing(args.file)
    found = []
    _analyze(path, False, keep_calls=0, keep_raw_for=args.call_id,
             on_call=lambda c: found.append(c) if c.call_id == args.call_id else None)
    if not found:
        raise BadInput(f"{path}: no Call-ID {args.call_id!r} in the capture")
    out = Path(args.html)
    try:
        out.write_text(render_ladder(found[0]), encoding="utf-8")
    except OSError as exc:
        raise VoipqaError(f"{out}: cannot write: {exc.strerror}") from exc
    console.print(f"ladder of {escape(args.call_id)} ({len(found[0].events)} messages) written to "
                  f"{escape(str(out))}")
    return 0


def cmd_filter(args: argparse.Namespace) -> int:
    import tempfile

    from qa.analysis.wireshark import call_capture, check_filter, match, whole_capture

    path = _existing(args.file)
    check_filter(args.filter)
    with tempfile.TemporaryDirectory(prefix="voipqa-filter-") as tmp:
        scope = call_capture(path, args.call_id, tmp) if args.call_id else whole_capture(path)
        matches = match(scope, args.filter, args.field)
    if args.json:
        print(json.dumps({"file": str(path), "call_id": args.call_id, "filter": args.filter,
                          "frames": len(scope.frames) if scope.frames is not None else None,
                          "matched": len(matches), "matches": [m.to_dict() for m in matches]}))
    else:
        for m in matches:
            values = "  ".join(f"{name}={','.join(v)}" for name, v in m.fields.items())
            console.print(plain(f"frame {m.frame}" + (f"  {values}" if values else "")))
        console.print(plain(f"{len(matches)} frame(s) of {scope.describe()} match {args.filter}"))
    return 0 if matches else 1

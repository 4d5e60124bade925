"""The ``voipqa`` command (DESIGN §7): argument parsing and output only.

Each command group lives in its own module with a ``register(subparsers)`` function;
every command delegates to a service module. Errors become one line on stderr and the
exit code of the contract (2 bad input, 1 failure).
"""

from __future__ import annotations

import argparse
import os
import sys

from qa import __version__
from qa.cli import carrier, cdr, gate, lab, load, monitor, pcap, run, security, sip
from qa.errors import VoipqaError

#: The command groups, in the order ``voipqa --help`` lists them.
GROUPS = (lab, run, gate, security, monitor, load, carrier, cdr, pcap, sip)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voipqa", description="VoIP QA and performance testing")
    parser.add_argument("--version", action="version", version=f"voipqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VoipqaError as exc:
        print(f"voipqa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `voipqa ... | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except KeyboardInterrupt:
        print("voipqa: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("VOIPQA_DEBUG"):
            raise
        print(f"voipqa: internal error: {type(exc).__name__}: {exc} (set VOIPQA_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1

"""``voipqa carrier serve``: the native mock carrier."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from qa.carrier.cli import add_serve_arguments

    p = sub.add_parser("carrier", help="the native mock carrier")
    carrier_sub = p.add_subparsers(dest="carrier_command", required=True)
    serve = carrier_sub.add_parser("serve", help="answer calls per the number plan, on UDP and TCP")
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.carrier.cli import serve_from_args

    return serve_from_args(args)

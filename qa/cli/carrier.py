"""``voipqa carrier serve`` (the native mock carrier) and ``voipqa carrier render-freeswitch``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from qa.carrier.cli import add_render_arguments, add_serve_arguments

    p = sub.add_parser("carrier", help="the native mock carrier and its FreeSWITCH twin")
    carrier_sub = p.add_subparsers(dest="carrier_command", required=True)
    serve = carrier_sub.add_parser("serve", help="answer calls per the number plan, on UDP and TCP")
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)
    render = carrier_sub.add_parser("render-freeswitch",
                                    help="generate carriers/freeswitch/ from the number plan")
    add_render_arguments(render)
    render.set_defaults(func=cmd_render_freeswitch)


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.carrier.cli import serve_from_args

    return serve_from_args(args)


def cmd_render_freeswitch(args: argparse.Namespace) -> int:
    from qa.carrier.cli import render_freeswitch

    return render_freeswitch(args.plan, args.out, check_only=args.check)

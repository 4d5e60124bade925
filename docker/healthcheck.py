#!/usr/bin/env python3
"""Container healthchecks (docker-compose.yml): exit 0 healthy, 1 not.

  healthcheck.py sip HOST PORT [udp|tcp]   one SIP OPTIONS (qa.transport.probe): healthy on 200
  healthcheck.py rtpengine HOST PORT       an ng-protocol ping (qa.lab.rtpengine): healthy on pong

The same probes the native lab's supervisor and `voipqa lab status` use.
"""

from __future__ import annotations

import sys


def check(argv: list[str]) -> tuple[bool, str]:
    if len(argv) not in (3, 4) or argv[0] not in ("sip", "rtpengine") or not argv[2].isdigit():
        return False, "usage: healthcheck.py sip|rtpengine HOST PORT [udp|tcp]"
    kind, host, port = argv[0], argv[1], int(argv[2])
    if kind == "rtpengine":
        from qa.lab.rtpengine import ping

        return (True, "pong") if ping(host, port, 2.0) else (False, f"no pong from {host}:{port}")
    from qa.transport.probe import sip_options

    transport = argv[3] if len(argv) == 4 else "udp"
    try:
        code, reason = sip_options(host, port, transport, 2.0)
    except OSError as exc:
        return False, f"OPTIONS {host}:{port}/{transport}: {exc}"
    return code == 200, f"OPTIONS {host}:{port}/{transport}: {code} {reason}"


def main(argv: list[str]) -> int:
    ok, message = check(argv)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

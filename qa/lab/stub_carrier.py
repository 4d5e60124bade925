"""A minimal stand-in carrier (UDP, no media) with the CLI and CDR format of ``qa.carrier``.

Used by the lab only when the real native carrier (``python -m qa.carrier``) is not
importable, so the lab and its tests can run on their own. It answers OPTIONS 200 and
INVITEs by the number plan's ``prefix``/``reject``/``reason``/``ring_forever``/``ring_s``
(longest prefix wins, ``no_route`` otherwise), and writes one JSON line per INVITE
(the fields of qa/carrier/cdr.py that it can know). No RTP.

    python -m qa.lab.stub_carrier serve --plan PLAN --listen 127.0.0.1:PORT --cdr FILE --name NAME
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import re
import select
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import yaml

_DEFAULT_ROUTES = [
    {"prefix": "1555000"},
    {"prefix": "15550010", "ring_s": 2},
    {"prefix": "15550020", "ring_forever": True},
    {"prefix": "1555003486", "reject": 486, "reason": "Busy Here"},
    {"prefix": "1555003503", "reject": 503, "reason": "Service Unavailable"},
]


def _load_plan(path: str | None) -> tuple[list[dict[str, Any]], int]:
    try:
        data = yaml.safe_load(Path(path).read_text()) if path else None
    except (OSError, yaml.YAMLError):
        data = None
    if not isinstance(data, dict):
        return _DEFAULT_ROUTES, 404
    routes = [r for r in data.get("routes", []) if isinstance(r, dict) and "prefix" in r]
    return routes or _DEFAULT_ROUTES, int(data.get("no_route", 404))


def _header(msg: str, name: str) -> str:
    m = re.search(rf"^(?:{name})\s*:\s*(.*)$", msg, re.I | re.M)
    return m.group(1).strip() if m else ""


def _headers(msg: str, name: str) -> list[str]:
    return [v.strip() for v in re.findall(rf"^(?:{name})\s*:\s*(.*)$", msg, re.I | re.M)]


def _user(uri_field: str) -> str:
    m = re.search(r"sips?:([^@;>]+)@", uri_field)
    return m.group(1) if m else ""


def _uri(field: str) -> str:
    m = re.search(r"<([^>]+)>", field)
    return m.group(1) if m else field.split(";")[0].strip()


REASONS = {100: "Trying", 180: "Ringing", 200: "OK", 404: "Not Found", 481: "Call Does Not Exist",
           487: "Request Terminated"}


class Stub:
    def __init__(self, name: str, host: str, port: int, cdr: Path, plan: str | None) -> None:
        self.name, self.host, self.port = name, host, port
        self.routes, self.no_route = _load_plan(plan)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.cdr = open(cdr, "a", encoding="utf-8")
        self.calls: dict[str, dict[str, Any]] = {}
        self.timers: list[tuple[float, int, str, str]] = []
        self.seq = 0

    def route(self, number: str) -> dict[str, Any] | None:
        best = None
        for r in self.routes:
            p = str(r["prefix"])
            if number.startswith(p) and (best is None or len(p) > len(str(best["prefix"]))):
                best = r
        return best

    def reply(self, req: str, addr: tuple[str, int], code: int, reason: str = "", *,
              to_tag: str = "", body: str = "") -> str:
        to = _header(req, "To|t")
        if to_tag and ";tag=" not in to:
            to = f"{to};tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason or REASONS.get(code, 'Unknown')}"]
        lines += [f"Via: {v}" for v in _headers(req, "Via|v")]
        if 100 < code < 300:
            lines += [f"Record-Route: {v}" for v in _headers(req, "Record-Route")]
        lines += [f"From: {_header(req, 'From|f')}", f"To: {to}", f"Call-ID: {_header(req, 'Call-ID|i')}",
                  f"CSeq: {_header(req, 'CSeq')}", f"Server: voipqa-stub-carrier/{self.name}"]
        if 100 < code < 300:
            lines.append(f"Contact: <sip:carrier@{self.host}:{self.port}>")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        data = "\r\n".join(lines) + "\r\n\r\n" + body
        self.sock.sendto(data.encode(), addr)
        return data

    def write_cdr(self, call: dict[str, Any], code: int | None, ended_by: str) -> None:
        if call.get("written"):
            return
        call["written"] = True
        now = time.time()
        answered = call.get("answered")
        rec = {k: call[k] for k in ("carrier", "call_id", "from", "to", "from_uri", "to_uri", "ruri",
                                    "route", "from_tag", "x_headers", "transport", "received")}
        rec.update(answered=answered, ended=now, final_code=code, ended_by=ended_by,
                   duration_s=round(now - answered, 3) if answered else 0, codec="PCMU" if answered else "",
                   rtp_packets_in=0, rtp_packets_out=0, dtmf_heard="")
        self.cdr.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.cdr.flush()

    def sdp(self) -> str:
        sid = random.randint(1, 1 << 30)
        return (f"v=0\r\no=carrier {sid} {sid} IN IP4 {self.host}\r\ns=-\r\nc=IN IP4 {self.host}\r\n"
                f"t=0 0\r\nm=audio {self.port + 2} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")

    def answer(self, cid: str) -> None:
        call = self.calls.get(cid)
        if not call or call.get("final"):
            return
        call["answered"] = time.time()
        call["final"] = 200
        call["last"] = self.reply(call["req"], call["addr"], 200, to_tag=call["tag"], body=self.sdp())

    def on_request(self, msg: str, addr: tuple[str, int]) -> None:
        method = msg.split(" ", 1)[0]
        cid = _header(msg, "Call-ID|i")
        if method == "OPTIONS":
            self.reply(msg, addr, 200)
        elif method == "INVITE":
            call = self.calls.get(cid)
            if call is not None and ";tag=" not in _header(msg, "To|t"):
                if call.get("last"):
                    self.sock.sendto(call["last"].encode(), addr)
                return
            if call is not None:  # re-INVITE
                self.reply(msg, addr, 200, body=self.sdp())
                return
            ruri = msg.split(" ", 2)[1]
            number = _user(ruri)
            route = self.route(number)
            frm, to = _header(msg, "From|f"), _header(msg, "To|t")
            tag_m = re.search(r";tag=([^;>\s]+)", frm)
            xh = {}
            for line in msg.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower().startswith("x-"):
                    xh[k.strip()] = v.strip()
            call = self.calls[cid] = {
                "carrier": self.name, "call_id": cid, "from": _user(frm), "to": _user(to),
                "from_uri": _uri(frm), "to_uri": _uri(to), "ruri": number,
                "route": (route.get("name") or route["prefix"]) if route else "no-route",
                "from_tag": tag_m.group(1) if tag_m else "", "x_headers": xh, "transport": "udp",
                "received": time.time(), "answered": None, "req": msg, "addr": addr,
                "tag": f"c{random.randint(1, 1 << 40):x}",
            }
            self.reply(msg, addr, 100)
            if route is None or route.get("reject"):
                code = int(route["reject"]) if route else self.no_route
                call["final"] = code
                call["last"] = self.reply(msg, addr, code, str(route.get("reason", "")) if route else "",
                                          to_tag=call["tag"])
                self.write_cdr(call, code, "carrier")
                return
            call["last"] = self.reply(msg, addr, 180, to_tag=call["tag"])
            if route.get("ring_forever"):
                return
            delay = float(route.get("ring_s", 0) or 0)
            if delay > 0:
                self.seq += 1
                heapq.heappush(self.timers, (time.time() + delay, self.seq, "answer", cid))
            else:
                self.answer(cid)
        elif method == "ACK":
            return
        elif method == "CANCEL":
            self.reply(msg, addr, 200)
            call = self.calls.get(cid)
            if call and not call.get("final"):
                call["final"] = 487
                call["last"] = self.reply(call["req"], call["addr"], 487, to_tag=call["tag"])
                self.write_cdr(call, 487, "cancel")
        elif method == "BYE":
            call = self.calls.get(cid)
            self.reply(msg, addr, 200 if call else 481)
            if call:
                self.write_cdr(call, call.get("final"), "caller")
        else:
            self.reply(msg, addr, 200)

    def serve(self) -> None:
        print(f"{self.name}: listening on udp:{self.host}:{self.port} (stub carrier)", flush=True)
        while True:
            timeout = max(0.0, self.timers[0][0] - time.time()) if self.timers else 1.0
            ready, _, _ = select.select([self.sock], [], [], timeout)
            now = time.time()
            while self.timers and self.timers[0][0] <= now:
                _, _, what, cid = heapq.heappop(self.timers)
                if what == "answer":
                    self.answer(cid)
            if ready:
                data, addr = self.sock.recvfrom(65535)
                msg = data.decode("utf-8", "replace")
                if not msg.startswith("SIP/2.0"):
                    try:
                        self.on_request(msg, addr)
                    except Exception as exc:  # a malformed request must not stop the carrier
                        print(f"{self.name}: bad request: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qa.lab.stub_carrier")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--plan")
    s.add_argument("--listen", default="127.0.0.1:5080")
    s.add_argument("--cdr", required=True)
    s.add_argument("--name", default="carrier")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Stub(args.name, host, int(port), Path(args.cdr), args.plan).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())

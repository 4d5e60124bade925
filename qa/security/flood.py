"""Floods: OPTIONS, REGISTER and INVITE floods from one address.

Each flood sends ``security.flood.packets`` requests at ``security.flood.rate`` per second
over UDP from its own attacker address (every request a new transaction) while a
customer places a real call from its usual address. The defence holds when the platform
stops answering the flooder within ``throttled_within_s`` (pike and a ban, a rate limit,
a 503: any of them, as long as the answers stop or turn into refusals), the customer's
call is answered during the flood, and the platform still answers after it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field

from qa.customer.client import place_call
from qa.customer.uac import CallConfig
from qa.security.model import AttackResult, Log
from qa.security.target import SecurityTarget
from qa.security.wire import parse_response, request

#: packets per pacing step (the sender sleeps between bursts to hold the rate)
BURST = 20
#: the customer's call starts this long into the flood, when a throttle has had time to act
CUSTOMER_DELAY_S = 0.5
#: answers that mean "go away" rather than "served": a rate limit's refusal
REFUSALS = (429, 503, 403)
PLACEHOLDER = b"voipqa-flood-00000000"


@dataclass
class Tally:
    """Answers the flooder got, as seconds since the flood began."""

    served: list[float] = field(default_factory=list)
    refused: list[float] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)


def runner(method: str):
    """The attack function for a flood of ``method`` (the registry names three)."""
    def run(target: SecurityTarget, result: AttackResult, log: Log) -> None:
        flood(target, result, log, method)
    run.__doc__ = f"A {method} flood (see the module docstring)."
    return run


def flood(target: SecurityTarget, result: AttackResult, log: Log, method: str) -> None:
    cfg = target.settings.flood
    source = target.take_source()
    template = _template(target, source, method)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    tally = Tally()
    started = time.monotonic()
    stop = threading.Event()
    listener = threading.Thread(target=_listen, args=(sock, tally, started, stop), daemon=True)
    listener.start()
    customer: dict[str, object] = {}
    caller = threading.Thread(target=_customer_call, args=(target, customer), daemon=True)
    caller_started = False
    sent = 0
    try:
        while sent < cfg.packets:
            for _ in range(min(BURST, cfg.packets - sent)):
                sock.sendto(template.replace(PLACEHOLDER, b"voipqa-flood-%08d" % sent), (target.host, target.port))
                sent += 1
            elapsed = time.monotonic() - started
            if not caller_started and elapsed >= CUSTOMER_DELAY_S:
                caller.start()
                caller_started = True
            ahead = sent / cfg.rate - elapsed
            if ahead > 0:
                time.sleep(ahead)
        flood_s = time.monotonic() - started
        time.sleep(0.5)                      # answers still in flight
    finally:
        stop.set()
        listener.join(2)
        sock.close()
    if caller_started:
        caller.join(20)
    recovered = target.options_answered(target.customer_source, timeout=2.0)
    _judge(result, target, method, source, sent, flood_s, tally, customer, recovered)
    log(f"flood-{method.lower()}: {sent} sent in {flood_s:.1f} s from {source}: "
        f"{len(tally.served)} served, {len(tally.refused)} refused; {result.checks[0].detail}")


def _template(target: SecurityTarget, source: str, method: str) -> bytes:
    """One request; the placeholder (fixed length) is swapped for a counter per packet, so
    every packet is a new Call-ID and branch without building a message each time."""
    tag = PLACEHOLDER.decode()
    req = request(method, f"sip:flood@{target.domain}" if method != "REGISTER" else f"sip:{target.domain}",
                  local=(source, 5060), transport="udp", from_user="flood", domain=target.domain,
                  call_id=tag)
    data = bytes(req)
    branch_at = data.index(b";branch=") + len(b";branch=")
    branch_end = data.index(b";", branch_at)
    return data[:branch_at] + b"z9hG4bK-" + PLACEHOLDER + data[branch_end:]


def _listen(sock: socket.socket, tally: Tally, started: float, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            data = sock.recv(65535)
        except (TimeoutError, socket.timeout):
            continue
        except OSError:
            return
        msg = parse_response(data)
        if msg is None or msg.status < 200:
            continue
        at = time.monotonic() - started
        tally.codes[msg.status] = tally.codes.get(msg.status, 0) + 1
        (tally.refused if msg.status in REFUSALS and msg.status != 403 else tally.served).append(at)


def _customer_call(target: SecurityTarget, out: dict[str, object]) -> None:
    user = target.customer
    config = CallConfig(from_user=user, password=target.accounts[user], target_host=target.host,
                        target_port=target.port, to_user=target.settings.numbers.answer, domain=target.domain,
                        local_host=target.customer_source, duration_s=1.0)
    began = time.monotonic()
    try:
        res = asyncio.run(place_call(config, timeout_s=15.0))
    except Exception as exc:  # noqa: BLE001 - the witness reports, the flood goes on
        out.update(ok=False, detail=f"the customer's call raised {exc.__class__.__name__}: {exc}")
        return
    out.update(ok=res.answered_ok, call_id=res.call_id, final_code=res.final_code, setup_ms=res.setup_ms,
               detail=(f"answered ({res.setup_ms:.0f} ms to the 200)" if res.answered_ok and res.setup_ms else
                       f"not answered: {res.final_code} {res.final_reason or ''} {res.error or ''}".strip()),
               took_s=round(time.monotonic() - began, 2))


def _judge(result: AttackResult, target: SecurityTarget, method: str, source: str, sent: int, flood_s: float,
           tally: Tally, customer: dict[str, object], recovered: bool) -> None:
    within = target.settings.flood.throttled_within_s
    last = max(tally.served, default=None)
    late = [t for t in tally.served if t > within]
    result.evidence = {"method": method, "source": source, "sent": sent, "flood_s": round(flood_s, 2),
                       "rate_sent": round(sent / flood_s) if flood_s else None, "served": len(tally.served),
                       "refused": len(tally.refused), "codes": {str(k): v for k, v in sorted(tally.codes.items())},
                       "first_answer_s": round(min(tally.served + tally.refused), 3) if tally.served or tally.refused
                       else None,
                       "last_served_s": round(last, 3) if last is not None else None,
                       "served_after_limit": len(late), "customer": customer, "recovered": recovered}
    if not tally.served and not tally.refused:
        result.error = f"the platform answered none of {sent} {method}s: it was never serving this address"
        return
    result.check("throttled", not late,
                 f"still served {len(late)} {method} requests after {within:g} s (the last at {last:.2f} s of a "
                 f"{flood_s:.1f} s flood at {sent / flood_s:.0f}/s)" if late else
                 f"the flooder was cut off {last if last is not None else 0:.2f} s into the flood "
                 f"({len(tally.served)} of {sent} served)")
    result.check("legitimate-call", bool(customer.get("ok")),
                 f"a customer's call during the flood was {customer.get('detail', 'never placed')}")
    result.check("recovered", recovered,
                 "the platform answers again after the flood" if recovered else
                 "the platform answered no OPTIONS after the flood")

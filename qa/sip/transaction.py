"""Client transactions (RFC 3261 §17.1), sans-I/O: the retransmission engine of any UAC
(the Python customer's requests and the carrier's own BYE). Server transactions are
:mod:`qa.sip.server`.

A :class:`ClientTransaction` owns one request. ``start()`` sends it and arms its timers;
``on_response`` and ``on_timer`` return actions for the I/O shell plus what the
transaction user (TU: :mod:`qa.customer.uac`, :mod:`qa.carrier.uas`) must learn. Timer keys are
``(timer letter, branch, method)``.

INVITE (§17.1.1): Timer A retransmits over UDP from T1, doubling (§17.1.1.2); Timer B
(64*T1) times out a request that got no response at all; a 3xx-6xx is ACKed inside the
transaction (§17.1.1.3) and the ACK repeated for every retransmitted final during Timer D.
Non-INVITE (§17.1.2): Timer E retransmits over UDP from T1 doubling up to T2 (T2 once a
provisional came); Timer F (64*T1) times out; Timer K absorbs retransmitted finals.
Over TCP/TLS nothing is retransmitted (§17.1.1.2, §17.1.2.2) and D/K are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.sip.headers import Headers
from qa.sip.message import Request, Response
from qa.sip.timers import T1, T2, T4, Action, Addr, CancelTimer, Send, StartTimer

__all__ = ["Addr", "Action", "CancelTimer", "ClientTransaction", "Send", "StartTimer",
           "T1", "T2", "T4", "failure_ack"]

TIMER_D_UDP = 32.0


def failure_ack(request: Request, response: Response) -> Request:
    """The ACK for a non-2xx final response to ``request`` (RFC 3261 §17.1.1.3).

    Same Request-URI, Call-ID, From, CSeq number and top Via (so the same branch) as the
    INVITE, To from the response (with its tag), the INVITE's Route headers.
    """
    src = request.headers
    headers = Headers([("Via", src.get("via") or ""), ("Max-Forwards", "70")])
    for value in src.lines("route"):
        headers.add("Route", value)
    headers.add("From", src.get("from") or "")
    headers.add("To", response.headers.get("to") or "")
    headers.add("Call-ID", src.get("call-id") or "")
    headers.add("CSeq", f"{request.cseq[0]} ACK")
    return Request("ACK", request.uri, headers)


@dataclass
class ClientTransaction:
    """One client transaction (RFC 3261 §17.1), INVITE or non-INVITE, keyed by its branch."""

    request: Request
    dest: Addr
    reliable: bool
    t1: float = T1
    t2: float = T2
    state: str = "calling"          # calling|trying -> proceeding -> completed -> terminated
    interval: float = 0.0
    retransmissions: int = 0
    ack: bytes | None = None
    _data: bytes = field(default=b"", repr=False)
    transport: str | None = None    # named in every Send (the carrier's "udp"/"tcp"); None: the shell's one
    t4: float = T4

    @property
    def branch(self) -> str:
        return self.request.top_via.branch or ""

    @property
    def key(self) -> tuple[str, str]:
        """(branch, method): a CANCEL shares its INVITE's branch (§9.1, §17.1.3)."""
        return (self.branch, self.request.method)

    @property
    def invite(self) -> bool:
        return self.request.method == "INVITE"

    def _key(self, timer: str) -> tuple[str, str, str]:
        return (timer, *self.key)

    def start(self) -> list[Action]:
        """Send the request; arm A/E (unreliable transports only) and B/F (§17.1.1.2, §17.1.2.2)."""
        self._data = bytes(self.request)
        self.state = "calling" if self.invite else "trying"
        self.interval = self.t1
        out: list[Action] = [Send(self._data, self.dest, self.transport)]
        if not self.reliable:
            out.append(StartTimer(self._key("A" if self.invite else "E"), self.t1))
        out.append(StartTimer(self._key("B" if self.invite else "F"), 64 * self.t1))
        return out

    @property
    def live(self) -> bool:
        """Still waiting for a final response."""
        return self.state in ("calling", "trying", "proceeding")

    # ---------------------------------------------------------------- responses
    def on_response(self, resp: Response) -> tuple[list[Action], bool]:
        """(actions, pass the response to the TU?) — retransmitted finals are absorbed."""
        if resp.status < 200:
            if not self.live:
                return [], False
            self.state = "proceeding"
            return ([CancelTimer(self._key("A"))] if self.invite else []), True
        if not self.live:
            return self._retransmitted_final(resp)
        stop = [CancelTimer(self._key(t)) for t in (("A", "B") if self.invite else ("E", "F"))]
        if self.invite and resp.status < 300:
            self.state = "terminated"          # 2xx: the TU ACKs it (§13.2.2.4, §17.1.1.2)
            return stop, True
        self.state = "completed"
        return stop + self._complete(resp), True

    def _complete(self, resp: Response) -> list[Action]:
        linger = (TIMER_D_UDP if self.invite else self.t4) if not self.reliable else 0.0
        timer = StartTimer(self._key("D" if self.invite else "K"), linger)
        if not self.invite:
            return [timer]
        self.ack = bytes(failure_ack(self.request, resp))
        return [Send(self.ack, self.dest, self.transport), timer]

    def _retransmitted_final(self, resp: Response) -> tuple[list[Action], bool]:
        if self.invite and resp.status >= 300 and self.ack is not None and self.state == "completed":
            return [Send(self.ack, self.dest, self.transport)], False          # §17.1.1.2: ACK every copy
        if self.invite and 200 <= resp.status < 300:
            return [], True                                      # 2xx copies go to the TU
        return [], False

    # ---------------------------------------------------------------- timers
    def on_timer(self, timer: str) -> tuple[list[Action], bool]:
        """(actions, timed out?) for Timer A/B/D (INVITE) or E/F/K (non-INVITE)."""
        if timer in ("D", "K"):
            self.state = "terminated"
            return [], False
        if timer in ("B", "F"):
            if self.state in ("calling", "trying") or (timer == "F" and self.live):
                self.state = "terminated"
                return [CancelTimer(self._key("A" if self.invite else "E"))], True
            return [], False
        return self._retransmit(timer), False

    def _retransmit(self, timer: str) -> list[Action]:
        if timer == "A" and self.state == "calling":
            self.interval *= 2                                   # §17.1.1.2: no cap for A
        elif timer == "E" and self.state in ("trying", "proceeding"):
            self.interval = self.t2 if self.state == "proceeding" else min(2 * self.interval, self.t2)
        else:
            return []
        self.retransmissions += 1
        return [Send(self._data, self.dest, self.transport), StartTimer(self._key(timer), self.interval)]

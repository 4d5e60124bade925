"""Server transactions (RFC 3261 §17.2), sans-I/O: how a UAS (the mock carrier) answers, so a
retransmitted request gets again the response it already got and a final response lost on
UDP is sent again. The client side is :mod:`qa.sip.transaction`.

Matching (§17.2.3): :func:`server_key` is the top Via's branch, sent-by and the method, ACK
taking its INVITE's; a CANCEL is a transaction of its own (§9.2) and :func:`invite_key` names
the INVITE it (or an ACK) refers to. Requests of RFC 2543 peers (no ``z9hG4bK`` branch) are
matched on Call-ID, From tag, CSeq number and sent-by instead.

:class:`InviteServerTransaction` (§17.2.1): the TU's responses go out through ``respond``;
a retransmitted INVITE is answered with the last response (``on_retransmission``); a 3xx-6xx
is retransmitted over UDP by Timer G from T1 doubling to T2 until the ACK (``on_ack``), Timer
H gives up at 64*T1, Timer I (T4; zero over TCP) absorbs ACK copies. A 2xx is retransmitted
the same way until its ACK: that is the UAS core's duty (§13.3.1.4), done here so both the
INVITE and a re-INVITE share it; the transaction stays Accepted meanwhile (RFC 6026 §7.1)
and Timer L (64*T1) reports a 2xx never ACKed, upon which the TU should send a BYE.

:class:`NonInviteServerTransaction` (§17.2.2): the final response is kept and re-sent for
every retransmitted request until Timer J (64*T1; zero over TCP) fires.

Both hand their shell :class:`~qa.sip.timers.Send`, ``StartTimer`` and ``CancelTimer``
actions; timer keys are ``(letter, transaction key)``, and ``on_timer(letter)`` returns the
actions plus what the TU must learn: ``"timeout"`` (Timer H), ``"no-ack"`` (Timer L) or
``"terminated"`` (Timers I and J), else None. Over TCP/TLS nothing is retransmitted
(§17.2.1, §17.2.2). The transaction user decides when a transaction is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qa.sip.message import Request, Response
from qa.sip.responses import MAGIC_COOKIE
from qa.sip.timers import T1, T2, T4, Action, Addr, CancelTimer, Send, StartTimer

__all__ = ["InviteServerTransaction", "NonInviteServerTransaction", "invite_key", "server_key"]


def server_key(request: Request) -> tuple:
    """The server transaction ``request`` belongs to (§17.2.3); an ACK maps to its INVITE's."""
    via = request.top_via
    branch = via.branch or ""
    sent_by = (via.host.lower(), via.port)
    method = "INVITE" if request.method == "ACK" else request.method
    if branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, sent_by, method)
    # RFC 2543 peers (§17.2.3, backwards compatibility): Call-ID, From tag, CSeq number, top Via
    return ("2543", request.call_id, request.from_tag or "", request.cseq[0], sent_by, method)


def invite_key(request: Request) -> tuple:
    """The INVITE transaction a CANCEL (§9.2) or an ACK (§17.2.1) refers to."""
    return server_key(request)[:-1] + ("INVITE",)


@dataclass
class _ServerTransaction:
    request: Request
    peer: Addr                        # where the request came from: the responses go there (§18.2.2)
    transport: str                    # "udp" | "tcp" | ...: only UDP is unreliable
    t1: float = T1
    t2: float = T2
    t4: float = T4
    state: str = ""
    response: bytes | None = field(default=None, repr=False)   # the last response sent
    interval: float = 0.0
    retransmissions: int = 0          # responses re-sent by a timer
    absorbed: int = 0                 # request copies absorbed
    key: tuple = field(init=False)

    def __post_init__(self) -> None:
        self.key = server_key(self.request)

    @property
    def reliable(self) -> bool:
        return self.transport.lower() != "udp"

    def timer(self, letter: str) -> tuple[str, tuple]:
        """The key of this transaction's timer ``letter``, as handed to StartTimer."""
        return (letter, self.key)

    def _send(self, response: Response) -> Send:
        self.response = bytes(response)
        return Send(self.response, self.peer, self.transport)

    def on_retransmission(self, peer: Addr | None = None, transport: str | None = None) -> list[Action]:
        """A copy of the request: absorbed, the last response (if any) sent again, back where the
        copy came from (§17.2.1 and §17.2.2 in Proceeding and Completed; an INVITE's also in
        Accepted and Confirmed, while the TU keeps the transaction)."""
        self.absorbed += 1
        if self.state == "terminated" or self.response is None:
            return []
        return [Send(self.response, peer or self.peer, transport or self.transport)]

    def _retransmit(self, letter: str) -> list[Action]:
        """Timer G (or the 2xx timer) fired: send the response again, T1 doubling up to T2."""
        if self.response is None:
            return []
        self.interval = min(2 * self.interval, self.t2)
        self.retransmissions += 1
        return [Send(self.response, self.peer, self.transport), StartTimer(self.timer(letter), self.interval)]


@dataclass
class InviteServerTransaction(_ServerTransaction):
    """One INVITE server transaction (§17.2.1), RFC 6026's Accepted state included.

    proceeding -> accepted (2xx) | completed (3xx-6xx) -> confirmed (ACK; or, for a 2xx, Timer
    L or :meth:`stop`) -> terminated (Timer H or I). Until the TU forgets it, a retransmitted
    INVITE gets the last response again, in any state but terminated.
    """

    state: str = "proceeding"

    def respond(self, response: Response) -> list[Action]:
        """Send the TU's response: a 1xx keeps Proceeding; a 2xx arms its retransmission (UDP) and
        Timer L, a 3xx-6xx Timers G (UDP) and H (§17.2.1). Nothing once a final was sent."""
        if self.state != "proceeding":
            return []
        out: list[Action] = [self._send(response)]
        if response.status < 200:
            return out
        self.interval = self.t1
        self.state, (again, limit) = (("accepted", ("2xx", "L")) if response.status < 300
                                      else ("completed", ("G", "H")))
        if not self.reliable:
            out.append(StartTimer(self.timer(again), self.t1))
        out.append(StartTimer(self.timer(limit), 64 * self.t1))
        return out

    def on_ack(self) -> list[Action]:
        """The ACK: for a 3xx-6xx, Confirmed and Timer I (§17.2.1); for a 2xx (its own transaction,
        matched by the TU on dialog and CSeq, §13.3.1.4), the 2xx is no longer retransmitted."""
        if self.state == "completed":
            self.state = "confirmed"
            return [CancelTimer(self.timer("G")), CancelTimer(self.timer("H")),
                    StartTimer(self.timer("I"), 0.0 if self.reliable else self.t4)]
        return self.stop()

    def stop(self) -> list[Action]:
        """The TU ends the dialog before the 2xx's ACK came (a BYE): stop retransmitting the 2xx."""
        if self.state != "accepted":
            return []
        self.state = "confirmed"
        return [CancelTimer(self.timer("2xx")), CancelTimer(self.timer("L"))]

    def on_timer(self, letter: str) -> tuple[list[Action], str | None]:
        """(actions, event) for Timer G, H, I, L or the 2xx retransmission timer."""
        if (letter, self.state) in (("G", "completed"), ("2xx", "accepted")):
            return self._retransmit(letter), None
        if letter == "H" and self.state == "completed":
            self.state = "terminated"                 # never ACKed (§17.2.1): the TU is told
            return [CancelTimer(self.timer("G"))], "timeout"
        if letter == "L" and self.state == "accepted":
            self.state = "confirmed"                  # §13.3.1.4: confirmed, the session SHOULD end
            return [CancelTimer(self.timer("2xx"))], "no-ack"
        if letter == "I" and self.state == "confirmed":
            self.state = "terminated"
            return [], "terminated"
        return [], None


@dataclass
class NonInviteServerTransaction(_ServerTransaction):
    """One non-INVITE server transaction (§17.2.2): trying -> proceeding -> completed -> terminated."""

    state: str = "trying"

    def respond(self, response: Response) -> list[Action]:
        """Send the TU's response; a final one is kept for retransmissions until Timer J."""
        if self.state not in ("trying", "proceeding"):
            return []
        out: list[Action] = [self._send(response)]
        if response.status < 200:
            self.state = "proceeding"
            return out
        self.state = "completed"
        out.append(StartTimer(self.timer("J"), 0.0 if self.reliable else 64 * self.t1))
        return out

    def on_timer(self, letter: str) -> tuple[list[Action], str | None]:
        """(actions, event): Timer J ends the transaction."""
        if letter == "J" and self.state == "completed":
            self.state = "terminated"
            return [], "terminated"
        return [], None

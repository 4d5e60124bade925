"""Server transactions (RFC 3261 §17.2, qa.sip.server) on a fake clock: what goes on the
wire, when, and what the transaction user hears."""

from __future__ import annotations

import pytest

from qa.sip import Request, make_response, parse_message
from qa.sip.server import InviteServerTransaction, NonInviteServerTransaction, invite_key, server_key
from qa.sip.timers import CancelTimer, Send, StartTimer
from qa.sip.transaction import ClientTransaction

PEER = ("127.0.0.1", 5060)


def request(method: str = "INVITE", *, branch: str = "z9hG4bK-1", cseq_method: str | None = None,
            transport: str = "UDP", host: str = "127.0.0.1") -> Request:
    msg = parse_message((
        f"{method} sip:1555@127.0.0.1:5070 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {host}:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=ft\r\nTo: <sip:1555@example.com>\r\n"
        f"Call-ID: c1@test\r\nCSeq: 1 {cseq_method or method}\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


class Clock:
    """The shell: runs a transaction's actions, fires its timers, records what it sent."""

    def __init__(self, tx) -> None:
        self.tx = tx
        self.now = 0.0
        self.timers: dict = {}
        self.sent: list[tuple[float, int, tuple, str | None]] = []    # (time, status, addr, transport)
        self.events: list[tuple[float, str]] = []

    def run(self, actions) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.sent.append((round(self.now, 3), parse_message(a.data).status, a.addr, a.transport))
            elif isinstance(a, StartTimer):
                assert a.key[1] == self.tx.key
                self.timers[a.key[0]] = self.now + a.delay
            elif isinstance(a, CancelTimer):
                self.timers.pop(a.key[0], None)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (due := [(t, k) for k, t in self.timers.items() if t <= end + 1e-9]):
            self.now, letter = min(due)
            del self.timers[letter]
            actions, event = self.tx.on_timer(letter)
            self.run(actions)
            if event:
                self.events.append((round(self.now, 3), event))
        self.now = end

    def times(self, status: int) -> list[float]:
        return [t for t, s, _, _ in self.sent if s == status]


def respond(clock: Clock, status: int) -> None:
    clock.run(clock.tx.respond(make_response(clock.tx.request, status, to_tag="tt")))


# ------------------------------------------------------------------------ matching (§17.2.3)

def test_ack_matches_the_invite_cancel_has_its_own_transaction():
    inv = request()
    assert server_key(request("ACK")) == server_key(inv) == ("3261", "z9hG4bK-1", ("127.0.0.1", 5060), "INVITE")
    assert server_key(request("CANCEL")) != server_key(inv) == invite_key(request("CANCEL"))
    assert server_key(request(branch="z9hG4bK-2")) != server_key(inv)                 # another branch
    assert server_key(request(host="10.0.0.1")) != server_key(inv)                    # another sent-by
    assert server_key(request("BYE")) != server_key(request("OPTIONS"))               # another method


def test_rfc2543_requests_match_on_call_id_from_tag_and_cseq():
    assert server_key(request(branch="1")) == ("2543", "c1@test", "ft", 1, ("127.0.0.1", 5060), "INVITE")
    assert invite_key(request("CANCEL", branch="1")) == server_key(request(branch="1"))


# ------------------------------------------------------------------------ INVITE (§17.2.1)

def test_a_retransmitted_invite_gets_the_last_response_again():
    c = Clock(InviteServerTransaction(request(), PEER, "udp"))
    assert c.tx.on_retransmission() == [] and c.tx.absorbed == 1          # nothing sent yet: absorbed
    respond(c, 100)
    respond(c, 180)
    c.run(c.tx.on_retransmission(("127.0.0.1", 5999), "udp"))
    assert [s for _, s, _, _ in c.sent] == [100, 180, 180]
    assert c.sent[-1][2:] == (("127.0.0.1", 5999), "udp")                 # back where the copy came from
    respond(c, 486)
    c.run(c.tx.on_retransmission())
    assert [s for _, s, _, _ in c.sent][-2:] == [486, 486] and c.tx.absorbed == 3
    respond(c, 200)                                                       # a final after a final: nothing
    assert c.times(200) == []


def test_non_2xx_final_retransmitted_t1_doubling_to_t2_until_the_ack():
    c = Clock(InviteServerTransaction(request(), PEER, "udp"))
    respond(c, 486)
    c.advance(10)
    assert c.times(486) == [0.0, 0.5, 1.5, 3.5, 7.5]                      # Timer G: 0.5, 1, 2, 4, 4 ...
    c.run(c.tx.on_ack())
    assert c.tx.state == "confirmed" and set(c.timers) == {"I"}
    c.advance(4.9)
    assert c.times(486) == [0.0, 0.5, 1.5, 3.5, 7.5] and not c.events     # Timer I absorbs ACK copies
    assert c.tx.on_ack() == []
    c.advance(0.2)
    assert c.events == [(15.0, "terminated")] and c.tx.state == "terminated"     # T4 after the ACK
    assert c.tx.on_retransmission() == []


def test_timer_h_gives_up_on_a_final_never_acked():
    c = Clock(InviteServerTransaction(request(), PEER, "udp"))
    respond(c, 503)
    c.advance(60)
    assert c.times(503) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert c.events == [(32.0, "timeout")] and c.tx.state == "terminated" and not c.timers
    assert c.tx.retransmissions == 10


def test_custom_timer_values():
    c = Clock(InviteServerTransaction(request(), PEER, "udp", t1=0.1, t2=0.4, t4=1.0))
    respond(c, 404)
    c.advance(7)
    assert c.times(404)[:6] == [0.0, 0.1, 0.3, 0.7, 1.1, 1.5] and c.events == [(6.4, "timeout")]


@pytest.mark.parametrize("status, limit, event", [(486, "H", "timeout"), (200, "L", "no-ack")])
def test_nothing_is_retransmitted_over_tcp(status, limit, event):
    c = Clock(InviteServerTransaction(request(transport="TCP"), PEER, "tcp"))
    respond(c, status)
    assert set(c.timers) == {limit}
    c.advance(60)
    assert c.times(status) == [0.0] and c.sent[0][3] == "tcp" and c.events == [(32.0, event)]


def test_tcp_ack_ends_the_transaction_at_once():
    c = Clock(InviteServerTransaction(request(transport="TCP"), PEER, "tcp"))
    respond(c, 486)
    c.run(c.tx.on_ack())
    c.advance(0)
    assert c.events == [(0.0, "terminated")]


def test_2xx_retransmitted_until_its_ack_then_never_again():
    c = Clock(InviteServerTransaction(request(), PEER, "udp"))
    respond(c, 200)
    assert c.tx.state == "accepted"
    c.advance(4)
    assert c.times(200) == [0.0, 0.5, 1.5, 3.5]
    c.run(c.tx.on_retransmission())                                       # the INVITE again: the 2xx again
    c.run(c.tx.on_ack())
    c.advance(60)
    assert c.times(200) == [0.0, 0.5, 1.5, 3.5, 4.0] and c.events == [] and c.tx.state == "confirmed"


def test_2xx_never_acked_reports_no_ack_at_64_t1():
    c = Clock(InviteServerTransaction(request(), PEER, "udp"))
    respond(c, 200)
    c.advance(40)
    assert c.times(200) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert c.events == [(32.0, "no-ack")] and c.tx.state == "confirmed"   # §13.3.1.4: now BYE it


def test_stop_ends_2xx_retransmission():
    c = Clock(InviteServerTransaction(request(), PEER, "udp"))
    respond(c, 200)
    c.advance(1)
    c.run(c.tx.stop())
    c.advance(40)
    assert c.times(200) == [0.0, 0.5] and not c.events and not c.timers


# ------------------------------------------------------------------------ non-INVITE (§17.2.2)

def test_timer_j_keeps_the_response_for_retransmissions():
    c = Clock(NonInviteServerTransaction(request("BYE"), PEER, "udp"))
    assert c.tx.on_retransmission() == []                                 # Trying: absorbed
    respond(c, 200)
    assert c.tx.state == "completed" and c.timers == {"J": 32.0}
    c.advance(31.9)
    c.run(c.tx.on_retransmission())
    assert c.times(200) == [0.0, 31.9]                                    # no timer retransmission
    c.advance(0.2)
    assert c.events == [(32.0, "terminated")] and c.tx.on_retransmission() == []
    assert c.tx.respond(make_response(c.tx.request, 500)) == []


def test_timer_j_is_zero_over_tcp_and_a_provisional_is_resent():
    c = Clock(NonInviteServerTransaction(request("OPTIONS", transport="TCP"), PEER, "tcp"))
    respond(c, 100)
    c.run(c.tx.on_retransmission())
    assert c.tx.state == "proceeding" and c.times(100) == [0.0, 0.0]
    respond(c, 200)
    assert c.timers == {"J": 0.0}
    c.advance(0)
    assert c.events == [(0.0, "terminated")]


# ------------------------------------------------------------------------ the carrier's BYE

def test_a_client_transaction_names_its_transport_in_every_send():
    tx = ClientTransaction(request("BYE"), ("10.0.0.9", 5062), False, transport="udp")
    assert {a.transport for a in tx.start() if isinstance(a, Send)} == {"udp"}
    assert ClientTransaction(request("BYE"), PEER, True).start()[0].transport is None   # the customer's

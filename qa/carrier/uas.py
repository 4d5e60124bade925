"""The mock carrier's SIP logic as a sans-I/O state machine (DESIGN §10).

Events in::

    carrier.on_message(data, peer, transport, now)   a SIP message arrived
    carrier.on_timer(key, now)                        a timer started by StartTimer fired
    carrier.media_ready(call, address, port, now)     the shell opened the RTP port asked for
    carrier.media_failed(call, now)                   ... or could not
    carrier.on_dtmf(call, digit, now, via)            the media endpoint heard a digit
                                                      (via "rfc4733" or "inband")
    carrier.shutdown(now)                             stop: end every call (carrier BYE / 487)

Actions out (returned as a list, to be executed in order by the I/O shell)::

    Send(data, addr, transport)    put bytes on the wire ("udp"/"tcp")
    StartTimer(key, delay)         call on_timer(key) after delay s (replaces a timer of that key)
    CancelTimer(key)
    OpenMedia(call, spec)          bind an RTP port for the call (``qa.carrier.media.MediaSpec``:
                                   echo/silence/tone, codec, payload types, remote), then call
                                   media_ready
    StartMedia(call)               begin generating RTP (silence/tone): at the 183 with SDP
                                   (early media) or at the 200
    StopMedia(call)                stop sending RTP (keep receiving/counting)
    CloseMedia(call)               close the RTP port
    WriteCdr(call, record)         the call ended: write its carrier CDR line (a
                                   ``qa.carrier.cdr.CarrierCdr``); the shell fills in
                                   rtp_packets_in / _out and rtp_payload_types_in / _out from
                                   its media endpoint

RFC 3261 behaviour implemented here: 100 Trying at once; 180 (or 183 with SDP); a BYE when a
2xx is never ACKed; merged requests -> 482 (§8.2.2.2); CANCEL (§9.2); BYE both ways (the
carrier's BYE built per §12.2.1.1); OPTIONS 200; in-dialog INFO (DTMF) 200; requests for an
unknown dialog 481; other methods outside a dialog 405. The transactions are ``qa.sip``'s:
every INVITE and re-INVITE has an :class:`~qa.sip.server.InviteServerTransaction` (retransmitted
INVITEs absorbed with the last response re-sent; 2xx and 3xx-6xx retransmitted over UDP until
the ACK, §13.3.1.4, §17.2.1), every answered non-INVITE request a
:class:`~qa.sip.server.NonInviteServerTransaction` (its response kept for retransmissions until
Timer J), and the carrier's BYE a :class:`~qa.sip.transaction.ClientTransaction` (§17.1.2).

A ``blackhole`` route answers nothing at all (not even 100 Trying, nor the CANCEL): INVITE
retransmissions are absorbed; the CDR line (final_code null) is written when the CANCEL
comes (ended_by "cancel") or 64*T1 after the INVITE, when the caller's Timer B has given up
(ended_by "timeout"). Routes restricted to ``carriers`` apply only when this carrier's name
is one of them (``NumberPlan.lookup(number, carrier)``).

Length: the whole carrier's SIP behaviour per number plan route (ring, answer, busy,
blackhole, early media, hang up, DTMF, re-INVITE) on one call model, with the carrier's
own helpers for URIs and SDP answers; the transactions live in ``qa.sip``, the number
plan, media and CDR models in their own modules.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Hashable

from qa.carrier.cdr import CarrierCdr, DtmfEvent
from qa.carrier.media import MediaSpec
from qa.carrier.plan import NumberPlan, Route
from qa.errors import ParseError
from qa.sip.info import info_digit
from qa.sip.server import InviteServerTransaction, NonInviteServerTransaction, invite_key, server_key
from qa.sip.timers import T1, T2, T4, Addr, CancelTimer, Send, StartTimer
from qa.sip.transaction import ClientTransaction
from qa.sdp import SessionDescription, negotiate
from qa.sip import (Headers, Request, Response, make_response, new_branch, new_tag, parse_message,
                    parse_name_addr, parse_uri)

log = logging.getLogger(__name__)

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
USER_AGENT = "voipqa-carrier"


# ------------------------------------------------------------------------- actions

@dataclass(frozen=True)
class OpenMedia:
    call: str
    spec: MediaSpec

    @property
    def echo(self) -> bool:
        return self.spec.echo

    @property
    def dtmf_pt(self) -> int | None:
        return self.spec.dtmf_pt


@dataclass(frozen=True)
class StartMedia:
    call: str


@dataclass(frozen=True)
class StopMedia:
    call: str


@dataclass(frozen=True)
class CloseMedia:
    call: str


@dataclass(frozen=True)
class WriteCdr:
    call: str
    record: CarrierCdr


Action = Send | StartTimer | CancelTimer | OpenMedia | StartMedia | StopMedia | CloseMedia | WriteCdr


# ------------------------------------------------------------------------- helpers

_USER_RE = re.compile(r"^(?:sips?|tel):([^@;?>]*)", re.I)


def _uri_of(value: str | None) -> str:
    """The URI inside a name-addr / addr-spec header value ("" if unparseable)."""
    if not value:
        return ""
    try:
        na = parse_name_addr(value)
        return str(na.uri)
    except (ParseError, ValueError, AttributeError):
        m = re.search(r"<([^>]*)>", value)
        return (m.group(1) if m else value.split(";")[0]).strip()


def _user_of(uri: str) -> str:
    m = _USER_RE.match(uri.strip())
    if not m:
        return ""
    user = m.group(1)
    if uri.lower().startswith("tel:"):
        user = user.split(";")[0]
    return user.split(":")[0]      # drop a password


def _number_of(user: str) -> str:
    """The digits routed on: user part without a leading '+' or visual separators."""
    return re.sub(r"[\-.() ]", "", user)


def _hostport(uri: str, default_transport: str) -> tuple[Addr, str] | None:
    """Where to send a request for ``uri`` (§8.1.2 simplified: no DNS SRV) and over what."""
    try:
        u = parse_uri(uri)
    except ParseError:
        return None
    transport = (u.params.get("transport") or default_transport).lower()
    port = u.port or (5061 if u.scheme == "sips" else 5060)
    return (u.host, port), transport


# ------------------------------------------------------------------------- the call

@dataclass
class Call:
    key: str
    invite: Request
    peer: Addr
    transport: str
    route: Route
    received: float
    local_tag: str
    ist: InviteServerTransaction   # the INVITE's server transaction (§17.2.1)
    state: str = "proceeding"   # proceeding | waiting_media | ringing | accepted | confirmed |
    #                             completed (non-2xx sent, waiting ACK) | bye_sent | ended
    final_code: int | None = None
    answered: float | None = None
    ended: float | None = None
    ended_by: str | None = None
    offer: Any = None
    answer: Any = None
    answer_sdp: bytes = b""
    codec: str = ""
    dtmf_pt: int | None = None
    dtmf: list[str] = field(default_factory=list)
    dtmf_events: list[DtmfEvent] = field(default_factory=list)
    media_open: bool = False
    pending_bye: bool = False
    # dialog state (§12.1.1)
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    bye: ClientTransaction | None = None        # our BYE (§15.1.1)
    cdr_written: bool = False
    re_ist: InviteServerTransaction | None = None   # the last re-INVITE answered, until its ACK

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def remote_tag(self) -> str:
        return self.invite.from_tag or ""

    @property
    def dialog_id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)


# ------------------------------------------------------------------------- the machine

class Carrier:
    """The carrier's UAS core: the number plan applied to SIP messages, no I/O."""

    def __init__(self, plan: NumberPlan, name: str, local: Addr, *,
                 t1: float = T1, t2: float = T2, t4: float = T4,
                 media_address: str | None = None) -> None:
        self.plan = plan
        self.name = name
        self.local = local
        self.t1, self.t2, self.t4 = t1, t2, t4
        self.media_address = media_address or local[0]
        self.calls: dict[str, Call] = {}
        self._by_tx: dict[tuple, Call] = {}          # the INVITE's transaction key -> call
        self._by_reinvite: dict[tuple, Call] = {}    # the unACKed re-INVITE's -> call
        self._by_dialog: dict[tuple[str, str, str], Call] = {}
        self._by_merge: dict[tuple, Call] = {}
        self._by_bye: dict[str, Call] = {}           # our BYE's branch -> call
        self._nist: dict[tuple, NonInviteServerTransaction] = {}
        self._counter = itertools.count(1)
        self.stats = {"invites": 0, "retransmissions_absorbed": 0, "parse_errors": 0}

    # ------------------------------------------------------------ entry points
    def on_message(self, data: bytes, peer: Addr, transport: str, now: float) -> list[Action]:
        try:
            msg = parse_message(data)
        except ParseError as exc:
            self.stats["parse_errors"] += 1
            log.info("unparseable message from %s:%s: %s", peer[0], peer[1], exc)
            return []
        transport = transport.lower()
        if isinstance(msg, Response):
            return self._on_response(msg, now)
        try:
            return self._on_request(msg, peer, transport, now)
        except ParseError as exc:     # a header the logic needed was malformed
            self.stats["parse_errors"] += 1
            log.info("bad %s from %s:%s: %s", msg.method, peer[0], peer[1], exc)
            if msg.method == "ACK":
                return []
            return self._reply_plain(msg, peer, transport, 400, f"Bad Request ({exc.reason})"[:80])

    def on_timer(self, key: Hashable, now: float) -> list[Action]:
        kind, ref = key[0], key[1]
        if len(key) == 3:                 # our BYE's client transaction: (letter, branch, method)
            return self._bye_timer(kind, ref, now)
        if isinstance(ref, tuple):        # a server transaction's: (letter, transaction key)
            return self._server_timer(kind, ref, now)
        call = self.calls.get(ref)
        if call is None:
            return []
        handler = getattr(self, f"_timer_{kind}", None)
        return handler(call, now) if handler else []

    def media_ready(self, call_key: str, address: str, port: int, now: float) -> list[Action]:
        call = self.calls.get(call_key)
        if call is None or call.state != "waiting_media":
            return [CloseMedia(call_key)] if call is None else []
        call.media_open = True
        return self._proceed_with_media(call, address, port, now)

    def media_failed(self, call_key: str, now: float) -> list[Action]:
        call = self.calls.get(call_key)
        if call is None or call.state != "waiting_media":
            return []
        return self._final_failure(call, 500, "Server Internal Error (no media port)", now,
                                   ended_by="carrier")

    def on_dtmf(self, call_key: str, digit: str, now: float, via: str = "rfc4733") -> list[Action]:
        call = self.calls.get(call_key)
        if call is not None:
            _heard(call, digit, via, now)
        return []

    def shutdown(self, now: float) -> list[Action]:
        """End every live call: BYE for answered ones, 487/480 for pending ones."""
        out: list[Action] = []
        for call in list(self.calls.values()):
            if call.state in ("confirmed", "accepted"):
                out += self._send_bye(call, now, ended_by="carrier")
            elif call.state in ("proceeding", "waiting_media", "ringing"):
                out += self._final_failure(call, 480, "Temporarily Unavailable", now, ended_by="carrier")
            elif not call.cdr_written:
                out += self._end(call, now, call.ended_by or "carrier")
        return out

    # ------------------------------------------------------------ requests
    def _on_request(self, req: Request, peer: Addr, transport: str, now: float) -> list[Action]:
        method = req.method
        if method == "ACK":
            return self._on_ack(req, now)
        if method == "INVITE":
            key = server_key(req)
            call = self._by_tx.get(key) or self._by_reinvite.get(key)
            tx = self._invite_tx(call, key)
            if tx is not None:             # retransmission: absorb, re-send the last response
                self.stats["retransmissions_absorbed"] += 1
                return tx.on_retransmission(peer, transport)
            if req.to_tag:
                call = self._by_dialog.get((req.call_id, req.to_tag, req.from_tag or ""))
                if call is None:
                    return self._reply(req, peer, transport, 481, "Call/Transaction Does Not Exist")
                return self._on_reinvite(call, req, peer, transport, now)
            return self._on_invite(req, peer, transport, now)
        # non-INVITE: a retransmission of a request we already answered?
        nist = self._nist.get(server_key(req))
        if nist is not None:
            self.stats["retransmissions_absorbed"] += 1
            return nist.on_retransmission(peer, transport)
        if method == "CANCEL":
            return self._on_cancel(req, peer, transport, now)
        if req.to_tag:
            call = self._by_dialog.get((req.call_id, req.to_tag, req.from_tag or ""))
            if call is None or call.state == "ended":
                return self._reply(req, peer, transport, 481, "Call/Transaction Does Not Exist")
            if method == "BYE":
                return self._on_bye(call, req, peer, transport, now)
            if method == "OPTIONS":
                return self._reply_options(req, peer, transport)
            if method == "INFO":
                digit = info_digit(req.headers.get("Content-Type"), req.body)
                if digit:
                    _heard(call, digit, "info", now)
                return self._reply(req, peer, transport, 200, "OK")
            return self._reply(req, peer, transport, 405, "Method Not Allowed", [("Allow", ALLOW)])
        if method == "OPTIONS":
            return self._reply_options(req, peer, transport)
        if method == "BYE":
            return self._reply(req, peer, transport, 481, "Call/Transaction Does Not Exist")
        return self._reply(req, peer, transport, 405, "Method Not Allowed", [("Allow", ALLOW)])

    @staticmethod
    def _invite_tx(call: Call | None, key: tuple) -> InviteServerTransaction | None:
        """The call's INVITE or re-INVITE server transaction of that key."""
        if call is None:
            return None
        return next((tx for tx in (call.ist, call.re_ist) if tx is not None and tx.key == key), None)

    def _ist(self, req: Request, peer: Addr, transport: str) -> InviteServerTransaction:
        return InviteServerTransaction(req, peer, transport, self.t1, self.t2, self.t4)

    # -- INVITE ---------------------------------------------------------------------
    def _on_invite(self, req: Request, peer: Addr, transport: str, now: float) -> list[Action]:
        merge_key = (req.call_id, req.from_tag or "", req.cseq[0])
        if merge_key in self._by_merge:   # same request via another path (§8.2.2.2)
            return self._reply(req, peer, transport, 482, "Loop Detected")
        self.stats["invites"] += 1
        ruri = str(req.uri)
        number = _number_of(_user_of(ruri))
        route = self.plan.route_for(number, self.name)
        key = f"c{next(self._counter)}"
        call = Call(key=key, invite=req, peer=peer, transport=transport, route=route,
                    received=now, local_tag=new_tag(), ist=self._ist(req, peer, transport))
        call.local_cseq = req.cseq[0]   # our first request uses INVITE CSeq + 1 (§12.2.1.1)
        self.calls[key] = call
        self._by_tx[call.ist.key] = call
        self._by_merge[merge_key] = call
        self._by_dialog[call.dialog_id] = call
        contacts = req.headers.get_all("Contact")
        call.remote_target = _uri_of(contacts[0]) if contacts else ""
        call.route_set = [v for v in req.headers.get_all("Record-Route")]

        if route.blackhole:                      # a dead trunk: not even 100 Trying
            call.state = "blackhole"
            return [StartTimer(("blackhole", key), 64 * self.t1)]
        out: list[Action] = self._respond(call, 100, "Trying", tag=False)
        if route.reject is not None:
            if route.ring_s > 0:
                out += self._respond(call, 180, "Ringing")
                call.state = "ringing"
                out.append(StartTimer(("reject", key), route.ring_s))
                return out
            return out + self._final_failure(call, route.reject, route.reason, now, ended_by="carrier")
        if route.ring_forever:
            call.state = "ringing"
            out += self._respond(call, 180, "Ringing")
            return out
        # answering route: negotiate codecs from the offer (RFC 3264)
        body = req.body or b""
        if not body.strip():
            return out + self._final_failure(call, 488, "Not Acceptable Here (no SDP offer)", now,
                                             ended_by="carrier")
        try:
            offer = SessionDescription.parse(body)
        except ParseError as exc:
            return out + self._final_failure(call, 400, f"Bad Request (SDP: {exc.reason})"[:80], now,
                                             ended_by="carrier")
        call.offer = offer
        trial = negotiate(offer, list(route.codecs), address=self.media_address, port=9)
        if trial is None:
            return out + self._final_failure(call, 488, "Not Acceptable Here", now, ended_by="carrier")
        call.codec, call.dtmf_pt = _codec_and_dtmf(trial)
        call.state = "waiting_media"
        out.append(OpenMedia(key, _media_spec(route, trial, _remote_media(offer))))
        return out

    def _proceed_with_media(self, call: Call, address: str, port: int, now: float) -> list[Action]:
        answer = negotiate(call.offer, list(call.route.codecs), address=address, port=port)
        if answer is None:     # cannot happen (checked before), but be safe
            return [CloseMedia(call.key)] + self._final_failure(call, 488, "Not Acceptable Here", now,
                                                                ended_by="carrier")
        call.answer = answer
        call.answer_sdp = bytes(answer)
        call.codec, call.dtmf_pt = _codec_and_dtmf(answer)
        out: list[Action] = []
        call.state = "ringing"
        if call.route.early_media:
            out += self._respond(call, 183, "Session Progress", body=call.answer_sdp)
            out.append(StartMedia(call.key))
        else:
            out += self._respond(call, 180, "Ringing")
        if call.route.ring_s > 0:
            out.append(StartTimer(("answer", call.key), call.route.ring_s))
            return out
        return out + self._answer(call, now)

    def _answer(self, call: Call, now: float) -> list[Action]:
        call.state = "accepted"
        call.answered = now
        call.final_code = 200
        # the 2xx is retransmitted until the ACK, a BYE follows if none comes (§13.3.1.4)
        out: list[Action] = self._respond(call, 200, "OK", body=call.answer_sdp) + [StartMedia(call.key)]
        # the platform sees the call connected from here: carrier-side timers run from the 200
        if call.route.hangup_after_s:
            out.append(StartTimer(("hangup", call.key), call.route.hangup_after_s))
        if call.route.rtp_stop_after_s:
            out.append(StartTimer(("rtpstop", call.key), call.route.rtp_stop_after_s))
        out.append(StartTimer(("maxcall", call.key), self.plan.max_call_s))
        return out

    def _on_reinvite(self, call: Call, req: Request, peer: Addr, transport: str,
                     now: float) -> list[Action]:
        """A re-INVITE (session refresh / hold): answer 200 with our current SDP."""
        if call.state not in ("confirmed",):
            return self._reply(req, peer, transport, 491, "Request Pending")
        body = call.answer_sdp
        if req.body and req.body.strip():
            try:
                offer = SessionDescription.parse(req.body)
                port = _audio(call.answer).port
                ans = negotiate(offer, list(call.route.codecs), address=self.media_address, port=port)
            except (ParseError, AttributeError, IndexError):
                ans = None
            if ans is None:
                return self._reply(req, peer, transport, 488, "Not Acceptable Here")
            body = _bump_version(call.answer_sdp, bytes(ans))
            call.answer_sdp = body
        extra = [("Contact", self._contact(call)), ("Allow", ALLOW)]
        if body:
            extra.append(("Content-Type", "application/sdp"))
        resp = make_response(req, 200, "OK", to_tag=call.local_tag, headers=extra, body=body)
        # the 2xx is retransmitted until its ACK (matched on the CSeq) like the first one
        out = self._clear_reinvite(call)
        call.re_ist = self._ist(req, peer, transport)
        self._by_reinvite[call.re_ist.key] = call
        return out + call.re_ist.respond(resp)

    # -- ACK ------------------------------------------------------------------------
    def _on_ack(self, req: Request, now: float) -> list[Action]:
        call = self._by_tx.get(invite_key(req))
        if call is None and req.to_tag:
            call = self._by_dialog.get((req.call_id, req.to_tag, req.from_tag or ""))
        if call is None:
            return []
        if call.state == "completed":            # ACK to our non-2xx final: Timer I (§17.2.1)
            call.state = "ended"
            return call.ist.on_ack()
        if call.re_ist is not None and req.cseq[0] == call.re_ist.request.cseq[0]:   # to a re-INVITE 2xx
            return call.re_ist.on_ack() + self._clear_reinvite(call)
        if call.state == "accepted" and req.cseq[0] == call.invite.cseq[0]:
            call.state = "confirmed"
            out = call.ist.on_ack()
            if call.pending_bye:
                out += self._send_bye(call, now, ended_by="carrier")
            return out
        return []

    # -- CANCEL ---------------------------------------------------------------------
    def _on_cancel(self, req: Request, peer: Addr, transport: str, now: float) -> list[Action]:
        call = self._by_tx.get(invite_key(req))
        if call is None:
            return self._reply(req, peer, transport, 481, "Call/Transaction Does Not Exist")
        if call.route.blackhole:                 # swallowed like everything else; CDR now
            if call.cdr_written:
                return []
            hold = max(0.0, call.received + 64 * self.t1 - now)   # still absorb until Timer B
            return self._end(call, now, "cancel", forget=False) + [StartTimer(("blackhole", call.key), hold)]
        out = self._reply(req, peer, transport, 200, "OK", to_tag=call.local_tag)
        if call.state in ("proceeding", "waiting_media", "ringing"):
            out += self._final_failure(call, 487, "Request Terminated", now, ended_by="cancel")
        return out

    # -- BYE ------------------------------------------------------------------------
    def _on_bye(self, call: Call, req: Request, peer: Addr, transport: str, now: float) -> list[Action]:
        out = self._reply(req, peer, transport, 200, "OK")
        if call.state in ("accepted", "confirmed"):
            out += self._end(call, now, "caller")
        elif call.state == "bye_sent":          # glare: both hung up; ours was first
            pass
        elif call.state in ("proceeding", "waiting_media", "ringing"):
            out += self._final_failure(call, 487, "Request Terminated", now, ended_by="caller")
        return out

    # ------------------------------------------------------------ responses to us
    def _on_response(self, resp: Response, now: float) -> list[Action]:
        try:
            branch = resp.top_via.branch
        except (ParseError, AttributeError):
            return []
        call = self._by_bye.get(branch or "")
        if call is None or call.bye is None:
            return []
        actions, final = call.bye.on_response(resp)     # a provisional: retransmit at T2 from now on
        if final and resp.status >= 200:
            self._forget(call)
        return actions

    # ------------------------------------------------------------ timers
    def _timer_blackhole(self, call: Call, now: float) -> list[Action]:
        """64*T1 after a blackholed INVITE: the caller's Timer B has fired; write the CDR, forget."""
        if call.cdr_written:
            self._forget(call)
            return []
        return self._end(call, now, "timeout")

    def _timer_answer(self, call: Call, now: float) -> list[Action]:
        if call.state != "ringing":
            return []
        return self._answer(call, now)

    def _timer_reject(self, call: Call, now: float) -> list[Action]:
        if call.state != "ringing":
            return []
        return self._final_failure(call, call.route.reject or 500, call.route.reason, now,
                                   ended_by="carrier")

    def _timer_hangup(self, call: Call, now: float) -> list[Action]:
        if call.state == "accepted":            # no ACK yet: BYE as soon as it comes
            call.pending_bye = True
            return []
        if call.state != "confirmed":
            return []
        return self._send_bye(call, now, ended_by="carrier")

    def _timer_maxcall(self, call: Call, now: float) -> list[Action]:
        if call.state != "confirmed":
            return []
        return self._send_bye(call, now, ended_by="timeout")

    def _timer_rtpstop(self, call: Call, now: float) -> list[Action]:
        if call.state in ("accepted", "confirmed"):
            return [StopMedia(call.key)]
        return []

    def _server_timer(self, letter: str, key: tuple, now: float) -> list[Action]:
        """A timer of a server transaction: Timer J of a non-INVITE one, or one of an INVITE's."""
        nist = self._nist.get(key)
        if nist is not None:
            actions, event = nist.on_timer(letter)
            if event == "terminated":
                del self._nist[key]
            return actions
        call = self._by_tx.get(key) or self._by_reinvite.get(key)
        tx = self._invite_tx(call, key)
        if call is None or tx is None:
            return []
        actions, event = tx.on_timer(letter)
        if tx is call.re_ist:
            return actions + (self._clear_reinvite(call) if event == "no-ack" else [])
        if event in ("timeout", "terminated"):  # Timer H (never ACKed) or Timer I: forget the call
            call.state = "ended"
            self._forget(call)
        elif event == "no-ack" and call.state == "accepted":
            call.state = "confirmed"            # §13.3.1.4: the dialog is confirmed, BYE it
            actions += self._send_bye(call, now, ended_by="timeout")
        return actions

    def _bye_timer(self, letter: str, branch: str, now: float) -> list[Action]:
        """Timer E/F/K of our BYE (§17.1.2); Timer F (no final response) forgets the call."""
        call = self._by_bye.get(branch)
        if call is None or call.bye is None:
            return []
        actions, timed_out = call.bye.on_timer(letter)
        if timed_out:
            self._forget(call)
        return actions

    def _clear_reinvite(self, call: Call) -> list[Action]:
        """Forget the re-INVITE transaction (its 2xx no longer retransmitted)."""
        tx, call.re_ist = call.re_ist, None
        if tx is None:
            return []
        if self._by_reinvite.get(tx.key) is call:
            del self._by_reinvite[tx.key]
        return tx.stop()

    # ------------------------------------------------------------ building blocks
    def _contact(self, call: Call) -> str:
        user = _user_of(str(call.invite.uri)) or "carrier"
        host, port = self.local
        tp = "" if call.transport == "udp" else f";transport={call.transport}"
        return f"<sip:{user}@{host}:{port}{tp}>"

    def _respond(self, call: Call, status: int, reason: str | None, *, tag: bool = True,
                 body: bytes = b"") -> list[Action]:
        """A response to the call's INVITE, through its server transaction (§17.2.1)."""
        extra: list[tuple[str, str]] = []
        if 100 < status < 300:
            extra.append(("Contact", self._contact(call)))   # make_response copies Record-Route
        if status >= 180:
            extra.append(("Allow", ALLOW))
        extra.append(("Server", USER_AGENT))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        resp = make_response(call.invite, status, reason, to_tag=call.local_tag if tag else None,
                             headers=extra, body=body)
        return list(call.ist.respond(resp))

    def _final_failure(self, call: Call, status: int, reason: str | None, now: float, *,
                       ended_by: str) -> list[Action]:
        """Send a 3xx-6xx to the INVITE, write the CDR, wait for the ACK (§17.2.1)."""
        out: list[Action] = [CancelTimer(("answer", call.key)), CancelTimer(("reject", call.key))]
        call.final_code = status
        out += self._respond(call, status, reason)
        out += self._end(call, now, ended_by, forget=False)
        call.state = "completed"
        return out

    def _send_bye(self, call: Call, now: float, *, ended_by: str) -> list[Action]:
        """Our own in-dialog BYE (§12.2.1.1), retransmitted over UDP (§17.1.2)."""
        target = call.remote_target or _uri_of(call.invite.headers.get("From"))
        route_set = list(call.route_set)     # UAS: Record-Route in order (§12.1.1)
        ruri = target
        route_hdrs: list[str] = []
        if route_set:
            first = _uri_of(route_set[0])
            loose = ";lr" in first.lower()
            if loose:
                route_hdrs = route_set
                dest_uri = first
            else:                               # strict router (§12.2.1.1)
                ruri = first
                route_hdrs = route_set[1:] + [f"<{target}>"]
                dest_uri = first
        else:
            dest_uri = target
        dest = _hostport(dest_uri, call.transport)
        if dest is None:
            dest = (call.peer, call.transport)
        addr, transport = dest
        if transport not in ("udp", "tcp"):
            transport = call.transport
        call.local_cseq += 1
        branch = new_branch()
        host, port = self.local
        hdrs: list[tuple[str, str]] = [
            ("Via", f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch};rport"),
            ("Max-Forwards", "70"),
        ]
        hdrs += [("Route", r) for r in route_hdrs]
        # From/To swapped, with tags: we are the To of the INVITE
        to_hdr = call.invite.headers.get("To") or ""
        from_value = to_hdr if ";tag=" in to_hdr.lower() else f"{to_hdr};tag={call.local_tag}"
        hdrs += [
            ("From", from_value),
            ("To", call.invite.headers.get("From") or ""),
            ("Call-ID", call.call_id),
            ("CSeq", f"{call.local_cseq} BYE"),
            ("Contact", self._contact(call)),
            ("User-Agent", USER_AGENT),
        ]
        bye = Request("BYE", ruri, Headers(hdrs), b"")
        call.bye = ClientTransaction(bye, addr, transport != "udp", self.t1, self.t2,
                                     transport=transport, t4=self.t4)
        self._by_bye[branch] = call
        out: list[Action] = list(call.bye.start())
        out += self._end(call, now, ended_by, forget=False)
        call.state = "bye_sent"
        return out

    def _end(self, call: Call, now: float, ended_by: str, *, forget: bool = True) -> list[Action]:
        """The call is over: close media, write the CDR (once)."""
        out: list[Action] = [CancelTimer((t, call.key))
                             for t in ("answer", "reject", "hangup", "maxcall", "rtpstop", "blackhole")]
        out += call.ist.stop()                  # a 2xx no longer waits for its ACK
        if call.re_ist is not None:
            out += call.re_ist.stop()
        if call.media_open or call.state == "waiting_media":
            out.append(CloseMedia(call.key))
            call.media_open = False
        if not call.cdr_written:
            call.ended = now
            call.ended_by = ended_by
            call.cdr_written = True
            out.append(WriteCdr(call.key, self.cdr_record(call)))
        call.state = "ended"
        if forget:
            # keep the dialog a moment for retransmitted BYEs (answered from the NIST cache)
            self._forget(call)
        return out

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.key, None)
        if self._by_tx.get(call.ist.key) is call:
            del self._by_tx[call.ist.key]
        if self._by_dialog.get(call.dialog_id) is call:
            del self._by_dialog[call.dialog_id]
        mk = (call.call_id, call.remote_tag, call.invite.cseq[0])
        if self._by_merge.get(mk) is call:
            del self._by_merge[mk]
        if call.bye is not None and self._by_bye.get(call.bye.branch) is call:
            del self._by_bye[call.bye.branch]
        self._clear_reinvite(call)

    def cdr_record(self, call: Call) -> CarrierCdr:
        """The call's CDR (``qa.carrier.cdr``); the shell adds the RTP counts."""
        inv = call.invite
        from_uri = _uri_of(inv.headers.get("From"))
        to_uri = _uri_of(inv.headers.get("To"))
        x_headers: dict[str, str] = {}
        for name, value in inv.headers:
            if name.lower().startswith("x-"):
                x_headers[name] = value if name not in x_headers else f"{x_headers[name]}, {value}"
        duration = 0.0
        if call.answered is not None and call.ended is not None:
            duration = round(max(0.0, call.ended - call.answered), 3)
        return CarrierCdr(
            carrier=self.name, call_id=call.call_id, from_=_user_of(from_uri), to=_user_of(to_uri),
            from_uri=from_uri, to_uri=to_uri, ruri=_user_of(str(inv.uri)),
            route=call.route.name or call.route.prefix, from_tag=call.remote_tag, x_headers=x_headers,
            transport=call.transport, received=round(call.received, 6),
            answered=None if call.answered is None else round(call.answered, 6),
            ended=None if call.ended is None else round(call.ended, 6),
            final_code=call.final_code, ended_by=call.ended_by, duration_s=duration,
            codec=call.codec if call.answered is not None else "",
            dtmf_heard="".join(call.dtmf), dtmf_events=tuple(call.dtmf_events),
        )

    # -- replies to requests outside a call's INVITE ------------------------------------
    def _reply(self, req: Request, peer: Addr, transport: str, status: int, reason: str,
               headers: list[tuple[str, str]] | None = None, *, to_tag: str | None = None,
               body: bytes = b"") -> list[Action]:
        tag = to_tag if to_tag is not None else (None if req.to_tag else new_tag())
        extra = list(headers or []) + [("Server", USER_AGENT)]
        resp = make_response(req, status, reason, to_tag=tag, headers=extra, body=body)
        if req.method == "INVITE":              # 481/482/488/491 to an INVITE: sent once, no transaction
            return [Send(bytes(resp), peer, transport)]
        tx = NonInviteServerTransaction(req, peer, transport, self.t1)   # kept until Timer J (§17.2.2)
        self._nist[tx.key] = tx
        return list(tx.respond(resp))

    def _reply_plain(self, req: Request, peer: Addr, transport: str, status: int,
                     reason: str) -> list[Action]:
        try:
            resp = make_response(req, status, reason, to_tag=None if req.to_tag else new_tag())
            return [Send(bytes(resp), peer, transport)]
        except (ParseError, ValueError, AttributeError, TypeError):
            return []

    def _reply_options(self, req: Request, peer: Addr, transport: str) -> list[Action]:
        return self._reply(req, peer, transport, 200, "OK",
                           [("Allow", ALLOW), ("Accept", "application/sdp")])


def _heard(call: Call, digit: str, via: str, now: float) -> None:
    """A digit heard on the call (RFC 4733, in-band or INFO): kept in order when collecting."""
    if call.route.collect_dtmf:
        call.dtmf.append(digit)
        call.dtmf_events.append(DtmfEvent(digit, via, round(now, 3)))


def _media_spec(route: Route, answer: Any, remote: Addr | None) -> MediaSpec:
    """The media endpoint for an answered route: mode, the answer's first codec and its PT,
    telephone-event PT, and the G.711 PTs to detect in-band DTMF on (if collecting)."""
    codec, pt, clock, dtmf_pt = "", None, 8000, None
    inband: list[tuple[int, str]] = []
    for fmt_pt, rtpmap in _answer_formats(answer):
        name = rtpmap.encoding
        if name.lower() == "telephone-event":
            dtmf_pt = fmt_pt if dtmf_pt is None else dtmf_pt
            continue
        if name.upper() == "CN":
            continue
        if pt is None:
            codec, pt, clock = name, fmt_pt, rtpmap.clock_rate
        if route.collect_dtmf and name.upper() in ("PCMU", "PCMA"):
            inband.append((fmt_pt, name.upper()))
    if route.rtp_payload_type is not None:   # the fault: the codec's frames, the wrong PT
        pt = route.rtp_payload_type
    return MediaSpec(mode=route.media, codec=codec, payload_type=pt, clock_rate=clock, dtmf_pt=dtmf_pt,
                     inband=tuple(inband), remote=remote)


def _answer_formats(answer: Any) -> list[tuple[int, Any]]:
    """(payload type, RtpMap) of the answer's audio formats, in order."""
    media = _audio(answer)
    if media is None:
        return []
    rtpmap = media.rtpmap
    return [(int(f), rtpmap[int(f)]) for f in media.formats
            if f.isdigit() and f.isascii() and int(f) in rtpmap]


def _audio(sdp: Any) -> Any:
    media = getattr(sdp, "audio", None)
    if media is None and getattr(sdp, "media", None):
        media = sdp.media[0]
    return media


def _codec_and_dtmf(answer: Any) -> tuple[str, int | None]:
    """(first audio codec name, telephone-event payload type) of an SDP answer."""
    codec, dtmf = "", None
    for pt, rtpmap in _answer_formats(answer):
        name = rtpmap.encoding
        if name.lower() == "telephone-event":
            dtmf = pt if dtmf is None else dtmf
        elif name.upper() != "CN" and not codec:
            codec = name
    return codec, dtmf


def _remote_media(offer: Any) -> Addr | None:
    """Where the offerer wants RTP (c= of the media or session, audio m= port)."""
    media = _audio(offer)
    if media is None:
        return None
    address = offer.address_of(media)
    return (address, int(media.port)) if address else None


def _bump_version(old: bytes, new: bytes) -> bytes:
    """Keep o= session id, increment the version (RFC 3264 §8)."""
    m_old = re.search(rb"^o=(\S+) (\S+) (\d+)", old, re.M)
    if not m_old:
        return new
    version = str(int(m_old.group(3)) + 1).encode()
    return re.sub(rb"^o=(\S+) (\S+) (\d+)", b"o=" + m_old.group(1) + b" " + m_old.group(2) + b" " + version,
                  new, count=1, flags=re.M)

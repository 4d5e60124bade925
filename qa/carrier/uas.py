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
    WriteCdr(call, record)         the call ended: write its carrier CDR line; the shell fills in
                                   rtp_packets_in / _out and rtp_payload_types_in / _out from
                                   its media endpoint

RFC 3261 behaviour implemented here: 100 Trying at once; 180 (or 183 with SDP); 2xx
retransmitted over UDP from T1 doubling to T2 until the ACK (§13.3.1.4), BYE after 64*T1
without ACK; INVITE server transaction (§17.2.1: INVITE retransmissions absorbed with the last
response re-sent, non-2xx final retransmitted over UDP until ACK, Timer H/I); merged
requests -> 482 (§8.2.2.2); CANCEL (§9.2); BYE both ways (the carrier's BYE built per
§12.2.1.1 and retransmitted over UDP per §17.1.2 until a final response); non-INVITE server
transactions keep their response for retransmissions (Timer J); OPTIONS 200; in-dialog
INFO (DTMF) 200; requests for an unknown dialog 481; other methods outside a dialog 405.

A ``blackhole`` route answers nothing at all (not even 100 Trying, nor the CANCEL): INVITE
retransmissions are absorbed; the CDR line (final_code null) is written when the CANCEL
comes (ended_by "cancel") or 64*T1 after the INVITE, when the caller's Timer B has given up
(ended_by "timeout"). Routes restricted to ``carriers`` apply only when this carrier's name
is one of them (``NumberPlan.lookup(number, carrier)``).

Length: the whole carrier's SIP behaviour per number plan route (ring, answer, busy,
blackhole, early media, hang up, DTMF, re-INVITE) on one call model; the number plan,
media and CDR models live in their own modules.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Hashable

from qa.carrier.media import MediaSpec
from qa.carrier.plan import NumberPlan, Route
from qa.errors import ParseError
from qa.sip.info import info_digit
from qa.sip.timers import T1, T2, T4, Addr, CancelTimer, Send, StartTimer
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
    record: dict[str, Any]


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
    tx_key: tuple
    state: str = "proceeding"   # proceeding | waiting_media | ringing | accepted | confirmed |
    #                             completed (non-2xx sent, waiting ACK) | bye_sent | ended
    last_response: bytes | None = None
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
    dtmf_events: list[dict[str, Any]] = field(default_factory=list)
    media_open: bool = False
    pending_bye: bool = False
    ended_reason: str = ""
    retx_interval: float = T1
    # dialog state (§12.1.1)
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    bye_branch: str | None = None
    bye_bytes: bytes | None = None
    bye_dest: tuple[Addr, str] | None = None
    bye_interval: float = T1
    cdr_written: bool = False
    # the last re-INVITE we answered (its 2xx is retransmitted until the ACK)
    re_cseq: int = 0
    re_response: bytes | None = None
    re_interval: float = T1
    re_tx_key: tuple | None = None

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
        self._by_tx: dict[tuple, Call] = {}
        self._by_dialog: dict[tuple[str, str, str], Call] = {}
        self._by_merge: dict[tuple, Call] = {}
        self._by_bye_branch: dict[str, Call] = {}
        self._by_retx: dict[tuple, Call] = {}
        self._nist: dict[tuple, tuple[bytes, Addr, str]] = {}
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
        kind = key[0]
        if kind == "nist":
            self._nist.pop(key[1], None)
            return []
        call = self.calls.get(key[1])
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
            call = self._by_tx.get(self._tx_key(req, "INVITE"))
            if call is not None:           # retransmission: absorb, re-send the last response
                self.stats["retransmissions_absorbed"] += 1
                if call.last_response is not None:
                    return [Send(call.last_response, peer, transport)]
                return []
            call = self._by_retx.get(self._tx_key(req, "INVITE"))
            if call is not None and call.re_response is not None:   # re-INVITE retransmission
                self.stats["retransmissions_absorbed"] += 1
                return [Send(call.re_response, peer, transport)]
            if req.to_tag:
                call = self._by_dialog.get((req.call_id, req.to_tag, req.from_tag or ""))
                if call is None:
                    return self._reply(req, peer, transport, 481, "Call/Transaction Does Not Exist")
                return self._on_reinvite(call, req, peer, transport, now)
            return self._on_invite(req, peer, transport, now)
        # non-INVITE: a retransmission of a request we already answered?
        nkey = self._tx_key(req, method)
        cached = self._nist.get(nkey)
        if cached is not None:
            self.stats["retransmissions_absorbed"] += 1
            return [Send(cached[0], peer, transport)]
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

    def _tx_key(self, req: Request, method: str) -> tuple:
        """Server transaction key (§17.2.3); ACK and CANCEL map to the INVITE's."""
        via = req.top_via
        branch = via.branch or ""
        sent_by = (via.host.lower(), via.port)
        m = "INVITE" if method in ("ACK", "CANCEL") else method
        if branch.startswith("z9hG4bK"):
            return ("3261", branch, sent_by, m if method != "CANCEL" else "CANCEL")
        # RFC 2543 peers: Call-ID, From tag, CSeq number, top Via (§17.2.3 backwards compat)
        return ("2543", req.call_id, req.from_tag or "", req.cseq[0], sent_by,
                m if method != "CANCEL" else "CANCEL")

    def _invite_key_for(self, req: Request) -> tuple:
        """The INVITE transaction key a CANCEL/ACK refers to."""
        key = self._tx_key(req, req.method)
        return key[:-1] + ("INVITE",)

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
                    received=now, local_tag=new_tag(), tx_key=self._tx_key(req, "INVITE"))
        call.retx_interval = self.t1
        call.local_cseq = req.cseq[0]   # our first request uses INVITE CSeq + 1 (§12.2.1.1)
        self.calls[key] = call
        self._by_tx[call.tx_key] = call
        self._by_merge[merge_key] = call
        self._by_dialog[call.dialog_id] = call
        contacts = req.headers.get_all("Contact")
        call.remote_target = _uri_of(contacts[0]) if contacts else ""
        call.route_set = [v for v in req.headers.get_all("Record-Route")]

        if route.blackhole:                      # a dead trunk: not even 100 Trying
            call.state = "blackhole"
            return [StartTimer(("blackhole", key), 64 * self.t1)]
        out: list[Action] = [self._respond(call, 100, "Trying", tag=False)]
        if route.reject is not None:
            if route.ring_s > 0:
                out.append(self._respond(call, 180, "Ringing"))
                call.state = "ringing"
                out.append(StartTimer(("reject", key), route.ring_s))
                return out
            return out + self._final_failure(call, route.reject, route.reason, now, ended_by="carrier")
        if route.ring_forever:
            call.state = "ringing"
            out.append(self._respond(call, 180, "Ringing"))
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
            out.append(self._respond(call, 183, "Session Progress", body=call.answer_sdp))
            out.append(StartMedia(call.key))
        else:
            out.append(self._respond(call, 180, "Ringing"))
        if call.route.ring_s > 0:
            out.append(StartTimer(("answer", call.key), call.route.ring_s))
            return out
        return out + self._answer(call, now)

    def _answer(self, call: Call, now: float) -> list[Action]:
        call.state = "accepted"
        call.answered = now
        call.final_code = 200
        out: list[Action] = [self._respond(call, 200, "OK", body=call.answer_sdp), StartMedia(call.key)]
        if call.transport == "udp":
            call.retx_interval = self.t1
            out.append(StartTimer(("retx2xx", call.key), self.t1))
        out.append(StartTimer(("noack", call.key), 64 * self.t1))
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
        data = bytes(resp)
        # the 2xx is retransmitted over UDP until its ACK (matched on the CSeq) like the first one
        call.re_cseq = req.cseq[0]
        call.re_response = data
        call.re_interval = self.t1
        self._by_retx[self._tx_key(req, "INVITE")] = call
        call.re_tx_key = self._tx_key(req, "INVITE")
        out: list[Action] = [Send(data, peer, transport)]
        if transport == "udp":
            out.append(StartTimer(("retxre", call.key), self.t1))
        out.append(StartTimer(("noackre", call.key), 64 * self.t1))
        return out

    # -- ACK ------------------------------------------------------------------------
    def _on_ack(self, req: Request, now: float) -> list[Action]:
        call = self._by_tx.get(self._invite_key_for(req))
        if call is None and req.to_tag:
            call = self._by_dialog.get((req.call_id, req.to_tag, req.from_tag or ""))
        if call is None:
            return []
        if call.state == "completed":            # ACK to our non-2xx final (§17.2.1)
            call.state = "ended"
            out: list[Action] = [CancelTimer(("retxfinal", call.key)), CancelTimer(("timerH", call.key))]
            # Timer I absorbs ACK retransmissions over UDP; 0 over TCP
            out.append(StartTimer(("forget", call.key), self.t4 if call.transport == "udp" else 0.0))
            return out
        if call.re_response is not None and req.cseq[0] == call.re_cseq:   # ACK to a re-INVITE 2xx
            self._clear_reinvite(call)
            return [CancelTimer(("retxre", call.key)), CancelTimer(("noackre", call.key))]
        if call.state == "accepted" and req.cseq[0] == call.invite.cseq[0]:
            call.state = "confirmed"
            out = [CancelTimer(("retx2xx", call.key)), CancelTimer(("noack", call.key))]
            if call.pending_bye:
                out += self._send_bye(call, now, ended_by="carrier")
            return out
        return []

    # -- CANCEL ---------------------------------------------------------------------
    def _on_cancel(self, req: Request, peer: Addr, transport: str, now: float) -> list[Action]:
        call = self._by_tx.get(self._invite_key_for(req))
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
        call = self._by_bye_branch.get(branch or "")
        if call is None or resp.status < 200:
            if call is not None:               # provisional: retransmit at T2 from now on
                call.bye_interval = self.t2
            return []
        self._by_bye_branch.pop(branch, None)
        self._forget(call)
        return [CancelTimer(("byeE", call.key)), CancelTimer(("byeF", call.key))]

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

    def _timer_retx2xx(self, call: Call, now: float) -> list[Action]:
        if call.state != "accepted" or call.last_response is None:
            return []
        call.retx_interval = min(call.retx_interval * 2, self.t2)
        return [Send(call.last_response, call.peer, call.transport),
                StartTimer(("retx2xx", call.key), call.retx_interval)]

    def _timer_noack(self, call: Call, now: float) -> list[Action]:
        if call.state != "accepted":
            return []
        # §13.3.1.4: no ACK within 64*T1 -> confirm and terminate the dialog with BYE
        out: list[Action] = [CancelTimer(("retx2xx", call.key))]
        call.state = "confirmed"
        return out + self._send_bye(call, now, ended_by="timeout")

    def _timer_retxre(self, call: Call, now: float) -> list[Action]:
        if call.re_response is None or call.state != "confirmed":
            return []
        call.re_interval = min(call.re_interval * 2, self.t2)
        return [Send(call.re_response, call.peer, call.transport),
                StartTimer(("retxre", call.key), call.re_interval)]

    def _timer_noackre(self, call: Call, now: float) -> list[Action]:
        self._clear_reinvite(call)           # no ACK for the re-INVITE 2xx: stop retransmitting
        return [CancelTimer(("retxre", call.key))]

    def _clear_reinvite(self, call: Call) -> None:
        call.re_response = None
        if call.re_tx_key is not None and self._by_retx.get(call.re_tx_key) is call:
            del self._by_retx[call.re_tx_key]
        call.re_tx_key = None

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

    def _timer_retxfinal(self, call: Call, now: float) -> list[Action]:
        if call.state != "completed" or call.last_response is None:
            return []
        call.retx_interval = min(call.retx_interval * 2, self.t2)
        return [Send(call.last_response, call.peer, call.transport),
                StartTimer(("retxfinal", call.key), call.retx_interval)]

    def _timer_timerH(self, call: Call, now: float) -> list[Action]:
        if call.state != "completed":
            return []
        call.state = "ended"                    # never ACKed: give up (§17.2.1 Timer H)
        self._forget(call)
        return [CancelTimer(("retxfinal", call.key))]

    def _timer_forget(self, call: Call, now: float) -> list[Action]:
        self._forget(call)
        return []

    def _timer_byeE(self, call: Call, now: float) -> list[Action]:
        if call.bye_branch is None or call.bye_bytes is None or call.bye_dest is None:
            return []
        call.bye_interval = min(call.bye_interval * 2, self.t2)
        (addr, transport) = call.bye_dest
        return [Send(call.bye_bytes, addr, transport), StartTimer(("byeE", call.key), call.bye_interval)]

    def _timer_byeF(self, call: Call, now: float) -> list[Action]:
        if call.bye_branch is not None:         # Timer F: no final response to our BYE
            self._by_bye_branch.pop(call.bye_branch, None)
            call.bye_branch = None
        self._forget(call)
        return [CancelTimer(("byeE", call.key))]

    # ------------------------------------------------------------ building blocks
    def _contact(self, call: Call) -> str:
        user = _user_of(str(call.invite.uri)) or "carrier"
        host, port = self.local
        tp = "" if call.transport == "udp" else f";transport={call.transport}"
        return f"<sip:{user}@{host}:{port}{tp}>"

    def _respond(self, call: Call, status: int, reason: str | None, *, tag: bool = True,
                 body: bytes = b"") -> Send:
        """A response to the call's INVITE; remembered as the last one for retransmissions."""
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
        data = bytes(resp)
        call.last_response = data
        return Send(data, call.peer, call.transport)

    def _final_failure(self, call: Call, status: int, reason: str | None, now: float, *,
                       ended_by: str) -> list[Action]:
        """Send a 3xx-6xx to the INVITE, write the CDR, wait for the ACK (§17.2.1)."""
        out: list[Action] = [CancelTimer(("answer", call.key)), CancelTimer(("reject", call.key))]
        call.final_code = status
        out.append(self._respond(call, status, reason))
        out += self._end(call, now, ended_by, forget=False)
        call.state = "completed"
        if call.transport == "udp":
            call.retx_interval = self.t1
            out.append(StartTimer(("retxfinal", call.key), self.t1))
        out.append(StartTimer(("timerH", call.key), 64 * self.t1))
        return out

    def _send_bye(self, call: Call, now: float, *, ended_by: str) -> list[Action]:
        """Our own in-dialog BYE (§12.2.1.1), retransmitted over UDP (§17.1.2)."""
        out: list[Action] = [CancelTimer(("hangup", call.key)), CancelTimer(("maxcall", call.key)),
                             CancelTimer(("retx2xx", call.key)), CancelTimer(("noack", call.key))]
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
        data = bytes(bye)
        call.bye_branch = branch
        call.bye_bytes = data
        call.bye_dest = (addr, transport)
        call.bye_interval = self.t1
        call.state = "bye_sent"
        self._by_bye_branch[branch] = call
        out.append(Send(data, addr, transport))
        if transport == "udp":
            out.append(StartTimer(("byeE", call.key), self.t1))
        out.append(StartTimer(("byeF", call.key), 64 * self.t1))
        out += self._end(call, now, ended_by, forget=False)
        call.state = "bye_sent"
        return out

    def _end(self, call: Call, now: float, ended_by: str, *, forget: bool = True) -> list[Action]:
        """The call is over: close media, write the CDR (once)."""
        out: list[Action] = []
        for t in ("answer", "reject", "hangup", "maxcall", "rtpstop", "retx2xx", "noack", "retxre", "noackre",
                  "blackhole"):
            out.append(CancelTimer((t, call.key)))
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
        if self._by_tx.get(call.tx_key) is call:
            del self._by_tx[call.tx_key]
        if self._by_dialog.get(call.dialog_id) is call:
            del self._by_dialog[call.dialog_id]
        mk = (call.call_id, call.remote_tag, call.invite.cseq[0])
        if self._by_merge.get(mk) is call:
            del self._by_merge[mk]
        if call.bye_branch:
            self._by_bye_branch.pop(call.bye_branch, None)
        self._clear_reinvite(call)

    def cdr_record(self, call: Call) -> dict[str, Any]:
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
        return {
            "carrier": self.name,
            "call_id": call.call_id,
            "from": _user_of(from_uri),
            "to": _user_of(to_uri),
            "from_uri": from_uri,
            "to_uri": to_uri,
            "ruri": _user_of(str(inv.uri)),
            "route": call.route.name or call.route.prefix,
            "from_tag": call.remote_tag,
            "x_headers": x_headers,
            "transport": call.transport,
            "received": round(call.received, 6),
            "answered": None if call.answered is None else round(call.answered, 6),
            "ended": None if call.ended is None else round(call.ended, 6),
            "final_code": call.final_code,
            "ended_by": call.ended_by,
            "duration_s": duration,
            "codec": call.codec if call.answered is not None else "",
            "rtp_packets_in": 0,
            "rtp_packets_out": 0,
            "rtp_payload_types_in": [],
            "rtp_payload_types_out": [],
            "dtmf_heard": "".join(call.dtmf),
            "dtmf_events": list(call.dtmf_events),
        }

    # -- stateless replies (kept for retransmissions: Timer J) -------------------------
    def _reply(self, req: Request, peer: Addr, transport: str, status: int, reason: str,
               headers: list[tuple[str, str]] | None = None, *, to_tag: str | None = None,
               body: bytes = b"") -> list[Action]:
        tag = to_tag if to_tag is not None else (None if req.to_tag else new_tag())
        extra = list(headers or []) + [("Server", USER_AGENT)]
        resp = make_response(req, status, reason, to_tag=tag, headers=extra, body=body)
        data = bytes(resp)
        out: list[Action] = [Send(data, peer, transport)]
        if req.method != "INVITE":
            nkey = self._tx_key(req, req.method)
            self._nist[nkey] = (data, peer, transport)
            out.append(StartTimer(("nist", nkey), 64 * self.t1 if transport == "udp" else 0.0))
        return out

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
        call.dtmf_events.append({"digit": digit, "via": via, "at": round(now, 3)})


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

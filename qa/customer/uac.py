"""The customer's UAC, sans-I/O (DESIGN §10): a call (or a registration) as events -> actions.

Events in::

    uac.start(now)                  place the call / send the REGISTER
    uac.on_message(data, now)       one SIP message arrived (a datagram or a stream frame)
    uac.on_timer(key, now)          a timer started with StartTimer fired
    uac.abort(now, reason)          the shell's deadline passed: CANCEL / BYE, then give up

Actions out (in order): :class:`Send`, :class:`StartTimer`, :class:`CancelTimer`
(:mod:`qa.sip.transaction`); for an answered call :class:`StartMedia` (RTP in the
answer's codec, paced by the shell) and :class:`StopMedia` when it ends. ``uac.done`` turns true when the result is complete;
``uac.result`` is the :class:`CustomerResult`. ``now`` is the shell's monotonic time;
``clock()`` (wall time) is read once, at start, to stamp the result in unix time.

RFC 3261 behaviour: requests built per §8.1.1 (new Call-ID, From tag, branch); client
transactions per §17.1; 401/407 answered once with digest credentials (§22.2, §22.3, new
CSeq, same Call-ID) and a second challenge for the same request is the final outcome; a
2xx is ACKed end-to-end with the route set from its Record-Route reversed (§12.1.2,
§13.2.2.4) and every retransmitted 2xx ACKed again; the caller's BYE after the call
duration (§15.1.1) or the callee's BYE answered 200 (§15.1.2); in-dialog requests built per
§12.2.1.1 (loose and strict routing). With ``replay_credentials`` a NEW request (new
Call-ID for a call, new CSeq for a registration) carries the previous credentials
unchanged, and whether the platform challenged it again — and with ``stale=true``
(RFC 2617 §3.2.1) — is recorded: replay protection is RFC 3261 §22.4's concern.

Length: the call and the registration share one core (transactions, digest, replay);
the answer's media (:class:`StartMedia`) is a few lines of it. A split would cut the
core's state machine in the middle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable

from qa.errors import ParseError
from qa.sdp import SessionDescription, make_offer
from qa.sip import (Headers, Request, Response, build_authorization, make_response, new_branch,
                    new_call_id, new_tag, parse_digest_challenge, parse_message, parse_name_addr,
                    parse_uri)
from qa.customer.result import CustomerResult
from qa.sip.transaction import Action, ClientTransaction
from qa.sip.timers import T1, T2, Addr, CancelTimer, Send, StartTimer

__all__ = ["CallConfig", "StartMedia", "StopMedia", "UacCall", "UacRegister"]

USER_AGENT = "voipqa-customer"
_AUTH = {401: ("www-authenticate", "Authorization"), 407: ("proxy-authenticate", "Proxy-Authorization")}
_HANGUP = ("hangup",)


@dataclass(frozen=True)
class CallConfig:
    """One customer call or registration against the platform.

    ``to_user`` is the called number (Request-URI user); ``domain`` the host part of the
    Request-URI, From and To (default ``target_host:target_port``). ``local_host`` /
    ``local_port`` go into Via and Contact (the shell fills the port in once bound).
    ``tls_server_name`` / ``ca_file`` are used by the shell only.
    """

    from_user: str
    password: str
    target_host: str
    target_port: int
    to_user: str = ""
    transport: str = "udp"
    domain: str | None = None
    auth_user: str | None = None
    local_host: str = "127.0.0.1"
    local_port: int = 0
    media_port: int = 0                    # SDP m= port; 0: the shell allocates (and sinks) one
    codecs: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")
    duration_s: float = 1.0
    extra_headers: tuple[tuple[str, str], ...] = ()
    replay_credentials: bool = False
    send_media: bool = True                # once answered, RTP in the answer's codec for duration_s
    expires: int = 60
    tls_server_name: str | None = None
    ca_file: str | None = None
    t1: float = T1
    t2: float = T2

    @property
    def host_part(self) -> str:
        return self.domain or f"{self.target_host}:{self.target_port}"

    @property
    def reliable(self) -> bool:
        return self.transport in ("tcp", "tls")


@dataclass
class _Leg:
    """One Call-ID this customer uses: the call itself, or the credential replay (§12.1.2)."""

    method: str
    ruri: str
    to_uri: str
    call_id: str
    from_tag: str
    cseq: int = 1
    auth: tuple[str, str] | None = None    # (header name, value) sent on the request
    request: Request | None = None         # the latest initial request
    state: str = "calling"                 # calling | early | confirmed | bye_sent | ended
    replay: bool = False
    to_header: str = ""                    # To of the 2xx, with the remote tag
    remote_target: str = ""
    route_set: list[str] = field(default_factory=list)
    ack: Send | None = None                # the ACK of the 2xx, sent again for each copy


@dataclass(frozen=True)
class StartMedia:
    """Send RTP for ``seconds`` to the answer's media address in the answer's first codec
    (RFC 3264 §6.1: the answerer's preferred format), from the offer's port (symmetric RTP,
    RFC 4961). The shell paces the packets; the call's end stops them (:class:`StopMedia`)."""

    addr: Addr
    codec: str
    payload_type: int
    seconds: float


@dataclass(frozen=True)
class StopMedia:
    """The call is over: stop sending RTP."""


#: Codecs the Python customer can send audio in (qa.sipp.media.audio_packets).
MEDIA_CODECS = ("PCMU", "PCMA", "G722")


def answer_media(body: bytes) -> tuple[Addr, str, int] | str:
    """The first audio stream of an SDP answer as (address, codec, payload type), or why
    none can be sent to: no SDP, a rejected (port 0) or inactive/recvonly stream, no
    connection address (RFC 8866 §5.7)."""
    if not body.strip():
        return "the answer had no SDP"
    try:
        sdp = SessionDescription.parse(body)
    except ParseError as exc:
        return f"the answer's SDP does not parse ({exc})"
    audio = next((m for m in sdp.media if m.media == "audio"), None)
    if audio is None or audio.port == 0 or not audio.formats:
        return "the answer has no audio stream"
    if audio.direction in ("inactive", "sendonly"):
        return f"the answer's audio is {audio.direction}"
    connection = audio.connection or sdp.connection
    if connection is None:
        return "the answer's audio has no connection address"
    fmt = audio.formats[0]
    pt = int(fmt) if fmt.isdigit() and fmt.isascii() else -1
    mapping = audio.rtpmap.get(pt)
    return (connection.address, audio.port), (mapping.encoding if mapping else fmt), pt


def _delta_seconds(msg: Response, name: str) -> int | None:
    """The leading delta-seconds of ``Session-Expires: 90;refresher=uac`` / ``Min-SE: 90``."""
    value = (msg.headers.get(name) or "").split(";", 1)[0].strip()
    return int(value) if value.isdigit() else None


def _uri_in(value: str) -> str:
    """The URI of a name-addr / Route value."""
    return parse_name_addr(value).uri


class _UacCore:
    """What a call and a registration share: transactions, digest answers, bookkeeping."""

    method = "INVITE"

    def __init__(self, config: CallConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self.result = CustomerResult(call_id="", transport=config.transport, method=self.method)
        self.done = False
        self.leg: _Leg | None = None
        self.replay_leg: _Leg | None = None
        self._txs: dict[tuple[str, str], ClientTransaction] = {}
        self._wall0 = 0.0
        self._now0 = 0.0

    # ------------------------------------------------------------ entry points
    def start(self, now: float) -> list[Action]:
        """Send the initial request (RFC 3261 §8.1.1)."""
        self._wall0, self._now0 = self.clock(), now
        self.leg = self._new_leg(replay=False)
        request = self._initial_request(self.leg)
        self._describe(request, now)
        return self._send_request(self.leg, request)

    def on_message(self, data: bytes, now: float) -> list[Action]:
        """A SIP message from the platform; malformed ones are counted and dropped."""
        try:
            msg = parse_message(data)
        except ParseError as exc:
            self.result.parse_errors.append(f"received message: {exc}")
            return []
        self.result.messages += 1
        if isinstance(msg, Response):
            return self._on_response(msg, now)
        return self._on_request(msg, now)

    def on_timer(self, key: Hashable, now: float) -> list[Action]:
        """A transaction timer ``(letter, branch, method)`` or the TU's own (``("hangup",)``)."""
        if isinstance(key, tuple) and len(key) == 3 and key[1:] in self._txs:
            return self._tx_timer(self._txs[key[1:]], key[0], now)
        if key == _HANGUP:
            return self._hangup(now)
        return []

    def abort(self, now: float, reason: str) -> list[Action]:
        """Give up (the shell's deadline): the result says why; the call is torn down."""
        self.result.error = self.result.error or reason
        self.done = True
        return []

    # ------------------------------------------------------------ building requests
    def _new_leg(self, *, replay: bool) -> _Leg:
        cfg = self.config
        aor = f"sip:{cfg.from_user}@{cfg.host_part}"
        return _Leg(self.method, self._ruri(), self._to_uri() or aor, new_call_id(cfg.local_host),
                    new_tag(), replay=replay)

    def _ruri(self) -> str:
        return f"sip:{self.config.to_user}@{self.config.host_part}"

    def _to_uri(self) -> str:
        return self._ruri()

    def _via(self) -> str:
        cfg = self.config
        return f"SIP/2.0/{cfg.transport.upper()} {cfg.local_host}:{cfg.local_port};branch={new_branch()};rport"

    def _contact(self) -> str:
        cfg = self.config
        tp = "" if cfg.transport == "udp" else f";transport={cfg.transport}"
        return f"<sip:{cfg.from_user}@{cfg.local_host}:{cfg.local_port}{tp}>"

    def _initial_request(self, leg: _Leg) -> Request:
        """An out-of-dialog request of ``leg`` with its current CSeq and credentials (§8.1.1)."""
        cfg = self.config
        h = Headers([("Via", self._via()), ("Max-Forwards", "70"),
                     ("From", f"<sip:{cfg.from_user}@{cfg.host_part}>;tag={leg.from_tag}"),
                     ("To", f"<{leg.to_uri}>"), ("Call-ID", leg.call_id),
                     ("CSeq", f"{leg.cseq} {leg.method}"), ("Contact", self._contact()),
                     ("User-Agent", USER_AGENT)])
        if leg.auth:
            h.add(*leg.auth)
        for name, value in cfg.extra_headers:
            h.add(name, value)
        body = self._body(h)
        return Request(leg.method, leg.ruri, h, body)

    def _body(self, headers: Headers) -> bytes:
        return b""

    def _send_request(self, leg: _Leg, request: Request) -> list[Action]:
        """Start a client transaction for an initial request of ``leg``."""
        leg.request = request
        return self._start_tx(request)

    def _start_tx(self, request: Request) -> list[Action]:
        tx = ClientTransaction(request, self._next_hop(request), self.config.reliable,
                               self.config.t1, self.config.t2)
        self._txs[tx.key] = tx
        return tx.start()

    def _next_hop(self, request: Request) -> Addr:
        """The top Route's host:port, else the platform (the outbound proxy, §8.1.2)."""
        route = request.headers.get("route")
        if route:
            try:
                uri = parse_uri(_uri_in(route))
                return uri.host, uri.port or (5061 if uri.transport == "TLS" else 5060)
            except ParseError:
                pass
        return self.config.target_host, self.config.target_port

    def _describe(self, request: Request, now: float) -> None:
        r = self.result
        r.call_id = request.call_id or ""
        r.started = self._wall(now)
        r.via_sent = request.headers.get("via") or ""
        r.from_uri, r.to_uri = request.from_addr.uri, request.to_addr.uri
        r.from_user, r.to_user = parse_uri(r.from_uri).user, parse_uri(r.to_uri).user
        r.invites = 1
        r.request_bytes, r.transport_sent = len(bytes(request)), self.config.transport

    def _wall(self, now: float) -> float:
        return round(self._wall0 + (now - self._now0), 6)

    def _ms(self, now: float) -> float:
        return round((now - self._now0) * 1000.0, 3)

    # ------------------------------------------------------------ responses
    def _leg_of(self, call_id: str | None) -> _Leg | None:
        for leg in (self.leg, self.replay_leg):
            if leg is not None and leg.call_id == call_id:
                return leg
        return None

    def _on_response(self, resp: Response, now: float) -> list[Action]:
        """Match the transaction by top-Via branch and CSeq method (§17.1.3)."""
        try:
            tx = self._txs.get((resp.top_via.branch or "", resp.cseq[1]))
        except ParseError as exc:
            self.result.parse_errors.append(f"received response: {exc}")
            return []
        leg = self._leg_of(resp.call_id)
        if tx is None or leg is None:
            return []
        actions, deliver = tx.on_response(resp)
        if not deliver:
            return actions
        return actions + self._tu_response(leg, tx, resp, now)

    def _tu_response(self, leg: _Leg, tx: ClientTransaction, resp: Response,
                     now: float) -> list[Action]:
        if tx.request.method == "BYE":
            return self._bye_done(leg, now) if resp.status >= 200 else []
        if resp.status < 200:
            return self._provisional(leg, resp, now)
        if leg.replay:
            return self._replay_final(leg, resp, now)
        if resp.status in _AUTH:
            self.result.challenges += 1
        if resp.status in _AUTH and leg.auth is None:
            return self._authenticate(leg, resp, now)
        return self._final(leg, resp, now)

    def _provisional(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        return []

    def _authenticate(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        """Answer a 401/407 with digest credentials (§22.2, §22.3): CSeq + 1, new branch."""
        incoming, outgoing = _AUTH[resp.status]
        value = resp.headers.get(incoming)
        if value is None:
            self.result.error = f"{resp.status} without {incoming} header"
            return self._final(leg, resp, now)
        cfg = self.config
        try:
            challenge = parse_digest_challenge(value)
            creds = build_authorization(challenge, username=cfg.auth_user or cfg.from_user,
                                        password=cfg.password, method=leg.method, uri=leg.ruri)
        except (ParseError, ValueError) as exc:
            self.result.error = f"cannot answer the {resp.status} challenge: {exc}"
            return self._final(leg, resp, now)
        leg.auth = (outgoing, creds)
        leg.cseq += 1
        self.result.invites += 1
        return self._send_request(leg, self._initial_request(leg))

    def _record_final(self, resp: Response, now: float) -> None:
        r = self.result
        r.final_code, r.final_reason = resp.status, resp.reason
        r.session_expires = _delta_seconds(resp, "session-expires")      # RFC 4028 §7.2
        if resp.status == 422:
            r.min_se = _delta_seconds(resp, "min-se")

    def _final(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        """A final response the TU does not retry: record it; maybe replay; else done."""
        self._record_final(resp, now)
        self.result.ended = self._wall(now)
        leg.state = "ended"
        return self._finish(now)

    # ------------------------------------------------------------ credential replay
    def _finish(self, now: float) -> list[Action]:
        """The main exchange is over: replay the old credentials if asked, else done."""
        if self.done:
            return []
        if self.config.replay_credentials and self.replay_leg is None and self.leg and self.leg.auth:
            return self._start_replay(now)
        self.done = True
        return []

    def _start_replay(self, now: float) -> list[Action]:
        leg = self._replay_leg()
        self.replay_leg = leg
        self.result.replay_call_id = leg.call_id
        return self._send_request(leg, self._initial_request(leg))

    def _replay_leg(self) -> _Leg:
        """A new Call-ID carrying the previous credentials unchanged (RFC 3261 §22.4)."""
        leg = self._new_leg(replay=True)
        leg.auth = self.leg.auth if self.leg else None
        return leg

    def _replay_final(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        """Record what the platform made of the replay (RFC 2617 §3.2.1 ``stale``)."""
        r = self.result
        r.replay_code = resp.status
        r.rechallenged = resp.status in _AUTH
        if r.rechallenged:
            value = resp.headers.get(_AUTH[resp.status][0]) or ""
            try:
                r.stale = parse_digest_challenge(value).get("stale", "").lower() == "true"
            except ParseError:
                r.stale = None
        leg.state = "ended"
        self.done = True
        return []

    # ------------------------------------------------------------ timers
    def _tx_timer(self, tx: ClientTransaction, timer: str, now: float) -> list[Action]:
        actions, timed_out = tx.on_timer(timer)
        self.result.retransmissions += sum(isinstance(a, Send) for a in actions)
        if not timed_out:
            return actions
        return actions + self._timed_out(tx, now)

    def _timed_out(self, tx: ClientTransaction, now: float) -> list[Action]:
        """Timer B/F: no response at all (treated as 408, §8.1.3.1)."""
        leg = self._leg_of(tx.request.call_id)
        note = f"no response to {tx.request.method} (Timer {'B' if tx.invite else 'F'}, {64 * tx.t1:g} s)"
        if tx.request.method == "BYE" and leg is not None:
            self.result.error = self.result.error or note
            return self._bye_done(leg, now)
        if leg is not None and leg.replay:
            self.result.error = self.result.error or f"replay: {note}"
            self.done = True
            return []
        self.result.error = self.result.error or note
        self.result.ended = self._wall(now)
        return self._finish(now)

    def _hangup(self, now: float) -> list[Action]:
        return []

    def _bye_done(self, leg: _Leg, now: float) -> list[Action]:
        leg.state = "ended"
        if leg.replay:
            self.done = True
            return []
        return self._finish(now)

    # ------------------------------------------------------------ requests from the platform
    def _on_request(self, req: Request, now: float) -> list[Action]:
        if req.method == "ACK":
            return []
        status = 200 if self._leg_of(req.call_id) is not None else 481
        return [Send(bytes(make_response(req, status)), self._reply_addr(req))]

    def _reply_addr(self, req: Request) -> Addr:
        """Where a response goes (§18.2.2): received/rport of the top Via, else sent-by."""
        try:
            via = req.top_via
        except ParseError:
            return self.config.target_host, self.config.target_port
        return via.received or via.host, via.rport or via.port or self.config.target_port


class UacCall(_UacCore):
    """A customer call: INVITE (with SDP offer) -> [auth] -> 18x -> 2xx -> ACK -> BYE."""

    method = "INVITE"

    def __init__(self, config: CallConfig, clock: Callable[[], float]) -> None:
        super().__init__(config, clock)
        offer = make_offer(list(config.codecs), address=config.local_host, port=config.media_port)
        self.offer = bytes(offer)
        self.result.offered_codecs = offer.media[0].codec_names()

    def _body(self, headers: Headers) -> bytes:
        headers.add("Content-Type", "application/sdp")
        return self.offer

    def abort(self, now: float, reason: str) -> list[Action]:
        """CANCEL a ringing call (§9.1), BYE an answered one, then give up."""
        leg = self.leg
        out: list[Action] = []
        if leg is not None and leg.state == "early" and leg.request is not None:
            out = self._send_cancel(leg)
        elif leg is not None and leg.state == "confirmed":
            out = self._send_bye(leg, now)
        return out + super().abort(now, reason)

    # ------------------------------------------------------------ INVITE responses
    def _provisional(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        if leg.replay or resp.status == 100:
            return []
        leg.state = "early"
        r = self.result
        r.provisional.append(resp.status)
        if r.pdd_ms is None and 180 <= resp.status < 190:
            r.pdd_ms = self._ms(now)
        self._codec_from(resp)
        return []

    def _codec_from(self, resp: Response) -> None:
        if self.result.answered_codec or not resp.body.strip():
            return
        try:
            sdp = SessionDescription.parse(resp.body)
        except ParseError:
            return
        names = sdp.media[0].codec_names() if sdp.media else []
        self.result.answered_codec = names[0] if names else None
        self.result.answered_codecs = list(names)

    def _final(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        if 200 <= resp.status < 300:
            return self._answered(leg, resp, now)
        return super()._final(leg, resp, now)

    def _replay_final(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        if not 200 <= resp.status < 300:
            return super()._replay_final(leg, resp, now)
        if leg.ack is not None:                          # retransmitted 2xx
            return [leg.ack]
        self.result.replay_code, self.result.rechallenged = resp.status, False
        return self._confirm(leg, resp) + self._send_bye(leg, now)   # accepted: hang up at once

    def _answered(self, leg: _Leg, resp: Response, now: float) -> list[Action]:
        """2xx: confirm the dialog and ACK it (§13.2.2.4); a copy is ACKed again."""
        if leg.ack is not None:
            return [leg.ack]
        r = self.result
        self._record_final(resp, now)
        r.answered, r.setup_ms = self._wall(now), self._ms(now)
        r.record_route = resp.headers.get_all("record-route")
        self._codec_from(resp)
        return self._confirm(leg, resp) + self._start_media(resp) + [StartTimer(_HANGUP, self.config.duration_s)]

    def _start_media(self, resp: Response) -> list[Action]:
        """Every answered call carries media: the answer's codec for the talk time."""
        if not self.config.send_media:
            self.result.media_sent = "none (media=none)"
            return []
        found = answer_media(resp.body)
        if isinstance(found, str):
            self.result.media_sent = f"none ({found})"
            return []
        addr, codec, pt = found
        if codec.upper() not in MEDIA_CODECS:
            self.result.media_sent = f"none ({codec} (PT {pt}): no audio for it)"
            return []
        return [StartMedia(addr, codec.upper(), pt, self.config.duration_s)]

    def _confirm(self, leg: _Leg, resp: Response) -> list[Action]:
        """Dialog state from the 2xx (§12.1.2), then the ACK (same CSeq number, new branch)."""
        leg.to_header = resp.headers.get("to") or ""
        leg.route_set = list(reversed(resp.headers.get_all("record-route")))
        contacts = resp.headers.get_all("contact")
        leg.remote_target = _uri_in(contacts[0]) if contacts else leg.ruri
        leg.state = "confirmed"
        ack = self._in_dialog(leg, "ACK", leg.cseq)
        if leg.auth:
            ack.headers.add(*leg.auth)   # §22.1: the ACK carries the INVITE's credentials
        leg.ack = Send(bytes(ack), self._next_hop(ack))
        return [leg.ack]

    # ------------------------------------------------------------ in-dialog requests
    def _in_dialog(self, leg: _Leg, method: str, cseq: int) -> Request:
        """A request within the dialog (§12.2.1.1): remote target, route set, tags."""
        ruri, routes = leg.remote_target, list(leg.route_set)
        if routes and ";lr" not in _uri_in(routes[0]).lower():
            ruri, routes = _uri_in(routes[0]), routes[1:] + [f"<{leg.remote_target}>"]  # strict
        cfg = self.config
        h = Headers([("Via", self._via()), ("Max-Forwards", "70")])
        for route in routes:
            h.add("Route", route)
        h.add("From", f"<sip:{cfg.from_user}@{cfg.host_part}>;tag={leg.from_tag}")
        h.add("To", leg.to_header)
        h.add("Call-ID", leg.call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("User-Agent", USER_AGENT)
        return Request(method, ruri, h)

    def _send_bye(self, leg: _Leg, now: float) -> list[Action]:
        leg.cseq += 1
        leg.state = "bye_sent"
        return [CancelTimer(_HANGUP)] + self._start_tx(self._in_dialog(leg, "BYE", leg.cseq))

    def _send_cancel(self, leg: _Leg) -> list[Action]:
        """CANCEL (§9.1): the INVITE's Request-URI, Call-ID, From, To, CSeq number, top Via."""
        inv = leg.request
        h = Headers([("Via", inv.headers.get("via") or ""), ("Max-Forwards", "70")])
        for value in inv.headers.lines("route"):
            h.add("Route", value)
        for name in ("From", "To", "Call-ID"):
            h.add(name, inv.headers.get(name) or "")
        h.add("CSeq", f"{inv.cseq[0]} CANCEL")
        return self._start_tx(Request("CANCEL", inv.uri, h))

    def _hangup(self, now: float) -> list[Action]:
        """The call duration is over: our BYE (§15.1.1)."""
        leg = self.leg
        if leg is None or leg.state != "confirmed":
            return []
        self._ended(now, "caller")
        return [StopMedia()] + self._send_bye(leg, now)

    def _ended(self, now: float, by: str) -> None:
        r = self.result
        r.ended, r.bye_by = self._wall(now), by
        if r.answered is not None:
            r.duration_s = round(r.ended - r.answered, 6)

    def _on_request(self, req: Request, now: float) -> list[Action]:
        """The callee's BYE ends the call (§15.1.2); a re-INVITE gets our offer again."""
        leg = self._leg_of(req.call_id)
        if req.method == "BYE" and leg is not None and leg is self.leg and leg.state == "confirmed":
            self._ended(now, "callee")
            leg.state = "ended"
            reply = [CancelTimer(_HANGUP), StopMedia(), Send(bytes(make_response(req, 200)), self._reply_addr(req))]
            return reply + self._finish(now)
        if req.method == "INVITE" and leg is not None and req.to_tag:
            resp = make_response(req, 200, headers=[("Contact", self._contact()),
                                                   ("Content-Type", "application/sdp")], body=self.offer)
            return [Send(bytes(resp), self._reply_addr(req))]
        return super()._on_request(req, now)


class UacRegister(_UacCore):
    """A registration (RFC 3261 §10.2): REGISTER -> 401 -> REGISTER with credentials -> 200/403.

    The replay (``replay_credentials``) is a new REGISTER on the same Call-ID with the next
    CSeq (§10.2.4 refresh) and the previous Authorization unchanged.
    """

    method = "REGISTER"

    def _ruri(self) -> str:
        return f"sip:{self.config.host_part}"

    def _to_uri(self) -> str:
        return f"sip:{self.config.from_user}@{self.config.host_part}"

    def _body(self, headers: Headers) -> bytes:
        headers.add("Expires", str(self.config.expires))
        return b""

    def _replay_leg(self) -> _Leg:
        main = self.leg
        assert main is not None
        return _Leg(main.method, main.ruri, main.to_uri, main.call_id, main.from_tag,
                    cseq=main.cseq + 1, auth=main.auth, replay=True)

    def _leg_of(self, call_id: str | None) -> _Leg | None:
        if self.replay_leg is not None and self.replay_leg.call_id == call_id:
            return self.replay_leg                      # the same Call-ID: the replay is current
        return super()._leg_of(call_id)

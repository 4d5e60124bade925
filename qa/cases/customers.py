"""Which customer places a case's call: SIPp (the traffic engine) or the Python UAC.

SIPp plays every scenario it can (plain calls, REGISTER, RFC 4733 / in-band DTMF from
generated pcaps, SIP INFO, session timers, large requests); the Python customer takes
what SIPp in Debian cannot do: TLS, and replaying credentials. Both return the same
customer witness (``qa.sipp.CallResult`` fields), so the runner does not care which.

Every answered call carries media from the customer: SIPp's ``uac_media`` (and the
session-timer, padded-INVITE and SIP INFO scenarios around what they test) plays RTP on
the payload type the answer chose for the whole call, the Python customer does the same
over TLS (the wire witness can then tell one-way audio from a healthy call), and the
record's ``customer.media_sent`` says what went out, or ``none (why)``. ``media="none"``
opts a case out (it tests the absence of media); ``media=CODEC`` plays that codec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.cases.checks import Expectation
from qa.config import Environment
from qa.errors import BadInput
from qa.sipp import Agent, CallResult, Outcome, SippResult, media
from qa.sipp import run as run_sipp
from qa.sipp.agent import mask_secrets

DTMF_MODES = ("rfc4733", "info", "inband")
KINDS = ("call", "register", "replay")
#: ``media=none``: the case tests the absence of media, the customer sends no RTP.
NO_MEDIA = "none"
#: The scenario of a plain answered call: RTP on the answer's codec for the whole call.
MEDIA_SCENARIO = "uac_media"
#: Scenarios that play the answer's codec after the ACK (qa.sipp.scenarios: _MEDIA_TALK);
#: they need qa.sipp.media.negotiated_play_keys and log one ``media:`` line per call.
NEGOTIATED_MEDIA = frozenset({MEDIA_SCENARIO, "uac_large_invite", "uac_dtmf_info", "uac_session_timer"})
#: A session-timer call lasts until the platform ends it: its audio covers the expiry and this.
SESSION_MEDIA_MARGIN_S = 15.0
#: Longest audio pcap (qa.sipp.media.audio_packets' limit): a longer call is silent after it.
MAX_MEDIA_S = 600.0
_MEDIA_LINE = re.compile(r"^media: (\S+) pt=(\d*) play=(\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class CallSpec:
    """One customer call: who calls whom, how, and what the case expects."""

    case: str
    from_user: str
    to: str
    password: str | None = None  # None: the environment's password for from_user
    transport: str = "udp"
    duration_s: float = 1.0
    codecs: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")
    expect: Expectation = field(default_factory=Expectation)
    timeout_s: float = 30.0
    kind: str = "call"              # call | register | replay (credentials replayed, Python UAC)
    local_ip: str | None = None     # bind the customer here (allow-list cases)
    dtmf: str = ""
    dtmf_mode: str = "rfc4733"
    media: str | None = None        # None: RTP on the negotiated codec; PCMU|PCMA|G722: that pcap; "none": no RTP
    session_expires: int | None = None
    padding: int = 0                # bytes of padding header: a request over the UDP limit
    cancel_after_s: float | None = None  # the caller CANCELs this long after ringing starts
    test: str | None = None         # the Robot test placing it (record.test_id), None outside Robot

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadInput(f"case {self.case}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.dtmf and self.dtmf_mode not in DTMF_MODES:
            raise BadInput(f"case {self.case}: dtmf_mode {self.dtmf_mode!r} is not one of {', '.join(DTMF_MODES)}")
        if self.transport not in ("udp", "tcp", "tls"):
            raise BadInput(f"case {self.case}: transport {self.transport!r} is not udp, tcp or tls")
        own_media = ("session_expires" if self.session_expires is not None else "padding" if self.padding
                     else "dtmf" if self.dtmf else None)
        if self.media and own_media:
            raise BadInput(f"case {self.case}: media={self.media} cannot be combined with {own_media} "
                           "(that call plays its own media: the answer's codec, or its digits)")


@dataclass
class CustomerOutcome:
    """What the customer saw, or why no call was placed."""

    call: CallResult | None
    problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def python_customer(spec: CallSpec) -> bool:
    """Whether the Python customer places ``spec``: TLS (SIPp here has none) and replays."""
    return spec.transport == "tls" or spec.kind == "replay"


def opted_out_of_media(spec: CallSpec) -> bool:
    """``media=none``: the case tests the absence of media."""
    return (spec.media or "").lower() == NO_MEDIA


async def place(spec: CallSpec, env: Environment, password: str, workdir: Path) -> CustomerOutcome:
    """Place the call of ``spec`` with the customer that can."""
    if python_customer(spec):
        return await _python_customer(spec, env, password)
    workdir.mkdir(parents=True, exist_ok=True)
    scenario, keys = _scenario(spec, workdir)
    result = await run_sipp(_agent(spec, env, password, scenario, keys), workdir)
    if not result.calls and result.outcome in (Outcome.BIND_ERROR, Outcome.FATAL) and _bind_failed(result):
        # another process took a port between allocation and SIPp's bind: once more, new ports
        result = await run_sipp(_agent(spec, env, password, scenario, keys), workdir)
    _scrub(workdir)
    if not result.calls:
        return CustomerOutcome(None, f"no call was placed: SIPp {result.outcome.describe()}")
    call = result.calls[0]
    return CustomerOutcome(call, extra=media_sent(spec, scenario, keys, call, workdir))


def _agent(spec: CallSpec, env: Environment, password: str, scenario: str, keys: dict[str, str]) -> Agent:
    target = env.target
    keys = {"from_user": spec.from_user, "domain": target.domain or target.host,
            "codecs": ",".join(spec.codecs)} | keys
    return Agent(scenario=scenario, remote=target.address(), transport=spec.transport, service=spec.to,
                 auth_user=spec.from_user, auth_password=password, keys=keys, calls=1,
                 dtmf=spec.dtmf if spec.dtmf_mode == "info" else None,
                 local_ip=spec.local_ip or "127.0.0.1", call_duration_ms=int(spec.duration_s * 1000),
                 timeout_s=spec.timeout_s)


def _bind_failed(result: SippResult) -> bool:
    return any("bind" in line.lower() for line in result.errors)


def scenario_name(spec: CallSpec) -> str:
    """The sipp/ scenario that places ``spec`` (the Python customer places TLS and replay).

    Every call expected to be answered plays RTP on the codec the answer chose, so the wire
    witness judges media on every answered call: ``uac_media``, or the session-timer,
    padded-INVITE and SIP INFO scenarios, which do the same around what they test
    (:data:`NEGOTIATED_MEDIA`). ``media=none`` opts out (a case about the absence of media:
    ``uac_call``), ``media=CODEC`` plays that codec's pcap, DTMF cases play their digits.
    """
    if spec.kind == "register":
        return "uac_register"
    if spec.session_expires is not None:
        return "uac_session_timer"
    if spec.padding:
        return "uac_large_invite"
    if spec.cancel_after_s is not None:
        return "uac_cancel"
    if spec.dtmf:
        return "uac_dtmf_info" if spec.dtmf_mode == "info" else "uac_dtmf"
    if spec.media:
        return "uac_call" if opted_out_of_media(spec) else "uac_dtmf"
    return MEDIA_SCENARIO if spec.kind == "call" and spec.expect.final_code == 200 else "uac_call"


def _scenario(spec: CallSpec, workdir: Path) -> tuple[str, dict[str, str]]:
    """The sipp/ scenario for the spec, and the keys it needs (pcaps are written here)."""
    name = scenario_name(spec)
    keys: dict[str, str] = {}
    if name == "uac_session_timer":
        keys = {"session_expires": str(spec.session_expires)}
    elif name == "uac_large_invite":
        keys = {"padding_bytes": str(spec.padding)}
    elif name == "uac_cancel":
        keys = {"cancel_ms": str(int((spec.cancel_after_s or 0) * 1000))}
    elif name == "uac_dtmf":
        keys = media.play_keys(_pcap_to_play(spec, workdir))
    if name in NEGOTIATED_MEDIA:
        # a session-timer call lasts until the platform ends it, not for the talk time
        seconds = (spec.session_expires + SESSION_MEDIA_MARGIN_S if spec.session_expires is not None
                   else spec.duration_s)
        seconds = min(max(seconds, media.FRAME_MS / 1000), MAX_MEDIA_S)
        keys |= media.negotiated_play_keys(seconds, _media_dir(workdir))
    return name, keys


def _pcap_to_play(spec: CallSpec, workdir: Path) -> Path:
    """The pcap of ``uac_dtmf``: the case's digits (RFC 4733 or in-band), or its codec's audio."""
    if spec.dtmf:
        pcap = workdir / "dtmf.pcap"
        if spec.dtmf_mode == "rfc4733":
            media.rfc4733_pcap(spec.dtmf, pcap)
        else:
            media.inband_pcap(spec.dtmf, pcap, codec=spec.codecs[0])
        return pcap
    pcap = workdir / "audio.pcap"
    media.audio_pcap(str(spec.media), max(spec.duration_s, 1.0), pcap)
    return pcap


def plays_negotiated_media(spec: CallSpec) -> bool:
    """Whether the call, once answered, plays RTP on the codec the answer chose."""
    return spec.kind == "call" and not python_customer(spec) and scenario_name(spec) in NEGOTIATED_MEDIA


def sends_rtp(spec: CallSpec) -> bool:
    """Whether the customer plays RTP if the call is answered: the negotiated codec's audio,
    a codec's audio (``media=CODEC``), RFC 4733 events or in-band tones. (A negotiated codec
    without a pcap, e.g. opus, still sends nothing: the record's ``media_sent`` says so.)"""
    if spec.kind in ("call", "replay") and python_customer(spec):
        return not opted_out_of_media(spec)                # the Python customer: the answer's codec
    if spec.kind != "call":
        return False
    return plays_negotiated_media(spec) or scenario_name(spec) == "uac_dtmf"


def customer_sent_rtp(customer: dict[str, Any]) -> bool | None:
    """Whether the customer sent RTP, read from a record's ``customer`` object after the
    call (``media_sent``): ``None`` when it does not say (unanswered, or an older record).
    Unlike :func:`sends_rtp` it knows when the negotiated codec had no pcap (opus)."""
    sent = customer.get("media_sent")
    return None if sent is None else not str(sent).startswith("none")


def _media_dir(workdir: Path) -> Path:
    """Where a run keeps its audio pcaps: beside the calls' work folders, so each (codec,
    duration) is written once per run, not once per call."""
    return workdir.parent / "media"


def media_sent(spec: CallSpec, scenario: str, keys: dict[str, str], call: CallResult,
               workdir: Path) -> dict[str, Any]:
    """The record's ``customer.media_sent``: what RTP the customer sent in an answered call.

    ``"PCMA (PT 8): 50 packets, 1.00 s"`` (the pcap played; the call's end cuts it short),
    or ``"none (...)"`` with the reason, so the wire witness can tell a customer that could
    not encode the negotiated codec (opus) or was told not to send from one-way audio.
    """
    if not call.answered_ok or spec.kind != "call":
        return {}
    if scenario in NEGOTIATED_MEDIA:
        return {"media_sent": _negotiated_media_sent(call, keys, workdir)}
    if "media_pcap" in keys:
        return {"media_sent": _pcap_sent(keys["media_pcap"], call)}
    why = "media=none" if opted_out_of_media(spec) else f"{scenario} sends no media"
    return {"media_sent": f"none ({why})"}


def _negotiated_media_sent(call: CallResult, keys: dict[str, str], workdir: Path) -> str:
    """What ``uac_media`` logged it played for this call (its ``media:`` line)."""
    log = workdir / "actions.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    found = [m for m in _MEDIA_LINE.finditer(text) if m.group(1) == call.call_id]
    if not found:
        return "none (the scenario logged no media line)"
    pt, played = found[-1].group(2), found[-1].group(3)
    if played != "none":
        return _pcap_sent(keys[media.pcap_key(played)], call, played)
    if not pt:
        return "none (the answer had no audio payload type)"
    return f"none ({call.answered_codec or 'PT ' + pt} (PT {pt}): no pcap for it)"


def _pcap_sent(path: str, call: CallResult, codec: str | None = None) -> str:
    """``CODEC (PT n): N packets, S s`` of the pcap the customer played; when the call
    ended before the pcap did (the callee hung up), about how many went out before."""
    pt, packets = media.rtp_summary(path)
    name = codec or _codec_of(pt)
    seconds = media.pcap_duration_ms(path) / 1000
    talked = call.duration_s
    if talked is not None and talked < seconds - 2 * media.FRAME_MS / 1000:
        sent = min(packets, round(talked * 1000 / media.FRAME_MS))
        return f"{name} (PT {pt}): about {sent} of {packets} packets (the call ended after {talked:.2f} s)"
    return f"{name} (PT {pt}): {packets} packets, {seconds:.2f} s"


def _codec_of(pt: int | None) -> str:
    names = {number: name for name, number in media.STATIC_PAYLOAD_TYPES.items()}
    return names.get(pt, "telephone-event" if pt is not None and pt >= 96 else "RTP")


def _scrub(workdir: Path) -> None:
    """Mask digest responses and nonces in SIPp's traces, which stay in the report folder."""
    for path in workdir.glob("*.log"):
        text = path.read_text(errors="replace")
        masked = mask_secrets(text)
        if masked != text:
            path.write_text(masked)


async def _python_customer(spec: CallSpec, env: Environment, password: str) -> CustomerOutcome:
    from qa.customer import CallConfig, place_call

    target = env.target
    tls = spec.transport == "tls"
    port = target.tls_port if tls else target.port
    if port is None:
        raise BadInput(f"environment {env.name}: no {spec.transport} port for case {spec.case}")
    config = CallConfig(from_user=spec.from_user, password=password, to_user=spec.to, domain=target.domain,
                        target_host=target.host, target_port=port, transport=spec.transport,
                        duration_s=spec.duration_s, codecs=spec.codecs, tls_server_name=target.tls_server_name,
                        ca_file=str(target.ca_cert) if target.ca_cert else None,
                        replay_credentials=spec.kind == "replay",
                        send_media=not opted_out_of_media(spec))
    result = await place_call(config, timeout_s=spec.timeout_s)
    extra = {"record_route": result.record_route, "via_sent": result.via_sent,
             "rechallenged": result.rechallenged, "stale": result.stale, "replay_code": result.replay_code,
             "tls": str(result.tls) if result.tls else None}
    if result.final_code == 200:
        extra["media_sent"] = result.media_sent or "none (the customer started no media)"
    if result.call_id is None:
        return CustomerOutcome(None, result.error or "the customer placed no call", extra)
    return CustomerOutcome(result, None if result.final_code else result.error, extra)

"""Which customer places a case's call: SIPp (the traffic engine) or the Python UAC.

SIPp plays every scenario it can (plain calls, REGISTER, RFC 4733 / in-band DTMF from
generated pcaps, SIP INFO, session timers, large requests); the Python customer takes
what SIPp in Debian cannot do: TLS, and replaying credentials. Both return the same
customer witness (``qa.sipp.CallResult`` fields), so the runner does not care which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.cases.checks import Expectation
from qa.config import Environment
from qa.errors import BadInput
from qa.sipp import Agent, CallResult, Outcome, SippResult, run as run_sipp
from qa.sipp import media
from qa.sipp.agent import mask_secrets

DTMF_MODES = ("rfc4733", "info", "inband")
KINDS = ("call", "register", "replay")


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
    media: str | None = None        # send RTP in this codec (codec cases)
    session_expires: int | None = None
    padding: int = 0                # bytes of padding header: a request over the UDP limit
    cancel_after_s: float | None = None  # the caller CANCELs this long after ringing starts

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadInput(f"case {self.case}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.dtmf and self.dtmf_mode not in DTMF_MODES:
            raise BadInput(f"case {self.case}: dtmf_mode {self.dtmf_mode!r} is not one of {', '.join(DTMF_MODES)}")
        if self.transport not in ("udp", "tcp", "tls"):
            raise BadInput(f"case {self.case}: transport {self.transport!r} is not udp, tcp or tls")


@dataclass
class CustomerOutcome:
    """What the customer saw, or why no call was placed."""

    call: CallResult | None
    problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def place(spec: CallSpec, env: Environment, password: str, workdir: Path) -> CustomerOutcome:
    """Place the call of ``spec`` with the customer that can."""
    if spec.transport == "tls" or spec.kind == "replay":
        return await _python_customer(spec, env, password)
    workdir.mkdir(parents=True, exist_ok=True)
    result = await run_sipp(_agent(spec, env, password, workdir), workdir)
    if not result.calls and result.outcome in (Outcome.BIND_ERROR, Outcome.FATAL) and _bind_failed(result):
        # another process took a port between allocation and SIPp's bind: once more, new ports
        result = await run_sipp(_agent(spec, env, password, workdir), workdir)
    _scrub(workdir)
    if not result.calls:
        return CustomerOutcome(None, f"no call was placed: SIPp {result.outcome.describe()}")
    return CustomerOutcome(result.calls[0])


def _agent(spec: CallSpec, env: Environment, password: str, workdir: Path) -> Agent:
    target = env.target
    scenario, keys = _scenario(spec, workdir)
    keys = {"from_user": spec.from_user, "domain": target.domain or target.host,
            "codecs": ",".join(spec.codecs)} | keys
    return Agent(scenario=scenario, remote=target.address(), transport=spec.transport, service=spec.to,
                 auth_user=spec.from_user, auth_password=password, keys=keys, calls=1,
                 dtmf=spec.dtmf if spec.dtmf_mode == "info" else None,
                 local_ip=spec.local_ip or "127.0.0.1", call_duration_ms=int(spec.duration_s * 1000),
                 timeout_s=spec.timeout_s)


def _bind_failed(result: SippResult) -> bool:
    return any("bind" in line.lower() for line in result.errors)


def _scenario(spec: CallSpec, workdir: Path) -> tuple[str, dict[str, str]]:
    """The sipp/ scenario for the spec, and the keys it needs."""
    if spec.kind == "register":
        return "uac_register", {}
    if spec.session_expires is not None:
        return "uac_session_timer", {"session_expires": str(spec.session_expires)}
    if spec.padding:
        return "uac_large_invite", {"padding_bytes": str(spec.padding)}
    if spec.cancel_after_s is not None:
        return "uac_cancel", {"cancel_ms": str(int(spec.cancel_after_s * 1000))}
    if spec.dtmf and spec.dtmf_mode == "info":
        return "uac_dtmf_info", {}
    if spec.dtmf:
        pcap = workdir / "dtmf.pcap"
        if spec.dtmf_mode == "rfc4733":
            media.rfc4733_pcap(spec.dtmf, pcap)
        else:
            media.inband_pcap(spec.dtmf, pcap, codec=spec.codecs[0])
        return "uac_dtmf", media.play_keys(pcap)
    if spec.media:
        pcap = workdir / "audio.pcap"
        media.audio_pcap(spec.media, max(spec.duration_s, 1.0), pcap)
        return "uac_dtmf", media.play_keys(pcap)
    return "uac_call", {}


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
                        replay_credentials=spec.kind == "replay")
    result = await place_call(config, timeout_s=spec.timeout_s)
    extra = {"record_route": result.record_route, "via_sent": result.via_sent,
             "rechallenged": result.rechallenged, "stale": result.stale, "replay_code": result.replay_code,
             "tls": str(result.tls) if result.tls else None}
    if result.call_id is None:
        return CustomerOutcome(None, result.error or "the customer placed no call", extra)
    return CustomerOutcome(result, None if result.final_code else result.error, extra)

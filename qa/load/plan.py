"""What every generator of a run needs, resolved once by the runner.

A :class:`WorkerPlan` is plain data: the master hands it to each Locust worker when the
worker joins, so a worker on another machine needs voipqa and SIPp and nothing else (the
scenario travels as text, the calls as the ``-inf`` CSV). The CSV carries the digest
credentials as SIPp's ``[authentication username=U password=P]`` keyword (SIPp 3.6.1
cannot nest ``[field0]`` inside it, see ``sipp/uac_load.xml``), so the plan is a secret:
it is never logged nor written into the run directory.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable

from qa.errors import BadInput, ConfigError
from qa.load.profile import Destination, LoadProfile

#: The caller of calls to a target that never challenges (the loopback SIPp UAS).
ANONYMOUS = "loadgen"
#: Most lines of the -inf CSV: enough to keep the destination weights exact.
MAX_CSV_LINES = 10_000
#: SIPp keywords and CSV separators cannot appear in a credential it injects.
_UNSAFE = re.compile(r"[\s;\[\]=,]")


@dataclass
class WorkerPlan:
    """One worker's instructions (all of its SIPp UACs share them)."""

    scenario_name: str
    scenario_xml: str
    target: str                  # host:port of the platform's SIP entry
    transport: str               # udp | tcp
    domain: str                  # host part of the Request-URI / From / To
    calls_csv: str               # SIPp -inf content (holds credentials)
    hold_ms: int
    media: bool
    recv_timeout_s: float
    buff_size: int
    cpu_quota: float | None
    sipp_per_worker: int
    max_concurrent_per_sipp: int
    calls_per_sipp_max: int      # -m: every SIPp stops by itself after this many calls
    run_timeout_s: float         # -timeout: every SIPp stops by itself after this long

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "WorkerPlan":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def __repr__(self) -> str:  # never show the credentials
        return f"WorkerPlan({self.scenario_name} -> {self.target}/{self.transport}, {self.sipp_per_worker} SIPp)"


def weighted(destinations: Iterable[Destination]) -> list[Destination]:
    """The destinations repeated in proportion to their weights (reduced by their gcd)."""
    dests = list(destinations)
    g = 0
    for d in dests:
        g = math.gcd(g, d.weight)
    out: list[Destination] = []
    for d in dests:
        out += [d] * (d.weight // max(g, 1))
    if len(out) > MAX_CSV_LINES:
        raise BadInput(f"scenario.destinations: the weights need {len(out)} CSV lines "
                       f"(at most {MAX_CSV_LINES}); use smaller weights")
    return out


def _interleave(items: list[Destination]) -> list[Destination]:
    """Spread each destination evenly over the cycle (a 90/10 mix is not 90 then 10)."""
    keyed = []
    counts: dict[int, int] = {}
    for d in items:
        n = counts.get(id(d), 0)
        counts[id(d)] = n + 1
        keyed.append((n, d))
    return [d for _, d in sorted(keyed, key=lambda nd: (nd[0] + 0.5) / counts[id(nd[1])])]


def calls_csv(accounts: list[tuple[str, str | None]], destinations: Iterable[Destination]) -> str:
    """The ``-inf`` CSV: caller; number; credentials keyword (or empty); expected code.

    Every account is used in turn and the destinations follow their weights; SIPp reads
    the lines in order (SEQUENTIAL) and starts again at the top.
    """
    if not accounts:
        raise BadInput("no account to place calls with")
    dests = _interleave(weighted(destinations))
    lines = ["SEQUENTIAL"]
    count = min(math.lcm(len(accounts), len(dests)), MAX_CSV_LINES)
    for k in range(count):
        user, password = accounts[k % len(accounts)]
        dest = dests[k % len(dests)]
        auth = "" if password is None else f"[authentication username={user} password={password}]"
        lines.append(f"{user};{dest.number};{auth};{dest.expect}")
    return "\n".join(lines) + "\n"


def check_credentials(accounts: list[tuple[str, str | None]]) -> None:
    """Credentials SIPp can inject: no blanks, ``;`` ``[`` ``]`` ``=`` ``,`` (named, never shown)."""
    for user, password in accounts:
        if _UNSAFE.search(user):
            raise BadInput(f"account {user!r}: a user name for SIPp cannot hold blanks or ; [ ] = ,")
        if password is not None and (not password or _UNSAFE.search(password)):
            raise BadInput(f"account {user}: its password holds a character SIPp's [authentication] keyword "
                           f"cannot carry (blank ; [ ] = ,): change it or leave the account out")


def media_scenario(profile: LoadProfile) -> Path:
    """The scenario that sends media: one that plays ``[media_pcap]`` (the generator writes a
    G.711 pcap as long as the hold), or its ``NAME_media.xml`` sibling (``uac_load`` ->
    ``uac_load_media``); otherwise ``media: true`` cannot be honoured and says so."""
    path = profile.scenario_path()
    if "[media_pcap]" in path.read_text(encoding="iso-8859-1"):
        return path
    sibling = path.with_name(f"{path.stem}_media.xml")
    if sibling.is_file() and "[media_pcap]" in sibling.read_text(encoding="iso-8859-1"):
        return sibling
    raise ConfigError(profile.path or "profile", "scenario.media",
                      f"true, but {path.name} sends no media (it never plays [media_pcap]) and there is no "
                      f"{sibling.name}: use a scenario that does, e.g. uac_load_media")


def worker_plan(profile: LoadProfile, *, target: str, domain: str, accounts: list[tuple[str, str | None]],
                total_sipps: int) -> WorkerPlan:
    """The plan every worker gets, for ``total_sipps`` SIPp UACs sharing the run."""
    check_credentials(accounts)
    scenario = media_scenario(profile) if profile.scenario.media else profile.scenario_path()
    shape = profile.shape()
    spec = profile.scenario
    total_calls = shape.calls()
    # without a cap SIPp picks its own (3 x rate x call length, from its start-up rate of
    # 0): every SIPp gets an explicit one, above anything the profile can reach
    cap = profile.rate.max_concurrent or math.ceil(shape.peak() * (spec.hold + spec.call_timeout + 5) * 1.5) + 100
    return WorkerPlan(
        scenario_name=scenario.name,
        scenario_xml=scenario.read_text(encoding="iso-8859-1"),
        target=target,
        transport=spec.transport,
        domain=domain,
        calls_csv=calls_csv(accounts, spec.destinations),
        hold_ms=int(round(spec.hold * 1000)),
        media=spec.media,
        recv_timeout_s=spec.call_timeout,
        buff_size=profile.generator.buff_size,
        cpu_quota=profile.generator.cpu_quota,
        sipp_per_worker=profile.generator.sipp_per_worker,
        max_concurrent_per_sipp=max(1, math.ceil(cap / total_sipps)),
        # bounds every SIPp keeps by itself, whatever happens to its controller
        calls_per_sipp_max=int(total_calls * 2 / total_sipps) + 1000,
        run_timeout_s=shape.duration_s + spec.call_timeout + spec.hold + 60.0,
    )

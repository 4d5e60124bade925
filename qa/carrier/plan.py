"""The number plan (DESIGN §4): which behaviour the mock carrier plays per called number.

``carriers/numberplan.yaml`` is the single source of truth for both carriers (the native
Python one here and the FreeSWITCH dialplan generated from it). The file is validated
strictly, with pydantic models read like every other user file (:mod:`qa.validation`), so
every problem is one line naming the file and the field::

    carriers/numberplan.yaml: routes[3].reject: 999 is not a SIP final response code

Schema (version 1)::

    version: 1                      # required, must be 1
    carrier: carrier-a              # optional default name for CDRs (the CLI --name wins)
    no_route: 404                   # final code for a number no prefix matches (400-699)
    max_call_s: 3600                # safety: the carrier hangs up an answered call after this
    defaults:                       # optional; any route field except prefix/reject/name
      codecs: [PCMU, PCMA, telephone-event]
      media: echo
    routes:
      - prefix: "1555000"           # required, quoted string of digits, unique
        name: answer-echo           # optional label, goes to the carrier CDR as "route"
        description: free text      # optional
        carriers: [carrier-c]       # optional: the route exists only on carriers run with one of
                                    # these --name values; elsewhere the next-longest prefix applies
        # exactly one outcome: answer (default), `reject: CODE`, `ring_forever: true`
        # or `blackhole: true`
        blackhole: false            # no response at all, retransmissions absorbed (a dead trunk)
        reject: 486                 # final failure code 400-699 ...
        reason: Busy Here           # ... and its optional reason phrase
        ring_forever: false         # 180 and never a final response (caller must CANCEL)
        ring_s: 0                   # seconds between the provisional and the final response
        early_media: false          # 183 with the SDP answer instead of 180 (media flows)
        media: echo                 # echo (RTP sent back) | silence | tone (1 kHz): generated RTP,
                                    # 20 ms packets of the negotiated codec at 50 pps | none: no
                                    # RTP at all (a fault: one-way audio, the media path is dead)
        rtp_payload_type: null      # a fault: generated RTP (silence/tone) carries this payload
                                    # type instead of the negotiated one (native carrier only)
        hangup_after_s: null        # the carrier sends BYE this many seconds after answering
        rtp_stop_after_s: null      # the carrier stops sending RTP after this many seconds
        codecs: [PCMU, PCMA, telephone-event]   # accepted codecs, in preference order
        collect_dtmf: true          # record RFC 4733 / SIP INFO / in-band (G.711) digits in the CDR

The longest matching prefix wins; a leading ``+`` of the number is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, model_validator

from qa.validation import (
    FieldError,
    FileModel,
    at_least,
    first_duplicate,
    load_yaml_mapping,
    number_in,
    one_of,
    text,
    validate_file,
)

#: codec names the carriers know (case-insensitive on input, stored in this spelling)
KNOWN_CODECS: tuple[str, ...] = (
    "PCMU", "PCMA", "G722", "G729", "GSM", "iLBC", "opus", "speex", "L16", "AMR",
    "AMR-WB", "telephone-event", "CN",
)
_CODEC_SPELLING = {name.lower(): name for name in KNOWN_CODECS}

MEDIA_MODES: tuple[str, ...] = ("echo", "silence", "tone", "none")
DEFAULT_CODECS: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")

_CARRIER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: route fields that describe an answered call (meaningless on reject/ring-forever/blackhole)
_ANSWER_ONLY = ("early_media", "hangup_after_s", "rtp_stop_after_s", "media", "rtp_payload_type")


@dataclass(frozen=True)
class Route:
    """What the carrier does with a call to a number under ``prefix``."""

    prefix: str
    name: str = ""
    description: str = ""
    reject: int | None = None
    reason: str | None = None
    ring_forever: bool = False
    ring_s: float = 0.0
    early_media: bool = False
    media: str = "echo"
    hangup_after_s: float | None = None
    rtp_stop_after_s: float | None = None
    rtp_payload_type: int | None = None   # fault: generated RTP on this PT, not the negotiated one
    codecs: tuple[str, ...] = DEFAULT_CODECS
    collect_dtmf: bool = True
    carriers: tuple[str, ...] = ()
    blackhole: bool = False

    @property
    def answers(self) -> bool:
        """True when a call on this route is (eventually) answered with 200."""
        return self.reject is None and not self.ring_forever and not self.blackhole

    def applies_to(self, carrier: str | None) -> bool:
        """Whether the route exists on the carrier named ``carrier`` (None: an unnamed one)."""
        return not self.carriers or carrier in self.carriers

    @property
    def audio_codecs(self) -> tuple[str, ...]:
        return tuple(c for c in self.codecs if c not in ("telephone-event", "CN"))


@dataclass(frozen=True)
class NumberPlan:
    routes: tuple[Route, ...]
    no_route: int = 404
    max_call_s: float = 3600.0
    carrier: str = ""
    path: str = ""
    _by_prefix: dict[str, Route] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_prefix.update({r.prefix: r for r in self.routes})

    def lookup(self, number: str, carrier: str | None = None) -> Route | None:
        """The route of the longest prefix of ``number`` that exists on ``carrier``.

        A route with ``carriers`` is skipped on any other carrier (and when ``carrier`` is
        None), so the next-longest matching prefix applies. None when nothing matches.
        """
        digits = number.removeprefix("+")
        for end in range(len(digits), 0, -1):
            route = self._by_prefix.get(digits[:end])
            if route is not None and route.applies_to(carrier):
                return route
        return None

    def route_for(self, number: str, carrier: str | None = None) -> Route:
        """Like lookup, but an unmatched number gets a reject route with ``no_route``."""
        route = self.lookup(number, carrier)
        if route is None:
            return Route(prefix="", name="no-route", reject=self.no_route)
        return route


# ---------------------------------------------------------------- the file, as pydantic models

def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true/false")  # noqa: TRY004
    return value


def _failure_code(value: Any) -> int:
    """A final failure code: a redirection (3xx) would send the caller elsewhere, not fail."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a SIP final response code")  # noqa: TRY004
    if not 300 <= value <= 699:
        raise ValueError(f"{value} is not a SIP final response code")
    if value < 400:
        raise ValueError(f"{value} is a redirection; a reject needs a code 400-699")
    return value


def _payload_type(value: Any) -> int:
    """An RTP payload type, 0-127 (RFC 3550 §5.1: 7 bits)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        raise ValueError(f"{value!r} is not an RTP payload type (0-127)")
    return value


def _version(value: Any) -> int:
    if isinstance(value, bool) or value != 1:
        raise ValueError(f"{value!r} is not a supported version (1)")
    return 1


def _prefix(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} must be a quoted string of digits (YAML turns 0044 into a number)")  # noqa: TRY004
    if not value.isdigit() or not value.isascii():
        raise ValueError(f"{value!r} is not a string of digits 0-9")
    return value


def _codec(value: Any) -> str:
    """A known codec in its usual spelling (``pcma`` is PCMA)."""
    if not isinstance(value, str) or value.lower() not in _CODEC_SPELLING:
        raise ValueError(f"unknown codec {value!r} (known: {', '.join(KNOWN_CODECS)})")
    return _CODEC_SPELLING[value.lower()]


def _codec_list(codecs: tuple[str, ...]) -> tuple[str, ...]:
    if (i := first_duplicate(codecs)) is not None:
        raise FieldError(f"codec {codecs[i]} listed twice", i)
    if all(c in ("telephone-event", "CN") for c in codecs):
        raise ValueError("needs at least one audio codec besides telephone-event/CN")
    return codecs


def _carrier_name(value: Any) -> str:
    if not isinstance(value, str) or not _CARRIER_NAME.match(value):
        raise ValueError(f"{value!r} is not a carrier name (letters, digits, . _ -)")
    return value


def _carrier_list(names: tuple[str, ...]) -> tuple[str, ...]:
    if (i := first_duplicate(names)) is not None:
        raise FieldError(f"carrier {names[i]} listed twice", i)
    return names


Flag = Annotated[bool, BeforeValidator(_boolean)]
Text = Annotated[str, BeforeValidator(text)]
FailureCode = Annotated[int, BeforeValidator(_failure_code)]
Seconds = Annotated[float, number_in(0)]
PositiveSeconds = Annotated[float, number_in(0, above=True)]
Codecs = Annotated[tuple[Annotated[str, BeforeValidator(_codec)], ...], at_least(1),
                   AfterValidator(_codec_list)]
CarrierNames = Annotated[tuple[Annotated[str, BeforeValidator(_carrier_name)], ...], at_least(1),
                         AfterValidator(_carrier_list)]


class BehaviourFile(FileModel):
    """What ``defaults:`` may set, and every route too; the defaults are :class:`Route`'s."""

    ring_s: Seconds = 0.0
    early_media: Flag = False
    media: Annotated[str, one_of(MEDIA_MODES)] = "echo"
    hangup_after_s: PositiveSeconds | None = None
    rtp_stop_after_s: PositiveSeconds | None = None
    rtp_payload_type: Annotated[int, BeforeValidator(_payload_type)] | None = None
    codecs: Codecs = DEFAULT_CODECS
    collect_dtmf: Flag = True


class RouteFile(BehaviourFile):
    """One entry of ``routes:``; an explicit null is refused except where it means "none"."""

    prefix: Annotated[str, BeforeValidator(_prefix)]
    name: Text = ""
    description: Text = ""
    carriers: CarrierNames = ()
    reject: Annotated[int | None, BeforeValidator(_failure_code)] = None
    reason: Annotated[str | None, BeforeValidator(text)] = None
    ring_forever: Flag = False
    blackhole: Flag = False

    @model_validator(mode="after")
    def _one_outcome(self) -> RouteFile:
        """A field of another outcome than the route's is a mistake, named on that field.

        Only what the route itself writes counts: ``defaults:`` apply to every route."""
        written = {key: getattr(self, key) for key in self.model_fields_set}
        if self.reject is not None:
            _refuse(written, ("ring_forever", "blackhole", *_ANSWER_ONLY), "rejects")
        elif "reason" in written:
            raise FieldError("only a route with 'reject' has a reason phrase", "reason")
        if self.ring_forever:
            for key in ("hangup_after_s", "rtp_stop_after_s", "ring_s"):
                if written.get(key) not in (None, 0):
                    raise FieldError("makes no sense on a route that rings forever", key)
        if self.blackhole:
            _refuse(written, ("ring_forever", "ring_s", *_ANSWER_ONLY), "blackholes")
        return self


def _refuse(written: dict[str, Any], keys: tuple[str, ...], outcome: str) -> None:
    """Refuse fields that only make sense for another outcome than ``outcome``."""
    for key in keys:
        if written.get(key) not in (None, False, 0):
            raise FieldError(f"makes no sense on a route that {outcome}", key)


def _unique_prefixes(routes: list[RouteFile]) -> list[RouteFile]:
    seen: dict[str, int] = {}
    for i, route in enumerate(routes):
        if route.prefix in seen:
            raise FieldError(f"{route.prefix} is already the prefix of routes[{seen[route.prefix]}]", i, "prefix")
        seen[route.prefix] = i
    return routes


class PlanFile(FileModel):
    """The whole file; see the schema at the top of this module."""

    version: Annotated[int, BeforeValidator(_version)]
    carrier: Text = ""
    no_route: FailureCode = 404
    max_call_s: PositiveSeconds = 3600.0
    defaults: BehaviourFile | None = None
    routes: Annotated[list[RouteFile], at_least(1), AfterValidator(_unique_prefixes)]


# ---------------------------------------------------------------- loading

def parse_plan(data: Any, path: str = "numberplan.yaml") -> NumberPlan:
    """Validate an already-loaded YAML document; raise ConfigError on the first problem."""
    plan = validate_file(PlanFile, data, path)
    defaults = plan.defaults.model_dump(exclude_unset=True) if plan.defaults else {}
    return NumberPlan(routes=tuple(_route(defaults, r) for r in plan.routes), no_route=plan.no_route,
                      max_call_s=plan.max_call_s, carrier=plan.carrier, path=path)


def _route(defaults: dict[str, Any], route: RouteFile) -> Route:
    """The route as the carrier plays it: what it writes over what ``defaults:`` write."""
    fields = defaults | route.model_dump(exclude_unset=True)
    if route.ring_forever or route.blackhole:
        fields.pop("ring_s", None)  # no final response ever comes: there is no time to ring before it
    return Route(**fields)


def load_plan(path: Path | str) -> NumberPlan:
    """Read and validate a number plan file; ConfigError names file and field."""
    return parse_plan(load_yaml_mapping(path, "version:, routes:, ..."), str(path))


__all__ = ["KNOWN_CODECS", "MEDIA_MODES", "NumberPlan", "Route", "load_plan", "parse_plan"]

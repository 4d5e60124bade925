"""The number plan (DESIGN §4): which behaviour the mock carrier plays per called number.

``carriers/numberplan.yaml`` is the single source of truth for both carriers (the native
Python one here and the FreeSWITCH dialplan generated from it). Validation is strict and
by hand so that every problem is one line naming the file and the field::

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

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qa.errors import ConfigError

#: codec names the carriers know (case-insensitive on input, stored in this spelling)
KNOWN_CODECS: tuple[str, ...] = (
    "PCMU", "PCMA", "G722", "G729", "GSM", "iLBC", "opus", "speex", "L16", "AMR",
    "AMR-WB", "telephone-event", "CN",
)
_CODEC_SPELLING = {name.lower(): name for name in KNOWN_CODECS}

MEDIA_MODES: tuple[str, ...] = ("echo", "silence", "tone", "none")
DEFAULT_CODECS: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")

_TOP_KEYS = {"version", "carrier", "no_route", "max_call_s", "defaults", "routes"}
_BEHAVIOUR_KEYS = {
    "ring_s", "early_media", "media", "hangup_after_s", "rtp_stop_after_s", "codecs",
    "collect_dtmf", "ring_forever", "reason", "rtp_payload_type",
}
_ROUTE_KEYS = _BEHAVIOUR_KEYS | {"prefix", "name", "description", "reject", "carriers", "blackhole"}
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
        digits = number[1:] if number.startswith("+") else number
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


# ---------------------------------------------------------------- validation helpers

class _Checker:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, fld: str, problem: str) -> ConfigError:
        return ConfigError(self.path, fld, problem)

    def keys(self, where: str, data: dict, allowed: set[str]) -> None:
        for key in data:
            if not isinstance(key, str) or key not in allowed:
                raise self.fail(f"{where}.{key}" if where else str(key),
                                f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def boolean(self, fld: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(fld, f"{value!r} is not true/false")
        return value

    def seconds(self, fld: str, value: Any, *, allow_zero: bool, allow_null: bool) -> float | None:
        if value is None and allow_null:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(fld, f"{value!r} is not a number of seconds")
        if value < 0 or (value == 0 and not allow_zero):
            raise self.fail(fld, f"{value!r} must be {'>= 0' if allow_zero else '> 0'} seconds")
        return float(value)

    def text(self, fld: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(fld, f"{value!r} is not a string")
        return value

    def failure_code(self, fld: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(fld, f"{value!r} is not a SIP final response code")
        if not 300 <= value <= 699:
            raise self.fail(fld, f"{value} is not a SIP final response code")
        if value < 400:
            raise self.fail(fld, f"{value} is a redirection; a reject needs a code 400-699")
        return value

    def codecs(self, fld: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(fld, "must be a non-empty list of codec names")
        out: list[str] = []
        for i, name in enumerate(value):
            if not isinstance(name, str) or name.lower() not in _CODEC_SPELLING:
                raise self.fail(f"{fld}[{i}]", f"unknown codec {name!r} (known: {', '.join(KNOWN_CODECS)})")
            spelled = _CODEC_SPELLING[name.lower()]
            if spelled in out:
                raise self.fail(f"{fld}[{i}]", f"codec {spelled} listed twice")
            out.append(spelled)
        if all(c in ("telephone-event", "CN") for c in out):
            raise self.fail(fld, "needs at least one audio codec besides telephone-event/CN")
        return tuple(out)

    def carrier_names(self, fld: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(fld, "must be a non-empty list of carrier names (the carriers' --name)")
        for i, name in enumerate(value):
            if not isinstance(name, str) or not _CARRIER_NAME.match(name):
                raise self.fail(f"{fld}[{i}]", f"{name!r} is not a carrier name (letters, digits, . _ -)")
            if value.index(name) != i:
                raise self.fail(f"{fld}[{i}]", f"carrier {name} listed twice")
        return tuple(value)

    def behaviour(self, where: str, data: dict) -> dict[str, Any]:
        """Validate the behaviour fields present in ``data`` (route or defaults)."""
        out: dict[str, Any] = {}
        for key, value in data.items():
            fld = f"{where}.{key}"
            if key in ("early_media", "collect_dtmf", "ring_forever"):
                out[key] = self.boolean(fld, value)
            elif key == "ring_s":
                out[key] = self.seconds(fld, value, allow_zero=True, allow_null=False)
            elif key in ("hangup_after_s", "rtp_stop_after_s"):
                out[key] = self.seconds(fld, value, allow_zero=False, allow_null=True)
            elif key == "media":
                if value not in MEDIA_MODES:
                    raise self.fail(fld, f"{value!r} is not one of {', '.join(MEDIA_MODES)}")
                out[key] = value
            elif key == "codecs":
                out[key] = self.codecs(fld, value)
            elif key == "reason":
                out[key] = self.text(fld, value)
            elif key == "rtp_payload_type":
                out[key] = self.payload_type(fld, value)
        return out

    def payload_type(self, fld: str, value: Any) -> int | None:
        """An RTP payload type, 0-127 (RFC 3550 §5.1: 7 bits), or null."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
            raise self.fail(fld, f"{value!r} is not an RTP payload type (0-127)")
        return value


def parse_plan(data: Any, path: str = "numberplan.yaml") -> NumberPlan:
    """Validate an already-loaded YAML document; raise ConfigError on the first problem."""
    ck = _Checker(path)
    if not isinstance(data, dict):
        raise ck.fail("", "must be a mapping with 'version' and 'routes'")
    ck.keys("", data, _TOP_KEYS)
    if "version" not in data:
        raise ck.fail("version", "missing (use 'version: 1')")
    if data["version"] != 1 or isinstance(data["version"], bool):
        raise ck.fail("version", f"{data['version']!r} is not a supported version (1)")
    no_route = ck.failure_code("no_route", data.get("no_route", 404))
    max_call_s = ck.seconds("max_call_s", data.get("max_call_s", 3600), allow_zero=False, allow_null=False)
    carrier = ck.text("carrier", data.get("carrier", ""))

    defaults_raw = data.get("defaults")
    defaults_raw = {} if defaults_raw is None else defaults_raw
    if not isinstance(defaults_raw, dict):
        raise ck.fail("defaults", "must be a mapping")
    ck.keys("defaults", defaults_raw, _BEHAVIOUR_KEYS - {"reason", "ring_forever"})
    defaults = ck.behaviour("defaults", defaults_raw)

    routes_raw = data.get("routes")
    if not isinstance(routes_raw, list) or not routes_raw:
        raise ck.fail("routes", "must be a non-empty list of routes")
    routes: list[Route] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(routes_raw):
        where = f"routes[{i}]"
        if not isinstance(raw, dict):
            raise ck.fail(where, "must be a mapping with at least 'prefix'")
        ck.keys(where, raw, _ROUTE_KEYS)
        if "prefix" not in raw:
            raise ck.fail(f"{where}.prefix", "missing")
        prefix = raw["prefix"]
        if not isinstance(prefix, str):
            raise ck.fail(f"{where}.prefix",
                          f"{prefix!r} must be a quoted string of digits (YAML turns 0044 into a number)")
        if not prefix.isdigit() or not prefix.isascii():
            raise ck.fail(f"{where}.prefix", f"{prefix!r} is not a string of digits 0-9")
        if prefix in seen:
            raise ck.fail(f"{where}.prefix", f"{prefix} is already the prefix of routes[{seen[prefix]}]")
        seen[prefix] = i
        fields: dict[str, Any] = dict(defaults)
        fields.update(ck.behaviour(where, raw))
        fields["prefix"] = prefix
        fields["name"] = ck.text(f"{where}.name", raw.get("name", ""))
        fields["description"] = ck.text(f"{where}.description", raw.get("description", ""))
        if "carriers" in raw:
            fields["carriers"] = ck.carrier_names(f"{where}.carriers", raw["carriers"])
        if "reject" in raw:
            fields["reject"] = ck.failure_code(f"{where}.reject", raw["reject"])
            _no_answer_fields(ck, where, raw, ("ring_forever", "blackhole") + _ANSWER_ONLY, "rejects")
        elif "reason" in raw:
            raise ck.fail(f"{where}.reason", "only a route with 'reject' has a reason phrase")
        if fields.get("ring_forever"):
            for key in ("hangup_after_s", "rtp_stop_after_s", "ring_s"):
                if key in raw and raw[key] not in (None, 0):
                    raise ck.fail(f"{where}.{key}", "makes no sense on a route that rings forever")
            fields.pop("ring_s", None)
        if ck.boolean(f"{where}.blackhole", raw.get("blackhole", False)):
            _no_answer_fields(ck, where, raw, ("ring_forever", "ring_s") + _ANSWER_ONLY, "blackholes")
            fields["blackhole"] = True
            fields.pop("ring_s", None)
        routes.append(Route(**fields))
    return NumberPlan(routes=tuple(routes), no_route=no_route, max_call_s=float(max_call_s),
                      carrier=carrier, path=path)


def _no_answer_fields(ck: _Checker, where: str, raw: dict, keys: tuple[str, ...], outcome: str) -> None:
    """Refuse fields that only make sense for another outcome than ``outcome``."""
    for key in keys:
        if key in raw and raw[key] not in (None, False, 0):
            raise ck.fail(f"{where}.{key}", f"makes no sense on a route that {outcome}")


def load_plan(path: Path | str) -> NumberPlan:
    """Read and validate a number plan file; ConfigError names file and field."""
    shown = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, "", f"cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(shown, where, f"not valid YAML: {problem}") from None
    return parse_plan(data, shown)


__all__ = ["Route", "NumberPlan", "load_plan", "parse_plan", "KNOWN_CODECS", "MEDIA_MODES"]

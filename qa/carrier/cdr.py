"""The carrier CDR: one JSON object per INVITE, appended and flushed as each call ends.

:class:`CarrierCdr` is the typed record (the carrier builds it, its shell fills in the RTP
counts with ``dataclasses.replace`` and :class:`CdrWriter` writes ``to_json()``);
:func:`read_cdrs` returns the lines as the JSON objects other tools read,
:func:`read_carrier_cdrs` as :class:`CarrierCdr` values.

Fields (the contract other parts of voipqa join on)::

    carrier        name of this carrier (--name)
    call_id        Call-ID of the INVITE as the carrier received it
    from, to       user parts of the From and To URIs
    from_uri, to_uri  the full URIs
    ruri           user part of the Request-URI (the number routed on)
    route          name (or prefix) of the number plan route taken; "no-route" if none
    from_tag       From tag of the INVITE (the platform's leg towards the carrier)
    x_headers      {name: value} for every X-* header of the INVITE (names as received)
    transport      "udp" | "tcp"
    received       unix time the INVITE arrived
    answered       unix time the 200 OK was sent, or null
    ended          unix time the call ended (BYE/CANCEL/final failure/timeout)
    final_code     final response code sent to the INVITE (null if none: a blackhole route, or
                   ring forever + crash)
    ended_by       "caller" | "carrier" | "cancel" | "timeout" (a blackholed INVITE: "timeout"
                   64*T1 after it arrived, or "cancel" when the CANCEL came first)
    duration_s     ended - answered (0 when not answered), rounded to ms
    codec          the audio codec of the SDP answer ("" when not answered)
    rtp_packets_in RTP packets received on the carrier's media port
    rtp_packets_out RTP packets sent (echoed, or generated silence/tone)
    rtp_payload_types_in   sorted list of the RTP payload types received, e.g. [0, 101]
    rtp_payload_types_out  sorted list of the RTP payload types sent
    dtmf_heard     digits heard (RFC 4733 events, SIP INFO, in-band G.711 tones), in order, e.g. "123#"
    dtmf_events    the same digits with how and when: [{"digit": "1", "via": "rfc4733"|"info"|"inband",
                   "at": unix time}], in order
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

from qa.jsonl import read_objects

__all__ = ["CDR_FIELDS", "CarrierCdr", "CdrWriter", "DtmfEvent", "read_carrier_cdrs", "read_cdrs"]


@dataclass(frozen=True)
class DtmfEvent:
    """A digit the carrier heard: ``via`` "rfc4733" | "info" | "inband", ``at`` unix time."""

    digit: str
    via: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {"digit": self.digit, "via": self.via, "at": self.at}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> DtmfEvent:
        return cls(str(row["digit"]), str(row["via"]), float(row["at"]))


@dataclass(frozen=True)
class CarrierCdr:
    """One carrier CDR line, field for field as documented above (``from_`` is "from").

    Frozen; ``x_headers`` is a plain dict, so a record is not hashable."""

    carrier: str
    call_id: str
    from_: str
    to: str
    from_uri: str
    to_uri: str
    ruri: str
    route: str
    from_tag: str
    x_headers: dict[str, str]
    transport: str
    received: float
    answered: float | None
    ended: float | None
    final_code: int | None
    ended_by: str | None
    duration_s: float
    codec: str
    rtp_packets_in: int = 0
    rtp_packets_out: int = 0
    rtp_payload_types_in: tuple[int, ...] = ()
    rtp_payload_types_out: tuple[int, ...] = ()
    dtmf_heard: str = ""
    dtmf_events: tuple[DtmfEvent, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line: CDR_FIELDS in order, lists for the tuples."""
        row = {_json_name(f.name): getattr(self, f.name) for f in fields(self)}
        row["x_headers"] = dict(self.x_headers)
        for name in ("rtp_payload_types_in", "rtp_payload_types_out"):
            row[name] = list(row[name])
        row["dtmf_events"] = [e.to_dict() for e in self.dtmf_events]
        return row

    def to_json(self) -> str:
        """The line as written (no newline): compact, UTF-8 kept as is."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> CarrierCdr:
        """A record from its JSON object; KeyError/TypeError/ValueError if it is not one."""
        def opt(name: str, kind: type) -> Any:
            return None if row.get(name) is None else kind(row[name])
        return cls(
            carrier=str(row["carrier"]), call_id=str(row["call_id"]), from_=str(row["from"]),
            to=str(row["to"]), from_uri=str(row["from_uri"]), to_uri=str(row["to_uri"]),
            ruri=str(row["ruri"]), route=str(row["route"]), from_tag=str(row["from_tag"]),
            x_headers={str(k): str(v) for k, v in dict(row["x_headers"]).items()},
            transport=str(row["transport"]), received=float(row["received"]),
            answered=opt("answered", float), ended=opt("ended", float),
            final_code=opt("final_code", int), ended_by=opt("ended_by", str),
            duration_s=float(row["duration_s"]), codec=str(row["codec"]),
            rtp_packets_in=int(row.get("rtp_packets_in", 0)), rtp_packets_out=int(row.get("rtp_packets_out", 0)),
            rtp_payload_types_in=tuple(int(pt) for pt in row.get("rtp_payload_types_in", ())),
            rtp_payload_types_out=tuple(int(pt) for pt in row.get("rtp_payload_types_out", ())),
            dtmf_heard=str(row.get("dtmf_heard", "")),
            dtmf_events=tuple(DtmfEvent.from_dict(e) for e in row.get("dtmf_events", ())),
        )

    @classmethod
    def from_json(cls, line: str) -> CarrierCdr:
        return cls.from_dict(json.loads(line))


def _json_name(field_name: str) -> str:
    return field_name.rstrip("_")


#: The JSON field names, in the order they are written.
CDR_FIELDS: tuple[str, ...] = tuple(_json_name(f.name) for f in fields(CarrierCdr))


class CdrWriter:
    """Append-only JSONL file; every record is written and flushed at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO | None = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def write(self, record: CarrierCdr) -> None:
        line = record.to_json()
        with self._lock:
            if self._fh is None:
                return
            self._fh.write(line + "\n")
            self._fh.flush()          # a killed carrier keeps every finished call
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> "CdrWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_cdrs(path: Path | str) -> list[dict[str, Any]]:
    """The records of a carrier CDR file as their JSON objects, read while the carrier may
    still be writing (whole lines only: :func:`qa.jsonl.read_objects`)."""
    return read_objects(path)


def read_carrier_cdrs(path: Path | str) -> list[CarrierCdr]:
    """The records of :func:`read_cdrs` as :class:`CarrierCdr` values (an object that is not
    a carrier CDR is skipped, as a torn line is)."""
    records = []
    for row in read_cdrs(path):
        try:
            records.append(CarrierCdr.from_dict(row))
        except (KeyError, TypeError, ValueError):
            continue
    return records

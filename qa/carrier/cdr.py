"""The carrier CDR: one JSON object per INVITE, appended and flushed as each call ends.

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
from pathlib import Path
from typing import Any, TextIO

from qa.jsonl import read_objects

__all__ = ["CDR_FIELDS", "CdrWriter", "read_cdrs"]

CDR_FIELDS: tuple[str, ...] = (
    "carrier", "call_id", "from", "to", "from_uri", "to_uri", "ruri", "route", "from_tag",
    "x_headers", "transport", "received", "answered", "ended", "final_code", "ended_by",
    "duration_s", "codec", "rtp_packets_in", "rtp_packets_out", "rtp_payload_types_in",
    "rtp_payload_types_out", "dtmf_heard", "dtmf_events",
)


class CdrWriter:
    """Append-only JSONL file; every record is written and flushed at once."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO | None = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
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
    """The records of a carrier CDR file, read while the carrier may still be writing
    (whole lines only: :func:`qa.jsonl.read_objects`)."""
    return read_objects(path)

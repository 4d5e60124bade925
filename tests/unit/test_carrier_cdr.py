"""The carrier CDR: its typed record and the file as its readers see it while the carrier is
still writing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from qa.carrier.cdr import CDR_FIELDS, CarrierCdr, CdrWriter, DtmfEvent, read_carrier_cdrs, read_cdrs


def _cdr(call_id: str = "a", **changes: object) -> CarrierCdr:
    record = CarrierCdr(
        carrier="carrier-a", call_id=call_id, from_="1001", to="1555000100", from_uri="sip:1001@example.com",
        to_uri="sip:1555000100@example.com", ruri="1555000100", route="answer-echo", from_tag="ft",
        x_headers={"X-Name": "Zoë"}, transport="udp", received=1_700_000_000.25, answered=1_700_000_001.5,
        ended=1_700_000_003.5, final_code=200, ended_by="caller", duration_s=2.0, codec="PCMU")
    return replace(record, **changes)


def test_a_record_being_written_is_not_read_yet(tmp_path: Path) -> None:
    """Tests and cdr checks poll the file during calls: a line the carrier has not finished
    (no newline yet, maybe cut inside a UTF-8 character) is left for the next read."""
    path = tmp_path / "carrier-a.jsonl"
    with CdrWriter(path) as writer:
        writer.write(_cdr("a"))
    whole = path.read_bytes()
    second = _cdr("b").to_json().encode()
    cut = second.index("ë".encode()) + 1                 # inside the two-byte ë
    path.write_bytes(whole + second[:cut])
    assert [r["call_id"] for r in read_cdrs(path)] == ["a"]
    path.write_bytes(whole + second)                     # complete JSON, newline not yet written
    assert [r["call_id"] for r in read_cdrs(path)] == ["a"]
    path.write_bytes(whole + second + b"\n")
    assert [r["x_headers"]["X-Name"] for r in read_cdrs(path)] == ["Zoë", "Zoë"]
    assert read_carrier_cdrs(path) == [_cdr("a"), _cdr("b")]


def test_a_torn_line_in_the_middle_is_skipped_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "carrier-b.jsonl"
    assert read_cdrs(path) == [] and read_carrier_cdrs(path) == []
    path.write_text('{"call_id":"a"}\n{"call_id":"b",\n["not a record"]\n{"call_id":"c"}\n'
                    + _cdr("d").to_json() + "\n")
    assert [r["call_id"] for r in read_cdrs(path)] == ["a", "c", "d"]
    assert [r.call_id for r in read_carrier_cdrs(path)] == ["d"]     # "a" and "c" are no CDRs


def test_the_line_keeps_the_documented_names_types_and_order(tmp_path: Path) -> None:
    """Other tools read the JSON: field names, order and JSON types are the contract."""
    record = _cdr(rtp_packets_in=11, rtp_payload_types_in=(0, 101), rtp_payload_types_out=(0,),
                  dtmf_heard="5#", dtmf_events=(DtmfEvent("5", "rfc4733", 1_700_000_002.0),
                                                DtmfEvent("#", "info", 1_700_000_002.5)))
    path = tmp_path / "carrier-c.jsonl"
    with CdrWriter(path) as writer:
        writer.write(record)
        writer.write(_cdr("blackholed", answered=None, ended=1_700_000_032.25, final_code=None,
                          ended_by="timeout", duration_s=0.0, codec=""))
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[0])
    assert tuple(row) == CDR_FIELDS
    assert CDR_FIELDS[:4] == ("carrier", "call_id", "from", "to") and CDR_FIELDS[-1] == "dtmf_events"
    assert row["from"] == "1001" and row["rtp_payload_types_in"] == [0, 101] and row["rtp_packets_in"] == 11
    assert row["dtmf_events"] == [{"digit": "5", "via": "rfc4733", "at": 1_700_000_002.0},
                                  {"digit": "#", "via": "info", "at": 1_700_000_002.5}]
    assert '"received":1700000000.25,' in lines[0] and '"duration_s":2.0,' in lines[0] and "Zoë" in lines[0]
    assert '"answered":null,' in lines[1] and '"final_code":null,' in lines[1] and '"codec":"",' in lines[1]
    assert [CarrierCdr.from_json(line) for line in lines] == read_carrier_cdrs(path)
    assert read_carrier_cdrs(path)[0] == record and CarrierCdr.from_dict(row).to_dict() == row


def test_the_record_is_frozen() -> None:
    with pytest.raises(AttributeError):
        _cdr().final_code = 486        # type: ignore[misc]

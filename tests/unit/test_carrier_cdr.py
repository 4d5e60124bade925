"""The carrier CDR file as its readers see it while the carrier is still writing."""

from __future__ import annotations

from pathlib import Path

from qa.carrier.cdr import CdrWriter, read_cdrs


def test_a_record_being_written_is_not_read_yet(tmp_path: Path) -> None:
    """Tests and cdr checks poll the file during calls: a line the carrier has not finished
    (no newline yet, maybe cut inside a UTF-8 character) is left for the next read."""
    path = tmp_path / "carrier-a.jsonl"
    with CdrWriter(path) as writer:
        writer.write({"call_id": "a", "x_headers": {"X-Name": "Zoë"}})
    whole = path.read_bytes()
    second = '{"call_id":"b","x_headers":{"X-Name":"Zoë"}}'.encode()
    cut = second.index("ë".encode()) + 1                 # inside the two-byte ë
    path.write_bytes(whole + second[:cut])
    assert [r["call_id"] for r in read_cdrs(path)] == ["a"]
    path.write_bytes(whole + second)                     # complete JSON, newline not yet written
    assert [r["call_id"] for r in read_cdrs(path)] == ["a"]
    path.write_bytes(whole + second + b"\n")
    assert [r["x_headers"]["X-Name"] for r in read_cdrs(path)] == ["Zoë", "Zoë"]


def test_a_torn_line_in_the_middle_is_skipped_and_a_missing_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "carrier-b.jsonl"
    assert read_cdrs(path) == []
    path.write_text('{"call_id":"a"}\n{"call_id":"b",\n["not a record"]\n{"call_id":"c"}\n')
    assert [r["call_id"] for r in read_cdrs(path)] == ["a", "c"]

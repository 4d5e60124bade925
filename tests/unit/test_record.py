"""calls.jsonl: contract field order, round trip, a killed run keeps what it had."""

import json

from qa.cases import CallRecord, CallRecordWriter, read_records
from qa.record import RECORD_FIELDS


def test_json_keys_follow_the_contract(tmp_path):
    line = CallRecord(case="x", call_id="1@h", from_="1001", to="1555").to_json()
    data = json.loads(line)
    assert list(data) == list(RECORD_FIELDS)
    assert data["from"] == "1001"


def test_writer_appends_and_reader_skips_torn_line(tmp_path):
    path = tmp_path / "calls.jsonl"
    writer = CallRecordWriter(path)
    writer.write(CallRecord(case="a", call_id="1", final_code=200, verdict="pass"))
    writer.write(CallRecord(case="b", call_id="2", final_code=403, verdict="fail", reasons=["customer: x"]))
    with open(path, "a") as fh:
        fh.write('{"case": "c", "call_id"')  # the run was killed mid-write
    records = list(read_records(path))
    assert [r.case for r in records] == ["a", "b"]
    assert records[1].reasons == ["customer: x"]
    assert records[1].final_code == 403

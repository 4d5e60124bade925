"""CDR sources return canonical rows whatever the platform's column names."""

import json
import sqlite3

import pytest

from qa.cdr import JsonlCdrSource, SqliteCdrSource, open_source
from qa.errors import BadInput


def test_sqlite_with_column_mapping(tmp_path):
    db = tmp_path / "cdr.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE billing (callid TEXT, src TEXT, dst TEXT, billsec REAL, code INT)")
        conn.execute("INSERT INTO billing VALUES ('a@h', '1001', '1555', 3.2, 200)")
    source = SqliteCdrSource(db, table="billing", mapping={"call_id": "callid", "from_user": "src",
                                                           "to_user": "dst", "duration": "billsec",
                                                           "sip_code": "code"})
    (row,) = source.rows("a@h")
    assert (row["from_user"], row["to_user"], row["duration"], row["sip_code"]) == ("1001", "1555", 3.2, 200)
    assert source.rows("other") == []


def test_jsonl_source_skips_torn_lines(tmp_path):
    path = tmp_path / "carrier.jsonl"
    path.write_text(json.dumps({"call_id": "x", "final_code": 200}) + "\n{broken\n")
    source = JsonlCdrSource([path, tmp_path / "missing.jsonl"], verbatim=True)
    assert source.rows("x") == [{"call_id": "x", "final_code": 200}]


def test_open_source_rejects_unknown_dsn_and_missing_db(tmp_path):
    with pytest.raises(BadInput, match="use sqlite"):
        open_source("postgres-ish://nowhere")
    with pytest.raises(BadInput, match="no such file"):
        open_source(f"sqlite:///{tmp_path}/nope.db")
    db = tmp_path / "x.db"
    db.touch()
    with pytest.raises(BadInput, match="table name"):
        SqliteCdrSource(db, table="x; DROP TABLE y")


def test_a_carrier_line_of_an_earlier_call_with_the_same_call_id_is_not_this_calls(tmp_path):
    """A containerized SIPp runs as a low PID each time: its Call-IDs (N-PID@host) come back
    in the next run, and a carrier CDR file that outlives a run holds the old call."""
    from qa.cdr.source import wait_for_rows, written_since

    path = tmp_path / "carrier-a.jsonl"
    old = {"call_id": "1-35@127.0.0.1", "received": 1_000.0, "final_code": 200}
    path.write_text(json.dumps(old) + "\n")
    source = JsonlCdrSource([path], verbatim=True)
    assert wait_for_rows(source, "1-35@127.0.0.1", expect=False, timeout=0.2, keep=written_since(5_000.0)) == []
    assert wait_for_rows(source, "1-35@127.0.0.1", expect=True, keep=written_since(1_030.0)) == [old]
    assert wait_for_rows(source, "1-35@127.0.0.1", expect=True, keep=written_since(None)) == [old]

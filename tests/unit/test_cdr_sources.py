"""CDR sources: SQL through SQLAlchemy, CSV, JSON lines — one canonical, normalised shape."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

import pytest

from qa.cdr import (CARRIER_MAPPING, CsvCdrSource, JsonlCdrSource, SqlCdrSource, SqliteCdrSource, canonical_row,
                    carrier_source, open_source)
from qa.cdr.normalise import to_unix
from qa.errors import BadInput
from qa.paths import LAB_DIR

T0 = 1_700_000_000.0
ISO0 = "2023-11-14T22:13:20+00:00"  # == T0
BILLING = {"call_id": "callid", "from_user": "src", "to_user": "dst", "duration": "billsec",
           "sip_code": "code", "start_time": "started"}


@pytest.fixture
def billing_db(tmp_path):
    """A platform with its own column names and ISO text timestamps."""
    db = tmp_path / "billing.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE billing (callid TEXT, src TEXT, dst TEXT, billsec TEXT, code TEXT, started TEXT)")
        conn.executemany("INSERT INTO billing VALUES (?, ?, ?, ?, ?, ?)", [
            ("a@h", "1001", "1555", "3.2", "200", "2023-11-14 22:13:20"),
            ("b@h", "1001", "1555", "0", "486", "2023-11-14 22:15:00"),
            ("a@h", "1001", "1555", "3.0", "200", "2023-11-14 22:13:21"),
        ])
    return db


@pytest.fixture
def lab_db(tmp_path):
    """The lab's real schema: the voipqa_cdr view over acc_cdrs and missed_calls."""
    db = tmp_path / "lab.db"
    with sqlite3.connect(db) as conn:
        conn.executescript((LAB_DIR / "schema.sql").read_text())
        conn.execute("INSERT INTO acc_cdrs (call_id, from_user, to_user, account, invite_ts, answer_ts, duration, "
                     "carrier) VALUES ('ans', '1001', '1555000100', '1001', ?, ?, 3.01, 'carrier-a')", (T0, T0 + 0.2))
        conn.execute("INSERT INTO missed_calls (callid, sip_code, sip_reason, time, from_user, to_user, account, "
                     "invite_ts, event_ts) VALUES ('rej', '402', 'Payment Required', 0, '1002', '1555000100', "
                     "'1002', ?, ?)", (T0 + 1, T0 + 1.1))
    return db


def test_normalisation_of_times_durations_and_codes():
    assert to_unix(T0) == to_unix(str(T0)) == to_unix(ISO0) == to_unix("2023-11-14T22:13:20Z") == T0
    assert to_unix(datetime(2023, 11, 14, 22, 13, 20)) == T0  # naive: UTC
    assert to_unix(datetime(2023, 11, 14, 23, 13, 20, tzinfo=timezone.utc).astimezone()) == T0 + 3600
    row = canonical_row({"id": "x", "d": "42", "c": "200.0", "a": ISO0, "e": T0 + 5},
                        {"call_id": "id", "sip_code": "c", "answer_time": "a", "end_time": "e"})
    assert (row["call_id"], row["sip_code"], row["duration"], row["from_user"]) == ("x", 200, 5.0, None)
    assert row["extra"] == {"d": "42"}      # the source's own columns, not those mapped
    with pytest.raises(BadInput, match="CDR column a: 'yesterday' is not a time"):
        canonical_row({"a": "yesterday"}, {"start_time": "a"})


def test_sql_source_maps_columns_batches_and_windows(billing_db):
    source = SqlCdrSource(f"sqlite:///{billing_db}", "billing", BILLING)
    found = source.rows_for(["a@h", "b@h", "nope"])
    assert sorted(found) == ["a@h", "b@h"] and len(found["a@h"]) == 2
    first = found["a@h"][0]
    assert (first["from_user"], first["duration"], first["sip_code"], first["start_time"]) == ("1001", 3.2, 200, T0)
    assert source.rows("nope") == []
    # text timestamps are compared as ISO text in SQL, then normalised
    assert {r["call_id"] for r in source.rows_in_window(T0 - 1, T0 + 10)} == {"a@h"}
    assert len(source.rows_in_window(T0 - 1, T0 + 200)) == 3


def test_sql_source_reads_the_lab_view(lab_db):
    source = open_source(f"sqlite:///{lab_db}")
    (ans,) = source.rows("ans")
    assert (ans["sip_code"], ans["duration"], ans["answer_time"], ans["carrier"]) == (200, 3.01, T0 + 0.2, "carrier-a")
    (rej,) = source.rows("rej")
    assert (rej["sip_code"], rej["duration"], rej["answer_time"]) == (402, 0.0, None)
    assert {r["call_id"] for r in source.rows_in_window(T0 - 1, T0 + 2)} == {"ans", "rej"}
    assert isinstance(SqliteCdrSource(lab_db), SqlCdrSource) and SqliteCdrSource(lab_db).rows("ans")


def test_sql_source_never_writes(lab_db):
    source = open_source(f"sqlite:///{lab_db}")
    source.rows("ans")
    with source.engine.connect() as conn:
        with pytest.raises(Exception, match="readonly"):
            conn.exec_driver_sql("DELETE FROM acc_cdrs")


def test_sql_mapping_to_an_unknown_column_is_one_line(billing_db):
    source = open_source(f"sqlite:///{billing_db}", BILLING | {"account": "acctcode"}, "billing")
    with pytest.raises(BadInput, match=r"no column 'acctcode' \(for account; it has callid, src"):
        source.check()
    with pytest.raises(BadInput, match="no table or view 'cdrs'"):
        open_source(f"sqlite:///{billing_db}", table="cdrs").check()
    with pytest.raises(BadInput, match="'dur' is not a CDR column"):
        open_source(f"sqlite:///{billing_db}", {"dur": "billsec"}, "billing")


@pytest.mark.parametrize("table", ["x; DROP TABLE y", "a b", "1abc", "s.t.u", ""])
def test_sql_table_names_are_identifiers(billing_db, table):
    with pytest.raises(BadInput, match="table name"):
        SqlCdrSource(f"sqlite:///{billing_db}", table)


@pytest.mark.parametrize("dsn, package", [
    ("postgresql://cdr:s3cret@db.example/billing", "psycopg[binary]"),
    ("postgresql+psycopg2://cdr@db.example/billing", "psycopg2-binary"),
    ("mysql://cdr@db.example/billing", "mysqlclient"),
    ("mysql+pymysql://cdr:s3cret@db.example/billing", "pymysql"),
])
def test_missing_driver_names_the_pip_package_and_hides_the_password(dsn, package):
    pytest.importorskip("sqlalchemy")
    try:
        source = open_source(dsn)
    except BadInput as exc:
        message = str(exc)
        assert f"pip install {package}" in message and "s3cret" not in message and "\n" not in message
    else:  # the driver is installed here: URL parsing and dispatch still worked, nothing connected
        assert source.url.get_backend_name() in ("postgresql", "mysql")
        assert "s3cret" not in source.describe()


@pytest.mark.parametrize("dsn, message", [
    ("postgres://x@h/db", "did you mean postgresql://"),
    ("oracle://x@h/db", "unsupported"),
    ("cdrs.xlsx", "use sqlite:///PATH"),
    ("sqlite:///nowhere/x.db", "no such file"),
    ("missing.csv", "no such file"),
    ("missing.jsonl", "no such file"),
    ("postgresql://x@h:notaport/db", "not a database URL"),
])
def test_bad_dsns_are_one_line(tmp_path, dsn, message):
    with pytest.raises(BadInput, match=message) as exc:
        open_source(dsn, base=tmp_path)
    assert "\n" not in str(exc.value)


def test_csv_source_with_mapping_and_delimiter(tmp_path):
    path = tmp_path / "cdr.csv"
    path.write_text(f"callid;src;dst;billsec;code;started\na@h;1001;1555;3.2;200;{ISO0}\nb@h;1001;1555;0;486;\n")
    source = open_source(str(path), BILLING, delimiter=";")
    assert isinstance(source, CsvCdrSource)
    (row,) = source.rows("a@h")
    assert (row["duration"], row["sip_code"], row["start_time"]) == (3.2, 200, T0)
    assert [r["call_id"] for r in source.rows_in_window(T0, T0)] == ["a@h"]
    with pytest.raises(BadInput, match=r"no column 'acct' \(for account\) in the header"):
        CsvCdrSource(path, BILLING | {"account": "acct"}, ";")


def test_jsonl_source_canonical_or_verbatim(tmp_path):
    path = tmp_path / "carrier-a.jsonl"
    line = {"carrier": "carrier-a", "call_id": "c1", "from": "1001", "ruri": "1555000100", "received": T0,
            "answered": T0 + 0.1, "ended": T0 + 3.1, "final_code": 200, "duration_s": 3.0}
    path.write_text(json.dumps(line) + "\n" + json.dumps(line | {"call_id": "c2", "received": T0 + 50}) + "\n")
    (row,) = carrier_source([path]).rows("c1")
    assert (row["from_user"], row["to_user"], row["duration"], row["sip_code"], row["carrier"]) == \
        ("1001", "1555000100", 3.0, 200, "carrier-a")
    assert JsonlCdrSource([path], verbatim=True).rows("c1") == [line]
    assert [r["call_id"] for r in carrier_source([path]).rows_in_window(T0 + 40, T0 + 60)] == ["c2"]
    assert set(CARRIER_MAPPING) <= set(row)


def test_relative_paths_are_taken_from_the_base(tmp_path, lab_db):
    (tmp_path / "cdrs").mkdir()
    (tmp_path / "cdrs" / "x.jsonl").write_text("")
    assert open_source("cdrs/x.jsonl", base=tmp_path).rows("any") == []
    assert open_source(f"sqlite:///{lab_db.name}", base=lab_db.parent).rows("ans")


def test_a_call_record_shows_the_sources_own_columns(lab_db):
    """The lab's end_reason (and any platform's extra columns) reach the call record, so a
    timer case can assert why the platform ended the call."""
    from qa.cdr.normalise import call_cdr

    with sqlite3.connect(lab_db) as conn:
        conn.execute("UPDATE acc_cdrs SET end_reason = 'session-expired' WHERE call_id = 'ans'")
    rows = open_source(f"sqlite:///{lab_db}").rows("ans")
    cdr = call_cdr(rows)
    assert (cdr["end_reason"], cdr["count"], cdr["sip_code"]) == ("session-expired", 1, 200)
    assert "extra" not in cdr and json.loads(json.dumps(cdr)) == cdr
    mapped = call_cdr([canonical_row({"id": "x", "when": datetime(2023, 11, 14, 22, 13, 20), "note": b"ok"},
                                     {"call_id": "id"})] * 2)
    assert (mapped["call_id"], mapped["when"], mapped["note"], mapped["count"]) == ("x", "2023-11-14T22:13:20", "b'ok'", 2)
    assert "id" not in mapped

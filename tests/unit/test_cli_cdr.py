"""``voipqa cdr check``: exit codes (0 reconciled, 1 discrepancies, 2 bad input) and --json."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from qa.cli import main
from qa.cli.cdr import parse_tolerance
from qa.paths import LAB_DIR
from qa.record import CallRecord, CallRecordWriter

T0 = 1_700_000_000.0


@pytest.fixture
def run(tmp_path):
    """A run of two calls (answered 3 s, rejected 402) and the lab-schema DB that billed it."""
    calls = tmp_path / "calls.jsonl"
    writer = CallRecordWriter(calls)
    writer.write(CallRecord(case="answered", call_id="ans@x", from_="1001", to="1555000100", started=T0,
                            answered=T0 + 0.1, ended=T0 + 3.1, final_code=200, duration_s=3.0))
    writer.write(CallRecord(case="zero-balance", call_id="zero@x", from_="1002", to="1555000100",
                            started=T0 + 0.2, ended=T0 + 0.3, final_code=402))
    db = tmp_path / "lab.db"
    with sqlite3.connect(db) as conn:
        conn.executescript((LAB_DIR / "schema.sql").read_text())
        conn.execute("INSERT INTO acc_cdrs (call_id, from_user, to_user, account, invite_ts, answer_ts, duration, "
                     "carrier) VALUES ('ans@x', '1001', '1555000100', '1001', ?, ?, 3.02, 'carrier-a')",
                     (T0 + 0.01, T0 + 0.1))
        conn.execute("INSERT INTO missed_calls (callid, sip_code, time, from_user, to_user, account, invite_ts, "
                     "event_ts) VALUES ('zero@x', '402', 0, '1002', '1555000100', '1002', ?, ?)", (T0 + 0.2, T0 + 0.3))
    carrier = tmp_path / "carrier-a.jsonl"
    carrier.write_text(json.dumps({"carrier": "carrier-a", "call_id": "ans@x", "from": "1001", "ruri": "1555000100",
                                   "received": T0 + 0.02, "answered": T0 + 0.1, "ended": T0 + 3.1,
                                   "final_code": 200, "duration_s": 3.0}) + "\n")
    return {"calls": calls, "db": db, "dsn": f"sqlite:///{db}", "carrier": carrier, "dir": tmp_path}


def cli(capsys, *argv):
    code = main(["cdr", "check", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_reconciled_run_exits_0_with_json(capsys, run):
    code, out, err = cli(capsys, "--calls", str(run["calls"]), "--source", run["dsn"], "--carrier",
                         str(run["carrier"]), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] is True and data["carrier_checked"] is True
    assert data["totals"]["calls"] == 2 and data["totals"]["ok"] == 2
    assert data["seconds"]["lost"] == 0 and data["seconds"]["billed"] == 3.02


def test_a_missing_cdr_exits_1_and_counts_the_seconds(capsys, run):
    with sqlite3.connect(run["db"]) as conn:
        conn.execute("DELETE FROM acc_cdrs")
    code, out, _ = cli(capsys, "--calls", str(run["calls"]), "--source", run["dsn"], "--json")
    assert code == 1
    data = json.loads(out)
    (missing,) = [c for c in data["calls"] if c["status"] != "ok"]
    assert (missing["call_id"], missing["status"], missing["billed_lost_s"]) == ("ans@x", "missing", 3.0)
    assert data["seconds"]["lost_missing"] == data["seconds"]["lost"] == 3.0


def test_the_human_report_names_problems_and_orphans(capsys, run):
    with sqlite3.connect(run["db"]) as conn:
        conn.execute("UPDATE acc_cdrs SET duration = 1.0")
        conn.execute("INSERT INTO acc_cdrs (call_id, from_user, to_user, invite_ts, answer_ts, duration) "
                     "VALUES ('stranger@y', '1004', '1555', ?, ?, 9.0)", (T0 + 1, T0 + 1.1))
    code, out, _ = cli(capsys, "--calls", str(run["calls"]), "--source", run["dsn"])
    assert code == 1
    for text in ("ans@x", "mismatched", "duration", "stranger@y", "billed seconds lost 2.00", "carrier CDRs:  not"):
        assert text in out, text
    assert cli(capsys, "--calls", str(run["calls"]), "--source", run["dsn"], "--no-orphans",
               "--tolerance", "2500ms")[0] == 0


def test_an_env_file_supplies_the_source_mapping_and_carrier(capsys, run, monkeypatch):
    monkeypatch.setenv("T_PW", "pw")
    with sqlite3.connect(run["db"]) as conn:
        conn.execute("CREATE VIEW billing AS SELECT call_id AS callid, from_user AS src, to_user, account, "
                     "start_time, duration AS billsec, sip_code FROM voipqa_cdr")
    env = run["dir"] / "staging.yaml"
    env.write_text(yaml.safe_dump({
        "target": {"host": "127.0.0.1", "ports": {"udp": 5060}},
        "accounts": [{"user": "1001", "password_env": "T_PW"}],
        "carrier": {"cdr": ["carrier-a.jsonl"]},
        "cdr": {"dsn": "sqlite:///lab.db", "table": "billing",
                "mapping": {"call_id": "callid", "from_user": "src", "duration": "billsec"}}}))
    code, out, err = cli(capsys, "--calls", str(run["calls"]), "--env", str(env), "--json")
    assert code == 0, err
    assert json.loads(out)["carrier_checked"] is True
    # --map overrides one entry of the env's mapping; a column the table lacks is exit 2
    code, _, err = cli(capsys, "--calls", str(run["calls"]), "--env", str(env), "--map", "duration=secs")
    assert code == 2 and "no column 'secs' (for duration" in err and err.count("\n") == 1


@pytest.mark.parametrize("args, message", [
    (["--calls", "{dir}/nope.jsonl", "--source", "{dsn}"], "calls file {dir}/nope.jsonl: no such file"),
    (["--calls", "{dir}/empty.jsonl", "--source", "{dsn}"], "no call records"),
    (["--calls", "{calls}", "--source", "oracle://x@h/db"], "unsupported"),
    (["--calls", "{calls}", "--source", "{dir}/missing.db"], "no such file"),
    (["--calls", "{calls}", "--source", "{dsn}", "--map", "duration=billsec"], "no column 'billsec'"),
    (["--calls", "{calls}", "--source", "{dsn}", "--map", "dur=billsec"], "'dur' is not a CDR column"),
    (["--calls", "{calls}", "--source", "{dsn}", "--map", "duration"], "use CANONICAL=COLUMN"),
    (["--calls", "{calls}", "--source", "{dsn}", "--table", "nope"], "no table or view 'nope'"),
    (["--calls", "{calls}", "--source", "{dsn}", "--tolerance", "soon"], "not a duration"),
    (["--calls", "{calls}", "--source", "postgresql://u:pw@h/db"], "pip install"),
    (["--calls", "{calls}"], "no lab is running"),
    (["--calls", "{calls}", "--env", "no-such-env"], "no environments/no-such-env.yaml"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, run, monkeypatch, args, message):
    monkeypatch.setenv("VOIPQA_LAB_DIR", str(run["dir"] / "no-lab"))
    (run["dir"] / "empty.jsonl").write_text("")
    fill = {k: str(v) for k, v in run.items()}
    code, out, err = cli(capsys, *(a.format(**fill) for a in args))
    assert code == 2 and out == ""
    assert err.startswith("voipqa: error: ") and err.count("\n") == 1 and message.format(**fill) in err
    assert ":pw@" not in err


@pytest.mark.parametrize("text, seconds", [("1s", 1.0), ("1.5", 1.5), ("500ms", 0.5), (" 2 s", 2.0)])
def test_tolerance_forms(text, seconds):
    assert parse_tolerance(text) == seconds


# -- garbage calls files, runs that carry their own CDRs, records that are not calls -------
@pytest.mark.parametrize("content, line", [
    ("not json at all\n", 1),
    ('{"case": "a", "call_id": "a@x"}\n[1, 2, 3]\n', 2),
    ('{"case": "a", "call_id": "a@x"}\n\n{"call_id": "no case"}\n{"case": "b"}\n', 3),
    ('{"case": "a", "call_id": "a@x"}\n{"case": "b", "final_code": 200, \n{"case": "c"}\n', 2),
    ("\x00\xff\xfe garbage", 1),
])
def test_garbage_calls_file_names_the_line(capsys, run, content, line):
    bad = run["dir"] / "garbage.jsonl"
    bad.write_bytes(content.encode("latin-1"))
    code, out, err = cli(capsys, "--calls", str(bad), "--source", run["dsn"])
    assert code == 2 and out == ""
    assert err.startswith(f"voipqa: error: calls file {bad}: line {line}: not a call record")
    assert err.count("\n") == 1


def test_a_torn_last_line_of_a_killed_run_is_skipped(capsys, run):
    torn = run["dir"] / "torn.jsonl"
    torn.write_text(run["calls"].read_text() + '{"case": "half-writ')
    code, out, err = cli(capsys, "--calls", str(torn), "--source", run["dsn"], "--json")
    assert code == 0, err
    assert json.loads(out)["totals"]["calls"] == 2


def test_the_runs_own_cdr_snapshot_is_found_beside_calls_jsonl(capsys, run, monkeypatch):
    """After the run stopped its lab: no lab, no --source, no --env; the run left its CDRs."""
    from qa.cdr.snapshot import snapshot_lab

    monkeypatch.setenv("VOIPQA_LAB_DIR", str(run["dir"] / "no-lab"))
    results = run["dir"] / "results"
    results.mkdir()
    (results / "calls.jsonl").write_text(run["calls"].read_text())
    snapshot_lab(results, run["db"], {"carrier-a": str(run["carrier"]), "carrier-b": str(run["dir"] / "none")})
    run["db"].unlink()  # the lab's own database is gone: only the copy counts
    code, out, err = cli(capsys, "--calls", str(results / "calls.jsonl"), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["carrier_checked"] and data["totals"]["calls"] == 2


@pytest.mark.parametrize("verdict, code", [("pass", 0), ("fail", 1)])
def test_register_records_and_expected_failures_are_not_discrepancies(capsys, run, verdict, code):
    """A REGISTER has no CDR; a 503 the case expected (every carrier down) names the carrier
    the platform last tried, which never saw it: neither is a problem of the run. The same
    503 in a case that failed is still reported."""
    writer = CallRecordWriter(run["calls"])
    writer.write(CallRecord(case="register", call_id="reg@x", from_="1009", to="1009", started=T0 + 0.4,
                            answered=T0 + 0.5, ended=T0 + 0.5, final_code=200, verdict="pass",
                            customer={"method": "REGISTER"}))
    writer.write(CallRecord(case="both down", call_id="down@x", from_="1001", to="1666000100", started=T0 + 0.6,
                            ended=T0 + 3.6, final_code=503, verdict=verdict, customer={"method": "INVITE"}))
    with sqlite3.connect(run["db"]) as conn:
        conn.execute("INSERT INTO missed_calls (callid, sip_code, time, from_user, to_user, account, invite_ts, "
                     "event_ts, carrier) VALUES ('down@x', '503', 0, '1001', '1666000100', '1001', ?, ?, "
                     "'carrier-d')", (T0 + 0.6, T0 + 3.6))
    got, out, err = cli(capsys, "--calls", str(run["calls"]), "--source", run["dsn"], "--carrier",
                        str(run["carrier"]), "--json")
    assert got == code, out + err
    data = json.loads(out)
    assert data["totals"]["calls"] == 3  # the REGISTER is not a call
    assert [(c["call_id"], c["status"]) for c in data["calls"] if c["status"] != "ok"] == (
        [] if verdict == "pass" else [("down@x", "routed_carrier_never_saw")])


def test_markup_in_case_names_and_call_ids_prints_verbatim(capsys, run):
    with sqlite3.connect(run["db"]) as conn:
        conn.execute("DELETE FROM acc_cdrs")
    text = run["calls"].read_text().replace('"case": "answered", "test": null, "call_id": "ans@x"',
                                            '"case": "odd [/red] case", "test": null, "call_id": "ans@[fe80::1]"')
    assert "ans@[fe80::1]" in text
    run["calls"].write_text(text)
    code, out, err = cli(capsys, "--calls", str(run["calls"]), "--source", run["dsn"])
    assert code == 1 and err == ""
    assert "odd [/red] case" in out and "ans@[fe80::1]" in out

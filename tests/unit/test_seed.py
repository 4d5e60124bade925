"""lab/seed.yaml validation, config rendering, the lab DB and its voipqa_cdr view."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pytest
import yaml

from qa.errors import BadInput, ConfigError, VoipqaError
from qa.lab import config, default_run_dir
from qa.lab.seed import load_seed, parse_seed
from qa.lab.state import LabState, load_state
from qa.lab.supervisor import carrier_command, ctl_socket_path
from qa.paths import DEFAULT_SEED

BASE = yaml.safe_load(DEFAULT_SEED.read_text())
PORTS = {"sip": 5060, "sip_tls": 5061, "carrier-a": 5070, "carrier-b": 5080}


def with_change(path: list, value, delete: bool = False) -> dict:
    data = copy.deepcopy(BASE)
    node = data
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def test_shipped_seed_content() -> None:
    seed = load_seed(DEFAULT_SEED)
    assert seed.domain == "voipqa.lab"
    got = {a.user: (a.password, a.balance) for a in seed.accounts}
    assert got["1001"] == ("alice-pass-1001", 50.0)
    assert got["1002"] == ("bob-pass-1002", 0.0)
    assert got["1003"] == ("carol-pass-1003", -5.0)
    assert got["1004"] == ("dave-pass-1004", 20.0)
    assert {p.prefix for p in seed.blocked_prefixes} >= {"1900", "882", "881", "53"}
    assert seed.allow_list == ("127.0.0.0/8",)
    assert [c.name for c in seed.carriers] == ["carrier-a", "carrier-b"]
    assert seed.workers == 1 and seed.fr_timer_s == 5 and seed.fr_inv_timer_s == 30


@pytest.mark.parametrize("path,value,message", [
    (["accounts", 1, "balance"], "lots", "lab/seed.yaml: accounts[1].balance: not a number"),
    (["accounts", 0, "balance"], True, "accounts[0].balance: not a number"),
    (["accounts", 0, "password"], "", "accounts[0].password: must be a non-empty string"),
    (["accounts", 2, "user"], "bad user", "accounts[2].user: invalid user name"),
    (["accounts", 1, "user"], "1001", "accounts[1].user: duplicate user"),
    (["accounts", 0, "colour"], "red", "accounts[0].colour: unknown key"),
    (["blocked_prefixes", 2, "prefix"], "88x", "blocked_prefixes[2].prefix: invalid prefix"),
    (["allow_list", 0], "127.0.0.300/8", "allow_list[0]: not a CIDR"),
    (["carriers", 1, "name"], "Carrier B!", "carriers[1].name: invalid carrier name"),
    (["carriers", 1, "name"], "carrier-a", "carriers[1].name: duplicate or reserved name"),
    (["carriers", 0, "priority"], 1.5, "carriers[0].priority: not an integer"),
    (["routing", "algorithm"], "random", "routing.algorithm: must be one of"),
    (["antiflood", "max_requests"], 0, "antiflood.max_requests: must be between"),
    (["timers", "fr_timer_s"], "5s", "timers.fr_timer_s: not a number"),
    (["workers"], 0, "workers: must be between 1 and 64"),
    (["domain"], "voipqa lab", "domain: invalid domain name"),
    (["accounts"], [], "accounts: needs at least 1 entry"),
    (["extra_stuff"], 1, "extra_stuff: unknown key"),
])
def test_bad_field_is_named(path: list, value, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_seed(with_change(path, value), "lab/seed.yaml")
    assert message in str(err.value)
    assert err.value.exit_code == 2 and isinstance(err.value, BadInput)


@pytest.mark.parametrize("path,message", [
    (["domain"], "domain: missing"),
    (["accounts", 0, "balance"], "accounts[0].balance: missing"),
    (["carriers"], "carriers: missing"),
])
def test_missing_field_is_named(path: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_seed(with_change(path, None, delete=True))


def test_yaml_numbers_for_users_and_prefixes_are_accepted() -> None:
    data = with_change(["accounts", 0, "user"], 1001)
    data["blocked_prefixes"] = [1900, {"prefix": 53}]
    seed = parse_seed(data)
    assert seed.accounts[0].user == "1001"
    assert [p.prefix for p in seed.blocked_prefixes] == ["1900", "53"]


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_seed(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("domain: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_seed(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty file"):
        load_seed(empty)


def test_render_config_fills_every_placeholder(tmp_path: Path) -> None:
    seed = load_seed(DEFAULT_SEED)
    text = config.render_config(seed, PORTS, tmp_path, tmp_path / "kamailio_ctl")
    assert "{{" not in text
    assert "listen=udp:127.0.0.1:5060" in text and "listen=tcp:127.0.0.1:5060" in text
    assert "listen=tls:127.0.0.1:5061" in text
    assert f"sqlite://{tmp_path}/lab.db" in text
    assert 'modparam("tm", "fr_timer", 5000)' in text
    assert 'modparam("tm", "fr_inv_timer", 30000)' in text
    assert 'ds_select_dst("1", "8")' in text  # priority
    assert f"unix:{tmp_path}/kamailio_ctl" in text
    assert "children=1" in text


def test_render_template_rejects_unknown_and_unused_names() -> None:
    with pytest.raises(VoipqaError, match="no value for B"):
        config.render_template("{{A}} {{B}}", {"A": 1})
    with pytest.raises(VoipqaError, match="never uses C"):
        config.render_template("{{A}}", {"A": 1, "C": 2})
    assert config.render_template("x={{A}} $(rU{s.substr,1,0})", {"A": 7}) == "x=7 $(rU{s.substr,1,0})"


def test_dispatcher_list_names_the_carriers() -> None:
    text = config.dispatcher_list(load_seed(DEFAULT_SEED), PORTS)
    assert "1 sip:127.0.0.1:5070 0 10 name=carrier-a" in text
    assert "1 sip:127.0.0.1:5080 0 5 name=carrier-b" in text


def _db(tmp_path: Path) -> Path:
    db = tmp_path / "lab.db"
    config.create_db(db, load_seed(DEFAULT_SEED))
    return db


def test_create_db_seeds_tables(tmp_path: Path) -> None:
    conn = sqlite3.connect(_db(tmp_path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT password FROM subscriber WHERE username='1002' AND domain='voipqa.lab'"
                        ).fetchone() == ("bob-pass-1002",)
    # the balance check Kamailio runs (sqlops gets REAL as NULL: compare in SQL)
    q = "SELECT CAST(balance > 0 AS INTEGER) FROM voipqa_account WHERE account=?"
    assert [conn.execute(q, (a,)).fetchone()[0] for a in ("1001", "1002", "1003", "1004")] == [1, 0, 0, 1]
    q = ("SELECT prefix FROM voipqa_blocked_prefix WHERE substr(?, 1, length(prefix)) = prefix "
         "ORDER BY length(prefix) DESC LIMIT 1")
    assert conn.execute(q, ("19005551234",)).fetchone() == ("1900",)
    assert conn.execute(q, ("15550001234",)).fetchone() is None
    assert conn.execute("SELECT ip_addr, mask, grp FROM address").fetchall() == [("127.0.0.0", 8, 1)]
    versions = dict(conn.execute("SELECT table_name, table_version FROM version").fetchall())
    assert versions["subscriber"] == 7 and versions["acc"] == 5 and versions["missed_calls"] == 4


def test_voipqa_cdr_view_one_row_per_attempt(tmp_path: Path) -> None:
    conn = sqlite3.connect(_db(tmp_path))
    # what Kamailio writes: an answered call (dialog CDR; Julian-day start) and a 402
    answer = 1_700_000_010.25
    julian = (round(answer) - 0.5) / 86400.0 + 2440587.5
    conn.execute("INSERT INTO acc_cdrs (start_time, end_time, duration, call_id, from_user, to_user, account,"
                 " invite_ts, answer_ts, carrier) VALUES (?, ?, 12.5, 'c1', '1001', '15550001', '1001',"
                 " '1700000008.5', ?, 'carrier-a')", (julian, julian, str(answer)))
    conn.execute("INSERT INTO missed_calls (method, from_tag, to_tag, callid, sip_code, sip_reason, time,"
                 " from_user, to_user, account, invite_ts, event_ts, carrier, reason) VALUES"
                 " ('INVITE', 'ft', NULL, 'c2', '402', 'Payment Required', 2460000.0, '1002', '1555', '1002',"
                 " '1700000020.0', '1700000020.01', NULL, 'Payment Required')")
    conn.commit()
    conn.row_factory = sqlite3.Row
    rows = {r["call_id"]: dict(r) for r in conn.execute("SELECT * FROM voipqa_cdr")}
    assert list(rows["c1"]) == ["call_id", "from_user", "to_user", "account", "start_time", "answer_time",
                                "end_time", "duration", "sip_code", "sip_reason", "carrier"]
    c1 = rows["c1"]
    assert c1["start_time"] == 1700000008.5 and c1["answer_time"] == answer
    assert c1["end_time"] == pytest.approx(answer + 12.5) and c1["duration"] == 12.5
    assert (c1["sip_code"], c1["carrier"]) == (200, "carrier-a")
    c2 = rows["c2"]
    assert (c2["sip_code"], c2["sip_reason"], c2["answer_time"], c2["duration"]) == (402, "Payment Required", None, 0.0)
    assert isinstance(c2["start_time"], float) and c2["end_time"] == 1700000020.01


def test_state_roundtrip_and_default_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_state(tmp_path) is None
    st = LabState(backend="native", run_dir=str(tmp_path), supervisor_pid=1, started=1.0, host="127.0.0.1",
                  domain="voipqa.lab", ports=PORTS, processes={"kamailio": 2}, cdr_db="x.db",
                  carrier_cdr={"carrier-a": "a.jsonl"}, ca_cert="ca.crt", tls_server_name="lab.voipqa.test",
                  ctl_socket="ctl", seed="s", plan="p", logs={})
    st.save()
    assert load_state(tmp_path) == st
    (tmp_path / "lab.json").write_text("{broken")
    assert load_state(tmp_path) is None
    monkeypatch.setenv("VOIPQA_LAB_DIR", str(tmp_path / "x"))
    assert default_run_dir() == tmp_path / "x"
    monkeypatch.delenv("VOIPQA_LAB_DIR")
    monkeypatch.chdir(tmp_path)
    assert default_run_dir() == tmp_path / ".voipqa" / "lab"


def test_carrier_command_and_ctl_socket(tmp_path: Path) -> None:
    argv = carrier_command("carrier-a", 5070, Path("plan.yaml"), tmp_path / "a.jsonl")
    assert argv[1:] == ["-m", "qa.carrier", "serve", "--plan", "plan.yaml", "--listen", "127.0.0.1:5070",
                        "--cdr", str(tmp_path / "a.jsonl"), "--name", "carrier-a"]
    assert ctl_socket_path(Path("/tmp/x")) == Path("/tmp/x/kamailio_ctl")
    long = Path("/tmp/" + "d" * 120)
    assert len(str(ctl_socket_path(long))) < 100

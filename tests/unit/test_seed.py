"""lab/seed.yaml validation, config rendering, the lab DB and its voipqa_cdr view, and the
small pure helpers of the lab (rtpengine argv and media range, control socket path)."""

from __future__ import annotations

import copy
import sqlite3
from pathlib import Path

import pytest
import yaml

from qa.errors import BadInput, ConfigError, VoipqaError
from qa.lab import config, control, default_run_dir, rtpengine
from qa.lab.seed import load_seed, parse_seed
from qa.lab.state import LabState, load_state
from qa.lab.supervisor import carrier_command, ctl_socket_path
from qa.paths import DEFAULT_SEED

BASE = yaml.safe_load(DEFAULT_SEED.read_text())
PORTS = {"sip": 5060, "sip_tls": 5061, "sip_tls_expired": 5062, "rtpengine_ng": 2223,
         "carrier-a": 5070, "carrier-b": 5080, "carrier-c": 5090, "carrier-d": 5100}


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
    got = {a.user: (a.name, a.password, a.balance) for a in seed.accounts}
    assert got == {
        "1001": ("alice", "alice-pass-1001", 50.0), "1002": ("bob", "bob-pass-1002", 0.0),
        "1003": ("carol", "carol-pass-1003", -5.0), "1004": ("dave", "dave-pass-1004", 20.0),
        "1005": ("erin", "erin-pass-1005", 10.0), "1006": ("frank", "frank-pass-1006", 30.0),
        "1007": ("grace", "grace-pass-1007", 30.0), "1008": ("heidi", "heidi-pass-1008", 30.0),
        "1009": ("ivan", "ivan-pass-1009", 30.0), "1010": ("judy", "judy-pass-1010", 30.0),
    }
    assert seed.account("1006").deny == ("1555000999",) and seed.account("1006").allow_only == ()
    assert seed.account("1007").allow_only == ("1555000",) and seed.account("1007").deny == ()
    assert {p.prefix for p in seed.blocked_prefixes} >= {"1900", "882", "881", "53"}
    # the customers, and the security suite's attackers (one address per attack)
    assert seed.allow_list == ("127.0.0.1/32", "127.0.0.64/27")
    assert [(c.name, c.set, c.priority) for c in seed.carriers] == [
        ("carrier-a", 1, 10), ("carrier-b", 1, 5), ("carrier-c", 2, 10), ("carrier-d", 2, 5)]
    assert seed.set2_prefixes == ("1666",)
    assert (seed.fr_timer_s, seed.fr_inv_timer_s, seed.probe_interval_s) == (3, 15, 2)
    assert (seed.media_timeout_s, seed.min_se_s, seed.workers) == (10, 90, 1)
    assert seed.accounting == "queued"


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
    (["antiflood", "max_requests"], 65536, "antiflood.max_requests: must be between 1 and 65535"),
    (["timers", "fr_timer_s"], "5s", "timers.fr_timer_s: not a number"),
    (["workers"], 0, "workers: must be between 1 and 64"),
    (["domain"], "voipqa lab", "domain: invalid domain name"),
    (["accounts", 5, "deny"], ["15x"], "accounts[5].deny[0]: invalid prefix"),
    (["accounts", 6, "allow_only"], "1555000", "accounts[6].allow_only: must be a list"),
    (["accounts", 6, "allow_only"], ["1555", "1555"], "accounts[6].allow_only[1]: duplicate prefix"),
    (["carriers", 2, "set"], 3, "carriers[2].set: must be between 1 and 2"),
    (["carriers", 2, "name"], "rtpengine", "carriers[2].name: duplicate or reserved name"),
    (["carriers", 3, "name"], "sip_tls_expired", "carriers[3].name: duplicate or reserved name"),
    (["routing", "set2_prefixes"], ["16x6"], "routing.set2_prefixes[0]: invalid prefix"),
    (["timers", "media_timeout_s"], 1, "timers.media_timeout_s: must be between 2 and 3600"),
    (["timers", "min_se_s"], 60, "timers.min_se_s: must be between 90 and 3600"),
    (["accounts"], [], "accounts: needs at least 1 entry"),
    (["extra_stuff"], 1, "extra_stuff: unknown key"),
    (["accounting"], "sometimes", "lab/seed.yaml: accounting: must be one of queued, direct"),
    (["accounting"], ["queued"], "lab/seed.yaml: accounting: must be one of queued, direct"),
    (["accounting"], True, "lab/seed.yaml: accounting: must be one of queued, direct"),
    (["blocked_prefixes"], 0, "lab/seed.yaml: blocked_prefixes: must be a list"),   # was taken as none
    (["routing", "algorithm"], ["priority"], "routing.algorithm: must be one of priority, round-robin"),  # was a crash
    (["antiflood", "pike_window_s"], 1, "antiflood.pike_window_s: unknown key"),   # the file's name is window_s
    (["timers", "fr_timer_s"], 10 ** 400, "timers.fr_timer_s: not a finite number"),   # was a crash
    (["carriers", 0], 5, "carriers[0]: must be a mapping"),   # a bare name is text, not a number
    (["load_shape"], None, "lab/seed.yaml: load_shape: must be a mapping"),
    (["workers"], None, "workers: not an integer"),
])
def test_bad_field_is_named(path: list, value, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_seed(with_change(path, value), "lab/seed.yaml")
    assert message in str(err.value)
    assert err.value.exit_code == 2 and isinstance(err.value, BadInput)


@pytest.mark.parametrize("path,message", [
    (["domain"], "domain: required"),
    (["accounts", 0, "balance"], "accounts[0].balance: required"),
    (["carriers"], "carriers: required"),
])
def test_missing_field_is_named(path: list, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_seed(with_change(path, None, delete=True))


def test_accounting_is_queued_unless_the_seed_says_direct() -> None:
    assert parse_seed(with_change(["accounting"], None, delete=True)).accounting == "queued"
    assert parse_seed(with_change(["accounting"], "direct")).accounting == "direct"
    with pytest.raises(ConfigError) as err:
        parse_seed(with_change(["accounting"], "Queued"), "my/seed.yaml")
    assert str(err.value) == "my/seed.yaml: accounting: must be one of queued, direct"


def test_carrier_sets_must_make_sense() -> None:
    data = copy.deepcopy(BASE)
    for c in data["carriers"]:
        c["set"] = 2
    with pytest.raises(ConfigError, match="carriers: needs at least one carrier in set 1"):
        parse_seed(data)
    data = copy.deepcopy(BASE)
    data["carriers"] = [c for c in data["carriers"] if c.get("set", 1) == 1]
    with pytest.raises(ConfigError, match="routing.set2_prefixes: no carrier is in set 2"):
        parse_seed(data)
    data["routing"]["set2_prefixes"] = []
    seed = parse_seed(data)
    assert seed.set2_prefixes == () and config.set2_regex(seed) == "^no-set-2$"


def test_yaml_numbers_for_users_and_prefixes_are_accepted() -> None:
    data = with_change(["accounts", 0, "user"], 1001)
    data["blocked_prefixes"] = [1900, {"prefix": 53}]
    seed = parse_seed(data)
    assert seed.accounts[0].user == "1001"
    assert [p.prefix for p in seed.blocked_prefixes] == ["1900", "53"]


def test_null_means_none_where_the_field_allows_it() -> None:
    data = with_change(["accounts", 0, "name"], None)
    data["accounts"][0]["deny"] = None
    data["blocked_prefixes"] = None
    seed = parse_seed(data)
    assert (seed.accounts[0].name, seed.accounts[0].deny, seed.blocked_prefixes) == (None, (), ())


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read: No such file"):
        load_seed(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("domain: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2\)"):
        load_seed(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_seed(empty)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"domain: \xff\n")   # was a UnicodeDecodeError traceback
    with pytest.raises(ConfigError, match="cannot read: not UTF-8 text"):
        load_seed(binary)


def test_render_config_fills_every_placeholder(tmp_path: Path) -> None:
    seed = load_seed(DEFAULT_SEED)
    text = config.render_config(seed, PORTS, tmp_path, tmp_path / "kamailio_ctl")
    assert "{{" not in text
    assert "listen=udp:127.0.0.1:5060" in text and "listen=tcp:127.0.0.1:5060" in text
    assert "listen=tls:127.0.0.1:5061" in text and "listen=tls:127.0.0.1:5062" in text
    assert f"sqlite://{tmp_path}/lab.db" in text
    assert 'modparam("tm", "fr_timer", 3000)' in text
    assert 'modparam("tm", "fr_inv_timer", 15000)' in text
    assert 'ds_select_dst("$var(set)", "8")' in text  # priority
    assert 'if ($rU =~ "^(1666)")' in text
    assert 'modparam("rtpengine", "rtpengine_sock", "udp:127.0.0.1:2223")' in text
    assert 'append_to_reply("Min-SE: 90\\r\\n")' in text and 'modparam("sst", "min_se", 90)' in text
    assert "udp_mtu=1300" in text and "udp_mtu_try_proto=TCP" in text
    assert f"unix:{tmp_path}/kamailio_ctl" in text
    assert "children=1" in text
    # the functional shape's rtpengine control timeouts (the load shape has its own)
    assert 'modparam("rtpengine", "rtpengine_tout_ms", 1000)' in text
    assert 'modparam("rtpengine", "rtpengine_retr", 2)' in text
    assert 'modparam("rtpengine", "rtpengine_disable_tout", 5)' in text


def test_render_template_rejects_unknown_and_unused_names() -> None:
    with pytest.raises(VoipqaError, match="no value for B"):
        config.render_template("{{A}} {{B}}", {"A": 1})
    with pytest.raises(VoipqaError, match="never uses C"):
        config.render_template("{{A}}", {"A": 1, "C": 2})
    assert config.render_template("x={{A}} $(rU{s.substr,1,0})", {"A": 7}) == "x=7 $(rU{s.substr,1,0})"


def test_dispatcher_list_names_the_carriers_in_their_sets() -> None:
    text = config.dispatcher_list(load_seed(DEFAULT_SEED), PORTS)
    assert "1 sip:127.0.0.1:5070 0 10 name=carrier-a" in text
    assert "1 sip:127.0.0.1:5080 0 5 name=carrier-b" in text
    assert "2 sip:127.0.0.1:5090 0 10 name=carrier-c" in text
    assert "2 sip:127.0.0.1:5100 0 5 name=carrier-d" in text


def test_tls_config_serves_the_expired_certificate_on_its_own_port(tmp_path: Path) -> None:
    text = config.tls_config(tmp_path, 5062)
    expired, default = text.split("[server:default]")
    assert expired.startswith("[server:127.0.0.1:5062]") and f"{tmp_path}/expired.crt" in expired
    assert f"{tmp_path}/server.crt" in default and "expired" not in default
    assert "[server:127.0.0.1" not in config.tls_config(tmp_path)


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
    assert conn.execute("SELECT ip_addr, mask, grp FROM address").fetchall() == [("127.0.0.1", 32, 1),
                                                                                ("127.0.0.64", 27, 1)]
    assert conn.execute("SELECT account, kind, prefix FROM voipqa_account_prefix ORDER BY account").fetchall() == [
        ("1006", "deny", "1555000999"), ("1007", "allow", "1555000")]
    versions = dict(conn.execute("SELECT table_name, table_version FROM version").fetchall())
    assert versions["subscriber"] == 7 and versions["acc"] == 5 and versions["missed_calls"] == 4


def _account_rules_sql(account: str, dest: str) -> str:
    """The exact query route[ACCOUNT_RULES] of lab/kamailio.cfg runs, filled in."""
    import re
    text = config.TEMPLATE.read_text()
    block = text[text.index("route[ACCOUNT_RULES]"):]
    sql = re.search(r'sql_query\("ca", "(.*?)", "rp"\)', block).group(1)
    return sql.replace("$var(acct)", account).replace("$var(dest)", dest)


@pytest.mark.parametrize("account,dest,denied", [
    ("1006", "15550009991", 1), ("1006", "15550001234", 0),   # frank: deny 1555000999
    ("1007", "15550001234", 0), ("1007", "15550101234", 1),   # grace: allow_only 1555000
    ("1001", "15550009991", 0),                               # alice: no rules
])
def test_account_rules_query(tmp_path: Path, account: str, dest: str, denied: int) -> None:
    conn = sqlite3.connect(_db(tmp_path))
    assert conn.execute(_account_rules_sql(account, dest)).fetchone() == (denied,)


def test_voipqa_cdr_view_one_row_per_attempt(tmp_path: Path) -> None:
    conn = sqlite3.connect(_db(tmp_path))
    # what Kamailio writes: an answered call (dialog CDR; Julian-day start) and a 402
    answer = 1_700_000_010.25
    julian = (round(answer) - 0.5) / 86400.0 + 2440587.5
    conn.execute("INSERT INTO acc_cdrs (start_time, end_time, duration, call_id, from_user, to_user, account,"
                 " invite_ts, answer_ts, carrier, end_reason) VALUES (?, ?, 12.5, 'c1', '1001', '15550001',"
                 " '1001', '1700000008.5', ?, 'carrier-a', 'callee-bye')", (julian, julian, str(answer)))
    conn.execute("INSERT INTO missed_calls (method, from_tag, to_tag, callid, sip_code, sip_reason, time,"
                 " from_user, to_user, account, invite_ts, event_ts, carrier, reason) VALUES"
                 " ('INVITE', 'ft', NULL, 'c2', '402', 'Payment Required', 2460000.0, '1002', '1555', '1002',"
                 " '1700000020.0', '1700000020.01', NULL, 'Payment Required')")
    conn.commit()
    conn.row_factory = sqlite3.Row
    rows = {r["call_id"]: dict(r) for r in conn.execute("SELECT * FROM voipqa_cdr")}
    assert list(rows["c1"]) == ["call_id", "from_user", "to_user", "account", "start_time", "answer_time",
                                "end_time", "duration", "sip_code", "sip_reason", "carrier", "end_reason"]
    c1 = rows["c1"]
    assert c1["start_time"] == 1700000008.5 and c1["answer_time"] == answer
    assert c1["end_time"] == pytest.approx(answer + 12.5) and c1["duration"] == 12.5
    assert (c1["sip_code"], c1["carrier"], c1["end_reason"]) == (200, "carrier-a", "callee-bye")
    c2 = rows["c2"]
    assert (c2["sip_code"], c2["sip_reason"], c2["answer_time"], c2["duration"]) == (402, "Payment Required", None, 0.0)
    assert c2["end_reason"] is None
    assert isinstance(c2["start_time"], float) and c2["end_time"] == 1700000020.01


def _julian(unix_seconds: int) -> float:
    """What db_sqlite stores for a TIMESTAMP (timet_to_sqlite, done in C doubles)."""
    return ((float(unix_seconds) - 0.5) / 86400.0) + 2440587.5


def _queue(conn: sqlite3.Connection, key: str, event: dict) -> None:
    """What route[ACC_WRITER] does: the event's JSON as a hex blob literal cast to text."""
    import json
    hexa = json.dumps(event).encode().hex()
    conn.execute(f"INSERT INTO acc_queue (key, val) VALUES ('{key}', CAST(X'{hexa}' AS TEXT))")


def test_queued_events_become_the_rows_acc_writes(tmp_path: Path) -> None:
    """acc_queue's triggers write acc_cdrs / acc / missed_calls rows in db_sqlite's own
    representation: Julian-day TIMESTAMPs of whole seconds, duration REAL, NULL for ""."""
    conn = sqlite3.connect(_db(tmp_path))
    cid = "q'uote\"d-1@h"          # a Call-ID that would break quoted SQL
    _queue(conn, "cdr", {"start_time": "1700000010.250", "end_time": "1700000022.757", "duration": "12.507",
                         "call_id": cid, "from_user": "1001", "to_user": "15550001234", "account": "1001",
                         "invite_ts": "1700000008.5", "answer_ts": "1700000010.25", "carrier": "carrier-a",
                         "end_reason": "callee-bye"})
    _queue(conn, "acc", {"time": 1700000010, "method": "INVITE", "from_tag": "ft", "to_tag": "tt", "callid": cid,
                         "sip_code": "200", "sip_reason": "OK", "from_user": "1001", "to_user": "15550001234",
                         "account": "1001", "invite_ts": "1700000008.5", "event_ts": "1700000010.251",
                         "carrier": "carrier-a", "reason": ""})
    _queue(conn, "missed", {"time": 1700000030, "method": "INVITE", "from_tag": "ft2", "callid": "c2",
                            "sip_code": "402", "sip_reason": "Payment Required", "from_user": "1002",
                            "to_user": "1555", "account": "1002", "invite_ts": "1700000029.9",
                            "event_ts": "1700000030.01", "reason": "Payment Required"})
    _queue(conn, "other", {"x": 1})
    conn.commit()
    cdr = conn.execute("SELECT start_time, end_time, duration, call_id, invite_ts, answer_ts, end_reason,"
                       " typeof(start_time), typeof(duration), typeof(invite_ts) FROM acc_cdrs").fetchall()
    assert cdr == [(_julian(1700000010), _julian(1700000022), 12.507, cid, 1700000008.5, 1700000010.25,
                    "callee-bye", "real", "real", "real")]
    acc = conn.execute("SELECT method, from_tag, to_tag, callid, sip_code, typeof(sip_code), sip_reason, time,"
                       " event_ts, reason FROM acc").fetchall()
    assert acc == [("INVITE", "ft", "tt", cid, "200", "text", "OK", _julian(1700000010), 1700000010.251, None)]
    missed = conn.execute("SELECT to_tag, callid, sip_code, time, carrier, reason FROM missed_calls").fetchall()
    assert missed == [(None, "c2", "402", _julian(1700000030), None, "Payment Required")]
    # converted events are not kept; one nobody knows stays for an operator to see
    assert conn.execute("SELECT key FROM acc_queue").fetchall() == [("other",)]
    conn.row_factory = sqlite3.Row
    view = {r["call_id"]: dict(r) for r in conn.execute("SELECT * FROM voipqa_cdr")}
    assert view[cid]["answer_time"] == 1700000010.25 and view[cid]["end_time"] == pytest.approx(1700000022.757)
    assert (view["c2"]["sip_code"], view["c2"]["sip_reason"], view["c2"]["start_time"]) == (402, "Payment Required",
                                                                                            1700000029.9)


def test_queued_durations_are_the_doubles_acc_stores(tmp_path: Path) -> None:
    """acc binds strtod("s.mmm"); the trigger's CAST must give the very same double."""
    conn = sqlite3.connect(_db(tmp_path))
    texts = [f"{s}.{ms:03d}" for s in (0, 1, 7, 59, 3599, 86399) for ms in range(0, 1000, 7)]
    for i, text in enumerate(texts):
        _queue(conn, "cdr", {"start_time": "1700000000.000", "end_time": "1700000000.000", "duration": text,
                             "call_id": f"d{i}"})
    got = [d for (d,) in conn.execute("SELECT duration FROM acc_cdrs ORDER BY id")]
    assert got == [float(text) for text in texts]


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


def test_rtpengine_command_and_media_range() -> None:
    argv = rtpengine.command("/usr/bin/rtpengine", "127.0.0.1", 2223, 20000, 20399, sip_port=5060,
                             timeout_s=10, pidfile=Path("/run/x/rtpengine.pid"))
    assert argv[0] == "/usr/bin/rtpengine" and "--table=-1" in argv and "--foreground" in argv
    assert "--listen-ng=127.0.0.1:2223" in argv and "--port-min=20000" in argv and "--port-max=20399" in argv
    assert "--timeout=10" in argv and "--silent-timeout=10" in argv
    assert "--b2b-url=http://127.0.0.1:5060/RPC2" in argv and "--xmlrpc-format=2" in argv
    lo, hi = rtpengine.allocate_media_range("127.0.0.1", 64)
    assert hi - lo + 1 == 64 and lo % 2 == 0 and hi < 32768


def test_rtpengine_ping_without_rtpengine_is_false() -> None:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))
        assert rtpengine.ping("127.0.0.1", quiet.getsockname()[1], 0.2) is False


def test_control_socket_path_and_errors(tmp_path: Path) -> None:
    assert control.socket_path(Path("/tmp/x")) == Path("/tmp/x/supervisor.sock")
    assert len(str(control.socket_path(Path("/tmp/" + "d" * 120)))) < 100
    with pytest.raises(BadInput, match="unknown carrier operation 'kill'"):
        control.request(tmp_path, "kill", "carrier-a")
    with pytest.raises(VoipqaError, match="no lab running"):
        control.request(tmp_path, "stop", "carrier-a")

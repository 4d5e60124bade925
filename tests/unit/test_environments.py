"""Environment files (DESIGN §3): the example is valid, each bad field is one line naming it."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from qa.config import (MASK, AccountFile, CarrierFile, CdrFile, EnvironmentFile, PasswordInFileWarning, PortsFile,
                       FloodFile, SecurityFile, SecurityNumbersFile, TargetFile, ThresholdsFile, find_environment,
                       parse_environment_file)
from qa.environments import environment_from_file, load_environment
from qa.errors import BadInput, ConfigError
from qa.paths import ROOT

EXAMPLE = ROOT / "environments" / "example-staging.yaml"
PASSWORDS = {"STAGING_1001_PW": "s3cret-1001", "STAGING_1002_PW": "s3cret-1002", "STAGING_CDR_PW": "db-pw-9"}


@pytest.fixture
def passwords(monkeypatch):
    for name, value in PASSWORDS.items():
        monkeypatch.setenv(name, value)


def minimal(**override) -> dict:
    data = {"target": {"host": "127.0.0.1", "ports": {"udp": 5060}},
            "accounts": [{"user": "1001", "password_env": "STAGING_1001_PW"}]}
    return data | override


def write(tmp_path, data, name="staging.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return path


def problem(tmp_path, data) -> str:
    with pytest.raises(ConfigError) as exc:
        environment_from_file(write(tmp_path, data))
    message = str(exc.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "staging.yaml") + ": ")
    return message.split(": ", 1)[1]


def test_the_example_is_valid_and_documents_every_field():
    spec = parse_environment_file(EXAMPLE)
    assert spec.target.ports.tls == 5061 and spec.accounts[1].balance_class == "zero"
    assert spec.cdr.mapping["duration"] == "billsec" and spec.thresholds.mos_min == 3.8
    text = EXAMPLE.read_text()
    for model in (EnvironmentFile, TargetFile, PortsFile, AccountFile, CarrierFile, CdrFile, ThresholdsFile,
                  SecurityFile, FloodFile, SecurityNumbersFile):
        for name in model.model_fields:
            assert f"{name}:" in text or f"{name} " in text, f"{model.__name__}.{name} is not documented"


def test_the_example_loads_when_its_variables_are_set(passwords, tmp_path, monkeypatch):
    """Everything but the PostgreSQL source: point that at an SQLite file instead."""
    text = EXAMPLE.read_text().replace(
        "postgresql://voipqa_ro:${STAGING_CDR_PW}@billing.staging.example.net/billing", "sqlite:///billing.db")
    text = text.replace("table: public.cdr", "table: cdr")
    path = write(tmp_path, text)
    with sqlite3.connect(tmp_path / "billing.db") as conn:
        conn.execute("CREATE TABLE cdr (callid, src, dst, accountcode, start_stamp, answer_stamp, end_stamp, "
                     "billsec, hangup_sip_code)")
    env = environment_from_file(path)
    assert env.name == "staging" and env.target.address() == "sbc.staging.example.net:5060"
    assert env.target.tls_port == 5061 and env.target.domain == "staging.example.net"
    assert env.password("1001") == "s3cret-1001"
    env.platform_cdr.check()  # the mapping's columns exist
    assert env.carrier_cdr_paths[0].name == "carrier-a.jsonl"
    assert env.settings.numbers["blocked"] == "19005550100"


def test_a_valid_minimal_file(passwords, tmp_path):
    env = environment_from_file(write(tmp_path, minimal()))
    assert env.target.port == 5060 and env.platform_cdr is None and env.carrier_cdr is None
    assert env.accounts == {"1001": "s3cret-1001"}


@pytest.mark.parametrize("data, expected", [
    (minimal(target={"host": "h", "ports": {"udp": 5060, "tls": 70000}}), "target.ports.tls: not a port number"),
    (minimal(target={"host": "h", "ports": {"udp": "5060x"}}), "target.ports.udp: not a port number"),
    (minimal(target={"host": "h", "ports": {"tls": 5061}}), "target.ports: give udp or tcp"),
    (minimal(target={"host": "h", "ports": {"udp": 5060, "tcp": 5070}}), "target.ports: udp and tcp must be"),
    (minimal(target={"ports": {"udp": 5060}}), "target.host: required"),
    (minimal(target={"host": "h", "port": 5060, "ports": {"udp": 5060}}), "target.port: unknown key"),
    (minimal(lab=True), "lab: unknown key"),
    (minimal(accounts=[]), "accounts: list should have at least 1 item"),
    (minimal(accounts=[{"user": "1001"}]), "accounts[0]: give exactly one of password_env"),
    (minimal(accounts=[{"user": "1001", "password_env": "A", "balance_class": "rich"}]),
     "accounts[0].balance_class: must be one of 'positive', 'zero' or 'negative'"),
    (minimal(accounts=[{"user": "1001", "password_env": "A"}, {"user": "1001", "password_env": "B"}]),
     "accounts: user 1001 is listed twice"),
    (minimal(accounts=[{"user": "10 01", "password_env": "A"}]), "accounts[0].user: '10 01' is not allowed here"),
    (minimal(accounts=[{"user": "1001", "password_env": "not-a-var"}]), "accounts[0].password_env: 'not-a-var'"),
    (minimal(cdr={"dsn": "x.csv", "mapping": {"billsec": "duration"}}), "cdr.mapping: 'billsec' is not a CDR column"),
    (minimal(cdr={"dsn": "x.csv", "table": "a;b"}), "cdr.table: 'a;b' is not allowed here"),
    (minimal(cdr={"table": "t"}), "cdr.dsn: required"),
    (minimal(cdr={"dsn": "nowhere.csv"}), "cdr.dsn: CDR file"),
    (minimal(cdr={"dsn": "postgres://h/db"}), "cdr.dsn: CDR source postgres://…: unsupported"),
    (minimal(thresholds={"asr_min": 95}), "thresholds.asr_min: input should be less than or equal to 1"),
    (minimal(thresholds={"mos": 4}), "thresholds.mos: unknown key"),
    (minimal(numbers={"answer-echo": "15550-00100"}), "numbers.answer-echo: '15550-00100' is not allowed here"),
    (minimal(carrier={"bind": "10.0.0.1"}), "carrier.bind: '10.0.0.1' is not allowed here"),
    (minimal(target={"host": "h", "ports": {"udp": 5060}, "ca_cert": "ca.pem"}), "target.ca_cert:"),
    ("target: [1, 2\n", "not valid YAML (line 2)"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_each_bad_field_is_one_line(passwords, tmp_path, data, expected):
    assert problem(tmp_path, data).startswith(expected)


def test_a_missing_password_variable_names_the_field_and_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("STAGING_1001_PW", raising=False)
    assert problem(tmp_path, minimal()) == \
        "accounts[0].password_env: environment variable STAGING_1001_PW is not set"


def test_a_missing_dsn_variable_names_cdr_dsn(passwords, tmp_path, monkeypatch):
    monkeypatch.delenv("NOPE_PW", raising=False)
    assert problem(tmp_path, minimal(cdr={"dsn": "postgresql://u:${NOPE_PW}@h/db"})) == \
        "cdr.dsn: environment variable NOPE_PW is not set"


def test_a_password_in_the_file_works_but_warns(tmp_path):
    data = minimal(accounts=[{"user": "1001", "password": "in-the-file"}])
    with pytest.warns(PasswordInFileWarning, match=r"accounts\[0\].password"):
        env = environment_from_file(write(tmp_path, data))
    assert env.password("1001") == "in-the-file"


def test_masking_covers_account_passwords_and_the_dsn_password(passwords, tmp_path):
    with sqlite3.connect(tmp_path / "c.db") as conn:
        conn.execute("CREATE TABLE voipqa_cdr (call_id)")
    env = environment_from_file(write(tmp_path, minimal(
        accounts=[{"user": "1001", "password_env": "STAGING_1001_PW"},
                  {"user": "1002", "password_env": "STAGING_1002_PW"}],
        cdr={"dsn": "sqlite:///c.db?pw=${STAGING_CDR_PW}"})))
    text = "auth 1001/s3cret-1001 then 1002/s3cret-1002 via db-pw-9"
    assert env.mask(text) == f"auth 1001/{MASK} then 1002/{MASK} via {MASK}"
    with pytest.raises(BadInput, match="no account '1003'"):
        env.password("1003")


def test_finding_files_by_name_or_path(passwords, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "environments").mkdir()
    local = write(tmp_path / "environments", minimal(), "mine.yaml")
    assert find_environment("mine").resolve() == local
    assert find_environment("example-staging") == ROOT / "environments" / "example-staging.yaml"
    assert load_environment(str(local)).name == "mine"
    with pytest.raises(BadInput, match="no environments/nope.yaml here or in"):
        find_environment("nope")
    with pytest.raises(BadInput, match="environment file other/x.yaml: no such file"):
        find_environment("other/x.yaml")
    with pytest.raises(BadInput, match="not a name"):
        find_environment("$(rm)")


def test_the_lab_without_a_running_lab_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("VOIPQA_LAB_DIR", str(tmp_path / "none"))
    with pytest.raises(BadInput, match="no lab is running"):
        load_environment("lab")


def test_relative_paths_are_relative_to_the_file(passwords, tmp_path):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.pem").write_text("pem")
    env = environment_from_file(write(tmp_path, minimal(
        target={"host": "h", "ports": {"udp": 5060}, "ca_cert": "certs/ca.pem"},
        carrier={"cdr": ["cdr/a.jsonl"], "bind": "127.0.0.1:5080"})))
    assert env.target.ca_cert == tmp_path / "certs" / "ca.pem"
    assert env.carrier_cdr_paths == (tmp_path / "cdr" / "a.jsonl",)
    assert env.carrier_cdr.rows("x") == []  # not written yet: empty, not an error


def test_extends_lays_a_file_over_another(tmp_path):
    from qa.config import parse_environment_file

    (tmp_path / "base.yaml").write_text(yaml.safe_dump({
        "description": "base", "target": {"host": "10.0.0.1", "domain": "d.example", "ports": {"udp": 5060, "tls": 5061}},
        "accounts": [{"user": "1001", "password_env": "PW_1001"}], "carrier": {"sip_ports": [5080, 5081]}}))
    (tmp_path / "over.yaml").write_text(yaml.safe_dump({
        "extends": "base.yaml", "target": {"host": "127.0.0.10"}, "carrier": {"sip_ports": [5090]}}))
    spec = parse_environment_file(tmp_path / "over.yaml")
    assert spec.target.host == "127.0.0.10" and spec.target.domain == "d.example"   # mappings merged
    assert spec.target.ports.tls == 5061 and spec.carrier.sip_ports == [5090]        # lists replaced
    assert [a.user for a in spec.accounts] == ["1001"] and spec.description == "base"


@pytest.mark.parametrize("extends, problem", [
    ("nowhere.yaml", "extends: nowhere.yaml: no such file in {dir}"),
    ("loop.yaml", "extends: loop.yaml: extends itself (a cycle)"),
    ("base", "extends: 'base': expected a .yaml file beside this one"),
])
def test_a_bad_extends_is_one_line(tmp_path, extends, problem):
    from qa.config import parse_environment_file

    (tmp_path / "loop.yaml").write_text(yaml.safe_dump({"extends": "loop.yaml"}))
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"extends": extends}))
    path = tmp_path / ("loop.yaml" if extends == "loop.yaml" else "env.yaml")
    with pytest.raises(ConfigError) as exc:
        parse_environment_file(path)
    assert str(exc.value).endswith(problem.format(dir=tmp_path)) and "\n" not in str(exc.value)


def test_a_run_against_an_environment_captures_its_sip_ports():
    """The target's ports and the carriers' sip_ports: without them a TCP or TLS call of an
    environment run was missing from the capture and failed on the wire."""
    from qa.cases.suites import environment_sip_ports

    assert environment_sip_ports(None) == environment_sip_ports("lab") == set()
    assert environment_sip_ports("docker-host") == {5060, 5061, 5062, 5080}

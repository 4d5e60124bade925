"""The gate's decision rule and its up-front checks: bad input is one line and exit 2
before any lab or case starts (the lab runs are in tests/integration/test_gate.py)."""

from __future__ import annotations

import pytest

from qa.cli import main
from qa.gate import Check, decide


def _c(status: str, name: str = "functional") -> Check:
    return Check(name, status, 0, 0)


@pytest.mark.parametrize("statuses, decision", [
    (["pass", "pass", "skipped", "pass"], "deploy"),
    (["pass", "fail", "pass"], "block"),
    (["fail"], "block"),
    (["skipped", "skipped"], "block"),     # nothing judged is not a green light
    ([], "block"),
])
def test_the_gate_deploys_only_when_something_was_judged_and_nothing_failed(statuses, decision):
    assert decide([_c(s) for s in statuses]) == decision


def _one_line_exit_2(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("voipqa: error: ") and "\n" not in err
    return err


def test_an_unknown_profile_is_bad_input_before_anything_starts(tmp_path, capsys):
    err = _one_line_exit_2(capsys, ["gate", "--profile", "no-such-profile", "--output", str(tmp_path / "g")])
    assert "no-such-profile" in err
    assert not (tmp_path / "g").exists()


def test_an_unknown_environment_is_bad_input(tmp_path, capsys):
    assert "nowhere" in _one_line_exit_2(capsys, ["gate", "--env", "nowhere", "--output", str(tmp_path / "g")])


@pytest.mark.parametrize("text, field", [
    ("gate:\n  failed_cases_max: -1\n", "gate.failed_cases_max"),
    ("gate:\n  profile: ''\n", "gate.profile"),
    ("gate:\n  includes: [smoke]\n", "gate.includes"),
    ("alerts: {}\n", "alerts"),
    ("- just a list\n", ""),
])
def test_a_bad_config_file_is_one_line_naming_the_field(tmp_path, capsys, text, field):
    config = tmp_path / "gate.yaml"
    config.write_text(text)
    err = _one_line_exit_2(capsys, ["gate", "--config", str(config), "--output", str(tmp_path / "g")])
    assert str(config) in err and field in err


def test_output_naming_a_file_is_bad_input(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert "--output" in _one_line_exit_2(capsys, ["gate", "--no-load", "--output", str(tmp_path / "f")])


def test_a_gate_suite_that_does_not_exist_is_bad_input(tmp_path, capsys):
    config = tmp_path / "gate.yaml"
    config.write_text("gate:\n  suites: [no-such-suite.robot]\n")
    assert "no-such-suite.robot" in _one_line_exit_2(capsys, ["gate", "--config", str(config), "--output",
                                                               str(tmp_path / "g")])

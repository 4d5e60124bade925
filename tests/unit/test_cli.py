"""The CLI contract: bad input is one line on stderr and exit 2."""

import pytest

from qa.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unknown_suite_path(capsys, tmp_path):
    code, _, err = run(capsys, "run", str(tmp_path / "missing.robot"), "--output", str(tmp_path / "o"))
    assert code == 2
    assert err.strip() == f"voipqa: error: suite {tmp_path / 'missing.robot'}: no such file or directory"


def test_not_a_robot_file(capsys, tmp_path):
    bad = tmp_path / "suite.py"
    bad.write_text("x = 1\n")
    code, _, err = run(capsys, "run", str(bad), "--output", str(tmp_path / "o"))
    assert code == 2 and "not a Robot suite" in err


def test_docker_backend_without_engine_is_bad_input(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-engine.sock'}")
    for argv in (["lab", "up", "--backend", "docker"], ["lab", "status", "--backend", "docker"],
                 ["run", "robot_suites/smoke.robot", "--backend", "docker", "--output", str(tmp_path / "o")]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "no Docker engine" in err and err.count("\n") == 1, (argv, err)
    code, _, err = run(capsys, "run", "--backend", "podman", "--output", str(tmp_path / "o"))
    assert code == 2 and "--backend podman: expected native or docker" in err


def test_status_without_a_lab(capsys, tmp_path):
    code, out, _ = run(capsys, "lab", "status", "--run-dir", str(tmp_path / "none"))
    assert code == 1 and "no lab running" in out


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2


# -- bad input is rejected before a lab, a capture or a case starts -------------------------
SMOKE = "robot_suites/smoke.robot"


@pytest.fixture
def nothing_runs(tmp_path, monkeypatch):
    """No lab is running: a run that got past its checks would start one in OUT/lab."""
    monkeypatch.setenv("VOIPQA_LAB_DIR", str(tmp_path / "no-lab-here"))
    monkeypatch.chdir(__import__("qa.paths", fromlist=["ROOT"]).ROOT)
    return tmp_path / "out"


def assert_nothing_started(out, tmp_path):
    assert not (out / "lab").exists() and not (tmp_path / "no-lab-here").exists()
    assert not (out / "capture.pcapng").exists() and not (out / "parts").exists()


def test_missing_environment_file(capsys, tmp_path, nothing_runs):
    code, out, err = run(capsys, "run", SMOKE, "--env", str(tmp_path / "nope.yaml"), "--output", str(nothing_runs))
    assert code == 2 and out == ""
    assert err == f"voipqa: error: environment file {tmp_path / 'nope.yaml'}: no such file\n"
    assert_nothing_started(nothing_runs, tmp_path)


def test_unknown_environment_name(capsys, tmp_path, nothing_runs):
    code, _, err = run(capsys, "run", SMOKE, "--env", "no-such-env", "--output", str(nothing_runs))
    assert code == 2 and err.count("\n") == 1 and "no-such-env" in err
    assert_nothing_started(nothing_runs, tmp_path)


def test_invalid_environment_names_the_field(capsys, tmp_path, nothing_runs):
    env = tmp_path / "staging.yaml"
    env.write_text("target:\n  ports: {udp: 5060}\naccounts:\n  - {user: '1001', password_env: T_PW}\n")
    code, _, err = run(capsys, "run", SMOKE, "--env", str(env), "--output", str(nothing_runs))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"voipqa: error: {env}: target") and "host" in err
    assert_nothing_started(nothing_runs, tmp_path)


def test_environment_password_variable_unset(capsys, tmp_path, nothing_runs, monkeypatch):
    monkeypatch.delenv("T_UNSET_PW", raising=False)
    env = tmp_path / "staging.yaml"
    env.write_text("target:\n  host: 127.0.0.1\n  ports: {udp: 5060}\n"
                   "accounts:\n  - {user: '1001', password_env: T_UNSET_PW}\n")
    code, _, err = run(capsys, "run", SMOKE, "--env", str(env), "--output", str(nothing_runs))
    assert code == 2 and err.count("\n") == 1 and str(env) in err and "T_UNSET_PW" in err
    assert_nothing_started(nothing_runs, tmp_path)


def test_output_is_an_existing_file(capsys, tmp_path, nothing_runs):
    nothing_runs.write_text("not a directory")
    code, out, err = run(capsys, "run", SMOKE, "--output", str(nothing_runs))
    assert code == 2 and out == ""
    assert err == f"voipqa: error: --output {nothing_runs}: exists and is not a directory\n"
    assert nothing_runs.read_text() == "not a directory"
    assert not (tmp_path / "no-lab-here").exists()


def test_output_under_a_file(capsys, tmp_path, nothing_runs):
    nothing_runs.write_text("x")
    code, _, err = run(capsys, "run", SMOKE, "--output", str(nothing_runs / "sub"))
    assert code == 2 and err.count("\n") == 1 and "is not a directory" in err


def test_include_matching_no_case(capsys, tmp_path, nothing_runs):
    code, out, err = run(capsys, "run", SMOKE, "--include", "no-such-tag", "--output", str(nothing_runs))
    assert code == 2 and out == ""
    assert err == f"voipqa: error: --include no-such-tag: no case matches in {SMOKE}\n"
    assert_nothing_started(nothing_runs, tmp_path)
    assert not nothing_runs.exists()


def test_test_name_matching_no_case(capsys, tmp_path, nothing_runs):
    code, _, err = run(capsys, "run", SMOKE, "--test", "No Such Case", "--parallel", "1",
                       "--output", str(nothing_runs))
    assert code == 2 and err.count("\n") == 1 and "--test No Such Case: no case matches" in err
    assert_nothing_started(nothing_runs, tmp_path)


def test_run_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "130/143 stopped by SIGINT/SIGTERM" in text and "2 bad input (nothing started)" in text


# -- CI-readable output ------------------------------------------------------------------------
def test_console_is_wide_off_a_terminal():
    import io

    from qa.cli.output import CI_WIDTH, console_width

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert console_width(io.StringIO(), {}) == CI_WIDTH == 200
    assert console_width(io.StringIO(), {"COLUMNS": "321"}) == 321
    assert console_width(io.StringIO(), {"COLUMNS": "junk"}) == CI_WIDTH
    assert console_width(Tty(), {}) is None  # a terminal keeps its own width


def test_html_messages_become_plain_text_in_xunit(tmp_path):
    from qa.cases.suites import plain_message, plain_xunit

    message = '*HTML* customer: got 503 &lt;No Carrier&gt;<br><a href="ladders/x.html">ladder of the call</a>'
    assert plain_message(message) == "customer: got 503 <No Carrier>\nladder of the call: ladders/x.html"
    assert plain_message("plain <kept> as is") == "plain <kept> as is"
    xunit = tmp_path / "xunit.xml"
    xunit.write_text('<?xml version="1.0" encoding="UTF-8"?><testsuite name="s" tests="2">'
                     f'<testcase name="a"><failure message="{message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(chr(34), "&quot;")}" type="AssertionError"/></testcase>'
                     '<testcase name="b"/></testsuite>')
    plain_xunit(xunit)
    from xml.etree import ElementTree

    failure = ElementTree.parse(xunit).find(".//failure")
    assert failure.get("message") == "customer: got 503 <No Carrier>\nladder of the call: ladders/x.html"
    assert "*HTML*" not in xunit.read_text()


def test_run_summary_prints_names_verbatim_and_messages_without_html(tmp_path):
    """Case names and failure messages are data: ``[/red]`` neither crashes the summary nor
    vanishes, and the report's ``*HTML*`` ladder link reads as text in a CI log."""
    import io

    from rich.console import Console

    from qa.cli.run import _printable
    from qa.report.summary import CaseRow, RunSummary, print_summary

    row = CaseRow("Suite [b]", "Call to [fe80::1] [/red]", "FAIL", 1.0,
                  '*HTML* customer: got 503 &lt;x&gt;<br><a href="ladders/c.html">ladder of the call</a>')
    out = io.StringIO()
    print_summary(_printable(RunSummary([row], 1.0)), tmp_path, Console(file=out, width=200))
    text = out.getvalue()
    assert "Call to [fe80::1] [/red]" in text and "Suite [b]" in text
    assert "customer: got 503 <x>" in text and "*HTML*" not in text and "<br>" not in text

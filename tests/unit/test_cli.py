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


def test_docker_backend_without_engine_is_bad_input(capsys, tmp_path):
    code, _, err = run(capsys, "lab", "up", "--backend", "docker", "--run-dir", str(tmp_path))
    assert code == 2 and "no Docker engine" in err and err.count("\n") == 1


def test_status_without_a_lab(capsys, tmp_path):
    code, out, _ = run(capsys, "lab", "status", "--run-dir", str(tmp_path / "none"))
    assert code == 1 and "no lab running" in out


def test_unknown_command_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2

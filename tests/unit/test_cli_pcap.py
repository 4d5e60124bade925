"""``voipqa pcap check | calls | ladder``: exit codes, JSON schema, one-line errors."""

import json

import pytest

from qa.cli import main

from tests.unit.test_analysis_engine import CALL_ID, build_call_pcap

CHECK_KEYS = {"schema", "file", "packets", "bytes", "duration_s", "sip_messages", "calls", "dialogs",
              "errors", "warnings", "infos", "findings", "findings_suppressed", "rules",
              "error_responses", "retransmissions", "rtp", "capture"}
FINDING_KEYS = {"frame", "time", "call_id", "severity", "rule", "reason", "offset"}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clean_exit_0_and_json_schema(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "ok.pcap")
    code, out, _ = run(capsys, "pcap", "check", path, "--json")
    doc = json.loads(out)
    assert code == 0 and set(doc) == CHECK_KEYS
    assert (doc["file"], doc["sip_messages"], doc["calls"], doc["errors"]) == (str(path), 7, 1, 0)


def test_findings_exit_1(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "bad.pcap", malformed=True)
    code, out, _ = run(capsys, "pcap", "check", path, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["errors"] >= 1
    assert all(set(f) == FINDING_KEYS for f in doc["findings"])
    code, out, _ = run(capsys, "pcap", "check", path)
    assert code == 1 and "findings" in out


def test_several_files_one_json_line_each(capsys, tmp_path):
    a, b = build_call_pcap(tmp_path / "a.pcap"), build_call_pcap(tmp_path / "b.pcap", one_way=True)
    code, out, _ = run(capsys, "pcap", "check", a, b, "--json")
    docs = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and [d["file"] for d in docs] == [str(a), str(b)]


@pytest.mark.parametrize("content", [b"", b"garbage bytes, not a capture at all" * 3,
                                     b"\x0a\x0d\x0d\x0a" + bytes(4), b"\xd4\xc3\xb2\xa1\x02"])
def test_unreadable_exit_2_one_line(capsys, tmp_path, content):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    code, out, err = run(capsys, "pcap", "check", path)
    assert code == 2 and err.count("\n") == 1 and str(path) in err and "Traceback" not in err


def test_missing_file_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, "pcap", "check", tmp_path / "none.pcap")
    assert code == 2 and "no such file" in err


def test_bad_file_among_good_ones(capsys, tmp_path):
    good = build_call_pcap(tmp_path / "ok.pcap")
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"MZ not a pcap")
    code, out, err = run(capsys, "pcap", "check", good, bad, "--json")
    assert code == 2 and json.loads(out)["file"] == str(good) and str(bad) in err


def test_truncated_pcap_is_not_a_crash(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "t.pcap")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 37])
    code, out, err = run(capsys, "pcap", "check", path, "--json")
    doc = json.loads(out)
    assert code in (0, 1) and "Traceback" not in err
    assert any("trunc" in f["rule"] for f in doc["findings"])


def test_calls_json_and_table(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "ok.pcap")
    code, out, _ = run(capsys, "pcap", "calls", path, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["file"] == str(path)
    [call] = doc["calls"]
    assert (call["call_id"], call["final_code"], call["dtmf_rtp"]) == (CALL_ID, 200, "12")
    assert {s["direction"] for s in call["streams"]} == {"forward", "backward"}
    code, out, _ = run(capsys, "pcap", "calls", path)
    assert code == 0 and "1 calls, 1 Call-IDs" in out


def test_ladder(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "ok.pcap")
    out = tmp_path / "l.html"
    code, _, _ = run(capsys, "pcap", "ladder", path, "--call-id", CALL_ID, "--html", out)
    assert code == 0 and out.read_text().startswith("<!DOCTYPE html>")


def test_ladder_unknown_call_id_exit_2(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "ok.pcap")
    code, _, err = run(capsys, "pcap", "ladder", path, "--call-id", "nope", "--html", tmp_path / "l.html")
    assert code == 2 and err.count("\n") == 1 and "nope" in err


# -- data is never markup; --fail-on; wide output off a terminal ----------------------------
MARKUP_CALL_ID = "c[/red]x@[fe80::1]"


def markup_pcap(path):
    """One INVITE with a malformed CSeq whose Call-ID holds rich markup and bracketed IPv6."""
    from tests.unit.test_analysis_engine import CALLER, PROXY, sip, udp_packet, write_pcap

    invite = sip("INVITE sip:1555@[2001:db8::1]:5060 SIP/2.0", "[/red] INVITE", call_id=MARKUP_CALL_ID)
    write_pcap(path, [(1.0, udp_packet(*CALLER, *PROXY, invite))])
    return path


def test_markup_in_a_capture_prints_verbatim(capsys, tmp_path):
    path = markup_pcap(tmp_path / "[bold]odd[red].pcap")
    code, out, err = run(capsys, "pcap", "check", path)
    assert code == 1 and err == "", err
    assert MARKUP_CALL_ID in out  # neither a crash on [/red] nor [fe80::1] swallowed as a tag
    assert "[bold]odd[red].pcap" in out
    code, out, err = run(capsys, "pcap", "calls", path, "--all")
    assert code == 0 and err == "" and MARKUP_CALL_ID in out


def test_warnings_do_not_fail_unless_fail_on_warning(capsys, tmp_path):
    path = build_call_pcap(tmp_path / "nobye.pcap", bye=False)  # call.no-bye: a warning only
    code, out, _ = run(capsys, "pcap", "check", path, "--json")
    assert json.loads(out)["warnings"] == 1 and json.loads(out)["errors"] == 0
    assert code == 0
    assert run(capsys, "pcap", "check", path, "--fail-on", "warning")[0] == 1
    assert run(capsys, "pcap", "check", path, "--fail-on", "error")[0] == 0
    bad = build_call_pcap(tmp_path / "bad.pcap", malformed=True)
    assert run(capsys, "pcap", "check", bad, "--fail-on", "warning", "--json")[0] == 1


def test_help_says_whether_warnings_count(capsys):
    with pytest.raises(SystemExit):
        main(["pcap", "check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--fail-on {error,warning}" in text
    assert "warnings and infos are reported but do not fail" in text


def test_tables_are_not_squeezed_to_80_columns_off_a_terminal(tmp_path):
    """A CI log is not a TTY: the findings table keeps long rules and reasons on one line."""
    import subprocess
    import sys

    path = build_call_pcap(tmp_path / "bad.pcap", malformed=True)
    env = {k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "pcap", "check", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    widest = max(len(line) for line in proc.stdout.splitlines())
    assert 80 < widest <= 200
    assert any("sip.header.syntax" in line and "malformed CSeq" in line for line in proc.stdout.splitlines())

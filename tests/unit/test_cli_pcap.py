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

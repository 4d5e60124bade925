"""``voipqa sip check``: exit codes 0/1/2, the JSON findings schema, the torture corpus."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from qa.cli import main
from tests.corpus import CORPUS
from tests.unit.test_sip_strict import INVITE, OK

KEYS = ["frame", "time", "call_id", "severity", "rule", "reason", "offset"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_file_exits_0(capsys, tmp_path) -> None:
    (tmp_path / "ok.sip").write_bytes(OK)
    code, out, _ = run(capsys, "sip", "check", str(tmp_path / "ok.sip"))
    assert code == 0 and "ok" in out


def test_warnings_only_exit_0(capsys, tmp_path) -> None:
    (tmp_path / "w.sip").write_bytes(INVITE.replace(b"z9hG4bKnashds8", b"2543style"))
    code, out, _ = run(capsys, "sip", "check", "--json", str(tmp_path / "w.sip"))
    assert code == 0
    assert [f["rule"] for f in json.loads(out)["files"][0]["findings"]] == ["sip.via.branch"]


def test_findings_exit_1_with_json_schema(capsys, tmp_path) -> None:
    bad = INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE").replace(b"a=fmtp:101 0-16", b"a=fmtp:99 0-16")
    (tmp_path / "bad.sip").write_bytes(bad)
    (tmp_path / "ok.sip").write_bytes(OK)
    code, out, _ = run(capsys, "sip", "check", "--json", str(tmp_path / "bad.sip"), str(tmp_path / "ok.sip"))
    assert code == 1
    files = json.loads(out)["files"]
    assert [f["file"] for f in files] == [str(tmp_path / "bad.sip"), str(tmp_path / "ok.sip")]
    findings = files[0]["findings"]
    assert all(list(f) == KEYS for f in findings) and files[1]["findings"] == []
    by_rule = {f["rule"]: f for f in findings}
    assert by_rule["sip.cseq.method-mismatch"]["offset"] == bad.index(b"BYE")
    sdp = by_rule["sdp.fmtp.unknown-pt"]  # SDP offsets are shifted into the message
    assert sdp["offset"] == bad.index(b"a=fmtp:99") and sdp["call_id"] == "a84b4c76e66710@pc33.atlanta.example.com"
    assert sdp["frame"] is None and sdp["time"] is None


def test_human_table(capsys, tmp_path) -> None:
    (tmp_path / "bad.sip").write_bytes(INVITE.replace(b"SIP/2.0\r\nVia", b"SIP/7.0\r\nVia"))
    code, out, _ = run(capsys, "sip", "check", str(tmp_path / "bad.sip"))
    assert code == 1 and "sip.version" in out and "1 error(s)" in out
    assert "bad.sip" in "".join(ch for ch in out if ch not in "│ \n")  # folded, never cut


@pytest.mark.parametrize("make", ["missing", "directory", "empty"])
def test_unreadable_exits_2_with_one_line(capsys, tmp_path, make: str) -> None:
    path = tmp_path / "msg.sip"
    if make == "directory":
        path.mkdir()
    elif make == "empty":
        path.write_bytes(b"")
    (tmp_path / "ok.sip").write_bytes(OK)
    code, out, err = run(capsys, "sip", "check", str(tmp_path / "ok.sip"), str(path))
    assert code == 2 and out == "" and err.count("\n") == 1 and str(path) in err


@pytest.mark.corpus("rfc4475")
@pytest.mark.corpus("rfc5118")
def test_torture_corpus(capsys) -> None:
    files = sorted(str(p) for p in CORPUS.glob("rfc*/*.dat"))
    code, out, _ = run(capsys, "sip", "check", "--json", *files)
    assert code == 1
    reports = {Path(f["file"]).stem: f["findings"] for f in json.loads(out)["files"]}
    assert len(reports) == 61
    for corpus in ("rfc4475", "rfc5118"):
        with open(CORPUS / corpus / "INDEX.tsv", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                sip_errors = [x for x in reports[row["name"]]
                              if x["severity"] == "error" and x["rule"].startswith("sip.")]
                assert bool(sip_errors) == (row["expected"] == "invalid-should-reject"), row["name"]

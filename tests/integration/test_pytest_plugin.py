"""voipqa from pytest, for real (issue 12): ``pytest examples/pytest -p voipqa`` against a lab
the plugin starts for the session, on two pytest-xdist workers sharing it; the calls land
in calls.jsonl (valid records), JUnit works as usual, the lab is stopped after; and a test
whose call fails says which witness disagreed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import jsonschema
import pytest

import qa.lab as lab
from qa.paths import ROOT
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(have_tool(t) for t in ("kamailio", "sipp", "tshark", "rtpengine")),
                       reason="kamailio, sipp, rtpengine and tshark are needed"),
]

FAILING = '''
def test_a_zero_balance_call_expected_to_be_answered(place_call):
    call = place_call("1002", "1555000100", expect=200)
    assert call.passed, call.reasons


def test_a_pcmu_answer_expected_where_pcma_was_offered(place_call, voipqa_capture):
    call = place_call("1001", "1555000100", codecs="PCMA,telephone-event")
    voipqa_capture.should_match(call, 'sip.Status-Code == 200 && sdp.media.format contains "PCMU"')
'''


def test_the_examples_pass_against_a_lab_the_plugin_starts_and_failures_name_their_witness(tmp_path):
    failing = tmp_path / "test_failing.py"
    failing.write_text(FAILING)
    out, junit, run_dir = tmp_path / "out", tmp_path / "junit.xml", tmp_path / "lab"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "examples" / "pytest"), str(failing),
                           "-p", "voipqa", "-n", "2", "-p", "no:cacheprovider", "--voipqa-output", str(out),
                           f"--junitxml={junit}", "-q"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, VOIPQA_LAB_DIR=str(run_dir)))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    failed = {name: c.find("failure").get("message", "") for name, c in cases.items() if c.find("failure") is not None}
    assert len(cases) == 8 and sorted(failed) == ["test_a_pcmu_answer_expected_where_pcma_was_offered",
                                                  "test_a_zero_balance_call_expected_to_be_answered"], failed
    assert "customer: final response 402" in failed["test_a_zero_balance_call_expected_to_be_answered"]
    assert 'contains "PCMU": 0 frame(s) of call' in failed["test_a_pcmu_answer_expected_where_pcma_was_offered"]
    records = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    assert len(records) == 8
    schema = json.loads((ROOT / "docs" / "call-record.schema.json").read_text())
    for record in records:
        jsonschema.validate(record, schema)
    assert sum(r["verdict"] == "pass" for r in records) == 7
    assert lab.load_state(run_dir) is None, "the lab the plugin started is stopped after the session"

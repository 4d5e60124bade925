"""Wireshark display filters as Robot assertions on a real run (issue 12): the suite's
PCMA case passes through ``voipqa run`` against the lab, and the same case asserting a
PCMU answer fails, its message naming the filter and the call."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from qa.paths import ROOT
from qa.tools import have_tool
from tests.integration.cli import voipqa

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(have_tool(t) for t in ("kamailio", "sipp", "tshark")),
                       reason="kamailio, sipp and tshark are needed"),
]

SUITE = ROOT / "robot_suites" / "wireshark.robot"
PCMA_CASE = "The Platform Answers PCMA When PCMA Is Offered, By Display Filter"


def test_a_pcma_answer_passes_by_display_filter_and_a_pcmu_expectation_fails_naming_it(tmp_path):
    negative = tmp_path / "negative.robot"
    negative.write_text(SUITE.read_text().replace('contains "PCMA"', 'contains "PCMU"')
                        .replace(PCMA_CASE, "A PCMU Answer Is Expected Where PCMA Was Offered"))
    out = tmp_path / "out"
    proc = voipqa("run", str(SUITE), str(negative), "--output", str(out), lab_dir=tmp_path / "no-lab", timeout=300)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = {t.get("name"): t for t in ET.parse(out / "xunit.xml").getroot().iter("testcase")}
    assert results[PCMA_CASE].find("failure") is None, ET.tostring(results[PCMA_CASE]).decode()[:2000]
    failure = results["A PCMU Answer Is Expected Where PCMA Was Offered"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert 'sip.Status-Code == 200 && sdp.media.format contains "PCMU": 0 frame(s) of call ' in message
    assert "expected at least 1" in message

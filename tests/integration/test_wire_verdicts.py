"""The wire witness fails calls in the real lab: a carrier that sends no RTP back fails
"RTP Uses The Negotiated Payload Type" with the one-way reason although every other witness
agrees; a carrier whose early media is on a payload type nobody negotiated fails "Early
Media Carries The Negotiated Codec Before The Answer"; with a healthy carrier that plays
early media both pass. Faults are number-plan fields of the mock carrier (``media: none``,
``rtp_payload_type``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
import yaml

from qa import lab
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED, ROOT
from qa.report.summary import read_summary
from qa.tools import have_tool

from tests.integration.cli import voipqa

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(have_tool(t) for t in ("kamailio", "sipp", "rtpengine")),
                       reason="kamailio, sipp and rtpengine are needed"),
]

CODEC = ROOT / "robot_suites" / "catalogue" / "codec.robot"
RTP_CASE = "RTP Uses The Negotiated Payload Type"
EARLY_CASE = "Early Media Carries The Negotiated Codec Before The Answer"


def _route(plan: dict, prefix: str) -> dict:
    return next(r for r in plan["routes"] if r["prefix"] == prefix)


def _broken_carriers(plan: dict) -> None:
    """The PCMA-only carrier sends no RTP at all (nothing echoed); the early-media carrier
    plays its tone on payload type 18 (G.729), which nobody offered."""
    _route(plan, "15550050")["media"] = "none"
    _route(plan, "15550060").update(media="tone", rtp_payload_type=18)


def _early_tone(plan: dict) -> None:
    """The early-media carrier plays a tone from its 183 on, so RTP precedes the 200 OK."""
    _route(plan, "15550060")["media"] = "tone"


def _run_cases(tmp_path: Path, change: Callable[[dict], None], *cases: str):
    plan = yaml.safe_load(DEFAULT_PLAN.read_text())
    change(plan)
    plan_file = tmp_path / "numberplan.yaml"
    plan_file.write_text(yaml.safe_dump(plan))
    run_dir = tmp_path / "lab"
    lab.up(run_dir, seed=DEFAULT_SEED, plan=plan_file)
    try:
        out = tmp_path / "out"
        patterns = [arg for case in cases for arg in ("--test", f"*.{case}")]
        proc = voipqa("run", str(CODEC), *patterns, "--output", str(out), lab_dir=run_dir)
    finally:
        lab.down(run_dir)
    assert (out / "output.xml").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = read_summary(out / "output.xml")
    records = {r["case"]: r for r in map(json.loads, (out / "calls.jsonl").read_text().splitlines())}
    return proc, {c.name: c for c in summary.cases}, records


def test_carrier_sending_no_rtp_back_or_the_wrong_payload_type_fails_on_the_wire(tmp_path):
    proc, cases, records = _run_cases(tmp_path, _broken_carriers, RTP_CASE, EARLY_CASE)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-1000:]
    rtp = records[RTP_CASE]
    assert rtp["verdict"] == "fail" and rtp["carrier"]["rtp_payload_types_in"] == [8], rtp
    wire = [r for r in rtp["reasons"] if r.startswith("wire: ")]
    assert len(wire) == 1 and wire[0].startswith("wire: one-way audio: carrier→customer 0 RTP packets, "
                                                  "customer→carrier "), rtp["reasons"]
    assert int(wire[0].rsplit(" ", 1)[1]) >= 25
    assert cases[RTP_CASE].status == "FAIL" and wire[0] in cases[RTP_CASE].message
    early = records[EARLY_CASE]
    assert early["pcap"]["expect"]["media"] == "early" and early["verdict"] == "fail"
    assert any(r.startswith("wire: no early media: RTP carrier→customer before the 200 OK (frame ")
               and " only on payload type 18, negotiated " in r for r in early["reasons"]), early["reasons"]
    wrong_pt = [r for r in early["reasons"] if r.startswith("wire: RTP ")]   # one reason, not one per hop
    assert len(wrong_pt) == 1 and wrong_pt[0].startswith("wire: RTP carrier→customer on payload type 18 ("), \
        early["reasons"]
    assert cases[EARLY_CASE].status == "FAIL" and "payload type 18" in cases[EARLY_CASE].message


def test_early_media_and_both_way_rtp_pass_on_a_healthy_carrier(tmp_path):
    proc, cases, records = _run_cases(tmp_path, _early_tone, RTP_CASE, EARLY_CASE)
    assert proc.returncode == 0, proc.stdout[-3000:] + json.dumps(records, indent=1)[-3000:]
    assert {name: c.status for name, c in cases.items()} == {RTP_CASE: "PASS", EARLY_CASE: "PASS"}
    assert all(r["verdict"] == "pass" and r["pcap"]["rtp"]["streams"] for r in records.values())

"""Every line a real run writes to calls.jsonl is valid against the published contract,
``docs/call-record.schema.json``: users' tools read those records, so the schema in the
repository must describe what the code really writes (the smoke suite: four calls,
answered and rejected, with every witness joined; about 10 s)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from qa.paths import ROOT
from tests.integration.cli import voipqa

pytestmark = pytest.mark.integration
SCHEMA = ROOT / "docs" / "call-record.schema.json"
SMOKE = ROOT / "robot_suites" / "smoke.robot"


def validation_errors(calls: Path) -> list[str]:
    """One line per schema violation in ``calls``, naming the line, the field and why."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    errors = []
    for number, line in enumerate(calls.read_text().splitlines(), 1):
        record = json.loads(line)
        errors += [f"line {number} ({record.get('case')}): {e.json_path}: {e.message}"
                   for e in validator.iter_errors(record)]
    return errors


def test_every_record_of_a_real_run_matches_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = voipqa("run", str(SMOKE), "--output", str(out), lab_dir=tmp_path / "no-lab-here")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    calls = out / "calls.jsonl"
    records = [json.loads(line) for line in calls.read_text().splitlines()]
    assert len(records) == 4
    assert any(r["cdr"] and r["carrier"] for r in records), "no record with every witness joined"
    assert any(r["final_code"] != 200 for r in records), "no rejected call"
    assert all(r["pcap"] and "malformed" in r["pcap"] for r in records), "wire witness not joined"
    assert validation_errors(calls) == []

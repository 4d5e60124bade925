"""``docs/call-record.schema.json`` is a valid JSON Schema (draft 2020-12), names exactly the
fields ``qa.record`` writes, accepts a record the code writes and rejects one that
breaks the contract. The run-level check is tests/integration/test_call_record_schema.py."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from qa.paths import ROOT
from qa.record import RECORD_FIELDS, CallRecord

SCHEMA = json.loads((ROOT / "docs" / "call-record.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def answered() -> dict[str, Any]:
    """A record as the case runner writes it for an answered, billed call."""
    record = CallRecord(
        case="Answered", call_id="1-1@127.0.0.1", from_="1001", to="1555000100", transport="udp",
        offered_codecs=["PCMU", "telephone-event"], answered_codec="PCMU", started=1.0e9, answered=1.0e9 + 0.1,
        ended=1.0e9 + 2.1, final_code=200, pdd_ms=8.0, setup_ms=100.0, duration_s=2.0, dtmf_heard="",
        carrier_code=200, customer={"workdir": "/tmp/w", "method": "INVITE", "challenges": 1},
        carrier={"carrier": "carrier-a", "call_id": "x", "final_code": 200, "tried": ["carrier-c", "carrier-a"]},
        cdr={"call_id": "1-1@127.0.0.1", "sip_code": 200, "duration": 2.0, "count": 1, "end_reason": "caller-bye"},
        pcap={"expect": {"media": None, "customer_rtp": False}, "malformed": [], "retransmissions": 0,
              "final_code": 200, "messages": 7, "rtp": {"streams": 0, "lost": 0, "jitter_ms": None, "mos": None},
              "dtmf": "", "findings": []},
        verdict="pass")
    return json.loads(record.to_json())


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_schema_names_exactly_the_fields_the_code_writes() -> None:
    assert SCHEMA["required"] == list(RECORD_FIELDS)
    assert set(SCHEMA["properties"]) == set(RECORD_FIELDS)


def test_a_record_the_code_writes_is_valid() -> None:
    assert list(VALIDATOR.iter_errors(answered())) == []


@pytest.mark.parametrize("field", RECORD_FIELDS)
def test_a_record_missing_a_required_field_fails(field: str) -> None:
    record = answered()
    del record[field]
    assert [e.validator for e in VALIDATOR.iter_errors(record)] == ["required"]


@pytest.mark.parametrize(("change", "why"), [
    ({"verdict": "pass", "reasons": ["customer: got 403"]}, "a passed call has no reasons"),
    ({"verdict": "fail", "reasons": []}, "a failed call says why"),
    ({"reasons": ["something went wrong"]}, "each reason names its witness"),
    ({"verdict": "pending"}, "only pass or fail is written"),
    ({"final_code": "200"}, "codes are integers"),
    ({"transport": "sctp"}, "udp, tcp or tls"),
    ({"surprise": 1}, "no field outside the contract"),
    ({"pcap": {"malformed": []}}, "an analysed call has the whole wire witness"),
])
def test_a_record_that_breaks_the_contract_fails(change: dict[str, Any], why: str) -> None:
    record = answered() | change
    assert list(VALIDATOR.iter_errors(record)), why


def test_the_example_in_the_docs_is_valid() -> None:
    text = (ROOT / "docs" / "call-record.md").read_text()
    example = text.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert list(VALIDATOR.iter_errors(json.loads(example))) == []

"""Bring your own SIPp scenario: every third-party scenario of the shared corpus against a lab.

``sipp-thirdparty/INDEX.tsv`` lists the scenarios; :data:`OUTCOMES` documents what voipqa
does with each (docs/byo-sipp.md has the same table): it runs and judges it against the
lab (the platform for digest auth, the mock carrier for a plain UAC, voipqa's own SIPp UAC
for a UAS), or refuses it in one line (invalid XML with file:line:col, a peer voipqa does
not provide). The runnable ones start together when the module starts (each SIPp bounded
to one call and a few seconds), so the module takes about as long as the slowest scenario.
The wire witness needs the run's capture (``voipqa run``); it is not part of these tests.
"""

from __future__ import annotations

import csv
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qa import lab
from qa.cases.byo import ByoOptions, run_case
from qa.environments import lab_environment
from qa.errors import BadInput
from qa.record import CallRecord
from qa.sipp.byo import ScenarioError, choose_peer, inspect_scenario
from qa.tools import have_tool
from tests.corpus import CORPUS, corpus_params, require_corpus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(have_tool(t) for t in ("kamailio", "sipp", "rtpengine")),
                       reason="kamailio, sipp and rtpengine are needed"),
]

SUB = "sipp-thirdparty"
ANSWER = "1555000100"        # carriers/numberplan.yaml: answer-echo
RING_FOREVER = "1555002000"  # 180, never a final response: the caller has to CANCEL
REGISTER_FIELDS = "{user};{domain};[authentication username={user} password={password}]"


@dataclass(frozen=True)
class Outcome:
    """What voipqa does with one scenario: ``ran`` (judged ``verdict``; ``peer``; reasons
    containing ``why``) or ``refused`` (one line containing ``why``)."""

    kind: str
    why: str = ""
    verdict: str | None = None
    peer: str | None = None
    final_code: int | None = None
    opts: ByoOptions = field(default_factory=lambda: ByoOptions(timeout_s=8.0))


OUTCOMES: dict[str, Outcome] = {
    "pbertera/Basic/uac.xml": Outcome("ran", verdict="pass", peer="carrier", final_code=200,
                                      opts=ByoOptions(service=ANSWER, timeout_s=12.0)),
    "pbertera/Basic/uas.xml": Outcome("ran", verdict="pass", peer="uac", final_code=200),
    "pbertera/Hold-UAC/uac-hold.xml": Outcome("refused", "invalid XML: '<' inside an attribute value"),
    "pbertera/Hold-UAC/uas-hold.xml": Outcome("refused", "invalid XML: '<' inside an attribute value"),
    "pbertera/reINVITE-PAI/uac.xml": Outcome("ran", verdict="pass", peer="carrier", final_code=200,
                                             opts=ByoOptions(service=ANSWER)),
    "pbertera/reINVITE-PAI/uas.xml": Outcome("refused", "invalid XML: mismatched tag"),
    "pbertera/Call-pickup-3pcc/uac-3pcc-C-A.xml": Outcome("refused", "-3pcc twin"),
    "pbertera/Call-pickup-3pcc/uac-3pcc-C-B.xml": Outcome("refused", "-3pcc twin"),
    "pbertera/Active-Media/uac-active.xml": Outcome("ran", verdict="pass", peer="carrier", final_code=200,
                                                    opts=ByoOptions(service=ANSWER, timeout_s=12.0)),
    "pbertera/BLF/uas-blf-recipient.xml": Outcome("refused", "invalid XML: '<' inside an attribute value"),
    "lundgrel/sipp_uac_register.xml": Outcome("ran", verdict="pass", peer="platform", final_code=200,
                                              opts=ByoOptions(user="1009", fields=REGISTER_FIELDS, timeout_s=8.0)),
    "lundgrel/sipp_uas_REGISTER_407_twice.xml": Outcome("refused", "needs a UAC that sends REGISTER"),
    "lundgrel/sipp_uac_invite-401-invite.xml": Outcome("refused", "invalid XML: mismatched tag"),
    "lundgrel/sipp_uac_INFO_req.xml": Outcome("ran", verdict="pass", peer="carrier", final_code=200,
                                              opts=ByoOptions(service=ANSWER)),
    # the UAS answers the CANCEL with 200 and never the INVITE: voipqa's UAC waits for a 487
    "lundgrel/sipp_uas_cancel_too_late.xml": Outcome("ran", "no final response", verdict="fail", peer="uac",
                                                     opts=ByoOptions(timeout_s=5.0)),
    "lundgrel/sipp_uas_requre_100rel.xml": Outcome("refused", "needs a UAC that sends PRACK"),
    # its 400 has no From header: the customer witness says so
    "lundgrel/sipp_uas_malformed_400.xml": Outcome("ran", "missing mandatory header From", verdict="fail",
                                                   peer="uac", opts=ByoOptions(timeout_s=5.0)),
    "lundgrel/sipp_uac_bad_message.xml": Outcome("refused", "needs a peer that accepts MESSAGE"),
    # its CANCEL carries [branch], which SIPp makes new for every message, so it matches no
    # INVITE transaction: the carrier answers 481 (RFC 3261 9.2) and no 487 ever comes
    "siphon-rs/cancel.xml": Outcome("ran", "481 Call/Transaction Does Not Exist", verdict="fail", peer="carrier",
                                    opts=ByoOptions(service=RING_FOREVER, expect=487, timeout_s=6.0)),
    # written for a UAS that challenges with 401: the platform, a proxy, challenges INVITEs with 407
    "siphon-rs/auth_invite.xml": Outcome("ran", "while expecting '401'", verdict="fail", peer="platform",
                                         final_code=407, opts=ByoOptions(timeout_s=6.0)),
}


def _rows() -> list[dict[str, str]]:
    with open(CORPUS / SUB / "INDEX.tsv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = corpus_params(_rows, SUB, ids=lambda row: row["file"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    require_corpus(SUB)
    run_dir = tmp_path_factory.mktemp("byo") / "lab"
    lab.up(run_dir, timeout=30)
    try:
        yield lab_environment(run_dir)
    finally:
        lab.down(run_dir)


@pytest.fixture(scope="module")
def results(env, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Future[CallRecord]]:
    """Every scenario documented as runnable, started at once."""
    out = tmp_path_factory.mktemp("byo-out")
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="byo")
    jobs = {name: pool.submit(run_case, CORPUS / SUB / name, env, out, case=name, opts=o.opts)
            for name, o in OUTCOMES.items() if o.kind == "ran" and (CORPUS / SUB / name).is_file()}
    yield jobs
    pool.shutdown(wait=True)


def _strict_position(row: dict[str, str]) -> str | None:
    """``:LINE:COL:`` (column from 1) from INDEX's strict-parse column (expat counts from 0)."""
    text = row.get("strict_xml_parse(python expat)", "")
    if "line" not in text:
        return None
    line = int(text.split("line")[1].split(",")[0])
    col = int(text.split("column")[1].strip())
    return f":{line}:{col + 1}:"


@pytest.mark.parametrize("row", ROWS)
def test_documented_outcome(row: dict[str, str] | None, results: dict[str, Future[CallRecord]]) -> None:
    require_corpus(SUB)
    name = row["file"]
    outcome = OUTCOMES.get(name)
    assert outcome is not None, f"{name}: new in INDEX.tsv: document its outcome in OUTCOMES and docs/byo-sipp.md"
    path = CORPUS / SUB / name
    if outcome.kind == "refused":
        with pytest.raises(ScenarioError) as err:
            choose_peer(inspect_scenario(path))
        message = str(err.value)
        assert "\n" not in message and message.startswith(str(path)), message
        assert outcome.why in message, message
        position = _strict_position(row)
        if position is not None:
            assert f"{path}{position}" in message, f"expected {position} as INDEX.tsv says: {message}"
        return
    record = results[name].result(timeout=120)
    reasons = "; ".join(record.reasons)
    assert record.customer["peer"] == outcome.peer, record.to_json()
    assert record.verdict == outcome.verdict, f"{name}: {reasons}"
    assert outcome.why in reasons, f"{name}: {reasons!r} lacks {outcome.why!r}"
    if outcome.final_code is not None:
        assert record.final_code == outcome.final_code, record.to_json()
    _witnesses_applied(record, outcome)


def _witnesses_applied(record: CallRecord, outcome: Outcome) -> None:
    """Carrier and CDR are joined by Call-ID where they are on the path (the carrier writes
    its line when the call ends: cancel.xml's call still rings there, so it has none)."""
    assert record.call_id, record.to_json()
    if outcome.peer == "carrier" and record.final_code is not None:
        assert record.carrier is not None and record.carrier["call_id"] == record.call_id, record.to_json()
    if outcome.peer == "platform" and record.customer.get("method") == "INVITE" and record.final_code == 200:
        assert record.cdr is not None, record.to_json()
    if outcome.peer == "uac":
        assert record.carrier is None and record.cdr is None


def test_active_media_reaches_the_carrier(results: dict[str, Future[CallRecord]]) -> None:
    """The pcap the scenario plays (../pcap/g711a.pcap, from its own folder) is sent: the
    carrier received PCMA RTP."""
    record = results["pbertera/Active-Media/uac-active.xml"].result(timeout=120)
    assert record.carrier and record.carrier["rtp_packets_in"] > 0, record.to_json()
    assert record.carrier["rtp_payload_types_in"] == [8]


def test_no_password_left_in_the_case_folder(env, results: dict[str, Future[CallRecord]]) -> None:
    """The -inf file holds the password: it is deleted; traces are masked."""
    record = results["lundgrel/sipp_uac_register.xml"].result(timeout=120)
    folder = Path(record.customer["workdir"]).parent
    password = env.password("1009")
    leaks = [p for p in folder.rglob("*") if p.is_file() and password in p.read_text(errors="replace")]
    assert not leaks and not (folder / "accounts.csv").exists()


def test_peer_override_refused_in_one_line() -> None:
    require_corpus(SUB)
    info = inspect_scenario(CORPUS / SUB / "lundgrel/sipp_uac_register.xml")
    with pytest.raises(BadInput, match="peer carrier does not take REGISTER"):
        choose_peer(info, "carrier")


def test_voipqa_run_takes_xml_and_the_byo_suite(env, tmp_path: Path) -> None:
    """``voipqa run`` accepts a scenario file beside suites: the shipped example and the byo
    suite pass, the broken corpus scenario fails in one line; exit 1, calls.jsonl judged."""
    from robot.api import ExecutionResult

    from qa.record import read_records
    from qa.paths import ROOT
    from tests.integration.cli import voipqa

    broken = CORPUS / SUB / "pbertera/reINVITE-PAI/uas.xml"
    out = tmp_path / "results"
    proc = voipqa("run", str(ROOT / "sipp/examples/uac_basic.xml"), str(broken), str(ROOT / "robot_suites/byo"),
                  "--output", str(out), "--parallel", "2", lab_dir=Path(env.extra["run_dir"]), timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # the reason is one line in the report; the console table may wrap it at its width
    failed = [t for t in ExecutionResult(str(out / "output.xml")).suite.all_tests if not t.passed]
    assert [t.name for t in failed] == ["reINVITE-PAI uas"], proc.stdout
    assert failed[0].message.endswith("uas.xml:110:3: invalid XML: mismatched tag"), failed[0].message
    assert "\n" not in failed[0].message, failed[0].message
    assert "invalid XML" in proc.stdout, proc.stdout
    records = list(read_records(out / "calls.jsonl"))
    assert len(records) == 2 and all(r.verdict == "pass" and r.cdr for r in records), [r.to_json() for r in records]
    assert (out / "byo_scenarios.robot").is_file()

"""``voipqa security`` for real (issue 11): against the lab every defence holds; against a
lab with every defence off (lab/seed.yaml ``defences:``) every attack fails, each on the
check its defence stands for, with evidence naming it. Then the lab is still healthy and
a normal call goes through.

Two labs for the module: the defended one (the default seed) and the undefended one (the
same seed with every defence false and one weak password). Each gets one full run of the
command; the tests read its security.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import qa.lab as lab
from qa.customer.client import place_call
from qa.customer.uac import CallConfig
from qa.lab.seed import DEFENCES
from qa.paths import DEFAULT_SEED, ROOT
from qa.security.model import ATTACKS
from qa.tools import have_tool
from tests.integration.cli import voipqa

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(have_tool(t) for t in ("kamailio", "rtpengine", "openssl")),
                       reason="kamailio, rtpengine and openssl are needed"),
]

SCHEMA = json.loads((ROOT / "docs" / "security.schema.json").read_text())
WEAK_PASSWORD = "1234"

#: with every defence off, the check each attack must fail on (its defence's)
FAILS_ON = {
    "scan": "fingerprint",
    "enumeration": "register-wrong-password",
    "brute-force": "lockout",
    "single-challenge": "register-replay",
    "toll-fraud": "asserted-identity",
    "torture": "carrier",
    "flood-options": "throttled",
    "flood-register": "throttled",
    "flood-invite": "throttled",
    "tls": "protocols",
}


def _undefended_seed(path: Path) -> Path:
    seed = yaml.safe_load(DEFAULT_SEED.read_text())
    seed["defences"] = {name: False for name in DEFENCES}
    seed["accounts"][0]["password"] = WEAK_PASSWORD
    path.write_text(yaml.safe_dump(seed))
    return path


def _start_attacks(run_dir: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qa.cli", "security", "--output", str(out)], cwd=ROOT,
                            env=dict(os.environ, VOIPQA_LAB_DIR=str(run_dir)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finished(proc: subprocess.Popen, out: Path) -> tuple[int, dict, str]:
    text, _ = proc.communicate(timeout=300)
    report_file = out / "security.json"
    assert report_file.is_file(), f"no security.json; exit {proc.returncode}: {text[-2000:]}"
    return proc.returncode, json.loads(report_file.read_text()), text


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both labs attacked at once (two independent platforms; the attacks are bounded and
    the verdicts do not depend on timing finer than a second), to halve the module's time."""
    base = tmp_path_factory.mktemp("security")
    strong, weak = base / "defended", base / "undefended"
    state, _ = lab.up(strong / "lab", timeout=30)
    try:
        lab.up(weak / "lab", seed=_undefended_seed(base / "seed.yaml"), timeout=30)
        try:
            procs = [_start_attacks(d / "lab", d / "out") for d in (strong, weak)]
            try:
                results = [_finished(p, d / "out") for p, d in zip(procs, (strong, weak))]
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            yield state, results[0], results[1]
        finally:
            lab.down(weak / "lab")
    finally:
        lab.down(strong / "lab")


@pytest.fixture(scope="module")
def defended(runs):
    state, (code, report, text), _ = runs
    return state, code, report, text


@pytest.fixture(scope="module")
def undefended(runs):
    return runs[2]


def test_every_defence_of_the_lab_holds(defended):
    state, code, report, text = defended
    jsonschema.validate(report, SCHEMA)
    assert [a["name"] for a in report["attacks"]] == list(ATTACKS)
    failed = [a["summary"] for a in report["attacks"] if a["verdict"] != "pass"]
    assert not failed, "\n".join(failed)
    assert code == 0, text[-3000:]
    assert report["verdict"] == "pass" and report["healthy_after"] is True
    assert "security PASS" in text


def test_each_attack_is_on_the_wire_and_no_secret_is_in_the_report(defended):
    state, _, report, text = defended
    capture = Path(report["capture"])
    assert capture.is_file() and capture.stat().st_size > 0
    for attack in report["attacks"]:
        frames = attack["capture"]
        assert frames and frames["frames"] > 0, f"{attack['name']}: no frames in the capture"
        assert frames["first_frame"] <= frames["last_frame"]
    floods = [a for a in report["attacks"] if a["name"].startswith("flood-")]
    assert all(a["capture"]["frames"] >= 1000 for a in floods)
    seed = lab.effective_seed(state)
    dumped = json.dumps(report) + text
    for account in seed.accounts:
        assert account.password not in dumped, f"{account.user}'s password is in the report or the output"


def test_the_lab_is_healthy_after_the_attacks_and_a_normal_call_works(defended):
    state, *_ = defended
    assert all(p.alive for p in lab.status(Path(state.run_dir))), lab.status(Path(state.run_dir))
    result = asyncio.run(place_call(CallConfig(
        from_user="1001", password=lab.effective_seed(state).account("1001").password, target_host=state.host,
        target_port=state.ports["sip"], to_user="15550001234", domain=state.domain, duration_s=1.0)))
    assert result.answered_ok, f"{result.final_code} {result.final_reason} {result.error}"


def test_the_undefended_lab_fails_the_run(undefended):
    code, report, text = undefended
    jsonschema.validate(report, SCHEMA)
    assert code == 1, text[-3000:]
    assert report["verdict"] == "fail"
    assert "security FAIL" in text


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_fails_when_its_defence_is_off(undefended, attack):
    _, report, _ = undefended
    entry = next(a for a in report["attacks"] if a["name"] == attack)
    failed = {c["name"]: c["detail"] for c in entry["checks"] if not c["ok"]}
    assert entry["verdict"] == "fail", entry["summary"]
    assert FAILS_ON[attack] in failed, f"{attack} failed on {sorted(failed)}, not {FAILS_ON[attack]}: {entry['summary']}"
    assert entry["summary"].startswith(f"{attack}: ") and FAILS_ON[attack] in entry["summary"]


def test_the_weak_password_is_reported_by_user_and_never_shown(undefended):
    _, report, text = undefended
    brute = next(a for a in report["attacks"] if a["name"] == "brute-force")
    failed = {c["name"]: c["detail"] for c in brute["checks"] if not c["ok"]}
    assert "1001" in failed["weak-passwords"] and "1001" in failed["password-not-found"]
    assert f'"{WEAK_PASSWORD}"' not in json.dumps(report)


def test_an_unknown_attack_and_an_unreachable_target_are_bad_input(tmp_path):
    proc = voipqa("security", "--only", "teardrop", lab_dir=tmp_path / "nolab")
    assert proc.returncode == 2 and "unknown attack 'teardrop'" in proc.stderr
    proc = voipqa("security", lab_dir=tmp_path / "nolab")
    assert proc.returncode == 2 and "no lab is running" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


#: two of the suite's cases (the command above ran every attack; these prove the keywords)
ROBOT_CASES = {"A Scan Learns*": "scan", "TLS Refuses*": "tls"}


def test_the_robot_suite_runs_one_attack_per_case_and_passes_on_the_lab(defended, tmp_path):
    state, *_ = defended
    out = tmp_path / "robot"
    tests = [arg for pattern in ROBOT_CASES for arg in ("--test", pattern)]
    proc = voipqa("run", str(ROOT / "robot_suites" / "security"), *tests, "--output", str(out),
                  lab_dir=Path(state.run_dir), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    written = sorted(p.parent.name for p in (out / "security").glob("*/security.json"))
    assert written == sorted(ROBOT_CASES.values())
    xunit = (out / "xunit.xml").read_text()
    assert xunit.count("<testcase ") == len(ROBOT_CASES) and 'failures="0"' in xunit


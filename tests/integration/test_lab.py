"""The native lab for real: Kamailio + rtpengine + four carriers, driven by SIPp with digest auth.

One lab for the module (started once), a second small lab for the allow-list / pike /
SIGKILL checks. Calls are placed with the customer's own scenarios (qa.sipp.Agent: allocated ports, a timeout).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from pathlib import Path

import pytest

import qa.lab as lab
from qa.carrier.cdr import read_cdrs
from qa.errors import BadInput
from qa.ports import port_is_free
from qa.sipp import Agent, run
from qa.tools import have_tool
from qa.transport.probe import options_request, sip_options

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_tool("kamailio") and have_tool("sipp") and have_tool("openssl")),
                       reason="kamailio, sipp and openssl are needed"),
]

ANSWER = "15550001234"


def run_sipp(state: lab.LabState, tmp: Path, number: str, user: str, password: str, expect: int,
             *, hold_ms: int = 1000, timeout: int = 25) -> str:
    """One call through the lab with the customer's own scenario (``uac_call``, or
    ``uac_cancel`` when expecting 487: CANCEL after the 180); asserts the final response
    is ``expect`` and returns the Call-ID."""
    scenario, keys = ("uac_cancel", {"cancel_ms": "200"}) if expect == 487 else ("uac_call", {})
    agent = Agent(scenario, remote=f"127.0.0.1:{state.ports['sip']}", service=number, auth_user=user,
                  auth_password=password, keys={"domain": "voipqa.lab", "codecs": "PCMU"} | keys,
                  call_duration_ms=hold_ms, timeout_s=timeout)
    workdir = tmp / f"sipp-{uuid.uuid4().hex[:8]}"
    result = asyncio.run(run(agent, workdir))
    assert result.calls, f"no call placed: {result.describe()} {result.errors}"
    call = result.calls[0]
    assert call.final_code == expect, f"final response {call.final_code}, expected {expect}: {result.describe()}"
    assert result.ok, f"{result.describe()} {result.errors}"
    return call.call_id


def wait_cdr(state: lab.LabState, call_id: str, timeout: float = 5) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = lab.query_cdrs(state, call_id)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def carrier_saw(state: lab.LabState, call_id: str) -> list[dict]:
    seen = []
    for name, path in state.carrier_cdr.items():
        for rec in read_cdrs(path):
            if rec.get("call_id") == call_id:
                rec.setdefault("carrier", name)
                seen.append(rec)
    return seen


def wait_carrier(state: lab.LabState, call_id: str, timeout: float = 5) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        seen = carrier_saw(state, call_id)
        if seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.1)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def labdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture(scope="module")
def state(labdir: Path):
    t0 = time.monotonic()
    st, already = lab.up(labdir / "run")
    assert not already
    print(f"lab up in {time.monotonic() - t0:.2f} s")
    yield st
    lab.down(labdir / "run")


@pytest.fixture()
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# ----------------------------------------------------------------------------- tests

def test_up_status_all_alive(state: lab.LabState, labdir: Path) -> None:
    assert state.backend == "native" and state.host == "127.0.0.1" and state.domain == "voipqa.lab"
    carriers = {"carrier-a", "carrier-b", "carrier-c", "carrier-d"}
    assert set(state.ports) == {"sip", "sip_tls", "sip_tls_expired", "rtpengine_ng", "rtp_min", "rtp_max"} | carriers
    assert set(state.processes) == {"kamailio", "rtpengine"} | carriers
    assert state.ports["rtp_max"] - state.ports["rtp_min"] + 1 >= 100
    saved = json.loads((labdir / "run" / "lab.json").read_text())
    for key in ("backend", "run_dir", "supervisor_pid", "started", "host", "domain", "ports", "processes",
                "cdr_db", "carrier_cdr", "ca_cert", "tls_server_name", "ctl_socket", "seed", "plan", "logs"):
        assert key in saved
    rows = {s.name: s for s in lab.status(labdir / "run")}
    assert set(rows) == {"supervisor", "kamailio", "rtpengine"} | carriers
    assert all(r.alive for r in rows.values())
    assert rows["kamailio"].health == "OPTIONS udp 200, tcp 200, tls 200"
    assert rows["rtpengine"].health == "ng ping ok"
    # dispatcher probes every 2 s: both carriers become active+probing
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        rows = {s.name: s for s in lab.status(labdir / "run")}
        if all(rows[c].health.startswith("active") and "P" in rows[c].health for c in ("carrier-a", "carrier-b")):
            break
        time.sleep(0.5)
    assert rows["carrier-a"].health.startswith("active"), rows["carrier-a"]
    assert rows["carrier-b"].health.startswith("active"), rows["carrier-b"]


def test_tls_options_with_generated_ca(state: lab.LabState) -> None:
    code, _ = sip_options("127.0.0.1", state.ports["sip_tls"], "tls", 3, cafile=state.ca_cert,
                          server_name=state.tls_server_name)
    assert code == 200
    assert sip_options("127.0.0.1", state.ports["sip"], "tcp", 3)[0] == 200


def test_second_up_reports_running_lab(state: lab.LabState, labdir: Path) -> None:
    t0 = time.monotonic()
    again, already = lab.up(labdir / "run")
    assert already and again.supervisor_pid == state.supervisor_pid and again.ports == state.ports
    assert time.monotonic() - t0 < 1


def test_authenticated_call_answered_with_cdr(state: lab.LabState, tmp: Path) -> None:
    t0 = time.time()
    call_id = run_sipp(state, tmp, ANSWER, "1001", "alice-pass-1001", 200, hold_ms=1000)
    rows = wait_cdr(state, call_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["sip_code"] == 200 and row["account"] == "1001"
    assert row["from_user"] == "1001" and row["to_user"] == ANSWER
    assert row["carrier"] in ("carrier-a", "carrier-b")
    assert t0 - 1 < row["start_time"] <= row["answer_time"] <= row["end_time"] < time.time() + 1
    assert 0.9 <= row["duration"] <= 3.0, row
    assert abs(row["end_time"] - row["answer_time"] - row["duration"]) < 0.01
    seen = wait_carrier(state, call_id)
    assert len(seen) == 1 and seen[0]["carrier"] == row["carrier"]
    headers = {k.lower(): v for k, v in (seen[0].get("x_headers") or {}).items()}
    assert headers.get("x-voipqa-account") == "1001"
    assert seen[0]["call_id"] == call_id  # no topology hiding


def _register(port: int, user: str, password: str) -> list[str]:
    """REGISTER, answer the 401 with a digest (qop=auth), return both status lines."""
    import hashlib
    import re

    def md5(x: str) -> str:
        return hashlib.md5(x.encode()).hexdigest()

    lines = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(3)
        lp = s.getsockname()[1]
        cid, uri, auth = uuid.uuid4().hex, "sip:voipqa.lab", ""
        for cseq in (1, 2):
            msg = (f"REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{lp};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                   f"From: <sip:{user}@voipqa.lab>;tag=r1\r\nTo: <sip:{user}@voipqa.lab>\r\nCall-ID: {cid}\r\n"
                   f"CSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{lp}>\r\nExpires: 60\r\n"
                   f"Max-Forwards: 70\r\n{auth}Content-Length: 0\r\n\r\n")
            s.sendto(msg.encode(), ("127.0.0.1", port))
            resp = s.recv(65535).decode()
            lines.append(resp.split("\r\n", 1)[0])
            m = re.search(r'WWW-Authenticate: Digest (.*)', resp)
            if not m:
                break
            params = dict(re.findall(r'(\w+)="?([^",]+)"?', m.group(1)))
            cnonce, nc = uuid.uuid4().hex[:8], "00000001"
            ha1, ha2 = md5(f"{user}:{params['realm']}:{password}"), md5(f"REGISTER:{uri}")
            response = md5(f"{ha1}:{params['nonce']}:{nc}:{cnonce}:auth:{ha2}")
            auth = (f'Authorization: Digest username="{user}", realm="{params["realm"]}", '
                    f'nonce="{params["nonce"]}", uri="{uri}", response="{response}", qop=auth, '
                    f'nc={nc}, cnonce="{cnonce}", algorithm=MD5\r\n')
    return lines


def test_register_is_challenged_with_401(state: lab.LabState) -> None:
    assert _register(state.ports["sip"], "1001", "alice-pass-1001") == ["SIP/2.0 401 Unauthorized", "SIP/2.0 200 OK"]
    assert _register(state.ports["sip"], "1001", "wrong") == ["SIP/2.0 401 Unauthorized", "SIP/2.0 403 Forbidden"]


def test_wrong_password_is_403_after_one_challenge(state: lab.LabState, tmp: Path) -> None:
    call_id = run_sipp(state, tmp, ANSWER, "1001", "not-the-password", 403)
    assert carrier_saw(state, call_id) == []


def test_unknown_user_is_403(state: lab.LabState, tmp: Path) -> None:
    call_id = run_sipp(state, tmp, ANSWER, "7777", "whatever", 403)
    assert carrier_saw(state, call_id) == []


@pytest.mark.parametrize("user,password", [("1002", "bob-pass-1002"), ("1003", "carol-pass-1003")])
def test_no_balance_is_402_and_carrier_never_sees_it(state: lab.LabState, tmp: Path, user: str,
                                                      password: str) -> None:
    call_id = run_sipp(state, tmp, ANSWER, user, password, 402)
    rows = wait_cdr(state, call_id)
    assert [(r["sip_code"], r["account"], r["duration"], r["carrier"]) for r in rows] == [(402, user, 0.0, None)]
    assert rows[0]["answer_time"] is None and rows[0]["end_time"] >= rows[0]["start_time"]
    time.sleep(0.3)
    assert carrier_saw(state, call_id) == []


@pytest.mark.parametrize("number", ["19005551234", "+19005551234", "0019005551234", "8821234567", "5371234567"])
def test_blocked_prefix_is_403(state: lab.LabState, tmp: Path, number: str) -> None:
    call_id = run_sipp(state, tmp, number, "1004", "dave-pass-1004", 403)
    rows = wait_cdr(state, call_id)
    assert len(rows) == 1 and rows[0]["sip_code"] == 403
    assert rows[0]["sip_reason"] == "Destination Blocked"
    assert rows[0]["to_user"] == number.lstrip("+").removeprefix("00")
    assert carrier_saw(state, call_id) == []


def test_balance_is_read_live(state: lab.LabState, tmp: Path) -> None:
    lab.set_balance(state, "1004", 0)
    try:
        run_sipp(state, tmp, ANSWER, "1004", "dave-pass-1004", 402)
    finally:
        lab.set_balance(state, "1004", 20.0)
    with pytest.raises(BadInput):
        lab.set_balance(state, "9999", 1.0)


def test_carrier_busy_is_relayed_and_billed(state: lab.LabState, tmp: Path) -> None:
    call_id = run_sipp(state, tmp, "1555003486", "1001", "alice-pass-1001", 486)
    rows = wait_cdr(state, call_id)
    assert len(rows) == 1 and rows[0]["sip_code"] == 486 and rows[0]["carrier"] in ("carrier-a", "carrier-b")
    assert len(wait_carrier(state, call_id)) == 1


def test_cancelled_call_is_billed_as_487(state: lab.LabState, tmp: Path) -> None:
    call_id = run_sipp(state, tmp, "15550020999", "1001", "alice-pass-1001", 487)
    rows = wait_cdr(state, call_id)
    assert len(rows) == 1 and rows[0]["sip_code"] == 487 and rows[0]["duration"] == 0.0, rows
    assert rows[0]["carrier"] == "carrier-a"


def test_503_fails_over_to_the_other_carrier_then_503(state: lab.LabState, tmp: Path) -> None:
    call_id = run_sipp(state, tmp, "1555003503", "1001", "alice-pass-1001", 503)
    rows = wait_cdr(state, call_id)
    assert len(rows) == 1 and rows[0]["sip_code"] == 503 and rows[0]["sip_reason"] == "No Carrier Available"
    deadline = time.monotonic() + 5
    while len(carrier_saw(state, call_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(r["carrier"] for r in carrier_saw(state, call_id)) == ["carrier-a", "carrier-b"]


def test_kamcmd_works(state: lab.LabState) -> None:
    out = lab.kamcmd(state, "dispatcher.list")
    assert f"sip:127.0.0.1:{state.ports['carrier-a']}" in out


def test_timeout_fails_over_and_marks_carrier_dead(state: lab.LabState, tmp: Path, labdir: Path) -> None:
    """carrier-a frozen (SIGSTOP): the call still gets answered by carrier-b."""
    pid = state.processes["carrier-a"]
    os.kill(pid, signal.SIGSTOP)
    try:
        call_id = run_sipp(state, tmp, ANSWER, "1001", "alice-pass-1001", 200, hold_ms=200, timeout=20)
        rows = wait_cdr(state, call_id)
        assert len(rows) == 1 and rows[0]["sip_code"] == 200 and rows[0]["carrier"] == "carrier-b"
        deadline = time.monotonic() + 8
        health = ""
        while time.monotonic() < deadline:
            health = {s.name: s.health for s in lab.status(labdir / "run")}["carrier-a"]
            if health.startswith("inactive"):
                break
            time.sleep(0.3)
        assert health.startswith("inactive"), health
    finally:
        os.kill(pid, signal.SIGCONT)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        if {s.name: s.health for s in lab.status(labdir / "run")}["carrier-a"].startswith("active"):
            break
        time.sleep(0.3)
    else:
        pytest.fail("carrier-a did not come back in the dispatcher")


def test_taken_explicit_port_is_bad_input(tmp: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        taken = s.getsockname()[1]
        with pytest.raises(BadInput, match="already taken"):
            lab.up(tmp / "run", ports={"sip": taken})
    assert lab.load_state(tmp / "run") is None


def test_bad_seed_is_bad_input(tmp: Path) -> None:
    seed = tmp / "seed.yaml"
    seed.write_text("domain: voipqa.lab\naccounts:\n  - {user: '1', password: p, balance: lots}\n"
                    "carriers: [carrier-a]\n")
    with pytest.raises(BadInput, match=r"accounts\[0\]\.balance: not a number"):
        lab.up(tmp / "run", seed=seed)


def test_allow_list_pike_and_sigkill_of_supervisor(tmp: Path) -> None:
    """A second lab: only 127.0.0.1/32 allowed, pike at 20 requests / 2 s."""
    import yaml
    from qa.paths import DEFAULT_SEED
    data = yaml.safe_load(DEFAULT_SEED.read_text())
    data["allow_list"] = ["127.0.0.1/32"]
    data["antiflood"] = {"window_s": 2, "max_requests": 20, "ban_s": 30}
    seed = tmp / "seed.yaml"
    seed.write_text(yaml.safe_dump(data))
    st, _ = lab.up(tmp / "run2", seed=seed)
    try:
        port = st.ports["sip"]
        # outside the allow-list -> 403
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            s.settimeout(2)
            s.sendto(options_request("127.0.0.1", port, "udp", s.getsockname()), ("127.0.0.1", port))
            assert s.recv(4096).split(b"\r\n")[0] == b"SIP/2.0 403 Source Not Allowed"
            # flood from 127.0.0.2: pike bans it, 127.0.0.1 is still served
            for _ in range(60):
                s.sendto(options_request("127.0.0.1", port, "udp", s.getsockname()), ("127.0.0.1", port))
            time.sleep(0.3)
            s.settimeout(0.2)
            try:
                while True:
                    s.recv(4096)
            except socket.timeout:
                pass
            s.settimeout(1)
            s.sendto(options_request("127.0.0.1", port, "udp", s.getsockname()), ("127.0.0.1", port))
            with pytest.raises(socket.timeout):
                s.recv(4096)
        assert "127.0.0.2" in lab.kamcmd(st, "htable.dump", "ipban")
        assert sip_options("127.0.0.1", port, "udp", 2)[0] == 200

        # SIGKILL of the supervisor takes every child down (PR_SET_PDEATHSIG)
        children = list(st.processes.values())
        os.kill(st.supervisor_pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(lab._alive(p) for p in children + [st.supervisor_pid]):
            time.sleep(0.05)
        assert not any(lab._alive(p) for p in children), "children survived their supervisor"
        lab.down(tmp / "run2")  # clears the stale state
        assert lab.load_state(tmp / "run2") is None
    finally:
        lab.down(tmp / "run2")


def test_down_leaves_no_process_and_no_port(state: lab.LabState, labdir: Path) -> None:
    # last test of the module (file order): stop the shared lab
    pids = [state.supervisor_pid, *state.processes.values()]
    t0 = time.monotonic()
    assert lab.down(labdir / "run") is True
    elapsed = time.monotonic() - t0
    print(f"lab down in {elapsed:.2f} s")
    assert not any(lab._alive(p) for p in pids)
    assert all(port_is_free(p) for p in state.ports.values()), state.ports
    assert lab.load_state(labdir / "run") is None
    assert lab.status(labdir / "run") == []
    assert lab.down(labdir / "run") is False

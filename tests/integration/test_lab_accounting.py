"""The lab's accounting writer, for real (seed ``accounting``; lab/kamailio.cfg ACCOUNTING).

``queued`` (the default): every accounting row goes through one shared-memory queue and ONE
writer process, so a load that used to lose CDRs to SQLite's lock loses none. ``direct``
(the old way, every Kamailio process writing SQLite itself) must still lose them under
the same load: that is how voipqa proves its CDR check catches loss.

Each test starts its own lab in tmp_path, owned by this test process (it stops even if
pytest is killed). Calls are SIPp UACs with digest auth, every run bounded by -m and
-timeout; the Call-IDs are SIPp's ``-cid_str`` with the call number, so the expected set
is known exactly.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

import qa.lab as lab
from qa.lab.seed import load_seed, shaped
from qa.paths import DEFAULT_SEED
from qa.ports import allocate_ports
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_tool("kamailio") and have_tool("sipp") and have_tool("openssl")),
                       reason="kamailio, sipp and openssl are needed"),
]

SIPP = "/usr/bin/sipp"
ANSWER = "15550001234"
BUSY = "1555003486"          # the carriers' number plan: 486 Busy Here
LOCKED = "database is locked"

LOAD_CALLS = 1000
LOAD_RATE = 100               # calls/s; direct loses ~45 % here with 4 workers (KAMAILIO-NOTES)
LOAD_HOLD_MS = 500


def _scenario(user: str, password: str, expect: int, hold_ms: int) -> str:
    """INVITE -> 407 -> ACK -> INVITE with credentials -> ``expect`` (200: ACK, hold, BYE
    -> 200). Transactions are matched (start_txn/response_txn/ack_txn), so provisionals a
    proxy worker relays after the 200 are not "unexpected" (KAMAILIO-NOTES). An answered
    call logs one line with the wall clock at its first INVITE, the 200 and the BYE
    (-trace_logs; SIPp refuses a variable that is set and never read, so only then)."""
    head = f"""From: <sip:{user}@voipqa.lab>;tag=[pid]acc[call_number]
To: <sip:[service]@voipqa.lab>"""
    sdp = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

    def invite(n: int, auth: str) -> str:
        return f"""  <send retrans="500" start_txn="inv{n}">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-inv{n}
{head}
Call-ID: [call_id]
CSeq: {n} INVITE
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
{auth}Content-Type: application/sdp
Content-Length: [len]

{sdp}
    ]]>
  </send>
"""

    def ack(n: int, uri: str, branch: str, extra: str = "") -> str:
        return f"""  <send ack_txn="inv{n}">
    <![CDATA[
ACK {uri} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}
{extra}From: <sip:{user}@voipqa.lab>;tag=[pid]acc[call_number]
To: <sip:[service]@voipqa.lab>[peer_tag_param]
Call-ID: [call_id]
CSeq: {n} ACK
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>
"""

    now = '<nop><action><gettimeofday assign_to="{0}_s,{0}_us"/></action></nop>'
    parts = ['<?xml version="1.0" encoding="ISO-8859-1" ?>', '<scenario name="voipqa accounting">',
             now.format("inv") if expect == 200 else "", invite(1, ""),
             '  <recv response="100" optional="true" response_txn="inv1"/>',
             '  <recv response="407" auth="true" response_txn="inv1"/>',
             ack(1, "sip:[service]@[remote_ip]:[remote_port]", "z9hG4bK-[pid]-[call_number]-inv1"),
             invite(2, f"[authentication username={user} password={password}]\n"),
             '  <recv response="100" optional="true" response_txn="inv2"/>',
             '  <recv response="180" optional="true" response_txn="inv2"/>',
             '  <recv response="183" optional="true" response_txn="inv2"/>']
    if expect != 200:
        parts += [f'  <recv response="{expect}" response_txn="inv2"/>',
                  ack(2, "sip:[service]@[remote_ip]:[remote_port]", "z9hG4bK-[pid]-[call_number]-inv2")]
    else:
        parts += ['  <recv response="200" rrs="true" response_txn="inv2"/>', now.format("ok"),
                  ack(2, "[next_url]", "z9hG4bK-[pid]-[call_number]-ack2", "[routes]\n"),
                  f'  <pause milliseconds="{hold_ms}"/>', now.format("bye"),
                  f"""  <send retrans="500" start_txn="bye">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]-bye
[routes]
{head}[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0

    ]]>
  </send>""",
                  '  <recv response="100" optional="true" response_txn="bye"/>',
                  '  <recv response="200" response_txn="bye"/>',
                  '  <nop><action><log message="CALL [call_id] [$inv_s] [$inv_us] [$ok_s] [$ok_us] '
                  '[$bye_s] [$bye_us]"/></action></nop>']
    parts.append("</scenario>")
    return "\n".join(parts) + "\n"


def place_calls(state: lab.LabState, tmp: Path, number: str, user: str, password: str, expect: int, *,
                calls: int = 1, rate: int = 10, hold_ms: int = 1000,
                timeout: int = 60) -> tuple[list[str], subprocess.CompletedProcess[str], list[str]]:
    """``calls`` SIPp calls at ``rate`` calls/s; (their Call-IDs, SIPp, its log lines)."""
    tag = uuid.uuid4().hex[:10]
    xml = tmp / f"acc-{tag}.xml"
    xml.write_text(_scenario(user, password, expect, hold_ms))
    log = tmp / f"acc-{tag}.log"
    for _attempt in range(3):
        # SIPp binds -mp and the three ports above it: another tool may take one between
        # allocation and bind; that is not the platform's fault
        port, cport, mport = allocate_ports(3)
        argv = [SIPP, f"127.0.0.1:{state.ports['sip']}", "-sf", str(xml), "-s", number, "-m", str(calls),
                "-r", str(rate), "-l", str(max(10, rate * 5)), "-i", "127.0.0.1", "-p", str(port),
                "-cp", str(cport), "-mp", str(mport), "-buff_size", "4194304",
                "-timeout", str(timeout), "-timeout_error", "-recv_timeout", "10000", "-nostdin",
                "-cid_str", f"acc-{tag}-%u", "-trace_logs", "-log_file", str(log),
                "-trace_err", "-error_file", str(tmp / f"err-{tag}.log")]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 15,
                              stdin=subprocess.DEVNULL, cwd=tmp)
        if "Unable to bind" not in proc.stdout + proc.stderr:
            break
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [f"acc-{tag}-{n}" for n in range(1, calls + 1)], proc, lines


def sipp_failed(proc: subprocess.CompletedProcess[str], tmp: Path) -> str:
    errs = "\n".join(p.read_text(errors="replace")[-1500:] for p in tmp.glob("err-*.log"))
    return f"sipp rc={proc.returncode}\n{proc.stdout[-1200:]}\n{proc.stderr[-800:]}\n{errs}"


def cdr_call_ids(state: lab.LabState, wanted: set[str]) -> list[str]:
    """Call-IDs of the voipqa_cdr rows among ``wanted`` (a list: duplicates show)."""
    return [r["call_id"] for r in lab.query_cdrs(state) if r["call_id"] in wanted]


def wait_for_rows(state: lab.LabState, wanted: set[str], timeout: float) -> list[str]:
    """Poll the view until every wanted Call-ID has a row or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        got = cdr_call_ids(state, wanted)
        if set(got) >= wanted or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def seed_with(tmp: Path, accounting: str) -> Path:
    """The shipped seed with ``accounting`` set (the lab reads a seed file)."""
    data = yaml.safe_load(DEFAULT_SEED.read_text())
    data["accounting"] = accounting
    path = tmp / f"seed-{accounting}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def kamailio_log(state: lab.LabState) -> str:
    return Path(state.logs["kamailio"]).read_text(errors="replace")


def load_run(tmp: Path, accounting: str, rate: int) -> tuple[lab.LabState, list[str], list[str], str]:
    """A load-shape lab with ``accounting``, LOAD_CALLS answered calls at ``rate``; returns
    (state, expected Call-IDs, the view's Call-IDs among them, kamailio.log)."""
    run_dir = tmp / "lab"
    account = shaped(load_seed(DEFAULT_SEED), "load").load_shape.accounts[0]
    try:
        state, already = lab.up(run_dir, seed=seed_with(tmp, accounting), shape="load", owner_pid=os.getpid(),
                                timeout=30)
        assert not already and (state.shape, state.accounting) == ("load", accounting)
        ids, proc, _lines = place_calls(state, tmp, ANSWER, account.user, account.password, 200,
                                        calls=LOAD_CALLS, rate=rate, hold_ms=LOAD_HOLD_MS,
                                        timeout=LOAD_CALLS // rate + 60)
        # every call answered and ended cleanly: a missing row is the platform's loss
        assert proc.returncode == 0, sipp_failed(proc, tmp)
        got = wait_for_rows(state, set(ids), timeout=5)
        return state, ids, got, kamailio_log(state)
    finally:
        lab.down(run_dir)


def test_load_shape_queued_keeps_every_cdr(tmp_path: Path) -> None:
    state, ids, got, log = load_run(tmp_path, "queued", LOAD_RATE)
    missing = sorted(set(ids) - set(got))
    print(f"queued, {LOAD_RATE} calls/s: {len(got)} CDR rows for {len(ids)} answered calls, "
          f"{log.count(LOCKED)} '{LOCKED}'")
    assert missing == [] and len(got) == LOAD_CALLS, f"{len(missing)} CDRs missing, e.g. {missing[:3]}"
    assert log.count(LOCKED) == 0
    assert "accounting queue full" not in log and "accounting writer:" not in log
    # one writer: the rtimer process, besides the shape's workers
    assert state.workers > 1


def test_load_shape_direct_still_loses_cdrs(tmp_path: Path) -> None:
    """The old writer on demand: the same load loses rows to SQLite's lock."""
    _state, ids, got, log = load_run(tmp_path, "direct", LOAD_RATE)
    missing = set(ids) - set(got)
    print(f"direct, {LOAD_RATE} calls/s: {len(got)} CDR rows for {len(ids)} answered calls "
          f"({100 * len(missing) / len(ids):.1f} % lost), {log.count(LOCKED)} '{LOCKED}'")
    assert missing, "direct accounting lost no CDR: the loss this lab must be able to show is gone"
    assert LOCKED in log
    assert len(got) == len(set(got))          # what was written, was written once


def _times(line: str) -> dict[str, float]:
    """SIPp's CALL log line -> {"invite", "answer", "bye"} unix times."""
    fields = line.split()
    nums = [float(x) for x in fields[2:8]]
    return {"invite": nums[0] + nums[1] / 1e6, "answer": nums[2] + nums[3] / 1e6, "bye": nums[4] + nums[5] / 1e6}


def test_functional_queued_failed_and_answered_calls_are_billed(tmp_path: Path) -> None:
    run_dir = tmp_path / "lab"
    seed = load_seed(DEFAULT_SEED)
    alice = seed.account("1001")
    hold_ms = 2000
    try:
        state, _ = lab.up(run_dir, owner_pid=os.getpid())
        assert (state.shape, state.accounting) == ("functional", "queued")

        [busy], proc, _ = place_calls(state, tmp_path, BUSY, alice.user, alice.password, 486)
        assert proc.returncode == 0, sipp_failed(proc, tmp_path)
        [answered], proc, lines = place_calls(state, tmp_path, ANSWER, alice.user, alice.password, 200,
                                              hold_ms=hold_ms)
        assert proc.returncode == 0, sipp_failed(proc, tmp_path)
        ended = time.monotonic()
        got = wait_for_rows(state, {busy, answered}, timeout=5)
        latency = time.monotonic() - ended
        assert sorted(got) == sorted([busy, answered])

        [failed] = lab.query_cdrs(state, busy)
        assert (failed["sip_code"], failed["sip_reason"], failed["answer_time"], failed["duration"]) == (
            486, "Busy Here", None, 0.0)
        assert (failed["account"], failed["to_user"], failed["carrier"]) == ("1001", BUSY, "carrier-a")

        [cdr] = lab.query_cdrs(state, answered)
        sipp = _times(next(line for line in lines if f"CALL {answered} " in line))
        assert (cdr["sip_code"], cdr["account"], cdr["end_reason"]) == (200, "1001", "caller-bye")
        assert abs(cdr["duration"] - hold_ms / 1000) <= 1.0, cdr
        assert abs(cdr["start_time"] - sipp["invite"]) <= 1.0, (cdr, sipp)
        assert abs(cdr["answer_time"] - sipp["answer"]) <= 1.0, (cdr, sipp)
        assert abs(cdr["end_time"] - sipp["bye"]) <= 1.0, (cdr, sipp)
        # the writer runs every 50 ms: the rows are there well within a second of the BYE
        print(f"rows visible {latency * 1000:.0f} ms after SIPp ended")
        assert latency < 1.0
        log = kamailio_log(state)
        assert LOCKED not in log and "accounting writer:" not in log
        assert re.search(r"RTIMER EXEC child=0 timer=acc", lab.kamcmd(state, "core.psx"))
        # the carriers' SIP UDP sockets got 4 MiB buffers (the kernel reports twice what it
        # grants, at most net.core.rmem_max / wmem_max)
        granted = [2 * min(4 * 1024 * 1024, int(Path(f"/proc/sys/net/core/{m}_max").read_text()))
                   for m in ("rmem", "wmem")]
        said = re.search(r"udp socket buffers: receive (\d+) bytes, send (\d+) bytes",
                         Path(state.logs["carrier-a"]).read_text(errors="replace"))
        assert said is not None and [int(said.group(1)), int(said.group(2))] == granted
    finally:
        lab.down(run_dir)

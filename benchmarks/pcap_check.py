"""Benchmark: ``voipqa pcap check`` against tshark (and pyshark) on SIP-heavy captures.

    .venv/bin/python benchmarks/pcap_check.py [--capture FILE ...] [--record lab|sipp ...]
        [--runs 3] [--tshark-sdp-runs 1] [--packets 205000] [--rate 300] [--keep DIR] [--pyshark-seconds 0]

Captures: any file given with ``--capture`` (repeatable), and/or recorded here
(``--record``, repeatable; both kinds when neither option is given):

* ``lab``: the real lab under load: a lab in a temporary directory (``qa.lab.up``), tcpdump
  on ``lo`` filtered to its SIP and carrier ports, SIPp (``sipp/uac_call.xml``, account 1001
  with digest auth, number 1555000100, no talk time) at ``--rate`` calls/s until the
  capture holds ``--packets`` packets;
* ``sipp``: SIPp's built-in uac against its built-in uas on loopback (INVITE with SDP,
  180, 200 with SDP, ACK, BYE, 200: six messages a call, no RTP), ``--packets`` / 6 calls
  at 800 calls/s.

Then, ``--runs`` rounds, the tools taking turns within a round (a drift of the shared
machine's speed hits them alike): ``voipqa pcap check FILE --json`` (a second process
reads and strict-checks: ``qa.analysis.parallel``; its hot modules compiled by mypyc when
built, ``qa.compiled``), the same with ``--one-process``, the same with ``VOIPQA_PURE=1`` (pure
Python: what the compiled modules give), ``tshark -r FILE -Y sip -T fields -e sip.Call-ID -e sip.Status-Code``, the same tshark
with ``--disable-protocol sdp`` (tshark's SDP dissector, and the RTP conversations it
sets up, are most of its time), and that one over the first 20,000 packets only
(``-c``): tshark's time grows faster than the capture (its per-packet cost rises with
the state it keeps), so its rate on a short prefix is its best, and the voipqa ratio
against it the least favourable one. Every row prints the medians of wall seconds,
packets/s, CPU seconds (the process and its children) and peak RSS; the ratios are the
medians of the per-round ratios. tshark with SDP on runs in the first ``--tshark-sdp-runs``
rounds only (it takes minutes a run). Each command is timed by a small process of its own
(a child inherits its parent's peak RSS). ``--pyshark-seconds N`` adds pyshark iterating the file
for at most N s (its rate only falls as it goes: an upper bound).

Targets (issue 9): voipqa pcap check >= 5x ``tshark -Y sip -T fields`` and >= 1.5x the same
with ``--disable-protocol sdp``, on a >= 200,000-packet capture of each kind, peak
memory < 200 MB. The exit status is 0 when every capture meets them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa import compiled  # noqa: E402
from qa.capture import CaptureReader  # noqa: E402
from qa.tools import require_tool  # noqa: E402

#: tshark's best case: its rate over this many packets from the start.
PREFIX = 20_000


@dataclass
class Timing:
    """The runs of one tool on one capture."""

    name: str
    packets: int
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.packets / self.wall if self.wall else float("inf")

    @property
    def cpu_rate(self) -> float:
        cpu = statistics.median(self.cpu_seconds)
        return self.packets / cpu if cpu else float("inf")

    @property
    def peak(self) -> float | None:
        return max(self.peak_rss_mb) if self.peak_rss_mb else None


# -- recording ---------------------------------------------------------------------------
def count_packets(path: Path) -> int:
    reader = CaptureReader(path)
    for _ in reader:
        pass
    return reader.stats.packets


def _sipp_batch(state, calls: int, rate: float, workdir: Path) -> None:
    from qa.sipp import Agent
    from qa.sipp.process import run

    agent = Agent(scenario="uac_call", remote=f"{state.host}:{state.ports['sip']}", transport="udp",
                  service="1555000100", auth_user="1001", auth_password="alice-pass-1001",
                  keys={"from_user": "1001", "domain": state.domain or state.host,
                        "codecs": "PCMU,PCMA,telephone-event"},
                  calls=calls, rate=rate, limit=max(int(rate * 4), 50), call_duration_ms=0,
                  timeout_s=calls / rate + 60)
    result = asyncio.run(run(agent, workdir))
    print(f"  SIPp: {result.outcome.describe()}", flush=True)


def _stop_tcpdump(dump: subprocess.Popen) -> None:
    """SIGINT lets tcpdump flush its last packets; kill it if it does not end in 10 s."""
    dump.send_signal(signal.SIGINT)
    try:
        dump.wait(timeout=10)
    except subprocess.TimeoutExpired:
        dump.kill()
        dump.wait()


def record_lab(out: Path, packets: int, rate: float) -> Path:
    """Capture lab traffic under load into ``out`` until it has ``packets`` packets."""
    from qa import lab

    tcpdump = require_tool("tcpdump")
    tmp = Path(tempfile.mkdtemp(prefix="voipqa-bench-"))
    state, _ = lab.up(tmp / "lab")
    try:
        ports = sorted({p for k, p in state.ports.items() if k == "sip" or k.startswith("carrier")})
        bpf = "udp and (" + " or ".join(f"port {p}" for p in ports) + ")"
        argv = [tcpdump, "-i", "lo", "-n", "-s", "0", "-B", "16384", "-U", "-w", str(out), bpf]
        print(f"recording: {' '.join(argv)}", flush=True)
        dump = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.5)
        try:
            have = 0
            batch = 0
            while have < packets and batch < 6:
                calls = max(int((packets - have) / 14) + 200, 500)
                print(f"  batch {batch}: {calls} calls at {rate:g}/s", flush=True)
                _sipp_batch(state, calls, rate, tmp / f"sipp{batch}")
                time.sleep(5)  # let the last transactions finish
                have = count_packets(out)
                print(f"  capture has {have:,} packets", flush=True)
                batch += 1
        finally:
            _stop_tcpdump(dump)
    finally:
        lab.down(tmp / "lab")
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def record_sipp(out: Path, packets: int) -> Path:
    """SIPp's built-in uac -> uas on loopback, six messages a call, no RTP."""
    from qa.sipp import Agent
    from qa.sipp.process import run

    tcpdump = require_tool("tcpdump")
    calls = -(-packets // 6) + 500          # a few hundred spare: the first and last may be cut
    tmp = Path(tempfile.mkdtemp(prefix="voipqa-bench-sipp-"))
    uas = Agent(scenario="uas", calls=calls, timeout_s=calls / 800 + 120).ensure_ports()
    uac = Agent(scenario="uac", remote=f"127.0.0.1:{uas.port}", calls=calls, rate=800.0,
                limit=2000, timeout_s=calls / 800 + 90).ensure_ports()
    bpf = f"udp and (port {uas.port} or port {uac.port})"
    dump = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-s", "0", "-B", "16384", "-U", "-w",
                             str(out), bpf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    print(f"recording {calls:,} SIPp calls uac -> uas ({bpf})", flush=True)
    time.sleep(1.5)

    async def both() -> None:
        server = asyncio.create_task(run(uas, tmp / "uas"))
        await asyncio.sleep(0.5)
        result = await run(uac, tmp / "uac")
        print(f"  SIPp uac: {result.outcome.describe()}", flush=True)
        await server

    try:
        asyncio.run(both())
        time.sleep(1)
    finally:
        _stop_tcpdump(dump)
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- measuring ---------------------------------------------------------------------------
#: Times one command from a small process of its own: a child's peak RSS (ru_maxrss) starts
#: at its parent's high-water mark (Linux keeps it across fork and exec), so the command
#: must not be started by this process, which may have grown while recording.
_TIMER = """
import json, os, subprocess, sys, time
timeout, argv = float(sys.argv[1]), sys.argv[2:]
start = time.perf_counter()
proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
code = None
while code is None:
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid:
        code = os.waitstatus_to_exitcode(status)
    elif time.perf_counter() - start > timeout:
        proc.kill()
        pid, status, usage = os.wait4(proc.pid, 0)
        code = -9
    else:
        time.sleep(0.02)
print(json.dumps([time.perf_counter() - start, usage.ru_utime + usage.ru_stime,
                  usage.ru_maxrss / 1024, code]))
"""


def _child(argv: list[str], timeout: float) -> tuple[float, float, float, int]:
    """Run argv with output discarded; (seconds, CPU seconds of it and its children, peak RSS
    MB of the largest of them, exit code); seconds is NaN when it was killed at ``timeout``."""
    out = subprocess.run([sys.executable, "-I", "-c", _TIMER, str(timeout), *argv], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    seconds, cpu, rss, code = json.loads(out.stdout)
    return (float("nan") if code == -9 else seconds), cpu, rss, code


def _argv(tool: str, path: Path) -> list[str]:
    tshark = [require_tool("tshark"), "-r", str(path)]
    fields = ["-Y", "sip", "-T", "fields", "-e", "sip.Call-ID", "-e", "sip.Status-Code"]
    return {
        "voipqa pcap check": [sys.executable, "-m", "qa.cli", "pcap", "check", str(path), "--json"],
        "voipqa --one-process": [sys.executable, "-m", "qa.cli", "pcap", "check", str(path), "--json",
                                 "--one-process"],
        "voipqa, pure Python": ["env", f"{compiled.PURE_ENV}=1", sys.executable, "-m", "qa.cli", "pcap",
                                "check", str(path), "--json"],
        "tshark -Y sip -T fields": tshark + fields,
        "tshark, SDP off": tshark + ["--disable-protocol", "sdp"] + fields,
        f"tshark, SDP off, first {PREFIX:,}": tshark + ["-c", str(PREFIX), "--disable-protocol", "sdp"] + fields,
    }[tool]


TOOLS = ("voipqa pcap check", "voipqa --one-process", "voipqa, pure Python", "tshark -Y sip -T fields", "tshark, SDP off",
         f"tshark, SDP off, first {PREFIX:,}")


def measure(path: Path, packets: int, runs: int, timeout: float, sdp_runs: int) -> dict[str, Timing]:
    """``runs`` rounds of every tool, in turn; tshark with SDP on only in the first ``sdp_runs``
    (it is the slowest by far: its ratio is not in doubt, its minutes are)."""
    timings = {t: Timing(t, min(packets, PREFIX) if t.endswith(f"{PREFIX:,}") else packets) for t in TOOLS}
    for round_ in range(runs):
        for tool, timing in timings.items():
            if tool == "tshark -Y sip -T fields" and round_ >= sdp_runs:
                continue
            seconds, cpu, rss, code = _child(_argv(tool, path), timeout)
            timing.seconds.append(seconds)
            timing.cpu_seconds.append(cpu)
            timing.peak_rss_mb.append(rss)
            if code not in (0, 1):       # voipqa: 1 = findings, still a full analysis
                timing.note = f"exit {code}" + (f" (killed after {timeout:.0f} s)" if code == -9 else "")
            print(f"  round {round_ + 1}: {tool:34} {seconds:8.2f} s", flush=True)
    return timings


def paired(timings: dict[str, Timing], mine: str, other: str) -> float:
    """Median over the rounds of (other's seconds per packet) / (mine's): how many times faster."""
    a, b = timings[mine], timings[other]
    return statistics.median((tb / b.packets) / (ta / a.packets) for ta, tb in zip(a.seconds, b.seconds))



def time_pyshark(path: Path, budget_s: float) -> Timing:
    import pyshark

    # pyshark asks for the current event loop; after recording (asyncio.run closed its
    # loop and unset it) there is none, so give it a fresh one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    cap = pyshark.FileCapture(str(path), keep_packets=False)
    n = 0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, cpu = time.perf_counter(), time.process_time()
    try:
        for _ in cap:
            n += 1
            if not n & 0x3FF and time.perf_counter() - start > budget_s:
                break
    finally:
        cap.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # its tshark, once reaped
    cpu += (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    return Timing("pyshark FileCapture", n, [seconds], [cpu], [],
                  f"stopped after {budget_s:.0f} s at packet {n:,}: its rate only falls further, "
                  "so this rate is an upper bound and the ratio a lower bound")


def tshark_version() -> str:
    out = subprocess.run([require_tool("tshark"), "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "tshark ?"


def report(path: Path, packets: int, timings: dict[str, Timing]) -> bool:
    """Print one capture's table and ratios; True when it meets the targets."""
    print(f"\n{'tool':36} {'packets':>9} {'wall s':>8} {'pkts/s':>8} {'CPU s':>7} {'pkts/CPU-s':>10} "
          f"{'peak RSS':>9}  note")
    for t in timings.values():
        rss = f"{t.peak:.0f} MB" if t.peak is not None else "-"
        print(f"{t.name:36} {t.packets:>9,} {t.wall:>8.2f} {t.rate:>8,.0f} "
              f"{statistics.median(t.cpu_seconds):>7.2f} {t.cpu_rate:>10,.0f} {rss:>9}  {t.note}")
    me = "voipqa pcap check"
    full, nosdp = paired(timings, me, "tshark -Y sip -T fields"), paired(timings, me, "tshark, SDP off")
    prefix = paired(timings, me, f"tshark, SDP off, first {PREFIX:,}")
    single = paired(timings, "voipqa --one-process", "tshark, SDP off")
    native = paired(timings, me, "voipqa, pure Python")
    peak = timings[me].peak or 0.0
    print(f"\nvoipqa pcap check (median of paired rounds): {full:.1f}x tshark -Y sip -T fields (want >= 5x), "
          f"{nosdp:.1f}x with SDP off (want >= 1.5x), {prefix:.1f}x tshark's best rate (SDP off, first "
          f"{PREFIX:,} packets); --one-process {single:.1f}x tshark with SDP off; compiled "
          f"{native:.2f}x pure Python; peak RSS {peak:.0f} MB "
          "(want < 200 MB)")
    ok = full >= 5 and nosdp >= 1.5 and peak < 200 and packets >= 200_000
    print(f"{path.name}: {'meets the targets' if ok else 'does NOT meet every target'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, action="append", default=[], help="an existing capture (repeatable)")
    ap.add_argument("--record", choices=["lab", "sipp"], action="append", default=[],
                    help="record a capture of this kind (repeatable; default: both when no --capture)")
    ap.add_argument("--packets", type=int, default=205_000, help="packets to record at least")
    ap.add_argument("--rate", type=float, default=300.0, help="SIPp calls/s while recording the lab")
    ap.add_argument("--runs", type=int, default=3, help="rounds of every tool (medians are quoted)")
    ap.add_argument("--pyshark-seconds", type=float, default=0.0,
                    help="also time pyshark for at most this long (0: not at all)")
    ap.add_argument("--tshark-sdp-runs", type=int, default=1,
                    help="rounds that include tshark with SDP on (default 1: it takes minutes)")
    ap.add_argument("--tshark-timeout", type=float, default=3600.0)
    ap.add_argument("--keep", type=Path, help="directory to keep the recorded captures in")
    args = ap.parse_args(argv)

    kinds = args.record or ([] if args.capture else ["lab", "sipp"])
    where = args.keep or Path(tempfile.mkdtemp(prefix="voipqa-bench-"))
    where.mkdir(parents=True, exist_ok=True)
    captures = list(args.capture)
    for kind in kinds:
        out = where / f"{kind}.pcap"
        captures.append(record_lab(out, args.packets, args.rate) if kind == "lab"
                        else record_sipp(out, args.packets))
    print(f"{tshark_version()}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs; voipqa {compiled.status()}",
          flush=True)
    ok = True
    for path in captures:
        packets = count_packets(path)
        print(f"\ncapture: {path} ({packets:,} packets, {path.stat().st_size / 1e6:.1f} MB)", flush=True)
        timings = measure(path, packets, args.runs, args.tshark_timeout, args.tshark_sdp_runs)
        if args.pyshark_seconds > 0:
            pysh = time_pyshark(path, args.pyshark_seconds)
            print(f"pyshark: {pysh.packets:,} packets in {pysh.wall:.1f} s = {pysh.rate:,.0f} packets/s "
                  f"({pysh.note}); voipqa {timings['voipqa pcap check'].rate / pysh.rate:.0f}x")
        ok = report(path, packets, timings) and ok
    print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

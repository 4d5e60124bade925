"""Benchmark: ``voipqa pcap check`` against tshark and pyshark on a SIP-heavy capture.

    .venv/bin/python benchmarks/pcap_check.py [--packets 200000] [--capture FILE]
                                              [--rate 300] [--pyshark-seconds 900]

Without ``--capture`` it records one from the real lab under load: a lab in a temporary
directory (``qa.lab.up``), tcpdump on ``lo`` filtered to the lab's SIP and carrier ports,
SIPp (``sipp/uac_call.xml``, account 1001, number 1555000100, no talk time) at ``--rate``
calls/s until the capture holds at least ``--packets`` packets; then the lab goes down.

It then times, in the same run: voipqa in-process (``qa.analysis.engine.analyze``) and
as the CLI (``voipqa pcap check FILE --json``), ``tshark -r FILE -Y sip -T fields -e
sip.Call-ID -e sip.Status-Code``, and pyshark iterating the file for at most
``--pyshark-seconds``. pyshark slows down as it goes (its tshark keeps SDP and
conversation state: measured here 1,251 packets/s over the first 5k packets, 438 over
the first 60k), so the rate where it stops is an upper bound of its whole-file rate and
the ratio printed is a lower bound; the output says how far it got.
It prints packets/s of each, the ratios, and the peak RSS of each voipqa run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.capture import CaptureReader  # noqa: E402
from qa.tools import require_tool  # noqa: E402


@dataclass
class Timing:
    name: str
    packets: int
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float | None = None
    note: str = ""

    @property
    def rate(self) -> float:
        return self.packets / self.seconds if self.seconds else float("inf")

    @property
    def cpu_rate(self) -> float:
        return self.packets / self.cpu_seconds if self.cpu_seconds else float("inf")


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


def record(out: Path, packets: int, rate: float) -> Path:
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
            dump.send_signal(signal.SIGINT)
            try:
                dump.wait(timeout=10)
            except subprocess.TimeoutExpired:
                dump.kill()
                dump.wait()
    finally:
        lab.down(tmp / "lab")
        shutil.rmtree(tmp, ignore_errors=True)
    return out


# -- measuring ---------------------------------------------------------------------------
def _child(argv: list[str], timeout: float) -> tuple[float, float, float, int]:
    """Run argv with output discarded; (seconds, CPU seconds, peak RSS MB, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = start + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            return float("nan"), usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, -9
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            proc.returncode)


def time_inprocess(path: Path, packets: int) -> Timing:
    from qa.analysis.engine import analyze

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu = time.perf_counter(), time.process_time()
    report = analyze(path, keep_calls=0)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Timing("voipqa (in-process)", report.packets, seconds, cpu, peak,
                  f"{report.sip_messages:,} SIP, {report.calls:,} calls, {sum(report.rule_counts.values()):,} "
                  f"findings; RSS before {before:.0f} MB")


def time_cli(path: Path, packets: int, timeout: float) -> Timing:
    argv = [sys.executable, "-m", "qa.cli", "pcap", "check", str(path), "--json"]
    seconds, cpu, rss, code = _child(argv, timeout)
    return Timing("voipqa pcap check (CLI)", packets, seconds, cpu, rss, f"exit {code}")


def time_tshark(path: Path, packets: int, timeout: float) -> Timing:
    argv = [require_tool("tshark"), "-r", str(path), "-Y", "sip", "-T", "fields",
            "-e", "sip.Call-ID", "-e", "sip.Status-Code"]
    seconds, cpu, rss, code = _child(argv, timeout)
    note = f"exit {code}" + (f" (killed after {timeout:.0f} s)" if code == -9 else "")
    return Timing("tshark -Y sip -T fields", packets, seconds, cpu, rss, note)


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
    return Timing("pyshark FileCapture", n, seconds, cpu, None,
                  f"stopped after {budget_s:.0f} s at packet {n:,}: its rate only falls further, "
                  "so this rate is an upper bound and the ratio a lower bound")


def tshark_version() -> str:
    out = subprocess.run([require_tool("tshark"), "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.stdout else "tshark ?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture", type=Path, help="an existing capture (default: record one from the lab)")
    ap.add_argument("--packets", type=int, default=200_000, help="packets to record at least")
    ap.add_argument("--rate", type=float, default=300.0, help="SIPp calls/s while recording")
    ap.add_argument("--pyshark-seconds", type=float, default=900.0,
                    help="time budget for pyshark (it would take far longer on the whole file)")
    ap.add_argument("--tshark-timeout", type=float, default=3600.0)
    ap.add_argument("--keep", type=Path, help="where to keep the recorded capture")
    args = ap.parse_args(argv)

    path = args.capture
    if path is None:
        path = args.keep or Path(tempfile.gettempdir()) / "voipqa-bench-lab.pcap"
        record(path, args.packets, args.rate)
    packets = count_packets(path)
    size_mb = path.stat().st_size / 1e6
    print(f"\ncapture: {path} ({packets:,} packets, {size_mb:.1f} MB)")
    print(f"{tshark_version()}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs\n", flush=True)

    ours = time_inprocess(path, packets)
    cli = time_cli(path, packets, args.tshark_timeout)
    tshark = time_tshark(path, packets, args.tshark_timeout)
    pysh = time_pyshark(path, args.pyshark_seconds)
    rows = [ours, cli, tshark, pysh]
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (shared machine: "
          "wall-clock rates depend on it, CPU-time rates much less)")
    print(f"{'tool':32} {'packets':>10} {'wall s':>8} {'pkts/s':>9} {'CPU s':>8} {'pkts/CPU-s':>10} "
          f"{'peak RSS':>9}  note")
    for t in rows:
        rss = f"{t.peak_rss_mb:.0f} MB" if t.peak_rss_mb is not None else "-"
        print(f"{t.name:32} {t.packets:>10,} {t.seconds:>8.2f} {t.rate:>9,.0f} {t.cpu_seconds:>8.2f} "
              f"{t.cpu_rate:>10,.0f} {rss:>9}  {t.note}")
    print()
    for mine in (ours, cli):
        print(f"{mine.name}: wall {mine.rate / tshark.rate:.1f}x tshark fields (want >= 5x), "
              f"{mine.rate / pysh.rate:.0f}x pyshark (want >= 50x; a lower bound: pyshark stopped early); "
              f"CPU time {mine.cpu_rate / tshark.cpu_rate:.1f}x tshark, {mine.cpu_rate / pysh.cpu_rate:.0f}x pyshark; "
              f"peak RSS {mine.peak_rss_mb:.0f} MB (want < 200 MB)")
    ok = (cli.rate >= 5 * tshark.rate and cli.rate >= 50 * pysh.rate
          and (cli.peak_rss_mb or 0) < 200 and packets >= 200_000)
    print("\nverdict:", "meets the targets" if ok else "does NOT meet every target (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

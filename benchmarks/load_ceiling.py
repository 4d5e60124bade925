"""Benchmark: the load generator's ceiling, voipqa against bare SIPp, measured in one run.

    .venv/bin/python benchmarks/load_ceiling.py [--rounds 3] [--start 2000] [--step 1000]
                                                [--steps 15] [--step-seconds 4]
    .venv/bin/python benchmarks/load_ceiling.py --scale-out [--quota 0.2] ...

Both sides climb the same rate steps, SIPp's built-in UAS answering on 127.0.0.1, calls
with no talk time, socket buffers of 4 MiB, and judge each step the same way: at least
95 % of the offered calls placed, at most 0.1 % failed, at most 1 % of the SIP messages
retransmitted. The ceiling is the highest step that held before the first that did not.

* bare SIPp: the built-in ``uac`` climbing the same steps by itself (``-rate_increase``
  every ``-fd`` period), judged period by period from its own ``-trace_stat`` rows;
* bare SIPp running ``sipp/uac_load_lean.xml`` (the ceiling profile's scenario) with the
  same inputs and traces voipqa gives it: what voipqa's own processes cost;
* voipqa: ``voipqa load run`` with a ceiling profile of the same steps (``uac_load_lean``),
  ``--env loopback``, one Locust worker, capture on (its default; ``--no-capture`` to
  compare), the breaking point from ``load.json``.

Rounds alternate bare, voipqa, bare, voipqa, ...; the medians and the paired ratio
(voipqa / bare) are printed. ``--scale-out`` instead compares one and two Locust workers,
each SIPp held to ``--quota`` of a core by a cgroup CPU quota so that one worker is
generator-bound and two fit beside the answering SIPp: the target is two >= 1.8 x one.
It also prints what the Locust master cost per worker (its CPU from resources.csv), the
figure behind the 50-machine estimate in the README. Exit 0 when the targets are met.
Everything is bounded: each step lasts ``--step-seconds``, every SIPp has a -timeout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qa.load import model  # noqa: E402
from qa.ports import AGENT_MEDIA_POOL, allocate_ports, allocate_udp_block  # noqa: E402
from qa.sipp.traces import parse_stat_file  # noqa: E402
from qa.tools import require_tool  # noqa: E402

BUFF = "4194304"
ACHIEVED_MIN = 0.95
FAILED_MAX = 0.001
RETRANS_MAX = 0.01


@dataclass
class Step:
    rate: int
    held: bool
    note: str


def bare_ceiling(sipp: str, rates: list[int], seconds: float, work: Path,
                 scenario: Path | None = None) -> tuple[int, list[Step]]:
    """One bare SIPp uac climbing the same steps by itself (``-rate_increase`` every ``-fd``
    period, the statistics dumped at each step's end), judged period by period.

    ``scenario``: instead of SIPp's built-in ``uac``, voipqa's load scenario run by bare
    SIPp with the same inputs and traces as voipqa gives it (what voipqa's own processes
    cost, apart from what its per-call accounting costs SIPp)."""
    port, cport, uport, ucport = allocate_ports(4)
    step = rates[1] - rates[0] if len(rates) > 1 else rates[0]
    period = int(seconds)
    total = int(sum(rates) * seconds)
    stat = work / f"bare-{time.monotonic_ns()}.csv"
    uas = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-cp", str(cport),
                            "-mp", str(allocate_udp_block(4, "127.0.0.1", AGENT_MEDIA_POOL)), "-nostdin",
                            "-buff_size", BUFF, "-timeout", f"{int(len(rates) * seconds + 60)}s"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    uac = subprocess.Popen([sipp, *_scenario_args(scenario, work, port), f"127.0.0.1:{port}", "-i", "127.0.0.1",
                            "-p", str(uport), "-cp", str(ucport),
                            "-mp", str(allocate_udp_block(4, "127.0.0.1", AGENT_MEDIA_POOL)),
                            "-r", str(rates[0]), "-rate_increase", str(step), "-rate_max", str(rates[-1]),
                            "-no_rate_quit", "-m", str(total), "-d", "0", "-nostdin", "-buff_size", BUFF,
                            "-trace_stat", "-stf", str(stat), "-fd", str(period)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps: list[Step] = []
    deadline = time.monotonic() + len(rates) * seconds + 20
    try:  # judged as SIPp goes; stopped at the first broken step (it would go on at full rate)
        while time.monotonic() < deadline and uac.poll() is None and len(steps) < len(rates):
            time.sleep(0.5)
            rows = parse_stat_file(stat)[1:]  # row 0 is SIPp's start
            for rate, row in list(zip(rates, rows))[len(steps):]:
                created = int(row.get("OutgoingCall(P)", 0))
                failed = int(row.get("FailedCall(P)", 0))
                retrans = int(row.get("Retransmissions(P)", 0))
                held = (created >= ACHIEVED_MIN * rate * seconds and failed <= FAILED_MAX * max(created, 1)
                        and retrans <= RETRANS_MAX * 3 * max(created, 1))
                steps.append(Step(rate, held, f"{created / seconds:.0f}/s placed at {rate}/s offered, "
                                              f"{failed} failed, {retrans} retransmissions"))
                if not held:
                    deadline = 0.0
                    break
    finally:
        for proc in (uac, uas):
            proc.terminate()
            proc.wait()
    held_rates = [s.rate for s in steps if s.held]
    return (held_rates[-1] if held_rates else 0), steps


def _scenario_args(scenario: Path | None, work: Path, port: int) -> list[str]:
    if scenario is None:
        return ["-sn", "uac"]
    calls = work / "bare-calls.csv"
    calls.write_text("SEQUENTIAL\nloadgen;1000;;200\n")
    return ["-sf", str(scenario), "-inf", str(calls), "-key", "domain", f"127.0.0.1:{port}",
            "-key", "sdp_formats", "0 8 101", "-key", "sdp_attributes",
            "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000",
            "-trace_logs", "-log_file", str(work / "bare-calls.log"), "-trace_counts"]


def ceiling_profile(path: Path, args: argparse.Namespace, quota: float | None) -> Path:
    profile = {
        "description": "benchmark: the generator's ceiling",
        "kind": "ceiling",
        "scenario": {"sipp": "uac_load_lean", "destinations": [{"number": "1000"}], "hold": "0s",
                     "call_timeout": "8s"},
        "rate": {"shape": "step", "start_cps": args.start, "step_cps": args.step,
                 "step_duration": f"{args.step_seconds}s", "steps": args.steps},
        "criteria": {"failed_pct_max": 100 * FAILED_MAX, "retransmissions_pct_max": 100 * RETRANS_MAX,
                     "achieved_pct_min": 100 * ACHIEVED_MIN},
        "generator": {"buff_size": int(BUFF), "cpu_quota": quota},
        "capture": {"enabled": not args.no_capture, "ring_files": 2, "ring_file_mb": 200},
        "resources": {"every": "1s"},
        "judging": {"window": f"{args.step_seconds}s", "settle": "2s", "min_calls": 20, "stop_on_break": True},
    }
    path.write_text(json.dumps(profile))  # JSON is YAML
    return path


def voipqa_ceiling(profile: Path, workers: int, out: Path) -> tuple[float, dict]:
    subprocess.run([sys.executable, "-m", "qa.cli", "load", "run", str(profile), "--env", "loopback",
                    "--workers", str(workers), "--output", str(out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=900)
    result = json.loads((out / "load.json").read_text())
    return float(result["breaking_point_cps"] or 0.0), result


def master_cost(out: Path) -> tuple[float | None, float | None]:
    """The Locust master's and the workers' median CPU % (of one core) while the load ran."""
    samples = model.read_resources(out / model.RESOURCES_FILE)
    def median(name: str) -> float | None:
        values = [v for _, v in samples.get(name, [])]
        return statistics.median(values) if values else None
    return median("voipqa.master.cpu_pct"), median("voipqa.workers.cpu_pct")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--start", type=int, default=2000)
    parser.add_argument("--step", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=23)
    parser.add_argument("--step-seconds", type=float, default=4.0)
    parser.add_argument("--no-capture", action="store_true", help="run voipqa with its capture off")
    parser.add_argument("--scale-out", action="store_true", help="one worker against two, each SIPp under a quota")
    parser.add_argument("--quota", type=float, default=0.2, help="--scale-out: CPU share of each SIPp")
    args = parser.parse_args()
    sipp = require_tool("sipp")
    work = Path(tempfile.mkdtemp(prefix="voipqa-bench-"))
    rates = [args.start + k * args.step for k in range(args.steps)]
    print(f"steps {rates[0]}..{rates[-1]} calls/s, {args.step_seconds:g} s each; work in {work}")
    if args.scale_out:
        return scale_out(args, work)

    profile = ceiling_profile(work / "ceiling.yaml", args, None)
    load_xml = ROOT / "sipp" / "uac_load_lean.xml"  # the ceiling profile's scenario
    bare, same, ours, pairs, pairs_same = [], [], [], [], []
    for r in range(1, args.rounds + 1):
        b, steps = bare_ceiling(sipp, rates, args.step_seconds, work)
        s, steps_same = bare_ceiling(sipp, rates, args.step_seconds, work, load_xml)
        v, result = voipqa_ceiling(profile, 1, work / f"voipqa-{r}")
        bare.append(b)
        same.append(s)
        ours.append(v)
        pairs.append(v / b if b else 0.0)
        pairs_same.append(v / s if s else 0.0)
        print(f"round {r}: bare SIPp uac {b} calls/s (broke: {steps[-1].note}); bare SIPp uac_load_lean.xml {s} calls/s "
              f"(broke: {steps_same[-1].note}); voipqa {v:g} calls/s ({'; '.join(result['reasons'][:1])})")
    ratio, ratio_same = statistics.median(pairs), statistics.median(pairs_same)
    print(f"\nbare SIPp, built-in uac:      median {statistics.median(bare):g} calls/s (min {min(bare)}, max {max(bare)})")
    print(f"bare SIPp, sipp/uac_load_lean.xml: median {statistics.median(same):g} calls/s (min {min(same)}, max {max(same)})")
    print(f"voipqa load run ceiling:      median {statistics.median(ours):g} calls/s (min {min(ours):g}, "
          f"max {max(ours):g}), capture {'off' if args.no_capture else 'on'}, 1 worker")
    print(f"voipqa / bare uac:            median {ratio:.2f} (per round: {', '.join(f'{p:.2f}' for p in pairs)}); "
          "target >= 0.90")
    print(f"voipqa / bare uac_load_lean:   median {ratio_same:.2f} "
          f"(per round: {', '.join(f'{p:.2f}' for p in pairs_same)})")
    return 0 if ratio >= 0.9 else 1


def scale_out(args: argparse.Namespace, work: Path) -> int:
    profile = ceiling_profile(work / "quota.yaml", args, args.quota)
    one, two, pairs = [], [], []
    for r in range(1, args.rounds + 1):
        a, res1 = voipqa_ceiling(profile, 1, work / f"one-{r}")
        b, res2 = voipqa_ceiling(profile, 2, work / f"two-{r}")
        one.append(a)
        two.append(b)
        pairs.append(b / a if a else 0.0)
        m1, w1 = master_cost(work / f"one-{r}")
        m2, w2 = master_cost(work / f"two-{r}")
        print(f"round {r}: 1 worker {a:g} calls/s ({res1['bottleneck']}), 2 workers {b:g} calls/s "
              f"({res2['bottleneck']}); master CPU {m1}% -> {m2}%, workers {w1}% -> {w2}%")
    ratio = statistics.median(pairs)
    print(f"\neach SIPp held to {args.quota:g} of a core: 1 worker median {statistics.median(one):g} calls/s, "
          f"2 workers median {statistics.median(two):g} calls/s")
    print(f"2 workers / 1 worker: median {ratio:.2f} (per round: {', '.join(f'{p:.2f}' for p in pairs)}); "
          "target >= 1.80")
    return 0 if ratio >= 1.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())

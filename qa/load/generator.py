"""The traffic engine of a load run: SIPp UACs driven live, their files read in bulk.

One :class:`SippGenerator` is one SIPp process (a Locust "user" of the worker). Its call
rate changes through SIPp's control socket (``cset rate N``, no restart), and each
second :meth:`SippGenerator.poll` reads what SIPp wrote since the last poll: the
``-trace_stat`` row (cumulative counters: calls created, aborted by reason, current
calls, late messages), the ``-trace_counts`` row (messages sent and retransmitted), and
the new accounting lines of ``sipp/uac_load.xml`` (one ``VQ1;…`` line per call). Nothing
here runs per SIP message, and per call only a ``split``: at SIPp's ceiling (~12,000
calls/s) Python reads aggregates and lines in bulk (KAMAILIO-NOTES).

Every SIPp is bounded by itself (``-m`` calls, ``-timeout`` seconds), dies with its
parent (PR_SET_PDEATHSIG), and may be held to a CPU quota (:mod:`qa.load.cgroup`).
Plain Python and psutil: the Locust glue (``qa.load.locustfile``) calls it from gevent.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from qa.load.cgroup import CpuQuota, at_quota
from qa.load.model import CallRow, Histogram, call_rows_text, round_ms
from qa.load.plan import WorkerPlan
from qa.sipp.agent import Agent
from qa.tools import die_with_parent, require_tool

#: Cumulative ``-trace_stat`` columns read each second (their deltas make a sample).
STAT_COLUMNS = {
    "created": "TotalCallCreated",
    "successful": "SuccessfulCall(C)",
    "aborted": "FailedCall(C)",
    "timeouts": "FailedTimeoutOnRecv(C)",
    "retrans_exhausted": "FailedMaxUDPRetrans(C)",
    "unexpected": "FailedUnexpectedMessage(C)",
    "congestion": "FailedOutboundCongestion(C)",
    "dead_msgs": "DeadCallMsgs(C)",
}
#: How SIPp's abort reasons are named in the timeline's ``codes``.
ABORT_CODES = {"timeouts": "timeout", "retrans_exhausted": "retrans", "unexpected": "unexpected",
               "congestion": "congestion"}
START_TIMEOUT_S = 10.0
#: SIPp 3.6.1 ignores rate changes during its first rate period (1 s) and then places the
#: missed calls at once: a SIPp counts as started only once that period is over.
FIRST_PERIOD_S = 1.1


class GeneratorError(RuntimeError):
    """A SIPp that would not start or died: the message says why, in SIPp's words."""


# -- reading files as they grow -------------------------------------------------------------------
class Tail:
    """The complete lines appended to a file since the last read (a torn last line waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = b""

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        data = self._rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._rest = data
            return []
        self._rest = data[cut + 1:]
        return data[:cut].decode("utf-8", "replace").split("\n")


class CsvTail:
    """The new rows of a ``;``-separated SIPp CSV with a header line (stat, counts)."""

    def __init__(self, path: Path) -> None:
        self.tail = Tail(path)
        self.header: list[str] | None = None

    def rows(self) -> list[dict[str, str]]:
        """Every complete row written since the last call, oldest first."""
        out = []
        for line in self.tail.lines():
            if not line.strip():
                continue
            values = line.split(";")
            if self.header is None:
                self.header = values
            else:
                out.append(dict(zip(self.header, values)))
        return out

    def last(self) -> dict[str, str] | None:
        """The newest of the new rows (None when nothing new was written)."""
        rows = self.rows()
        return rows[-1] if rows else None


# -- the accounting line ---------------------------------------------------------------------------
def parse_call_line(line: str, worker: str, t: int, epoch0: float) -> CallRow | None:
    """``VQ1;Call-ID;t0;t18…;t200;tend;code;from;to;expect`` -> CallRow (else None).

    Ticks are SIPp's ``[clock_tick]`` (ms since SIPp started, ``epoch0`` the unix time of
    tick 0): PDD is the first 18x, setup the 200, the duration from the 200 to the end of
    the BYE transaction.
    """
    parts = line.split(";")
    if len(parts) != 10 or parts[0] != "VQ1":
        return None
    try:
        t0 = int(parts[2])
        t18 = [int(tick) for tick in parts[3].split()[:1]]
        t200 = int(parts[4]) if parts[4] else None
        tend = int(parts[5])
        code = int(parts[6]) if parts[6] else 0
        expect = int(parts[9]) if parts[9] else 200
    except ValueError:
        return None
    answered = t200 is not None and 200 <= code < 300
    return CallRow(
        t=t, worker=worker, call_id=parts[1], started=epoch0 + t0 / 1000.0,
        pdd_ms=float(t18[0] - t0) if t18 else None,
        setup_ms=float(t200 - t0) if answered else None,
        duration_s=(tend - t200) / 1000.0 if answered else None,
        code=code, expect=expect, from_user=parts[7], to_user=parts[8],
    )


def start_second(line: str, run_epoch: float, epoch0: float) -> int | None:
    """``VQ0;tick`` -> the run second (1-based, the bin ending at it) the call started in."""
    parts = line.split(";")
    if len(parts) != 2 or parts[0] != "VQ0":
        return None
    try:
        started = epoch0 + int(parts[1]) / 1000.0
    except ValueError:
        return None
    return max(1, math.ceil(started - run_epoch))


def stat_time(row: dict[str, str], column: str) -> float | None:
    """A time column of SIPp's statistics (``date<TAB>time<TAB>unix.us``) as unix time."""
    try:
        return float(row[column].split("\t")[-1])
    except (KeyError, ValueError):
        return None


def stat_epoch(row: dict[str, str]) -> float | None:
    """The unix time SIPp started (``StartTime``), tick 0's wall clock to within a few ms."""
    return stat_time(row, "StartTime")


@dataclass
class Sample:
    """What one SIPp did since the previous poll. ``created_at`` counts calls by the run
    second they started in (from the start lines), ``created`` as SIPp's statistics say."""

    created: int = 0
    created_at: dict[int, int] | None = None   # None: this SIPp writes no start lines (a user's scenario)
    ended_clean: int | None = None             # calls SIPp ended cleanly, when it writes no call lines
    concurrent: int = 0
    aborted: int = 0
    abort_codes: dict[str, int] = field(default_factory=dict)
    dead_msgs: int = 0
    sent: int = 0
    retransmissions: int = 0
    rows: list[CallRow] = field(default_factory=list)
    cpu_pct: float = 0.0
    allowance_pct: float = 100.0
    exited: bool = False


# -- one SIPp ---------------------------------------------------------------------------------------
class SippGenerator:
    """One SIPp UAC placing the plan's calls at a rate changed live."""

    def __init__(self, plan: WorkerPlan, workdir: Path, name: str) -> None:
        self.plan = plan
        self.workdir = Path(workdir)
        self.name = name
        self.rate = 0.0
        self.proc: subprocess.Popen[bytes] | None = None
        self.agent: Agent | None = None
        self._quota: CpuQuota | None = None
        self._throttling: tuple[int, int] | None = None
        self._ps: psutil.Process | None = None
        self._last: dict[str, int] = {}
        self._stat: CsvTail | None = None
        self._counts: CsvTail | None = None
        self._log: Tail | None = None
        self._finishing = False
        self._concurrent = 0
        self._start_lines = False
        self._call_lines = False
        self.epoch0: float | None = None  # unix time of SIPp's tick 0 (its StartTime)
        self._epoch_read = False

    # -- start / stop --------------------------------------------------------------------------
    def _write_inputs(self) -> dict[str, str]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / self.plan.scenario_name).write_text(self.plan.scenario_xml, encoding="iso-8859-1")
        csv_path = self.workdir / "calls.csv"
        fd = os.open(csv_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # credentials
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.plan.calls_csv)
        keys = {"domain": self.plan.domain}
        if self.plan.media:
            from qa.sipp.media import audio_pcap

            seconds = max(1.0, self.plan.hold_ms / 1000.0)
            keys["media_pcap"] = str(audio_pcap("PCMU", seconds, self.workdir / "audio.pcap"))
        return keys

    def build_agent(self) -> Agent:
        keys = self._write_inputs()
        return Agent(
            scenario=self.workdir / self.plan.scenario_name, remote=self.plan.target,
            transport=self.plan.transport, keys=keys, calls=self.plan.calls_per_sipp_max, rate=0,
            limit=self.plan.max_concurrent_per_sipp, call_duration_ms=self.plan.hold_ms,
            timeout_s=self.plan.run_timeout_s, inf=self.workdir / "calls.csv",
            recv_timeout_s=self.plan.recv_timeout_s, buff_size=self.plan.buff_size, load_traces=True,
        )

    def start(self) -> None:
        """Start SIPp at rate 0; returns once it runs (its stat file exists) or raises."""
        sipp = require_tool("sipp")
        self.agent = agent = self.build_agent()
        if self.plan.cpu_quota is not None:
            safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name)
            self._quota = CpuQuota(f"voipqa-{os.getpid()}-{safe}", self.plan.cpu_quota)
        argv = agent.argv(self.workdir, sipp=sipp)
        files = agent.trace_files(self.workdir)
        quota = self._quota

        def child() -> None:  # pragma: no cover - runs in the child before exec
            die_with_parent()
            if quota is not None:
                quota.join_self()

        self.epoch0 = time.time()  # until SIPp's own StartTime is read (within ms of it)
        with open(files["stdout"], "wb") as out, open(files["stderr"], "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, preexec_fn=child, start_new_session=True)
        self._ps = psutil.Process(self.proc.pid)
        self._ps.cpu_percent(None)
        self._stat = CsvTail(files["stat"])
        self._log = Tail(files["logs"])
        self._wait_started(files)

    def _wait_started(self, files: dict[str, Path]) -> None:
        began = time.monotonic()
        deadline = began + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise GeneratorError(f"SIPp {self.name} exited at start (code {self.proc.returncode}): "
                                     f"{self._last_words(files)}")
            if files["stat"].exists() and time.monotonic() - began >= FIRST_PERIOD_S:
                return
            time.sleep(0.05)
        raise GeneratorError(f"SIPp {self.name} did not start within {START_TIMEOUT_S:g} s")

    @staticmethod
    def _last_words(files: dict[str, Path]) -> str:
        for name in ("stderr", "errors", "stdout"):
            try:
                lines = [ln.strip() for ln in files[name].read_text(errors="replace").splitlines() if ln.strip()]
            except OSError:
                continue
            lines = [ln for ln in lines if not ln.startswith(("Resolving remote host", "The following events"))]
            if lines:
                return lines[-1][:300]
        return "no message"

    def set_rate(self, cps: float) -> None:
        """Calls per second from now on (``cset rate``; 0 pauses new calls)."""
        cps = max(0.0, float(cps))
        if abs(cps - self.rate) < 1e-6:
            return
        self._control(f"cset rate {cps:.6f}".encode())
        self.rate = cps

    def _control(self, command: bytes) -> None:
        if self.agent is None or self.agent.control_port is None:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(command, (self.agent.local_ip, self.agent.control_port))
            except OSError:
                pass

    def finish(self) -> None:
        """No new calls; SIPp ends the calls it has, then exits (``q``, sent once: a second
        ``q`` cancels the first in SIPp 3.6.1 and the process never exits)."""
        if not self._finishing:
            self._finishing = True
            self._control(b"q")

    def kill(self) -> None:
        """``Q`` (quit now), then SIGTERM, then SIGKILL, by PID; releases the quota."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            self._control(b"Q")
            for sig, wait_s in ((None, 0.5), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
                if sig is not None and proc.poll() is None:
                    try:
                        os.kill(proc.pid, sig)
                    except ProcessLookupError:
                        pass
                try:
                    proc.wait(timeout=wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._quota is not None:
            self._quota.remove()
        (self.workdir / "calls.csv").unlink(missing_ok=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- reading ------------------------------------------------------------------------------
    def _delta(self, name: str, value: int) -> int:
        before = self._last.get(name, 0)
        self._last[name] = value
        return max(0, value - before)

    def _counts_tail(self) -> CsvTail | None:
        """SIPp names its counts file ``<scenario>_<pid>_counts.csv``: this SIPp's own, not an
        older run's left in a reused working directory."""
        if self._counts is None and self.proc is not None:
            found = sorted(self.workdir.glob(f"*_{self.proc.pid}_counts.csv"))
            if found:
                self._counts = CsvTail(found[-1])
        return self._counts

    def poll(self, t: int, run_epoch: float | None = None) -> Sample:
        """Everything since the last poll; call once per second (and once after exit).

        ``run_epoch`` (unix time of the run's start) places each call in the second it
        started; without it new calls count in ``t``."""
        sample = Sample(exited=not self.running)
        stat = self._stat.last() if self._stat else None
        if stat is not None and not self._epoch_read:
            self.epoch0 = stat_epoch(stat) or self.epoch0
            self._epoch_read = True
        epoch0 = self.epoch0 if self.epoch0 is not None else time.time()
        if stat is not None:
            values = {k: _int(stat.get(col)) for k, col in STAT_COLUMNS.items()}
            sample.created = self._delta("created", values["created"])
            successful = self._delta("successful", values["successful"])
            sample.aborted = self._delta("aborted", values["aborted"])
            sample.dead_msgs = self._delta("dead_msgs", values["dead_msgs"])
            named = 0
            for key, code in ABORT_CODES.items():
                n = self._delta(key, values[key])
                named += n
                if n:
                    sample.abort_codes[code] = n
            if sample.aborted > named:
                sample.abort_codes["other"] = sample.aborted - named
            self._concurrent = _int(stat.get("CurrentCall"))
        sample.concurrent = self._concurrent  # no new row this second: the last one holds
        counts = self._counts_tail()
        row = counts.last() if counts else None
        if row is not None:
            sent = sum(_int(v) for k, v in row.items() if k.endswith("_Sent"))
            retrans = sum(_int(row.get(k[:-5] + "_Retrans")) for k in row if k.endswith("_Sent"))
            sample.sent = self._delta("sent", sent)
            sample.retransmissions = self._delta("retransmissions", retrans)
        if self._log is not None:
            starts: dict[int, int] = {}
            for line in self._log.lines():
                if line.startswith("VQ0;"):
                    self._start_lines = True
                    sec = start_second(line, run_epoch, epoch0) if run_epoch is not None else t
                    if sec is not None:
                        sec = min(sec, t)
                        starts[sec] = starts.get(sec, 0) + 1
                    continue
                call = parse_call_line(line, self.name, t, epoch0)
                if call is not None:
                    sample.rows.append(call)
            if self._start_lines:
                sample.created_at = starts
        if sample.rows:
            self._call_lines = True
        if stat is not None and not self._call_lines:
            # a scenario without the accounting line (a user's, or uac_load_lean at the ceiling):
            # SIPp's own counters say how many calls ended, not how
            sample.ended_clean = successful
        if self._ps is not None:
            try:
                sample.cpu_pct = self._ps.cpu_percent(None)
            except psutil.Error:
                sample.cpu_pct = 0.0
        sample.allowance_pct = 100.0 * (self.plan.cpu_quota or 1.0)
        if self._quota is not None:  # under a quota, the cgroup says exactly when it bit
            throttling = self._quota.throttling()
            if at_quota(self._throttling, throttling):
                sample.cpu_pct = max(sample.cpu_pct, sample.allowance_pct)
            self._throttling = throttling
        return sample


def _int(text: str | None) -> int:
    try:
        return int(float(text)) if text else 0
    except ValueError:
        return 0


# -- a report for the master ---------------------------------------------------------------------------
def report(sample: Sample, *, t: int, worker: str, sipp: str, rate: float, host_cpu: float,
           worker_cpu: float, final: bool = False) -> dict[str, Any]:
    """One SIPp's second as the message the master aggregates (msgpack-friendly)."""
    codes: dict[str, int] = dict(sample.abort_codes)
    pdd: Histogram = {}
    setup: Histogram = {}
    answered = failed = 0
    for row in sample.rows:  # the per-call hot path: no property calls, no csv module
        code = row.code
        key = str(code)
        codes[key] = codes.get(key, 0) + 1
        ok = 200 <= code < 300
        answered += ok
        failed += code != row.expect and not (ok and 200 <= row.expect < 300)
        if row.pdd_ms is not None:
            k = round_ms(row.pdd_ms)
            pdd[k] = pdd.get(k, 0) + 1
        if row.setup_ms is not None:
            k = round_ms(row.setup_ms)
            setup[k] = setup.get(k, 0) + 1
    completed = len(sample.rows) + sample.aborted
    if sample.ended_clean:  # no call lines: calls SIPp ended cleanly count as answered, code unknown
        codes["ok"] = codes.get("ok", 0) + sample.ended_clean
        answered += sample.ended_clean
        completed += sample.ended_clean
    return {
        "t": t, "worker": worker, "sipp": sipp, "final": final, "rate": rate,
        "created": sample.created,
        "created_at": None if sample.created_at is None else {str(k): v for k, v in sample.created_at.items()},
        "concurrent": sample.concurrent,
        "completed": completed, "answered": answered,
        "failed": failed + sample.aborted, "aborted": sample.aborted, "codes": codes,
        "pdd": {str(k): v for k, v in pdd.items()}, "setup": {str(k): v for k, v in setup.items()},
        "sent": sample.sent, "retransmissions": sample.retransmissions,
        "timeouts": sample.abort_codes.get("timeout", 0) + sample.abort_codes.get("retrans", 0),
        "unexpected": sample.abort_codes.get("unexpected", 0),
        "outbound_congestion": sample.abort_codes.get("congestion", 0), "dead_msgs": sample.dead_msgs,
        "sipp_cpu": sample.cpu_pct, "allowance": sample.allowance_pct, "host_cpu": host_cpu,
        "worker_cpu": worker_cpu, "calls": rows_text(sample.rows),
    }


def rows_text(rows: list[CallRow]) -> str:
    """Call rows as calls.csv text (the master appends it as it is)."""
    return call_rows_text(rows) if rows else ""

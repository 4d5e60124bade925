"""The master's side of a load run: every SIPp's per-second report folded into one
timeline, written to the run directory as it goes (DESIGN §8, ``qa.load.model``).

Reports carry the second they belong to (``t``, the worker's count since the run
started), so a second is written once every SIPp has reported it, or :data:`LATE_S`
seconds later with what came; a report for a second already written is added to the
oldest open one instead of being lost. Nothing here knows Locust: the glue module feeds
:meth:`Aggregator.add` from its message handler and calls :meth:`Aggregator.flush` from a
timer, which keeps this testable with plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from qa.load import model
from qa.load.model import CallRow, CsvAppender, Second, SecondHistograms, merge, percentiles

#: Seconds after which a second is written even if some SIPp has not reported it.
LATE_S = 2


@dataclass
class _Open:
    """A second still being filled."""

    second: Second
    hist: SecondHistograms
    reporters: set[str] = field(default_factory=set)
    workers: set[str] = field(default_factory=set)


class Aggregator:
    """Folds reports into seconds and appends them to timeline.csv, histograms.jsonl, calls.csv."""

    def __init__(self, run_dir: Path, offered: Callable[[int], float], *, keep_s: int | None = None) -> None:
        """``keep_s``: how many of the last written seconds stay in ``written`` and
        ``histograms`` for whoever judges them live (None: all; 0: none, an 8-hour soak
        must not grow with its length — the files hold everything)."""
        self.run_dir = Path(run_dir)
        self.offered = offered
        self.keep_s = keep_s
        self.open: dict[int, _Open] = {}
        self.written: list[Second] = []
        self.histograms: list[SecondHistograms] = []
        self.last_written = 0
        self.sipps: set[str] = set()          # every SIPp that is placing calls
        self.finished: set[str] = set()       # SIPps that sent their final report
        self.totals = Second(t=0)
        self._timeline = CsvAppender(self.run_dir / model.TIMELINE_FILE, Second.columns())
        self._calls = CsvAppender(self.run_dir / model.CALLS_FILE, CallRow.COLUMNS)
        self._hist = open(self.run_dir / model.HISTOGRAMS_FILE, "a", encoding="utf-8")

    # -- in ---------------------------------------------------------------------------------
    def _slot(self, t: int) -> _Open:
        t = max(int(t), self.last_written + 1)
        slot = self.open.get(t)
        if slot is None:
            slot = self.open[t] = _Open(Second(t=t), SecondHistograms(t=t))
        return slot

    def add(self, report: dict[str, Any]) -> None:
        """One SIPp's second (see ``qa.load.generator.report``).

        Calls count as created in the second they started (``created_at``, from SIPp's
        start lines), so a rate change shows when it happened, not when SIPp's next
        statistics row said so; a start line read late lands in its second while that
        second is open (LATE_S), else in the oldest open one.
        """
        sipp = str(report["sipp"])
        self.sipps.add(sipp)
        if report.get("final"):
            self.finished.add(sipp)
        slot = self._slot(int(report["t"]))
        created_at = report.get("created_at")
        if created_at is not None:
            report = {**report, "created": 0}
            for sec, n in created_at.items():
                self._slot(int(sec)).second.created += int(n)
        _fold(slot.second, report)
        slot.reporters.add(sipp)
        slot.workers.add(str(report.get("worker")))
        merge(slot.hist.pdd, report.get("pdd") or {})
        merge(slot.hist.setup, report.get("setup") or {})
        if report.get("calls"):
            self._calls.write_text(report["calls"])

    # -- out --------------------------------------------------------------------------------
    def flush(self, now_t: int, *, everything: bool = False) -> list[Second]:
        """Write every second that is complete (all SIPps reported) or late; returns them."""
        out: list[Second] = []
        active = self.sipps - self.finished
        for t in sorted(self.open):
            slot = self.open[t]
            complete = active <= slot.reporters
            if not (everything or complete or t <= now_t - LATE_S):
                break
            out.append(self._write(self.open.pop(t)))
        if out:
            self._timeline.flush()
            self._calls.flush()
            self._hist.flush()
        return out

    def _write(self, slot: _Open) -> Second:
        second = slot.second
        second.offered_cps = self.offered(second.t)
        second.sipps = len(slot.reporters)
        second.workers = len(slot.workers)
        pdd, setup = percentiles(slot.hist.pdd), percentiles(slot.hist.setup)
        second.pdd_p50, second.pdd_p95, second.pdd_p99 = pdd["p50"], pdd["p95"], pdd["p99"]
        second.setup_p50, second.setup_p95, second.setup_p99 = setup["p50"], setup["p95"], setup["p99"]
        self._timeline.write(second.to_row())
        self._hist.write(slot.hist.to_json() + "\n")
        self.written.append(second)
        self.histograms.append(slot.hist)
        self.last_written = second.t
        if self.keep_s is not None and len(self.written) > self.keep_s:
            del self.written[:len(self.written) - self.keep_s]
            del self.histograms[:len(self.histograms) - self.keep_s]
        _fold_totals(self.totals, second)
        return second

    def close(self) -> None:
        self.flush(self.last_written, everything=True)
        self._timeline.close()
        self._calls.close()
        self._hist.close()


_SUMMED = ("created", "completed", "answered", "failed", "aborted", "sent", "retransmissions",
           "timeouts", "unexpected", "outbound_congestion", "dead_msgs")


def _fold(second: Second, report: dict[str, Any]) -> None:
    """Add one SIPp's report into a second: counts add up, CPU takes the busiest."""
    for name in _SUMMED:
        setattr(second, name, getattr(second, name) + int(report.get(name) or 0))
    second.concurrent += int(report.get("concurrent") or 0)
    for code, n in (report.get("codes") or {}).items():
        second.codes[str(code)] = second.codes.get(str(code), 0) + int(n)
    cpu, allowance = float(report.get("sipp_cpu") or 0.0), float(report.get("allowance") or 100.0)
    if second.sipp_cpu_max == 0 or cpu / allowance > second.sipp_cpu_max / second.sipp_cpu_allowance:
        second.sipp_cpu_max, second.sipp_cpu_allowance = cpu, allowance
    second.host_cpu_max = max(second.host_cpu_max, float(report.get("host_cpu") or 0.0))
    second.worker_cpu_max = max(second.worker_cpu_max, float(report.get("worker_cpu") or 0.0))


def _fold_totals(totals: Second, second: Second) -> None:
    for name in _SUMMED:
        setattr(totals, name, getattr(totals, name) + getattr(second, name))
    totals.concurrent = second.concurrent
    for code, n in second.codes.items():
        totals.codes[code] = totals.codes.get(code, 0) + n

"""Running Robot cases concurrently: one Robot process per case, results merged into one.

Robot runs the tests of a process one after another; voipqa's cases spend their time
waiting on calls, so each case gets its own Robot process (at most ``parallel`` at
once) and a 40-case catalogue takes about as long as its slowest case (DESIGN §1).
A suite with ``Metadata    Execution    serial`` (cases that share state, e.g. stopping
a carrier) runs as one item, its cases in order. ``Metadata    Execution    exclusive``
(load runs: they measure the platform and would disturb every case beside them) runs
as one item too, alone, after every other item has finished. Cases tagged ``long``
start first.
The per-case outputs are merged into one output.xml/log/report/xunit as if one Robot
process had run them all, with the wall time of the whole run.

A run can be told to stop (``StopRequest``, set from a signal handler): no item starts
after that, the running Robot processes get SIGTERM (Robot then ends its case and writes
its output; SIGKILL to its process group after ``STOP_GRACE_S``) and ``run_items``
returns the items that had finished, so the reports hold exactly those. Each Robot
process runs in its own session: a terminal's Ctrl-C reaches voipqa only, which stops
its children itself, once, in that order; if voipqa is SIGKILLed, the kernel sends each
Robot process SIGTERM (``die_with_parent``), so none outlives the run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from robot.api import ExecutionResult
from robot.reporting import ResultWriter
from robot.running import TestSuiteBuilder

from qa.errors import BadInput
from qa.tools import die_with_parent

SERIAL_METADATA = "Execution"
LONG_TAG = "long"
#: Execution modes that make a suite one item: in order, and in order and alone.
SUITE_MODES = ("serial", "exclusive")
#: Seconds a Robot process gets to end its case after SIGTERM before its group is killed.
STOP_GRACE_S = 20.0


class StopRequest:
    """A request to end the run early, made from a signal handler (any thread-safe caller).

    ``signum`` is the first signal that asked. While ``run_items`` runs, it registers a
    wake-up so the request is seen at once; before and after, the caller checks
    ``requested``.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._wake: Callable[[], None] | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        if self._wake is not None:
            self._wake()

    def attach(self, wake: Callable[[], None] | None) -> None:
        self._wake = wake


@dataclass(frozen=True)
class WorkItem:
    """One Robot process: a single case, or a whole serial suite."""

    kind: str  # "test" | "suite"
    name: str  # Robot's full name, e.g. "Robot Suites.Auth.Wrong Password Gets 403"
    tests: int
    long: bool
    exclusive: bool = False  # runs alone, after every other item
    selected: tuple[str, ...] = ()  # a suite item: the full names of its cases the filters kept


@dataclass(frozen=True)
class ItemResult:
    item: WorkItem
    output: Path
    returncode: int
    elapsed_s: float


def _pattern(name: str) -> str:
    """Escape Robot's pattern characters so --test/--suite match one name exactly."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def plan_items(sources: list[Path], include: list[str] | None = None,
               exclude: list[str] | None = None, tests: list[str] | None = None) -> list[WorkItem]:
    """The work items of a run, long ones first (``tests``: Robot name patterns)."""
    try:
        suite = TestSuiteBuilder(included_extensions=("robot",)).build(*[str(s) for s in sources])
    except Exception as exc:  # robot's DataError and friends: the suite files are bad input
        raise BadInput(f"cannot read the suites: {exc}") from None
    suite.filter(included_tags=include or None, excluded_tags=exclude or None, included_tests=tests or None)
    items: list[WorkItem] = []
    _collect(suite, items)
    return sorted(items, key=lambda i: not i.long)


def _collect(suite, items: list[WorkItem]) -> None:  # noqa: ANN001 - robot model
    mode = suite.metadata.get(SERIAL_METADATA, "").lower()
    if mode in SUITE_MODES and suite.test_count:
        long = any(LONG_TAG in t.tags for t in suite.all_tests)
        items.append(WorkItem("suite", suite.full_name, suite.test_count, long, exclusive=mode == "exclusive",
                              selected=tuple(t.full_name for t in suite.all_tests)))
        return
    for test in suite.tests:
        items.append(WorkItem("test", test.full_name, 1, LONG_TAG in test.tags))
    for child in suite.suites:
        _collect(child, items)


def _argv(item: WorkItem, sources: list[Path], output: Path) -> list[str]:
    """The Robot command of one item. A suite item names the cases the run's filters kept
    (--test/--include/--exclude), so a serial suite runs only those, in its own order."""
    if item.kind == "test":
        selector = ["--test", _pattern(item.name)]
    else:
        selector = ["--suite", _pattern(item.name)]
        for name in item.selected:
            selector += ["--test", _pattern(name)]
    return [sys.executable, "-m", "robot", *selector, "--output", str(output),
            "--log", "NONE", "--report", "NONE", "--console", "none", *[str(s) for s in sources]]


async def _run_one(item: WorkItem, sources: list[Path], parts: Path, index: int,
                   slots: asyncio.Semaphore) -> ItemResult:
    output = parts / f"{index:03d}.xml"
    async with slots:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(*_argv(item, sources, output), stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.PIPE, start_new_session=True,
                                                    preexec_fn=die_with_parent)
        try:
            _, err = await proc.communicate()
        except asyncio.CancelledError:
            await asyncio.shield(stop_process(proc))
            raise
        if proc.returncode >= 250 and err:
            sys.stderr.write(err.decode(errors="replace"))
        return ItemResult(item, output, proc.returncode, time.monotonic() - started)


async def stop_process(proc: asyncio.subprocess.Process, grace_s: float = STOP_GRACE_S) -> None:
    """End a Robot process as Ctrl-C would (SIGTERM: it ends its case, its library stops its
    SIPp), then SIGKILL whatever is left in its process group."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM, leader_only=True)
        try:
            await asyncio.wait_for(proc.wait(), grace_s)
        except asyncio.TimeoutError:
            pass
    _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


def _signal_group(pid: int, signum: int, leader_only: bool = False) -> None:
    try:
        if leader_only:
            os.kill(pid, signum)
        else:
            os.killpg(pid, signum)  # the process was started as its own group's leader
    except (ProcessLookupError, PermissionError):
        pass


def _batches(items: list[WorkItem], parallel: int) -> list[tuple[list[tuple[int, WorkItem]], int]]:
    """The shared items at ``parallel`` at once, then each exclusive item alone."""
    numbered = list(enumerate(items))
    shared = [(i, item) for i, item in numbered if not item.exclusive]
    alone = [(i, item) for i, item in numbered if item.exclusive]
    return [(shared, parallel), *(([pair], 1) for pair in alone)]


async def run_items(items: list[WorkItem], sources: list[Path], parts: Path, parallel: int,
                    on_done: Callable[[ItemResult, int, int], None] | None = None,
                    stop: StopRequest | None = None) -> list[ItemResult]:
    """Run every item, at most ``parallel`` at once, then the exclusive ones alone, one by
    one; ``on_done`` reports progress. When ``stop`` is requested the running items are
    stopped and the finished ones returned (see the module docstring)."""
    parts.mkdir(parents=True, exist_ok=True)
    stop = stop or StopRequest()
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    stop.attach(lambda: loop.call_soon_threadsafe(wake.set))
    results: list[ItemResult] = []
    try:
        for batch, width in _batches(items, parallel):
            if stop.requested:
                break
            await _run_batch(batch, width, sources, parts, wake, results, len(items), on_done)
    finally:
        stop.attach(None)
    return results


async def _run_batch(batch: list[tuple[int, WorkItem]], width: int, sources: list[Path], parts: Path,
                     wake: asyncio.Event, results: list[ItemResult], total: int,
                     on_done: Callable[[ItemResult, int, int], None] | None) -> None:
    """Run one batch until it ends or ``wake`` is set; finished results go to ``results``."""
    slots = asyncio.Semaphore(max(1, width))
    tasks = {asyncio.ensure_future(_run_one(item, sources, parts, i, slots)) for i, item in batch}
    woken = asyncio.ensure_future(wake.wait())
    pending = set(tasks)
    try:
        while pending and not wake.is_set():
            done, pending = await asyncio.wait(pending | {woken}, return_when=asyncio.FIRST_COMPLETED)
            pending.discard(woken)
            for task in sorted(done - {woken}, key=id):
                results.append(task.result())
                if on_done:
                    on_done(results[-1], len(results), total)
    finally:
        for task in (*tasks, woken):
            task.cancel()
        await asyncio.gather(*tasks, woken, return_exceptions=True)


def merge_outputs(parts: list[Path], output_dir: Path, name: str | None = None) -> Path:
    """Merge per-case output.xml files into output.xml, log.html, report.html and xunit.xml."""
    results = [ExecutionResult(str(p)) for p in parts if p.is_file()]
    if not results:
        raise BadInput("no case produced a result")
    base = results[0]
    for other in results[1:]:
        _graft(base.suite, other.suite)
        base.errors.messages.extend(other.errors.messages)
    if name:
        base.suite.name = name
    output = output_dir / "output.xml"
    ResultWriter(base).write_results(output=str(output), log=str(output_dir / "log.html"),
                                     report=str(output_dir / "report.html"), xunit=str(output_dir / "xunit.xml"))
    return output


def _graft(into, suite) -> None:  # noqa: ANN001 - robot result model
    """Add ``suite``'s cases into ``into`` (same structure), widening the time span."""
    into.start_time = min(into.start_time, suite.start_time)
    into.end_time = max(into.end_time, suite.end_time)
    into.elapsed_time = None
    known = {t.name for t in into.tests}
    for test in suite.tests:
        if test.name not in known:
            into.tests.append(test)
    for child in suite.suites:
        match = next((s for s in into.suites if s.name == child.name), None)
        if match is None:
            into.suites.append(child)
        else:
            _graft(match, child)
    _sort_like_source(into)


def _sort_like_source(suite) -> None:  # noqa: ANN001
    """Keep cases in start order so the report reads like the suite file."""
    suite.tests.sort(key=lambda t: t.start_time)
    suite.suites.sort(key=lambda s: s.start_time)


def default_parallel() -> int:
    """Cases mostly wait on calls: several per core."""
    return max(4, 6 * (os.cpu_count() or 1))

"""Running Robot suites as a voipqa run: lab, environment, reports, summary, exit code.

The lab is used if one is running; otherwise one is started for the run (in the
output directory) and stopped afterwards, also on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
import os
import shutil
from pathlib import Path
from typing import Iterator

import robot
from robot.api import ExecutionResult

from qa.cases.parallel import ItemResult, merge_outputs, plan_items, run_items
from qa.errors import BadInput
from qa.ports import LAB_MEDIA_POOL, ephemeral_range
from qa.paths import DEFAULT_PLAN, DEFAULT_SEED, SUITES_DIR

REPORT_FILES = {"output": "output.xml", "log": "log.html", "report": "report.html", "xunit": "xunit.xml"}


def resolve_suites(suites: list[str]) -> list[Path]:
    """The suite files or folders to run; an unknown path is bad input."""
    if not suites:
        return [SUITES_DIR]
    paths = []
    for suite in suites:
        path = Path(suite)
        if not path.exists():
            raise BadInput(f"suite {suite}: no such file or directory")
        if path.is_file() and path.suffix not in (".robot", ".resource", ".txt"):
            raise BadInput(f"suite {suite}: not a Robot suite (.robot)")
        paths.append(path)
    return paths


@contextlib.contextmanager
def lab_for_run(env: str | None, output: Path, echo=print) -> Iterator[Path | None]:
    """Yield the run directory of the lab to test: the running one, or one started now."""
    if env not in (None, "lab"):
        yield None
        return
    from qa import lab

    run_dir = Path(os.environ.get("VOIPQA_LAB_DIR") or lab.default_run_dir())
    if lab.load_state(run_dir) is not None:
        echo(f"using the running lab in {run_dir}")
        yield run_dir
        return
    run_dir = output / "lab"
    echo(f"no lab running: starting one for this run in {run_dir}")
    try:
        lab.up(run_dir, seed=DEFAULT_SEED, plan=DEFAULT_PLAN, owner_pid=os.getpid())
        yield run_dir
    finally:
        lab.down(run_dir)
        echo("lab stopped")


@dataclass
class RunCapture:
    """The run's capture: its files once stopped, or why capture was off."""

    files: list[Path] = field(default_factory=list)
    off_reason: str | None = None

    def describe(self) -> str:
        if self.off_reason:
            return f"off: {self.off_reason}"
        return ", ".join(p.name for p in self.files) or "no file"


@contextlib.contextmanager
def capture_for_run(lab_dir: Path | None, output: Path, echo=print) -> Iterator[RunCapture]:
    """Capture the run's traffic (the fourth witness); the files are filled in when done.

    For the lab: its SIP ports, its media port block and the ephemeral UDP range on
    loopback. Capture that cannot run (no tool, no permission) is reported in one line
    and the run goes on with capture marked off.
    """
    from qa.capture import CaptureUnavailable
    from qa.capture.live import Capture, build_bpf

    run = RunCapture()
    state = None
    if lab_dir is not None:
        from qa import lab

        state = lab.load_state(lab_dir)
    sip_ports = {p for name, p in (state.ports.items() if state else ()) if name not in ("rtp_min", "rtp_max")}
    # media: the lab's rtpengine block and the agents' pool (qa.ports), plus the ephemeral
    # range where the carriers and the Python customer bind
    bpf = build_bpf(sorted(sip_ports), (LAB_MEDIA_POOL[0], ephemeral_range()[1]))
    capture = Capture(output / "capture.pcapng", bpf=bpf)
    try:
        capture.start()
    except CaptureUnavailable as exc:
        run.off_reason = str(exc)
        echo(f"capture off: {exc}")
        yield run
        return
    echo(f"capturing to {capture.path}")
    try:
        yield run
    finally:
        run.files.extend(capture.stop())


def run_suites(suites: list[Path], output: Path, *, env: str | None = None, lab_dir: Path | None = None,
               include: list[str] | None = None, exclude: list[str] | None = None,
               tests: list[str] | None = None, parallel: int = 1, echo=print) -> int:
    """Run the suites; return the number of failed cases (0 = all passed).

    ``parallel`` > 1 runs each case in its own Robot process (``qa.cases.parallel``).
    """
    output.mkdir(parents=True, exist_ok=True)
    (output / "calls.jsonl").unlink(missing_ok=True)  # records of this run only
    saved = {k: os.environ.get(k) for k in ("VOIPQA_LAB_DIR", "VOIPQA_OUTPUT", "VOIPQA_ENV")}
    os.environ["VOIPQA_OUTPUT"] = str(output.resolve())
    if lab_dir is not None:
        os.environ["VOIPQA_LAB_DIR"] = str(lab_dir)
    if env:
        os.environ["VOIPQA_ENV"] = env
    try:
        if parallel <= 1:
            return robot.run(*[str(s) for s in suites], outputdir=str(output), include=include or [],
                             exclude=exclude or [], test=tests or [], consolecolors="auto", **REPORT_FILES)
        return _run_parallel(suites, output, include, exclude, tests, parallel, echo)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run_parallel(suites: list[Path], output: Path, include: list[str] | None, exclude: list[str] | None,
                  tests: list[str] | None, parallel: int, echo) -> int:
    items = plan_items(suites, include, exclude, tests)
    if not items:
        raise BadInput("no case matches the suites and tags given")
    cases = sum(i.tests for i in items)
    echo(f"running {cases} cases in {len(items)} Robot processes, {parallel} at a time")

    def progress(result: ItemResult, done: int, total: int) -> None:
        status = "PASS" if result.returncode == 0 else "FAIL"
        echo(f"[{done:>3}/{total}] {status}  {result.item.name}  ({result.elapsed_s:.1f}s)")

    parts = output / "parts"
    results = asyncio.run(run_items(items, suites, parts, parallel, progress))
    merged = merge_outputs(sorted(r.output for r in results), output)
    stats = ExecutionResult(str(merged)).statistics.total
    shutil.rmtree(parts, ignore_errors=True)
    return stats.failed

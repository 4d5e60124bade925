"""Running Robot suites as a voipqa run: lab, environment, reports, summary, exit code.

The lab is used if one is running; otherwise one is started for the run (in the
output directory) and stopped afterwards, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import robot

from qa.errors import BadInput
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


def run_suites(suites: list[Path], output: Path, *, env: str | None = None, lab_dir: Path | None = None,
               include: list[str] | None = None, exclude: list[str] | None = None) -> int:
    """Run the suites with Robot; return Robot's count of failed tests (0 = all passed)."""
    output.mkdir(parents=True, exist_ok=True)
    (output / "calls.jsonl").unlink(missing_ok=True)  # records of this run only
    saved = {k: os.environ.get(k) for k in ("VOIPQA_LAB_DIR", "VOIPQA_OUTPUT", "VOIPQA_ENV")}
    os.environ["VOIPQA_OUTPUT"] = str(output)
    if lab_dir is not None:
        os.environ["VOIPQA_LAB_DIR"] = str(lab_dir)
    if env:
        os.environ["VOIPQA_ENV"] = env
    try:
        return robot.run(*[str(s) for s in suites], outputdir=str(output), include=include or [],
                         exclude=exclude or [], consolecolors="auto", **REPORT_FILES)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

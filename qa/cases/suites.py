"""Running Robot suites as a voipqa run: lab, environment, reports, summary, exit code.

The lab is used if one is running; otherwise one is started for the run (in the
output directory) and stopped afterwards, also on Ctrl-C, SIGTERM or a failed start.

Everything a run can reject is checked before anything starts (``preflight``): the
output directory, the environment, and that the suites and tags select a case; a run
that would fail every case on the same bad input never starts a lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import signal
from dataclasses import dataclass, field
import os
import shutil
from pathlib import Path
from typing import Iterator
from xml.etree import ElementTree

from robot.api import ExecutionResult

from qa.cases.parallel import ItemResult, StopRequest, WorkItem, merge_outputs, plan_items, run_items
from qa.errors import BadInput
from qa.ports import LAB_MEDIA_POOL
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


def environment_sip_ports(env: str | None) -> set[int]:
    """The SIP ports an environment file names: the target's (UDP/TCP, TLS) and the carriers'."""
    if env in (None, "lab"):
        return set()
    from qa.config import find_environment, parse_environment_file

    spec = parse_environment_file(find_environment(env))
    ports = spec.target.ports
    named = {ports.udp, ports.tcp, ports.tls, ports.tls_expired, *spec.carrier.sip_ports}
    return {p for p in named if p is not None}


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
def capture_for_run(lab_dir: Path | None, output: Path, echo=print, env: str | None = None) -> Iterator[RunCapture]:
    """Capture the run's traffic (the fourth witness); the files are filled in when done.

    For the lab: its SIP ports (UDP and TCP); for an environment file: the target's ports
    and its carriers' ``sip_ports``; for any run, UDP from the lab's media block up to the
    top of the port space on loopback. Capture that cannot run (no tool, no permission) is
    reported in one line and the run goes on with capture marked off.
    """
    from qa.capture import CaptureUnavailable
    from qa.capture.live import Capture, build_bpf

    run = RunCapture()
    state = None
    if lab_dir is not None:
        from qa import lab

        state = lab.load_state(lab_dir)
    sip_ports = {p for name, p in (state.ports.items() if state else ()) if name not in ("rtp_min", "rtp_max")}
    sip_ports |= environment_sip_ports(env)
    # UDP: the lab's rtpengine block and the agents' pool (qa.ports), the ephemeral range
    # (the Python customer's media) and the listeners above it (an environment file's lab
    # or platform, the carriers: qa.ports.listen_pool)
    bpf = build_bpf(sorted(sip_ports), (LAB_MEDIA_POOL[0], 65535))
    capture = Capture(output / "capture.pcapng", bpf=bpf)
    try:
        capture.start()
    except CaptureUnavailable as exc:
        run.off_reason = str(exc)
        echo(f"capture off: {exc}")
        yield run
        return
    echo(f"capturing to {capture.path}")
    # the Robot processes the run starts find the capture here (the Wireshark keywords)
    os.environ["VOIPQA_CAPTURE"] = str(capture.path)
    try:
        yield run
    finally:
        os.environ.pop("VOIPQA_CAPTURE", None)
        run.files.extend(capture.stop())


def check_output(output: Path) -> None:
    """``--output`` must be a directory voipqa can create or write: checked before the run."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise BadInput(f"--output {output}: exists and is not a directory")
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if not existing.is_dir():
        raise BadInput(f"--output {output}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(f"--output {output}: {existing} is not writable")


def check_environment(env: str | None) -> None:
    """An environment file (``--env NAME|FILE``) is read and validated now, passwords
    included, so a bad one is one line naming the file and field before any case runs.
    The lab's environment exists once the lab is up."""
    if env in (None, "lab"):
        return
    from qa.environments import load_environment

    load_environment(env)


def select_items(suites: list[Path], include: list[str] | None, exclude: list[str] | None,
                 tests: list[str] | None) -> list[WorkItem]:
    """The run's work items; none selected is bad input naming the filters."""
    items = plan_items(suites, include, exclude, tests)
    if not items:
        given = [f"{flag} {value}" for flag, values in (("--include", include), ("--exclude", exclude),
                                                        ("--test", tests)) for value in values or ()]
        where = ", ".join(str(s) for s in suites)
        raise BadInput(f"{' '.join(given) or 'the suites'}: no case matches in {where}")
    return items


def quiet_robot_console() -> None:
    """Robot's own "Output: / Log: / Report:" lines would repeat at every report rewrite;
    voipqa prints the report paths once, in its summary."""
    from robot.output import LOGGER

    LOGGER.unregister_console_logger()


def run_suites(suites: list[Path], output: Path, *, items: list[WorkItem], env: str | None = None,
               lab_dir: Path | None = None, parallel: int = 1, stop: StopRequest | None = None,
               echo=print) -> int | None:
    """Run the items; return the number of failed cases (0 = all passed), or None when
    the run was stopped before any case finished (then there is no report).

    Each item runs in its own Robot process, ``parallel`` at once (``qa.cases.parallel``).
    A ``stop`` request ends the run early with the reports of the cases that finished.
    """
    output.mkdir(parents=True, exist_ok=True)
    for name in ("calls.jsonl", *REPORT_FILES.values()):
        (output / name).unlink(missing_ok=True)  # files of this run only
    saved = {k: os.environ.get(k) for k in ("VOIPQA_LAB_DIR", "VOIPQA_OUTPUT", "VOIPQA_ENV")}
    os.environ["VOIPQA_OUTPUT"] = str(output.resolve())
    if lab_dir is not None:
        os.environ["VOIPQA_LAB_DIR"] = str(lab_dir)
    if env:
        os.environ["VOIPQA_ENV"] = env
    try:
        return _run_parallel(suites, output, items, parallel, stop or StopRequest(), echo)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_TOTAL_STAT = re.compile(r'<total>\s*<stat pass="(\d+)" fail="(\d+)" skip="(\d+)"')


def item_status(result: ItemResult) -> str:
    """PASS, FAIL, or SKIP when every case of the item was skipped (Robot exits 0 then too,
    and a skipped case shown as passed would hide that it never ran)."""
    if result.returncode != 0:
        return "FAIL"
    try:
        with open(result.output, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            tail = fh.read().decode(errors="replace")
    except OSError:
        return "PASS"
    found = _TOTAL_STAT.search(tail)
    return "SKIP" if found and found[1] == found[2] == "0" and int(found[3]) > 0 else "PASS"


def _run_parallel(suites: list[Path], output: Path, items: list[WorkItem], parallel: int, stop: StopRequest,
                  echo) -> int | None:
    cases = sum(i.tests for i in items)
    echo(f"running {cases} cases in {len(items)} Robot processes, {parallel} at a time")

    def progress(result: ItemResult, done: int, total: int) -> None:
        echo(f"[{done:>3}/{total}] {item_status(result)}  {result.item.name}  ({result.elapsed_s:.1f}s)")

    parts = output / "parts"
    results = asyncio.run(run_items(items, suites, parts, parallel, progress, stop=stop))
    if stop.requested:
        name = signal.Signals(stop.signum).name
        echo(f"stopped by {name}: {len(results)} of {len(items)} Robot processes had finished; reporting those")
        results = [r for r in results if r.output.is_file()]
        if not results:
            shutil.rmtree(parts, ignore_errors=True)
            return None
    merged = merge_outputs(sorted(r.output for r in results), output)
    stats = ExecutionResult(str(merged)).statistics.total
    shutil.rmtree(parts, ignore_errors=True)
    return stats.failed


def keep_cdr_sources(output: Path, env: str | None, lab_dir: Path | None, echo=print) -> None:
    """Leave in ``output`` what ``voipqa cdr check --calls output/calls.jsonl`` needs once
    the lab is stopped or has billed other runs (``qa.cdr.snapshot``). A copy that fails
    costs the later check, not the run's reports: one line, and the run goes on."""
    import sqlite3

    try:
        _keep_cdr_sources(output, env, lab_dir)
    except (OSError, sqlite3.Error) as exc:
        echo(f"CDR sources not kept in {output / 'cdr'}: {exc}")


def _keep_cdr_sources(output: Path, env: str | None, lab_dir: Path | None) -> None:
    from qa.cdr import snapshot

    if lab_dir is not None:
        from qa import lab

        state = lab.load_state(lab_dir)
        if state is not None and Path(state.cdr_db).is_file():
            snapshot.snapshot_lab(output, Path(state.cdr_db), state.carrier_cdr)
    elif env not in (None, "lab"):
        from qa.config import find_environment

        snapshot.reference_environment(output, find_environment(env))


_TAG_RE = re.compile(r"<[^>]+>")
_LINK_RE = re.compile(r'<a\s[^>]*href="([^"]*)"[^>]*>(.*?)</a>', re.DOTALL)
_BREAK_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


def plain_message(message: str) -> str:
    """A Robot message as text: ``*HTML*`` messages lose their markup, links keep their target."""
    if not message.startswith("*HTML*"):
        return message
    text = _BREAK_RE.sub("\n", message[len("*HTML*"):].strip())
    text = _LINK_RE.sub(lambda m: f"{m.group(2)}: {m.group(1)}", text)
    return html.unescape(_TAG_RE.sub("", text))


def plain_xunit(path: Path) -> None:
    """Rewrite xunit.xml with plain-text messages: CI test views show them verbatim."""
    tree = ElementTree.parse(path)
    changed = False
    for element in tree.iter():
        message = element.get("message")
        if message and message.startswith("*HTML*"):
            element.set("message", plain_message(message))
            changed = True
        if element.text and element.text.startswith("*HTML*"):
            element.text = plain_message(element.text)
            changed = True
    if changed:
        tree.write(path, encoding="UTF-8", xml_declaration=True)

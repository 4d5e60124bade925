"""Running an :class:`~qa.sipp.agent.Agent`: one bounded SIPp process, its traces parsed.

``run()`` never leaves a SIPp behind: the process gets the agent's ``-timeout`` plus a
margin; past that it is asked to quit (``Q`` on its control socket), then SIGTERM, then
SIGKILL, always by its own PID. Cancelling the awaiting task (Ctrl-C in a front end)
does the same before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from qa.errors import BadInput
from qa.tools import require_tool

from qa.sipp.agent import Agent, mask_argv, mask_secrets
from qa.sipp.outcome import Outcome
from qa.sipp.traces import (
    CallResult, build_calls, parse_error_file, parse_message_log, parse_stat_file, stat_summary,
)

#: Extra time SIPp gets beyond its own -timeout before voipqa stops it.
DEFAULT_MARGIN_S = 5.0
#: Upper bound for agents without a timeout (there must always be one).
UNBOUNDED_LIMIT_S = 3600.0

#: Lines SIPp prints when the scenario itself is the problem (-> BadInput).
_SCENARIO_ERRORS = (
    "Unable to load or parse",
    "Unsupported keyword",
    "Invalid XML",
    "is referenced",
    "<timewait> can only be",
    "No label",
    "Unknown element",
    "Unknown action",
)

Progress = Callable[[dict[str, Any]], "Awaitable[None] | None"]


@dataclass
class SippResult:
    """What one SIPp run produced."""

    exit_code: int | None
    outcome: Outcome
    calls: list[CallResult] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    stat_rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    workdir: Path | None = None
    argv: list[str] = field(default_factory=list)      # masked
    wall_s: float = 0.0
    stopped_by_voipqa: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    def describe(self) -> str:
        """One line: outcome, calls, first error."""
        answered = sum(1 for c in self.calls if c.answered_ok)
        line = f"SIPp {self.outcome.describe()}; {len(self.calls)} call(s), {answered} answered"
        if self.errors:
            line += f"; {self.errors[0]}"
        return line


def _files(agent: Agent, workdir: Path) -> dict[str, Path]:
    return agent.trace_files(workdir)


def _send_quit(agent: Agent) -> None:
    """Ask SIPp to stop now through its control socket (best effort)."""
    if not agent.control_port:
        return
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"Q", (agent.local_ip, agent.control_port))
    except OSError:
        pass


async def _stop(proc: asyncio.subprocess.Process, agent: Agent, *, grace_s: float = 0.5) -> None:
    """Q on the control socket, then SIGTERM, then SIGKILL, by PID; waits for the exit."""
    if proc.returncode is not None:
        return
    _send_quit(agent)
    for sig, wait_s in ((None, grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        if sig is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), wait_s)
            return
        except asyncio.TimeoutError:
            continue


async def _notify(callback: Progress | None, row: dict[str, Any]) -> None:
    if callback is None:
        return
    result = callback(row)
    if inspect.isawaitable(result):
        await result


def _scenario_error(agent: Agent, lines: list[str]) -> BadInput | None:
    for line in lines:
        if any(marker in line for marker in _SCENARIO_ERRORS):
            where = agent.scenario_path or f"built-in scenario {agent.scenario}"
            return BadInput(f"{where}: SIPp could not use the scenario: {line.strip()}")
    return None


async def run(agent: Agent, workdir: Path, *, on_progress: Progress | None = None,
              margin_s: float = DEFAULT_MARGIN_S) -> SippResult:
    """Run SIPp for ``agent`` with its traces in ``workdir``; parse them into a SippResult.

    Raises MissingTool (no sipp), BadInput (scenario file missing or rejected by SIPp,
    with SIPp's own error line). ``on_progress`` (sync or async) gets each new
    ``-trace_stat`` row while SIPp runs (about once per ``agent.stat_period_s``).
    """
    sipp = require_tool("sipp")
    agent.check_scenario()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    files = _files(agent, workdir)
    for name in ("messages", "errors", "stat", "screen", "logs"):
        files[name].unlink(missing_ok=True)
    argv = agent.argv(workdir, sipp=sipp)
    limit = (agent.effective_timeout_s or UNBOUNDED_LIMIT_S) + margin_s

    started = time.monotonic()
    stopped = False
    with open(files["stdout"], "wb") as out, open(files["stderr"], "wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=str(workdir), stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,
        )
    try:
        seen_rows = 0
        while True:
            remaining = limit - (time.monotonic() - started)
            if remaining <= 0:
                stopped = True
                await _stop(proc, agent)
                break
            try:
                await asyncio.wait_for(asyncio.shield(proc.wait()), min(1.0, remaining))
                break
            except asyncio.TimeoutError:
                pass
            if on_progress is not None:
                rows = parse_stat_file(files["stat"])
                for row in rows[seen_rows:]:
                    await _notify(on_progress, row)
                seen_rows = max(seen_rows, len(rows))
    except BaseException:
        # cancelled (Ctrl-C) or the callback failed: never leave SIPp running
        await asyncio.shield(_stop(proc, agent, grace_s=0.2))
        raise
    wall = time.monotonic() - started

    errors = parse_error_file(files["errors"])
    stderr_lines = parse_error_file(files["stderr"])
    code = proc.returncode
    outcome = Outcome.from_exit(code, errors + stderr_lines)
    if stopped:
        outcome = Outcome.TIMED_OUT
        errors.append(f"voipqa stopped SIPp after {wall:.1f} s (timeout {agent.effective_timeout_s} s "
                      f"+ {margin_s:g} s margin)")
    elif code not in (0,):
        problem = _scenario_error(agent, stderr_lines + errors)
        if problem is not None:
            raise problem
    for line in stderr_lines:
        if line not in errors and not line.startswith("Resolving remote host"):
            errors.append(line)

    rows = parse_stat_file(files["stat"])
    if on_progress is not None:
        for row in rows[seen_rows:]:
            await _notify(on_progress, row)
    calls = build_calls(parse_message_log(files["messages"]))
    for call in calls:
        if call.role == "caller":
            call.dtmf_sent = agent.dtmf
    return SippResult(
        exit_code=code,
        outcome=outcome,
        calls=calls,
        stats=stat_summary(rows),
        stat_rows=rows,
        errors=[mask_secrets(e) for e in errors],
        workdir=workdir,
        argv=mask_argv(argv),
        wall_s=round(wall, 3),
        stopped_by_voipqa=stopped,
    )

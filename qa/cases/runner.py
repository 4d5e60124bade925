"""The case runner: customer calls placed concurrently, witnesses joined, verdicts written.

A ``Session`` owns one asyncio loop in a background thread, so callers that are not
async themselves (Robot keywords, plain pytest) can start many calls at once and wait
for each later: a suite takes about as long as its slowest case (DESIGN §1).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from qa.cases.checks import Expectation, judge
from qa.cases.record import CallRecord, CallRecordWriter
from qa.cdr.source import wait_for_rows
from qa.config import Environment
from qa.errors import BadInput
from qa.paths import SIPP_DIR
from qa.sipp import Agent, run as run_sipp

#: The customer scenario every plain call uses (DESIGN: scenarios are SIPp XML in sipp/).
UAC_CALL = SIPP_DIR / "uac_call.xml"


@dataclass(frozen=True)
class CallSpec:
    """One customer call: who calls whom, how, and what the case expects."""

    case: str
    from_user: str
    to: str
    password: str | None = None  # None: the environment's password for from_user
    transport: str = "udp"
    duration_s: float = 1.0
    codecs: tuple[str, ...] = ("PCMU", "PCMA", "telephone-event")
    expect: Expectation = field(default_factory=Expectation)
    timeout_s: float = 30.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80] or "case"


class Session:
    """Places calls against one environment and writes their records to calls.jsonl."""

    def __init__(self, env: Environment, output: Path) -> None:
        self.env = env
        self.output = Path(output)
        self.writer = CallRecordWriter(self.output / "calls.jsonl")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="voipqa-calls", daemon=True)
        self._thread.start()
        self._count = 0
        self._lock = threading.Lock()

    def start(self, spec: CallSpec) -> Future[CallRecord]:
        """Start a call now; the future resolves to its judged, written record."""
        with self._lock:
            self._count += 1
            workdir = self.output / "sipp" / f"{_slug(spec.case)}-{os.getpid()}-{self._count}"
        return asyncio.run_coroutine_threadsafe(self._call(spec, workdir), self._loop)

    def place(self, spec: CallSpec) -> CallRecord:
        """Place a call and wait for its record."""
        return self.start(spec).result()

    def close(self) -> None:
        """Cancel calls still running (their SIPp processes are killed) and stop the loop."""
        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_cancel_all(), self._loop).result(timeout=15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    async def _call(self, spec: CallSpec, workdir: Path) -> CallRecord:
        record = await self._customer(spec, workdir)
        await asyncio.to_thread(self._join_witnesses, record, spec)
        judge(record, spec.expect)
        self.writer.write(record)
        return record

    def _agent(self, spec: CallSpec) -> Agent:
        password = spec.password if spec.password is not None else self.env.password(spec.from_user)
        return Agent(
            scenario=UAC_CALL,
            remote=self.env.target.address(),
            transport=spec.transport,
            service=spec.to,
            auth_user=spec.from_user,
            auth_password=password,
            keys={"from_user": spec.from_user, "domain": self.env.target.domain or self.env.target.host,
                  "codecs": ",".join(spec.codecs)},
            calls=1,
            call_duration_ms=int(spec.duration_s * 1000),
            timeout_s=spec.timeout_s,
        )

    async def _customer(self, spec: CallSpec, workdir: Path) -> CallRecord:
        if spec.transport not in ("udp", "tcp"):
            raise BadInput(f"case {spec.case}: transport {spec.transport!r} is not supported yet (udp, tcp)")
        result = await run_sipp(self._agent(spec), workdir)
        record = CallRecord(case=spec.case, from_=spec.from_user, to=spec.to, transport=spec.transport)
        if not result.calls:
            record.fail("customer", f"no call was placed: SIPp {result.outcome.describe()}")
            return record
        call = result.calls[0]
        for name in ("call_id", "offered_codecs", "answered_codec", "started", "answered", "ended",
                     "final_code", "pdd_ms", "setup_ms", "duration_s"):
            setattr(record, name, getattr(call, name))
        return record

    def _join_witnesses(self, record: CallRecord, spec: CallSpec) -> None:
        """Add what the carrier and the platform saw of this Call-ID."""
        if record.call_id is None:
            return
        answered = record.final_code == 200
        if self.env.carrier_cdr is not None:
            lines = wait_for_rows(self.env.carrier_cdr, record.call_id, expect=spec.expect.carrier_sees is not False)
            if lines:
                record.carrier = lines[-1] | ({"count": len(lines)} if len(lines) > 1 else {})
                record.carrier_code = lines[-1].get("final_code")
        if self.env.platform_cdr is not None:
            rows = wait_for_rows(self.env.platform_cdr, record.call_id, expect=answered)
            if rows:
                cdr = {k: v for k, v in rows[-1].items() if k != "raw"}
                record.cdr = cdr | {"count": len(rows)}

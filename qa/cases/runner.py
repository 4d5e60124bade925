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
from pathlib import Path

from qa.cases import customers
from qa.cases.checks import judge
from qa.cases.customers import CallSpec
from qa.cdr.normalise import call_cdr
from qa.cdr.source import wait_for_rows, written_since
from qa.config import Environment
from qa.record import CallRecord, CallRecordWriter

#: Customer witness fields copied into the call record's contract fields (DESIGN §6).
CONTRACT_FIELDS = ("call_id", "offered_codecs", "answered_codec", "started", "answered", "ended",
                   "final_code", "pdd_ms", "setup_ms", "duration_s")
#: Customer observations kept in the record's ``customer`` object.
CUSTOMER_FIELDS = ("method", "final_reason", "challenges", "bye_by", "answered_codecs", "session_expires", "min_se",
                   "request_bytes", "transport_sent", "retransmissions", "provisional")


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
        wire = wire_expectation(spec, record.customer, media_quality(self.env))
        record.pcap = {"expect": wire}
        record.expect = spec.expect.to_json(media=wire["media"])
        self.writer.write(record)
        return record

    async def _customer(self, spec: CallSpec, workdir: Path) -> CallRecord:
        password = spec.password if spec.password is not None else self.env.password(spec.from_user)
        outcome = await customers.place(spec, self.env, password, workdir)
        record = CallRecord(case=spec.case, test=spec.test, from_=spec.from_user, to=spec.to, transport=spec.transport,
                            dtmf_sent=spec.dtmf)
        record.customer = dict(outcome.extra) | {"workdir": str(workdir)}
        call = outcome.call
        if call is None:
            record.fail("customer", outcome.problem or "no call was placed")
            return record
        for name in CONTRACT_FIELDS:
            setattr(record, name, getattr(call, name))
        record.customer |= {name: getattr(call, name, None) for name in CUSTOMER_FIELDS}
        if getattr(call, "min_se", None) is not None:
            record.customer["final_headers"] = {"Min-SE": call.min_se}
        if outcome.problem:
            record.customer["problem"] = outcome.problem
        return record

    def _join_witnesses(self, record: CallRecord, spec: CallSpec) -> None:
        """Add what the carrier and the platform saw of this Call-ID."""
        if record.call_id is None:
            return
        if self.env.carrier_cdr is not None:
            lines = wait_for_rows(self.env.carrier_cdr, record.call_id, expect=spec.expect.carrier_sees is not False,
                                  keep=written_since(record.started))
            if lines:
                record.carrier = _handling_carrier(lines)
                record.carrier_code = record.carrier.get("final_code")
                record.dtmf_heard = record.carrier.get("dtmf_heard")
        if self.env.platform_cdr is not None and spec.expect.check_cdr:
            rows = wait_for_rows(self.env.platform_cdr, record.call_id, expect=record.final_code == 200)
            if rows:
                record.cdr = call_cdr(rows)


#: Media quality an answered call with media must reach on the wire when the environment's
#: ``thresholds`` do not say (loopback measures 0 loss, jitter < 4 ms, MOS 4.4): generous
#: enough for a busy runner, tight enough that a platform dropping or bunching RTP fails.
MEDIA_QUALITY = {"loss_pct_max": 5.0, "jitter_ms_max": 40.0, "mos_min": 3.5}


def media_quality(env: Environment) -> dict[str, float]:
    """The per-call media bounds the wire judges: the environment's ``thresholds``
    (``loss_pct_max``, ``jitter_ms_max``, ``mos_min``) over :data:`MEDIA_QUALITY`."""
    thresholds = getattr(env.settings, "thresholds", None)
    given = {k: getattr(thresholds, k, None) for k in MEDIA_QUALITY}
    return MEDIA_QUALITY | {k: float(v) for k, v in given.items() if v is not None}


def wire_expectation(spec: CallSpec, customer: dict | None = None,
                     quality: dict[str, float] | None = None) -> dict:
    """What the wire witness judges of this call once the run's capture is analysed
    (``qa.cases.wire.wire_verdict``): kept in the record's ``pcap.expect``. Media is
    expected both ways when the customer sent RTP (its record's ``media_sent``, which knows
    when the negotiated codec had no pcap), unless the case said otherwise."""
    sent = customers.customer_sent_rtp(customer or {})
    rtp = customers.sends_rtp(spec) if sent is None else sent
    media = spec.expect.media or ("both" if rtp else None)
    expect: dict = {"media": media, "customer_rtp": rtp}
    if quality and media in ("both", "early"):
        expect["quality"] = dict(quality)
    return expect


def _handling_carrier(lines: list[dict]) -> dict:
    """The carrier line that decided the call (the one that answered, else the last one),
    with the carriers tried in order when the platform failed over."""
    ordered = sorted(lines, key=lambda line: line.get("received") or 0)
    answered = [line for line in ordered if line.get("final_code") == 200]
    chosen = dict(answered[-1] if answered else ordered[-1])
    if len(ordered) > 1:
        chosen["tried"] = [line.get("carrier") for line in ordered]
    return chosen

"""Every call of a load run against the platform's CDRs, by Call-ID (``cdr.json``).

The reconciliation is ``qa.cdr.reconcile`` — the code behind ``voipqa cdr check`` — fed
in batches from ``calls.csv`` so a soak's millions of calls never sit in memory at once.
A platform that loses CDRs under load (KAMAILIO-NOTES: db_sqlite without a busy timeout
drops rows with "database is locked" while SIP looks clean) shows here as ``missing``
calls, the loss in % of the answered calls checked, the billable seconds lost, and per
second of the run (``by_second``) so the verdict can say at which rate the loss began.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from qa.cdr.reconcile import reconcile
from qa.cdr.source import CdrSource
from qa.load import model
from qa.load.model import CallRow
from qa.record import CallRecord

BATCH = 5000
#: Most problem examples kept in cdr.json.
EXAMPLES = 20


def record_of(row: CallRow) -> CallRecord:
    """The customer witness of one load call, as the reconciliation reads it."""
    return CallRecord(case="load", call_id=row.call_id, from_=row.from_user, to=row.to_user,
                      started=row.started, answered=row.answered_at, ended=row.ended, final_code=row.code,
                      pdd_ms=row.pdd_ms, setup_ms=row.setup_ms, duration_s=row.duration_s)


def _batches(rows: Iterable[CallRow], size: int) -> Iterator[list[CallRow]]:
    batch: list[CallRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def settle(source: CdrSource, last_call_ids: list[str], *, timeout_s: float = 5.0) -> None:
    """Wait (bounded) until the last calls' CDRs stop arriving: platforms write them late."""
    if not last_call_ids or not hasattr(source, "rows_for"):
        return
    deadline = time.monotonic() + timeout_s
    seen = -1
    while time.monotonic() < deadline:
        found = len(source.rows_for(last_call_ids))  # type: ignore[attr-defined]
        if found == len(last_call_ids) or found == seen:
            return
        seen = found
        time.sleep(0.5)


def check(run_dir: Path, source: CdrSource | None, *, describe: str = "", tolerance_s: float = 1.0,
          batch: int = BATCH) -> dict[str, Any]:
    """Reconcile ``run_dir/calls.csv`` with ``source``; write and return ``cdr.json``."""
    out_path = Path(run_dir) / model.CDR_FILE
    if source is None:
        result: dict[str, Any] = {"checked": 0, "skipped": "the environment has no CDR source", "source": None}
        model.write_json(out_path, result)
        return result
    tail = [r.call_id for r in _last(model.iter_calls(Path(run_dir) / model.CALLS_FILE), 50) if r.answered]
    settle(source, tail)
    totals = {"checked": 0, "answered": 0, "missing": 0, "duplicate": 0, "mismatched": 0}
    lost_s = 0.0
    by_second: dict[int, list[int]] = {}
    examples: list[dict[str, Any]] = []
    for rows in _batches(model.iter_calls(Path(run_dir) / model.CALLS_FILE), batch):
        t_of = {r.call_id: r.t for r in rows}
        result_of = reconcile([record_of(r) for r in rows], source, None, tolerance_s=tolerance_s,
                              find_orphans=False)
        for call in result_of.calls:
            kinds = {p.kind for p in call.problems}
            slot = by_second.setdefault(t_of.get(call.call_id, 0), [0, 0])
            if call.answered:
                totals["answered"] += 1
                slot[0] += 1
                if "missing" in kinds:
                    slot[1] += 1
            totals["checked"] += 1
            for kind in ("missing", "duplicate", "mismatched"):
                totals[kind] += kind in kinds
            lost_s += call.billed_lost_s
            if call.problems and len(examples) < EXAMPLES:
                p = call.problems[0]
                examples.append({"call_id": call.call_id, "kind": p.kind, "detail": p.detail})
    answered = totals["answered"]
    result = {
        **totals,
        "loss_pct": round(100.0 * totals["missing"] / answered, 3) if answered else None,
        "billable_seconds_lost": round(lost_s, 3),
        "source": describe,
        "by_second": {str(t): v for t, v in sorted(by_second.items())},
        "examples": examples,
    }
    model.write_json(out_path, result)
    return result


def _last(rows: Iterable[CallRow], n: int) -> list[CallRow]:
    from collections import deque

    return list(deque(rows, maxlen=n))

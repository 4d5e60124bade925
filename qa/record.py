"""The call record (docs/call-record.md): one JSON object per call, the four witnesses joined.

Written as each call ends (append + flush) so a killed run keeps every call it had.
Reports, the gate and the Robot keywords all read this file. It is a contract shared by
the services (the case runner writes it; ``cdr check``, load and reports read it), so it
lives below them, beside ``config`` and ``errors``: a service never imports another to
reach it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

#: How far apart two witnesses' durations of one call may be (the customer's, the
#: carrier's, the platform's CDR): ±1 s. The case runner and ``cdr check`` both judge by it.
DURATION_TOLERANCE_S = 1.0

#: The canonical columns of a platform CDR, as a record's ``cdr`` holds them (whatever the
#: source: an environment's ``cdr.mapping`` names its column for each).
CDR_COLUMNS = (
    "call_id", "from_user", "to_user", "account", "start_time", "answer_time",
    "end_time", "duration", "sip_code", "sip_reason", "carrier",
)

#: Field order of the DESIGN §6 contract; ``to_json`` keeps it.
RECORD_FIELDS = (
    "case", "test", "call_id", "from", "to", "transport", "offered_codecs", "answered_codec",
    "started", "answered", "ended", "final_code", "pdd_ms", "setup_ms", "duration_s",
    "dtmf_sent", "dtmf_heard", "carrier_code", "customer", "carrier", "cdr", "pcap", "expect", "verdict",
    "reasons",
)


@dataclass
class CallRecord:
    """One call as the four witnesses saw it, with a verdict and the reasons for it.

    ``from_`` is the calling account (``from`` in JSON); ``customer`` holds what the
    customer saw beyond the contract fields (challenges, who hung up, Record-Route,
    the final response's headers, TLS); ``carrier`` is the carrier's CDR line (None
    when the carrier never saw the call), ``cdr`` the platform's.
    """

    case: str
    test: str | None = None  # the Robot test that placed the call (test_id), None outside Robot
    call_id: str | None = None
    from_: str | None = None
    to: str | None = None
    transport: str = "udp"
    offered_codecs: list[str] = field(default_factory=list)
    answered_codec: str | None = None
    started: float | None = None
    answered: float | None = None
    ended: float | None = None
    final_code: int | None = None
    pdd_ms: float | None = None
    setup_ms: float | None = None
    duration_s: float | None = None
    dtmf_sent: str = ""
    dtmf_heard: str | None = None
    carrier_code: int | None = None
    customer: dict[str, Any] = field(default_factory=dict)
    carrier: dict[str, Any] | None = None
    cdr: dict[str, Any] | None = None
    pcap: dict[str, Any] | None = None
    expect: dict[str, Any] | None = None  # what the verdict was judged against (checks.Expectation.to_json)
    verdict: str = "pending"
    reasons: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """One line of calls.jsonl, keys in contract order."""
        data = asdict(self)
        data["from"] = data.pop("from_")
        return json.dumps({k: data[k] for k in RECORD_FIELDS}, default=str)

    @classmethod
    def from_json(cls, line: str) -> "CallRecord":
        data = json.loads(line)
        data["from_"] = data.pop("from", None)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def passed(self) -> bool:
        """Every witness agreed with the case (``assert call.passed, call.reasons``)."""
        return self.verdict == "pass"

    def fail(self, witness: str, reason: str) -> None:
        """Record a disagreement; ``witness`` is customer, carrier, platform or wire."""
        self.reasons.append(f"{witness}: {reason}")
        self.verdict = "fail"


class CallRecordWriter:
    """Appends records to calls.jsonl, flushing and fsyncing each line.

    Safe across threads and processes (cases run concurrently, each Robot process
    appending to the same file): one locked write per line.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, record: CallRecord) -> None:
        line = record.to_json() + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def test_id(suite_source: str | Path, test_name: str) -> str:
    """A Robot test as a record's ``test``: ``suite file::test name`` (unique in a run,
    where test names alone are not: two suites may have a test of the same name)."""
    return f"{suite_source}::{test_name}"


def read_records(path: Path) -> Iterator[CallRecord]:
    """Yield the records of a calls.jsonl; a torn last line (killed run) is skipped."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield CallRecord.from_json(line)
            except (ValueError, TypeError):
                continue

"""Where CDRs come from: the platform's SQL table, or JSON lines (the carrier's CDRs).

Every source yields rows in one canonical shape (``CANONICAL_COLUMNS``) through a
column mapping, so the reconciliation never knows which platform billed the call.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable, Protocol

from qa.errors import BadInput

#: The columns the reconciliation reads; a mapping names the source column for each.
CANONICAL_COLUMNS = (
    "call_id", "from_user", "to_user", "account", "start_time", "answer_time",
    "end_time", "duration", "sip_code", "sip_reason", "carrier",
)


class CdrSource(Protocol):
    """Anything that can return the CDR rows of a Call-ID."""

    def rows(self, call_id: str) -> list[dict[str, Any]]: ...


def _canonical(row: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {col: row.get(mapping.get(col, col)) for col in CANONICAL_COLUMNS} | {"raw": row}


class SqliteCdrSource:
    """CDRs in an SQLite table or view (the lab's ``voipqa_cdr`` by default)."""

    def __init__(self, path: Path, table: str = "voipqa_cdr", mapping: dict[str, str] | None = None) -> None:
        if not Path(path).is_file():
            raise BadInput(f"CDR database {path}: no such file")
        if not table.replace("_", "").isalnum():
            raise BadInput(f"CDR table name {table!r}: only letters, digits and _ are allowed")
        self.path = Path(path)
        self.table = table
        self.mapping = mapping or {}

    def rows(self, call_id: str) -> list[dict[str, Any]]:
        column = self.mapping.get("call_id", "call_id")
        uri = f"file:{self.path}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            cur = conn.execute(f'SELECT * FROM "{self.table}" WHERE "{column}" = ?', (call_id,))
            return [_canonical(dict(r), self.mapping) for r in cur.fetchall()]


class JsonlCdrSource:
    """CDRs as JSON lines in one or more files (the native carrier writes these)."""

    def __init__(self, paths: Iterable[Path], mapping: dict[str, str] | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self.mapping = mapping or {}

    def rows(self, call_id: str) -> list[dict[str, Any]]:
        column = self.mapping.get("call_id", "call_id")
        found: list[dict[str, Any]] = []
        for path in self.paths:
            if not path.is_file():
                continue
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue  # a line torn by a crash
                    if isinstance(row, dict) and row.get(column) == call_id:
                        found.append(row)
        return found


def open_source(dsn: str, mapping: dict[str, str] | None = None, table: str = "voipqa_cdr") -> CdrSource:
    """A CDR source from a DSN: ``sqlite:///path.db``, a ``.db``/``.sqlite`` path or a ``.jsonl`` path."""
    if dsn.startswith("sqlite:///"):
        return SqliteCdrSource(Path(dsn[len("sqlite:///"):]), table, mapping)
    path = Path(dsn)
    if path.suffix in {".db", ".sqlite", ".sqlite3"}:
        return SqliteCdrSource(path, table, mapping)
    if path.suffix in {".jsonl", ".json"}:
        return JsonlCdrSource([path], mapping)
    raise BadInput(f"CDR source {dsn!r}: use sqlite:///PATH, a .db file or a .jsonl file")


def wait_for_rows(source: CdrSource, call_id: str, *, expect: bool, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Poll until rows appear (platforms write CDRs just after the BYE) or the timeout ends.

    With ``expect=False`` a short grace period still passes, so a CDR written late for a
    call that should have none is caught.
    """
    deadline = time.monotonic() + (timeout if expect else min(timeout, 1.0))
    while True:
        rows = source.rows(call_id)
        if (rows and expect) or time.monotonic() >= deadline:
            return rows
        time.sleep(0.1)

"""Where CDRs come from: the platform's SQL table, a CSV export, or JSON lines (carrier CDRs).

Every source yields rows in one canonical shape (``CANONICAL_COLUMNS``, values normalised
by ``qa.cdr.normalise``) through a column mapping, so the reconciliation never knows which
platform billed the call. Two ways of asking:

* ``rows(call_id)`` — one call, polled by the case runner while the call ends;
* ``rows_for(call_ids)`` and ``rows_in_window(start, end)`` — a whole run at once, for the
  reconciliation (one query instead of one per call, and the CDRs nobody asked for).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, runtime_checkable

from qa.cdr.normalise import (CANONICAL_COLUMNS, CARRIER_MAPPING, canonical_row, check_mapping, column_of,
                              to_unix)
from qa.errors import BadInput

__all__ = [
    "CANONICAL_COLUMNS", "CARRIER_MAPPING", "BatchCdrSource", "CdrSource", "CsvCdrSource", "JsonlCdrSource",
    "carrier_source", "open_source", "wait_for_rows", "written_since",
]

Row = dict[str, Any]


class CdrSource(Protocol):
    """Anything that can return the CDR rows of a Call-ID."""

    def rows(self, call_id: str) -> list[Row]: ...


@runtime_checkable
class BatchCdrSource(Protocol):
    """A source the reconciliation can ask about a whole run at once."""

    def rows(self, call_id: str) -> list[Row]: ...

    def rows_for(self, call_ids: Iterable[str]) -> dict[str, list[Row]]: ...

    def rows_in_window(self, start: float, end: float) -> list[Row]: ...


class _FileSource:
    """Shared scanning for sources that are files read top to bottom (CSV, JSON lines).

    ``verbatim`` returns the rows as written instead of canonical ones: the case runner
    joins the carrier's own CDR line into the call record (DESIGN §6).
    """

    def __init__(self, paths: Iterable[Path], mapping: Mapping[str, str] | None, verbatim: bool) -> None:
        self.paths = [Path(p) for p in paths]
        self.mapping = check_mapping(mapping, self.describe())
        self.verbatim = verbatim

    def describe(self) -> str:
        return ", ".join(str(p) for p in self.paths) or "CDR files"

    def check(self) -> None:
        """Nothing to connect to: the files were checked when the source was made."""

    def _lines(self) -> Iterator[Row]:
        raise NotImplementedError

    def _shape(self, row: Row) -> Row:
        return dict(row) if self.verbatim else canonical_row(row, self.mapping)

    def rows(self, call_id: str) -> list[Row]:
        return self.rows_for([call_id]).get(call_id, [])

    def rows_for(self, call_ids: Iterable[str]) -> dict[str, list[Row]]:
        wanted = set(call_ids)
        column = column_of(self.mapping, "call_id")
        found: dict[str, list[Row]] = {}
        for row in self._lines():
            call_id = row.get(column)
            if call_id is not None and str(call_id) in wanted:
                found.setdefault(str(call_id), []).append(self._shape(row))
        return found

    def rows_in_window(self, start: float, end: float) -> list[Row]:
        column = column_of(self.mapping, "start_time")
        return [self._shape(row) for row in self._lines()
                if (t := to_unix(row.get(column), column)) is not None and start <= t <= end]


class JsonlCdrSource(_FileSource):
    """CDRs as JSON lines in one or more files (the native carrier writes these).

    Files that do not exist yet are empty (a carrier that took no call wrote nothing);
    a line torn by a crash is skipped.
    """

    def __init__(self, paths: Iterable[Path], mapping: Mapping[str, str] | None = None, *,
                 verbatim: bool = False) -> None:
        super().__init__(paths, mapping, verbatim)

    def _lines(self) -> Iterator[Row]:
        for path in self.paths:
            if not path.is_file():
                continue
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        yield row


class CsvCdrSource(_FileSource):
    """CDRs exported as CSV with a header line; mapped columns must be in the header."""

    def __init__(self, path: Path, mapping: Mapping[str, str] | None = None, delimiter: str = ",") -> None:
        super().__init__([path], mapping, verbatim=False)
        self.path = Path(path)
        self.delimiter = delimiter
        if not self.path.is_file():
            raise BadInput(f"CDR file {self.path}: no such file")
        self._check_header()

    def _check_header(self) -> None:
        with open(self.path, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh, delimiter=self.delimiter), [])
        for canonical in ("call_id", *self.mapping):
            column = column_of(self.mapping, canonical)
            if column not in header:
                raise BadInput(f"CDR file {self.path}: no column {column!r} (for {canonical}) in the header "
                               f"({', '.join(header) or 'empty'})")

    def _lines(self) -> Iterator[Row]:
        with open(self.path, encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh, delimiter=self.delimiter)


def carrier_source(paths: Iterable[Path]) -> JsonlCdrSource:
    """The native carrier's CDR files as a canonical source (for the reconciliation)."""
    return JsonlCdrSource(paths, CARRIER_MAPPING)


_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb")
_USAGE = "use sqlite:///PATH, postgresql://…, mysql+pymysql://…, a .csv file or a .jsonl file"


def open_source(dsn: str, mapping: Mapping[str, str] | None = None, table: str = "voipqa_cdr", *,
                base: Path | None = None, delimiter: str = ",") -> BatchCdrSource:
    """A CDR source from a DSN: an SQLAlchemy URL, or a ``.csv``/``.jsonl``/``.db`` path.

    Relative file paths (also in ``sqlite:///relative.db``) are taken from ``base`` when
    given (the directory of the environment file that names them).
    """
    from qa.cdr.sql import SqlCdrSource  # SQLAlchemy loads only when a SQL source is used

    if "://" in dsn:
        scheme = dsn.split("://", 1)[0].split("+", 1)[0].lower()
        if scheme not in _SQL_SCHEMES:
            hint = " (did you mean postgresql://?)" if scheme == "postgres" else ""
            raise BadInput(f"CDR source {dsn.split('://', 1)[0]}://…: unsupported{hint}: {_USAGE}")
        if scheme == "sqlite" and base is not None:
            dsn = _rebase_sqlite(dsn, base)
        return SqlCdrSource(dsn, table, mapping)
    path = Path(dsn) if base is None else Path(base) / dsn
    suffix = path.suffix.lower()
    if suffix in {".db", ".sqlite", ".sqlite3"}:
        return SqlCdrSource(f"sqlite:///{path}", table, mapping)
    if suffix == ".csv":
        return CsvCdrSource(path, mapping, delimiter)
    if suffix in {".jsonl", ".json"}:
        if not path.is_file():
            raise BadInput(f"CDR file {path}: no such file")
        return JsonlCdrSource([path], mapping)
    raise BadInput(f"CDR source {dsn!r}: {_USAGE}")


def _rebase_sqlite(dsn: str, base: Path) -> str:
    prefix, _, path = dsn.partition(":///")
    if path and not path.startswith("/") and not path.startswith(":memory:"):
        return f"{prefix}:///{Path(base) / path}"
    return dsn


def wait_for_rows(source: CdrSource, call_id: str, *, expect: bool, timeout: float = 10.0,
                  keep: Callable[[Row], bool] | None = None) -> list[Row]:
    """Poll until rows appear (platforms write CDRs just after the BYE) or the timeout ends.

    With ``expect=False`` a short grace period still passes, so a CDR written late for a
    call that should have none is caught. ``keep`` drops rows that are not this call's
    (a Call-ID reused by an earlier run: see :func:`written_since`).
    """
    deadline = time.monotonic() + (timeout if expect else min(timeout, 1.0))
    while True:
        rows = [r for r in source.rows(call_id) if keep is None or keep(r)]
        if (rows and expect) or time.monotonic() >= deadline:
            return rows
        time.sleep(0.1)


#: How far a witness's clock may be behind the customer's (same host, or NTP-synchronised).
CLOCK_SLACK_S = 60.0


def written_since(started: float | None, field: str = "received") -> Callable[[Row], bool]:
    """Rows of a call placed at ``started`` (epoch s): a row whose ``field`` is older belongs
    to an earlier call with the same Call-ID. SIPp's Call-IDs are ``N-PID@host``, and a
    containerized SIPp runs as a low PID every time, so a carrier's CDR file that outlives
    one run holds the same Call-IDs again on the next."""
    def keep(row: Row) -> bool:
        value = row.get(field)
        return started is None or not isinstance(value, (int, float)) or value >= started - CLOCK_SLACK_S
    return keep

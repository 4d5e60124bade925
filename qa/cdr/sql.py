"""CDRs in an SQL table or view, through SQLAlchemy Core (sqlite, postgresql, mysql).

The table is reflected once (its columns validate the mapping: a mapped column the table
does not have is one line of bad input) and every query is built from the reflected
``Table`` with bound parameters, so neither a Call-ID nor a column name is ever pasted
into SQL text. Nothing connects until the first query (or ``check()``): loading an
environment file does not need the billing database to be up.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from qa.cdr.normalise import canonical_row, check_mapping, column_of
from qa.errors import BadInput

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_CHUNK = 500  # Call-IDs per IN (...) query: well under every backend's parameter limit

#: (backend, driver) -> the pip package that provides the DBAPI driver.
DRIVER_PACKAGES = {
    ("postgresql", "psycopg2"): "psycopg2-binary",
    ("postgresql", "psycopg"): "psycopg[binary]",
    ("postgresql", "pg8000"): "pg8000",
    ("mysql", "mysqldb"): "mysqlclient",
    ("mysql", "pymysql"): "pymysql",
    ("mysql", "mysqlconnector"): "mysql-connector-python",
    ("mariadb", "mysqldb"): "mysqlclient",
    ("mariadb", "pymysql"): "pymysql",
}


class SqlCdrSource:
    """CDR rows of one table or view, canonical through ``mapping``."""

    def __init__(self, url: str, table: str = "voipqa_cdr", mapping: Mapping[str, str] | None = None) -> None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            self.url = make_url(url)
        except (ArgumentError, ValueError):
            raise BadInput(f"CDR source {_hide(url)}: not a database URL (e.g. postgresql://user@host/db)") from None
        self.name = self.url.render_as_string(hide_password=True)
        if not _IDENT_RE.match(table or ""):
            raise BadInput(f"CDR source {self.name}: table name {table!r}: only letters, digits and _ "
                           f"(optionally schema.table) are allowed")
        self.table_name = table
        self.mapping = check_mapping(mapping, f"CDR source {self.name}")
        if self.url.get_backend_name() == "sqlite":
            self._check_sqlite_file()
        self.engine = self._engine()
        self._table: Any = None

    # -- setup ---------------------------------------------------------------------------
    def _check_sqlite_file(self) -> None:
        database = self.url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return
        if not Path(database).is_file():
            raise BadInput(f"CDR database {database}: no such file")

    def _engine(self) -> Any:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        url = self.url
        if url.get_backend_name() == "sqlite" and url.database and not url.database.startswith(("file:", ":memory:")):
            # read-only: the check must never take a write lock on the platform's live DB
            url = url.set(database=f"file:{Path(url.database).resolve()}?mode=ro", query={"uri": "true"})
        try:
            return create_engine(url, poolclass=NullPool)
        except ImportError:
            raise BadInput(self._missing_driver()) from None

    def _missing_driver(self) -> str:
        backend = self.url.get_backend_name()
        driver = self.url.get_driver_name()
        package = DRIVER_PACKAGES.get((backend, driver), driver)
        return (f"CDR source {self.name}: the {backend} driver {driver!r} is not installed: "
                f"pip install {package}")

    def describe(self) -> str:
        """The URL with its password hidden, for messages and reports."""
        return self.name

    def check(self) -> None:
        """Connect and reflect now: a missing table or column is bad input, said once."""
        self._reflect()

    def _reflect(self) -> Any:
        if self._table is not None:
            return self._table
        from sqlalchemy import MetaData, Table
        from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

        schema, _, name = self.table_name.rpartition(".")
        try:
            table = Table(name, MetaData(), schema=schema or None, autoload_with=self.engine)
        except NoSuchTableError:
            raise BadInput(f"CDR source {self.name}: no table or view {self.table_name!r}") from None
        except SQLAlchemyError as exc:
            raise BadInput(f"CDR source {self.name}: {_first_line(exc)}") from None
        for canonical in ("call_id", *self.mapping):
            column = column_of(self.mapping, canonical)
            if column not in table.c:
                raise BadInput(f"CDR source {self.name}: table {self.table_name} has no column {column!r} "
                               f"(for {canonical}; it has {', '.join(table.c.keys())})")
        self._table = table
        return table

    # -- queries -------------------------------------------------------------------------
    def _select(self, *where: Any) -> list[dict[str, Any]]:
        from sqlalchemy import select
        from sqlalchemy.exc import SQLAlchemyError

        table = self._reflect()
        try:
            with self.engine.connect() as conn:
                result = conn.execute(select(table).where(*where))
                return [canonical_row(dict(r._mapping), self.mapping) for r in result]
        except SQLAlchemyError as exc:
            raise BadInput(f"CDR source {self.name}: {_first_line(exc)}") from None

    def rows(self, call_id: str) -> list[dict[str, Any]]:
        return self.rows_for([call_id]).get(call_id, [])

    def rows_for(self, call_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
        ids = sorted(set(call_ids))
        column = self._reflect().c[column_of(self.mapping, "call_id")]
        found: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(ids), _CHUNK):
            for row in self._select(column.in_(ids[i:i + _CHUNK])):
                found.setdefault(str(row["call_id"]), []).append(row)
        return found

    def rows_in_window(self, start: float, end: float) -> list[dict[str, Any]]:
        column = self._reflect().c.get(column_of(self.mapping, "start_time"))
        if column is None:
            return []  # no start time column: orphans cannot be found by time
        lo, hi = (_bound(column, t) for t in (start, end))
        return self._select(column >= lo, column <= hi)


def _bound(column: Any, unix: float) -> Any:
    """``unix`` in the column's own type: timestamps compare with datetimes, text with ISO text."""
    from sqlalchemy import Date, DateTime, String

    moment = datetime.fromtimestamp(unix, tz=timezone.utc)
    if isinstance(column.type, (DateTime, Date)):
        return moment if getattr(column.type, "timezone", False) else moment.replace(tzinfo=None)
    if isinstance(column.type, String):
        return moment.replace(tzinfo=None).isoformat(sep=" ")
    return unix


def _hide(url: str) -> str:
    """A URL that did not parse, with anything that looks like a password masked."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class SqliteCdrSource(SqlCdrSource):
    """CDRs in an SQLite file (the lab's ``voipqa_cdr`` view by default): a path, not a URL."""

    def __init__(self, path: Path, table: str = "voipqa_cdr", mapping: Mapping[str, str] | None = None) -> None:
        if not Path(path).is_file():
            raise BadInput(f"CDR database {path}: no such file")
        self.path = Path(path)
        super().__init__(f"sqlite:///{Path(path).resolve()}", table, mapping)

"""One place that turns a source row into the canonical CDR shape with comparable values.

Platforms store times as unix seconds, ISO 8601 strings or SQL timestamps, durations as
integers, REALs or strings, SIP codes as text: the reconciliation compares numbers, so
every source passes its rows through ``canonical_row`` and nothing else converts values.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Mapping

from qa.errors import BadInput
from qa.record import CDR_COLUMNS

#: The columns the reconciliation reads (the call record's ``cdr``); a mapping names the
#: source column for each.
CANONICAL_COLUMNS = CDR_COLUMNS
TIME_COLUMNS = ("start_time", "answer_time", "end_time")
TEXT_COLUMNS = ("call_id", "from_user", "to_user", "account", "sip_reason", "carrier")

#: How the native carrier's JSONL lines (qa/carrier/cdr.py) map onto the canonical columns.
CARRIER_MAPPING = {
    "call_id": "call_id", "from_user": "from", "to_user": "ruri", "start_time": "received",
    "answer_time": "answered", "end_time": "ended", "duration": "duration_s", "sip_code": "final_code",
    "carrier": "carrier",
}


def check_mapping(mapping: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """A copy of ``mapping``; a key that is not a canonical column is bad input."""
    mapping = dict(mapping or {})
    for key, column in mapping.items():
        if key not in CANONICAL_COLUMNS:
            raise BadInput(f"{where}: mapping: {key!r} is not a CDR column "
                           f"(known: {', '.join(CANONICAL_COLUMNS)})")
        if not isinstance(column, str) or not column:
            raise BadInput(f"{where}: mapping.{key}: must name a column")
    return mapping


def column_of(mapping: Mapping[str, str], canonical: str) -> str:
    """The source column holding a canonical column (unmapped columns keep their name)."""
    return mapping.get(canonical, canonical)


def to_unix(value: Any, column: str = "time") -> float | None:
    """Unix seconds from a number, a numeric string, an ISO 8601 string or a datetime.

    Naive datetimes and strings are taken as UTC: CDR stores rarely say, and the
    platforms voipqa targets write UTC.
    """
    if value is None or value == "":
        return None
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        return _aware(value).timestamp()
    if isinstance(value, date):
        return _aware(datetime(value.year, value.month, value.day)).timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return _aware(datetime.fromisoformat(value.strip())).timestamp()
        except ValueError:
            pass
    raise BadInput(f"CDR column {column}: {value!r} is not a time (unix seconds or ISO 8601)")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_seconds(value: Any, column: str = "duration") -> float | None:
    """Float seconds from a number or numeric string."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadInput(f"CDR column {column}: {value!r} is not a number of seconds") from None


def to_code(value: Any, column: str = "sip_code") -> int | None:
    """An int SIP code from an int or a text column ("200", "200.0")."""
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise BadInput(f"CDR column {column}: {value!r} is not a SIP code") from None


def canonical_row(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The canonical columns of ``row`` with normalised values, plus ``extra``.

    ``extra`` holds the source's own columns beyond the canonical ones (neither a canonical
    name nor mapped onto one), e.g. the lab's ``end_reason``; a call record shows them
    (:func:`call_cdr`). A missing duration is derived from the answer and end times when
    both are known.
    """
    def get(col: str) -> Any:
        return row.get(column_of(mapping, col))

    out: dict[str, Any] = {}
    for col in TEXT_COLUMNS:
        value = get(col)
        out[col] = None if value is None or value == "" else str(value)
    for col in TIME_COLUMNS:
        out[col] = to_unix(get(col), column_of(mapping, col))
    out["duration"] = to_seconds(get("duration"), column_of(mapping, "duration"))
    if out["duration"] is None and out["answer_time"] is not None and out["end_time"] is not None:
        out["duration"] = round(out["end_time"] - out["answer_time"], 3)
    out["sip_code"] = to_code(get("sip_code"), column_of(mapping, "sip_code"))
    out = {col: out[col] for col in CANONICAL_COLUMNS}
    out["extra"] = _extra_columns(row, mapping)
    return out


def _extra_columns(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """The row's other columns as JSON values: scalars kept, anything else as text."""
    taken = set(CANONICAL_COLUMNS) | {column_of(mapping, col) for col in CANONICAL_COLUMNS}
    extra: dict[str, Any] = {}
    for name, value in row.items():
        if name in taken or not isinstance(name, str):
            continue
        if isinstance(value, (datetime, date)):
            value = value.isoformat()
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        extra[name] = value
    return extra


def call_cdr(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``cdr`` of a call record from the Call-ID's canonical rows (at least one): the
    last row's canonical columns and extra columns, and ``count`` (1 is right)."""
    last = rows[-1]
    return {k: v for k, v in last.items() if k != "extra"} | last.get("extra", {}) | {"count": len(rows)}

"""CDR sources (platform billing records, carrier CDRs) and reconciliation."""

from qa.cdr.normalise import CANONICAL_COLUMNS, CARRIER_MAPPING, canonical_row
from qa.cdr.source import (BatchCdrSource, CdrSource, CsvCdrSource, JsonlCdrSource, carrier_source, open_source,
                           wait_for_rows)
from qa.cdr.sql import SqlCdrSource, SqliteCdrSource

__all__ = [
    "CANONICAL_COLUMNS", "CARRIER_MAPPING", "BatchCdrSource", "CdrSource", "CsvCdrSource", "JsonlCdrSource",
    "SqlCdrSource", "SqliteCdrSource", "canonical_row", "carrier_source", "open_source", "wait_for_rows",
]

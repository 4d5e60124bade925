"""CDR sources (platform billing records, carrier CDRs) and reconciliation."""

from qa.cdr.source import CANONICAL_COLUMNS, CdrSource, JsonlCdrSource, SqliteCdrSource, open_source

__all__ = ["CANONICAL_COLUMNS", "CdrSource", "JsonlCdrSource", "SqliteCdrSource", "open_source"]

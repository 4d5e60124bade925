"""JSON lines files read while their writer may still be appending (carrier CDRs, load
events): one reader, whole lines only.

A reader can see part of a ``write()`` on Linux, and a killed writer leaves a torn last
line: the text after the last newline is not a record yet, and a line that is not a JSON
object is skipped rather than failing the reader. A missing file is no records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["complete_lines", "read_objects"]


def complete_lines(path: Path | str) -> list[str]:
    """The lines of ``path`` that end with a newline (none when the file is missing)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return text.split("\n")[:-1]


def read_objects(path: Path | str) -> list[dict[str, Any]]:
    """Every whole line of ``path`` that is a JSON object, in order."""
    records = []
    for line in complete_lines(path):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            records.append(row)
    return records

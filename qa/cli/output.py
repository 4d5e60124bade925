"""The console every command prints to (rich: tables, colours, progress).

Two rules for every printer:

* Text that comes from data (SIP headers, case names, Call-IDs, file names, CDR fields)
  is never read as rich markup: a header holding ``[/red]`` would crash the print and
  ``[fe80::1]:5060`` would vanish as an unknown tag. Table cells get :func:`plain` (a
  ``rich.text.Text``); a line that mixes markup with data passes the data through
  :func:`escape` (``rich.markup.escape``).
* CI logs are not terminals: rich would squeeze every table to 80 columns, so when
  stdout is not a TTY the console is ``$COLUMNS`` wide, or :data:`CI_WIDTH`.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

__all__ = ["CI_WIDTH", "console", "console_width", "echo", "escape", "make_console", "plain", "verbatim"]

#: Console width when stdout is not a terminal and ``COLUMNS`` is not set.
CI_WIDTH = 200


def console_width(stream: object = None, environ: dict[str, str] | None = None) -> int | None:
    """The width to force, or None to let rich measure the terminal.

    A terminal keeps its own width; anything else (a CI log, a pipe, a file) gets
    ``COLUMNS`` when it is a positive number, else :data:`CI_WIDTH`.
    """
    stream = sys.stdout if stream is None else stream
    environ = os.environ if environ is None else environ
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is not None and isatty():
            return None
    except ValueError:  # a closed stream
        pass
    columns = environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else CI_WIDTH


def make_console() -> Console:
    """A console for stdout, wide when stdout is not a terminal (see the module docstring).

    Emoji codes are off: ``:smile:`` in a SIP header is data, not a picture.
    """
    return Console(width=console_width(), emoji=False)


def plain(value: object) -> Text:
    """``value`` as a Text that rich prints verbatim: no markup, no emoji (for table cells)."""
    return Text("" if value is None else str(value))



def verbatim(table: Table, markup_columns: tuple[str, ...] = ()) -> Table:
    """``table`` with its title and every string cell made verbatim Text.

    For tables built elsewhere from data (``qa.report.pcap``): their cells are plain
    strings, which rich would read as markup. ``markup_columns`` names the columns whose
    cells are voipqa's own markup (e.g. a coloured severity) and stay as they are.
    """
    if isinstance(table.title, str):
        table.title = Text(table.title)
    for column in table.columns:
        if str(column.header) in markup_columns:
            continue
        column._cells = [Text(cell) if isinstance(cell, str) else cell for cell in column._cells]
    return table


console = make_console()


def echo(line: object) -> None:
    """A progress line of a command: names, paths and reasons printed as they are, never
    as markup, and never broken across lines (CI logs are grepped line by line)."""
    console.print(str(line), markup=False, soft_wrap=True)

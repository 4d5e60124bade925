"""The run summary printed after ``voipqa run``: one row per case, wall time vs case time.

Read from Robot's output.xml, so the same summary can be made again from any old run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robot.api import ExecutionResult, ResultVisitor
from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class CaseRow:
    suite: str
    name: str
    status: str
    elapsed_s: float
    message: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSummary:
    cases: list[CaseRow]
    wall_s: float

    @property
    def failed(self) -> int:
        return sum(1 for c in self.cases if c.status == "FAIL")

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.status == "PASS")

    @property
    def longest_s(self) -> float:
        return max((c.elapsed_s for c in self.cases), default=0.0)

    @property
    def sum_s(self) -> float:
        return sum(c.elapsed_s for c in self.cases)


class _Collector(ResultVisitor):
    def __init__(self) -> None:
        self.rows: list[CaseRow] = []

    def visit_test(self, test) -> None:  # noqa: ANN001 - robot's model
        self.rows.append(CaseRow(test.parent.name, test.name, test.status,
                                 test.elapsed_time.total_seconds(), test.message, tuple(test.tags)))


def read_summary(output_xml: Path) -> RunSummary:
    """The cases and wall time of a Robot run."""
    result = ExecutionResult(str(output_xml))
    collector = _Collector()
    result.visit(collector)
    return RunSummary(collector.rows, result.suite.elapsed_time.total_seconds())


def print_summary(summary: RunSummary, output_dir: Path, console: Console | None = None) -> None:
    """A rich table of the cases, the timing figures and where the reports are."""
    console = console or Console()
    table = Table(title="voipqa run", show_lines=False)
    for col in ("suite", "case", "status", "time", "reason"):
        table.add_column(col, overflow="fold")
    for row in summary.cases:
        style = "green" if row.status == "PASS" else "red" if row.status == "FAIL" else "yellow"
        table.add_row(row.suite, row.name, f"[{style}]{row.status}[/]", f"{row.elapsed_s:.1f}s",
                      row.message.splitlines()[0] if row.message else "")  # bounded, cut between checks
    console.print(table)
    console.print(f"{summary.passed} passed, {summary.failed} failed, "
                  f"{len(summary.cases) - summary.passed - summary.failed} skipped")
    if summary.cases and summary.longest_s > 0 and summary.sum_s > 0:
        console.print(f"wall time {summary.wall_s:.1f}s = {summary.wall_s / summary.longest_s:.2f}x the longest "
                      f"case ({summary.longest_s:.1f}s), {summary.wall_s / summary.sum_s:.2f} of the sum of cases "
                      f"({summary.sum_s:.1f}s)")
    for name in ("report.html", "log.html", "output.xml", "xunit.xml", "calls.jsonl"):
        path = output_dir / name
        if path.exists():
            console.print(f"  {name:12} {path}", markup=False)


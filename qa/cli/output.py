"""The console every command prints to (rich: tables, colours, progress)."""

from rich.console import Console

console = Console()

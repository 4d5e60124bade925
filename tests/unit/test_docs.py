"""The user-facing contracts live in the repository's docs/ and stay in step with the code:
a clone has no DESIGN.md, so the README must not send readers there, every link must
resolve, and docs/cli.md must name every command and option the parser has."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.cli import build_parser
from qa.paths import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """Every (sub)command path with its long options, depth first."""
    options = [o for a in parser._actions if a.help != argparse.SUPPRESS
               for o in a.option_strings if o.startswith("--") and o != "--help"]
    yield path, options
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


@pytest.mark.parametrize("name", ["README.md", "docs/cli.md", "docs/call-record.md", "docs/environments.md"])
def test_no_reference_to_a_design_file_a_clone_does_not_have(name: str) -> None:
    assert "DESIGN" not in (ROOT / name).read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, missing


def test_cli_page_names_every_command_and_option() -> None:
    text = (DOCS / "cli.md").read_text()
    missing = []
    for path, options in commands(build_parser()):
        if path and f"`voipqa {path[0]}" not in text and f"`{' '.join(path)}" not in text:
            missing.append(" ".join(path))
        missing += [f"{' '.join(path)} {o}" for o in options if not re.search(rf"(?<![\w-]){o}(?![\w-])", text)]
    assert not missing, missing

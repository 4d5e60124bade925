"""What the repository tracks stays small and expected: a clone is the product and its
tests, not build output, databases, wheels or captures left behind by a run. Captures are
test data only under the data folders, made by scripts beside them
(robot_suites/data/make_pcaps.py). Product code reads nothing outside the checkout."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import PurePosixPath

import pytest

from qa.paths import ROOT

MAX_BYTES = 1024 * 1024
#: Top-level entries a commit may hold; a new one is a decision: add it here.
ROOT_ENTRIES = {
    ".ci", ".dockerignore", ".github", ".gitignore", "Dockerfile", "README.md", "benchmarks", "bootstrap", "examples",
    "carriers", "deploy", "docker", "docker-compose.yml", "docker-compose.host.yml", "docs", "environments", "lab", "profiles", "pyproject.toml",
    "qa", "robot_suites", "sipp", "tests",
}
#: Binary artefacts of runs and builds: never tracked outside the test data folders.
ARTEFACT_SUFFIXES = {".db", ".sqlite", ".sqlite3", ".whl", ".pcap", ".pcapng", ".cap"}
DATA_DIRS = ("tests/data/", "tests/unit/data/", "robot_suites/data/")


@cache
def tracked() -> tuple[str, ...]:
    """Paths git tracks (what a clone gets); skip when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}): hygiene checks need git ls-files")
    paths = tuple(p for p in out.decode().split("\0") if p)
    assert paths, "git ls-files listed nothing"
    return paths


def test_no_tracked_file_over_1_mb() -> None:
    sizes = {p: (ROOT / p).stat().st_size for p in tracked() if (ROOT / p).is_file()}
    big = {p: n for p, n in sizes.items() if n > MAX_BYTES}
    assert not big, f"tracked files over 1 MB: {big}"


def test_no_database_wheel_or_capture_outside_the_data_folders() -> None:
    stray = [p for p in tracked()
             if PurePosixPath(p).suffix.lower() in ARTEFACT_SUFFIXES and not p.startswith(DATA_DIRS)]
    assert not stray, f"build/run artefacts tracked: {stray}"


def test_the_root_holds_only_expected_entries() -> None:
    entries = {p.split("/", 1)[0] for p in tracked()}
    assert entries <= ROOT_ENTRIES, f"unexpected at the root: {sorted(entries - ROOT_ENTRIES)}"
    assert {"README.md", "pyproject.toml", "qa", "tests", "docs"} <= entries


def test_product_code_never_reads_the_shared_corpus() -> None:
    """The conformance corpus beside the checkout is for tests (tests/corpus.py) only."""
    code = [p for p in tracked() if p.startswith("qa/") and p.endswith(".py")]
    texts = {p: (ROOT / p).read_text(errors="replace") for p in code if (ROOT / p).is_file()}
    readers = [p for p, text in texts.items() if any(s in text for s in ("shared/corpus", "VOIPQA_CORPUS", "../shared"))]
    assert code and not readers, readers

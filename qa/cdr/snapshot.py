"""What ``voipqa cdr check`` needs of a run, kept in the run's output directory.

A lab started by ``voipqa run`` is stopped at the end of the run, and a running lab goes
on billing other runs; either way ``voipqa cdr check --calls results/calls.jsonl`` must
later reconcile *this* run. So the run leaves ``cdr/sources.json`` beside calls.jsonl:

* against the lab: a consistent copy of the lab's CDR database (``cdr/platform.db``, the
  SQLite backup API, so a database being written is copied whole) and of each carrier's
  CDR lines (``cdr/<carrier>.jsonl``), named relative to the folder;
* against an environment file: the file's absolute path (its CDR source is the
  platform's own database, which outlives the run; passwords stay in the environment).

The run's load runs (``load/**/calls.csv``) are calls too, reconciled by their own
report: ``qa.load.model.load_call_ids`` gives the check their Call-IDs, so their CDRs are
not orphans.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import BadInput

SNAPSHOT_DIR = "cdr"
SOURCES_FILE = "sources.json"
PLATFORM_DB = "platform.db"


@dataclass(frozen=True)
class RunSources:
    """Where a run's CDRs are: a platform DSN and carrier files, or an environment file."""

    folder: Path
    platform_dsn: str | None = None
    table: str = "voipqa_cdr"
    carrier: tuple[Path, ...] = field(default_factory=tuple)
    env: str | None = None


def snapshot_lab(output: Path, cdr_db: Path, carrier_cdr: dict[str, str]) -> Path:
    """Copy the lab's CDRs into ``output/cdr`` and describe them; returns sources.json."""
    folder = Path(output) / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _backup_sqlite(Path(cdr_db), folder / PLATFORM_DB)
    carriers = []
    for name, path in sorted(carrier_cdr.items()):
        target = folder / f"{name}.jsonl"
        if Path(path).is_file():
            shutil.copyfile(path, target)
        else:
            target.write_text("")  # a carrier that took no call wrote nothing
        carriers.append(target.name)
    return _write(folder, {"platform": {"dsn": PLATFORM_DB, "table": "voipqa_cdr"}, "carrier": carriers})


def reference_environment(output: Path, env_file: Path) -> Path:
    """Name the environment file whose CDR source the check should read; returns sources.json."""
    folder = Path(output) / SNAPSHOT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return _write(folder, {"env": str(Path(env_file).resolve())})


def _write(folder: Path, data: dict) -> Path:
    path = folder / SOURCES_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data | {"taken": time.time()}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _backup_sqlite(source: Path, target: Path) -> None:
    """A whole, consistent copy even while the platform writes (WAL included)."""
    target.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def find_run_sources(calls: Path) -> RunSources | None:
    """The sources a run left beside ``calls`` (its calls.jsonl), or None."""
    path = Path(calls).parent / SNAPSHOT_DIR / SOURCES_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        platform = data.get("platform") or {}
        return RunSources(folder=path.parent, platform_dsn=platform.get("dsn"),
                          table=platform.get("table") or "voipqa_cdr",
                          carrier=tuple(path.parent / p for p in data.get("carrier") or ()), env=data.get("env"))
    except (ValueError, AttributeError, TypeError) as exc:
        raise BadInput(f"{path}: not a CDR sources file ({exc})") from None

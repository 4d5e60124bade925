"""Running the real ``voipqa`` command in integration tests, and checking processes are gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from qa.paths import ROOT


def voipqa(*args: str, lab_dir: Path, timeout: float = 300,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m qa.cli ARGS`` with ``VOIPQA_LAB_DIR`` set; stdout/stderr captured as text."""
    environ = dict(os.environ, VOIPQA_LAB_DIR=str(lab_dir), **(env or {}))
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")

"""``robot_suites/pcap.robot`` runs in a bare clone: its captures ship in the repository and
are exactly what ``robot_suites/data/make_pcaps.py`` writes, so they can be remade and reviewed."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

from qa.paths import ROOT

DATA = ROOT / "robot_suites" / "data"


def _make_pcaps() -> ModuleType:
    """Load the generator by path: robot_suites/data is data, not a package."""
    spec = importlib.util.spec_from_file_location("make_pcaps", DATA / "make_pcaps.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_pcaps_are_what_the_script_makes(tmp_path: Path) -> None:
    made = _make_pcaps().make_pcaps(tmp_path)
    for path in made:
        shipped = DATA / path.name
        assert shipped.is_file(), f"{shipped} missing: run robot_suites/data/make_pcaps.py"
        assert shipped.read_bytes() == path.read_bytes(), f"{shipped} differs from make_pcaps.py's output"
        assert path.stat().st_size < 64_000


def test_pcap_suite_passes_without_anything_outside_the_repo(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "robot", "--outputdir", str(tmp_path), "--report", "NONE",
                           "--log", "NONE", str(ROOT / "robot_suites" / "pcap.robot")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    stats = ET.parse(tmp_path / "output.xml").getroot().find("statistics/total/stat")
    assert stats is not None and (stats.get("pass"), stats.get("fail")) == ("4", "0")

"""Where the project's shipped files live (scenarios, lab config, number plan, suites)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIPP_DIR = ROOT / "sipp"
LAB_DIR = ROOT / "lab"
DEFAULT_SEED = LAB_DIR / "seed.yaml"
DEFAULT_PLAN = ROOT / "carriers" / "numberplan.yaml"
SUITES_DIR = ROOT / "robot_suites"


def _corpus() -> Path:
    """The shared conformance corpus: ``$VOIPQA_CORPUS``, else ``../shared/corpus`` beside
    the checkout (as CI lays it out), else the development machine's ``/work/shared``."""
    import os

    if os.environ.get("VOIPQA_CORPUS"):
        return Path(os.environ["VOIPQA_CORPUS"])
    beside = ROOT.parent / "shared" / "corpus"
    return beside if beside.is_dir() else Path("/work/shared/corpus")


CORPUS = _corpus()

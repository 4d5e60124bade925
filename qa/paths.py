"""Where the project's shipped files live (scenarios, lab config, number plan, suites).

Only what the repository ships: the shared conformance corpus is for tests alone
(`tests/corpus.py`), so product code never depends on files outside the checkout.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIPP_DIR = ROOT / "sipp"
LAB_DIR = ROOT / "lab"
DEFAULT_SEED = LAB_DIR / "seed.yaml"
DEFAULT_PLAN = ROOT / "carriers" / "numberplan.yaml"
SUITES_DIR = ROOT / "robot_suites"


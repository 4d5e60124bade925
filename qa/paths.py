"""Where the project's shipped files live (scenarios, lab config, number plan, suites)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIPP_DIR = ROOT / "sipp"
LAB_DIR = ROOT / "lab"
DEFAULT_SEED = LAB_DIR / "seed.yaml"
DEFAULT_PLAN = ROOT / "carriers" / "numberplan.yaml"
SUITES_DIR = ROOT / "robot_suites"

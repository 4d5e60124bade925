"""Keywords for load runs: thin wrappers over :func:`qa.load.runner.run_load`.

``Run Load Profile`` runs a profile against the suite's environment (the running lab
inside ``voipqa run``) and returns the run's summary (``load.json`` as a dictionary);
the assertion keywords take that summary and fail with the numbers a person needs. The
Locust master and workers are child processes: locust never enters the Robot process.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from robot.api import logger
from robot.api.deco import keyword
from robot.utils import timestr_to_secs

Summary = dict[str, Any]
_RUNS = itertools.count(1)


def failed_criteria(summary: Summary) -> list[str]:
    """One sentence per criterion that did not hold."""
    out = []
    for c in summary.get("criteria", []):
        if not c["pass"]:
            value = "not measured" if c["value"] is None else f"{c['value']:g}"
            out.append(f"{c['name']} {value} (limit {c['limit']:g}): {c['where']}")
    return out


def describe(summary: Summary) -> str:
    """The run in one line: verdict, calls, bottleneck, breaking point."""
    calls = summary["calls"]
    line = (f"load {summary['profile']} on {summary['environment']}: {summary['verdict']}, "
            f"{calls['attempted']} calls, {calls['answered']} answered, {calls['failed']} failed, "
            f"bottleneck {summary['bottleneck']}")
    if summary.get("breaking_point_cps") is not None:
        line += f", breaking point {summary['breaking_point_cps']:g} calls/s"
    return line


class LoadKeywords:
    """Stress, load and soak runs against the platform under test, and their verdicts."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def _output(self, profile: str) -> Path:
        base = self.ctx.output_dir()
        stem = Path(profile).stem
        while True:
            out = base / "load" / f"{stem}-{os.getpid()}-{next(_RUNS)}"
            if not out.exists():
                return out

    @keyword
    def run_load_profile(self, profile: str, rate: float | None = None, duration: str | None = None,
                         workers: int = 1, env: str | None = None) -> Summary:
        """Run ``profile`` (a name in profiles/ or a path), optionally at peak ``rate``
        calls/s for ``duration`` (Robot time: ``30s``, ``2 min``), with ``workers`` local
        Locust workers; returns the summary (load.json as a dictionary).

        The environment is the suite's (``env`` overrides it: ``loopback`` measures the
        generator alone). The report files are under ``${OUTPUT DIR}/load/``.
        """
        from qa.load.runner import LoadRequest, run_load

        env_name = env or self.ctx.env_name or "lab"
        req = LoadRequest(profile=profile, env=env_name, rate=float(rate) if rate is not None else None,
                          duration=timestr_to_secs(duration) if duration else None, workers=int(workers),
                          output=self._output(profile))
        outcome = run_load(req, echo=lambda line: logger.info(self.ctx.mask(str(line))))
        summary = outcome.result
        logger.info(describe(summary))
        logger.info(f'<a href="{os.path.relpath(outcome.directory / "load.html", self.ctx.output_dir())}">load report</a>',
                    html=True)
        if outcome.signal is not None:
            raise AssertionError(f"load run interrupted by signal {outcome.signal}; report of what ran in "
                                 f"{outcome.directory}")
        return summary

    @keyword
    def load_criteria_should_pass(self, summary: Summary) -> None:
        """Every pass criterion of the run held (fails listing each one that did not)."""
        if summary["verdict"] == "pass":
            return
        problems = failed_criteria(summary) or list(summary.get("reasons", []))[:3]
        raise AssertionError(f"{describe(summary)}:\n" + "\n".join(f"  {p}" for p in problems))

    @keyword
    def load_verdict_should_be(self, summary: Summary, verdict: str, bottleneck: str | None = None) -> None:
        """The run's verdict is ``verdict`` (pass | fail), and its bottleneck ``bottleneck``
        (platform | generator | none) when given."""
        got = (summary["verdict"], summary["bottleneck"])
        want = (verdict.lower(), (bottleneck or summary["bottleneck"]).lower())
        if got != want:
            raise AssertionError(f"expected {want[0]} with bottleneck {want[1]}, got {describe(summary)}")

    @keyword
    def breaking_point_should_be_at_least(self, summary: Summary, cps: float) -> None:
        """A stress or ceiling run held at least ``cps`` calls/s."""
        point = summary.get("breaking_point_cps")
        if point is None or point < float(cps):
            raise AssertionError(f"breaking point {point} calls/s < {float(cps):g}: {describe(summary)}")

    @keyword
    def cdr_loss_should_be_at_most(self, summary: Summary, pct: float = 0.0) -> None:
        """Answered calls without a platform CDR are at most ``pct`` % of those checked."""
        cdr = summary.get("cdr")
        if not cdr or not cdr.get("checked"):
            raise AssertionError(f"no CDR was checked ({(cdr or {}).get('skipped', 'no CDR source')})")
        if cdr["loss_pct"] is None or cdr["loss_pct"] > float(pct):
            raise AssertionError(f"CDR loss {cdr['loss_pct']} % > {float(pct):g} %: {cdr['missing']} of "
                                 f"{cdr['checked']} calls have no CDR, {cdr['billable_seconds_lost']} billable "
                                 "seconds lost")

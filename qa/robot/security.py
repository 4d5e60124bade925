"""Keywords for the security suite: thin wrappers over :func:`qa.security.runner.run_security`.

``Run Attack`` runs one attack against the suite's environment and returns its entry of
``security.json`` (a dictionary); ``Defence Should Hold`` fails with the attack's failed
checks, one per line. The library keeps one attack target per environment, so the
addresses earlier attacks got banned are not tried again by the next case.
"""

from __future__ import annotations

from typing import Any

from robot.api import logger
from robot.api.deco import keyword

Attack = dict[str, Any]


class SecurityKeywords:
    """Attacks on the platform under test (scan, enumeration, brute force, floods, torture,
    toll fraud, TLS) and the verdict on each defence."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self._targets: dict[str, Any] = {}

    @keyword
    def run_attack(self, name: str, torture_dir: str | None = None) -> Attack:
        """Run the attack ``name`` (``voipqa security --only NAME``) and return its entry of
        ``security.json``: ``verdict``, ``summary``, ``checks``, ``evidence``. The file is
        under ``${OUTPUT DIR}/security/NAME/``; the wire is the run's own capture."""
        from qa.security.runner import check_names, run_security
        from qa.security.target import from_environment

        from pathlib import Path

        check_names([name])
        env = self.ctx.connect()
        target = self._targets.setdefault(env.name, from_environment(env))
        report = run_security(env, self.ctx.output_dir() / "security" / name, only=[name], capture=False,
                              torture_dir=Path(torture_dir) if torture_dir else None, target=target,
                              log=lambda line: logger.info(self.ctx.mask(str(line))))
        entry: Attack = report.to_dict()["attacks"][0]
        entry["healthy_after"] = report.healthy_after
        entry["health"] = report.health_detail
        logger.info(self.ctx.mask(entry["summary"]))
        return entry

    @keyword
    def defence_should_hold(self, attack: Attack) -> None:
        """The attack's every check held, and the platform was healthy after it."""
        problems = [f"{c['name']}: {c['detail']}" for c in attack["checks"] if not c["ok"]]
        if attack.get("error"):
            problems.append(f"could not run: {attack['error']}")
        if attack.get("healthy_after") is False:
            problems.append(f"platform unhealthy after the attack: {attack['health']}")
        if attack["verdict"] == "not-applicable":
            logger.info(attack["summary"])
            return
        if problems or attack["verdict"] != "pass":
            raise AssertionError(self.ctx.mask(f"{attack['name']}: the defence did not hold:\n"
                                               + "\n".join(f"  {p}" for p in problems or [attack["summary"]])))

    @keyword
    def defence_should_fail(self, attack: Attack, check: str | None = None) -> None:
        """The attack got through (its verdict is fail), by the named ``check`` when given:
        for proving a suite against a platform whose defence is off."""
        failed = [c["name"] for c in attack["checks"] if not c["ok"]]
        if attack["verdict"] != "fail" or (check and check not in failed):
            raise AssertionError(f"{attack['name']}: expected the defence to fail"
                                 + (f" on {check}" if check else "") + f", got: {attack['summary']}")

"""`Run SIPp Scenario`: a user's own SIPp XML, run against the environment and judged."""

from __future__ import annotations

from pathlib import Path

from robot.api import logger
from robot.api.deco import keyword
from robot.utils import timestr_to_secs

from qa.cases import CallRecord
from qa.cases.byo import DEFAULT_FIELDS, ByoOptions, run_case
from qa.robot.running import running_test, suite_dir, test_name


def _resolve(path: str) -> Path:
    """A relative scenario path is read from the running suite file's folder first."""
    given = Path(path)
    base = suite_dir()
    if not given.is_absolute() and base is not None and (base / given).is_file():
        return base / given
    return given



class ScenarioKeywords:
    """Bring your own SIPp scenario (docs/byo-sipp.md)."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx

    @keyword
    def run_sipp_scenario(self, path: str, expect: str | int | None = 200, service: str | None = None,
                          user: str | None = None, fields: str = DEFAULT_FIELDS, peer: str = "auto",
                          timeout: str | None = None, transport: str = "udp") -> CallRecord:
        """Run the SIPp scenario at ``path`` (relative to the suite's folder, else the working
        directory) for one call and return its judged call record.

        voipqa supplies the target (``peer``: ``auto`` picks the platform for a scenario with
        ``[authentication]``/``[fieldN]`` or REGISTER, the carrier for a plain UAC, its own UAC
        for a UAS), the account ``user`` (``-au``/``-ap``, and the ``-inf`` row built from
        ``fields``: ``;``-separated, with ``{user}`` ``{password}`` ``{domain}`` ``{service}``),
        the called number ``service`` (``-s``), free ports, traces and a time bound
        (``timeout``, default the scenario's pauses + 15 s). ``expect`` is the final response
        (``any``: not judged). Fails at once, in one line, on invalid XML (file:line:col) or
        a peer voipqa does not provide; check the record with `Call Should Pass`.
        """
        code = None if str(expect).lower() in ("none", "any", "") else int(expect)
        resolved = _resolve(path)
        opts = ByoOptions(expect=code, service=service, user=user, fields=fields, peer=peer.lower(),
                          timeout_s=timestr_to_secs(timeout) if timeout else None, transport=transport.lower())
        record = run_case(resolved, self.ctx.connect(), self.ctx.output_dir(), case=test_name() or resolved.stem, opts=opts,
                          test=running_test())
        logger.info(self.ctx.mask(record.to_json()))
        return record

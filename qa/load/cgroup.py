"""Holding a process to a fixed CPU share with a cgroup CPU quota (CFS bandwidth).

Why: on a small machine the generator and the platform share the cores, so a scale-out
measurement ("two workers place twice the calls of one") only means something when each
generator is held to the same share, and a "generator starved of CPU" verdict needs a
generator that really is starved. cgroup v1 (``cpu.cfs_quota_us``) and v2 (``cpu.max``)
are both handled; the process joins the group itself before it execs (``join_self`` in a
``preexec_fn``), so it never runs unthrottled.
"""

from __future__ import annotations

import os
from pathlib import Path

from qa.errors import BadInput

PERIOD_US = 100_000
_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


def _layout() -> tuple[Path, str] | None:
    """Where groups are made and which flavour: ("v1"|"v2")."""
    if (_V1 / "cpu.cfs_quota_us").exists():
        return _V1, "v1"
    if (_V2 / "cgroup.controllers").exists() and "cpu" in (_V2 / "cgroup.controllers").read_text().split():
        return _V2, "v2"
    return None


class CpuQuota:
    """A cgroup allowing ``fraction`` of one core (0.25: 25 ms per 100 ms period)."""

    def __init__(self, name: str, fraction: float) -> None:
        if not 0.0 < fraction <= 64:
            raise BadInput(f"generator.cpu_quota: {fraction} is not a CPU share (e.g. 0.25 of one core)")
        layout = _layout()
        if layout is None:
            raise BadInput("generator.cpu_quota: no cgroup CPU controller here (/sys/fs/cgroup/cpu or cgroup v2 "
                           "with the cpu controller): run without a quota")
        root, self.flavour = layout
        self.path = root / name
        self.fraction = fraction
        try:
            self.path.mkdir(exist_ok=True)
            quota = int(PERIOD_US * fraction)
            if self.flavour == "v1":
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        except OSError as exc:
            raise BadInput(f"generator.cpu_quota: cannot create the cgroup {self.path}: {exc.strerror} "
                           "(needs root)") from None

    def join_self(self) -> None:  # pragma: no cover - runs in the child before exec
        """Move the calling process into the group (safe in a ``preexec_fn``: no locks, no allocation
        beyond one small write)."""
        fd = os.open(str(self.path / "cgroup.procs"), os.O_WRONLY)
        try:
            os.write(fd, b"0")  # "0": the writing process itself
        finally:
            os.close(fd)

    def throttling(self) -> tuple[int, int] | None:
        """``(nr_periods, nr_throttled)`` from the group's ``cpu.stat`` (v1 and v2 alike);
        None when unreadable."""
        try:
            return parse_throttling((self.path / "cpu.stat").read_text())
        except OSError:
            return None

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        """Delete the group once its processes are gone (best effort)."""
        try:
            self.path.rmdir()
        except OSError:
            pass


def parse_throttling(text: str) -> tuple[int, int] | None:
    """``(nr_periods, nr_throttled)`` of a ``cpu.stat`` text; None if either is missing."""
    values = dict(line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)
    try:
        return int(values["nr_periods"]), int(values["nr_throttled"])
    except (KeyError, ValueError):
        return None


#: A process throttled in at least this share of its enforcement periods used its whole
#: quota whenever it ran: it is at its allowance, whatever a tick-based reading says.
THROTTLED_SHARE = 0.5


def at_quota(before: tuple[int, int] | None, after: tuple[int, int] | None) -> bool:
    """True when the group hit its quota in most periods between two ``throttling`` readings.

    Why: psutil's CPU percent counts the kernel's 10 ms ticks, so under a 2 % quota a
    second reads 1 % or 3 % (seen: a generator starved at 2 % judged "not saturated" from
    a median of 1.7 %). The cgroup's own throttle counters say exactly whether the quota bit.
    """
    if before is None or after is None:
        return False
    periods, throttled = after[0] - before[0], after[1] - before[1]
    return periods > 0 and throttled / periods >= THROTTLED_SHARE

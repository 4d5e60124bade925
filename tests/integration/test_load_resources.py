"""LabSampler against a real lab: Kamailio's process tree, fds, kamcmd memory and dialogs, rtpengine
and the carriers, sampled twice (CPU needs two rounds) and recorded to resources.csv."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import qa.lab as lab
from qa.load.model import read_resources
from qa.load.resources import LabSampler, Recorder
from qa.tools import have_tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_tool("kamailio") and have_tool("kamcmd") and have_tool("openssl")),
                       reason="kamailio, kamcmd and openssl are needed"),
]


def test_lab_sampler_reads_real_numbers_from_a_running_lab(tmp_path: Path) -> None:
    run_dir = tmp_path / "lab"
    state, _ = lab.up(run_dir, owner_pid=os.getpid())
    try:
        problems: list[str] = []
        sampler = LabSampler(run_dir)
        first = sampler.sample(problems.append)
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:  # let the CPU counters tick (SIPp OPTIONS probes run meanwhile)
            lab.kamcmd(state, "core.uptime", timeout=3)
        second = sampler.sample(problems.append)
        assert problems == []
        for values in (first, second):
            assert values["platform.rss_mb"] > 1 and values["platform.fds"] > 3
            assert values["platform.shm_used_mb"] > 0 and values["platform.pkg_used_mb"] > 0
            assert values["platform.dialogs"] >= 0
            assert values["rtpengine.rss_mb"] > 0
        assert "platform.cpu_pct" not in first  # one round has nothing to compare with
        assert second["platform.cpu_pct"] >= 0 and second["rtpengine.cpu_pct"] >= 0
        assert second["carrier.cpu_pct"] >= 0

        path = tmp_path / "resources.csv"
        ticks = iter(range(100))
        rec = Recorder(path, [sampler], every_s=60, clock=lambda: float(next(ticks)), on_error=problems.append)
        rec.sample_once()
        rec.close()
        recorded = read_resources(path)
        assert recorded["platform.shm_used_mb"][0][1] == pytest.approx(second["platform.shm_used_mb"], rel=0.2)
        assert problems == []
    finally:
        lab.down(run_dir)
    gone: list[str] = []
    assert LabSampler(run_dir).sample(gone.append) == {} and gone  # the lab is down: said, not raised

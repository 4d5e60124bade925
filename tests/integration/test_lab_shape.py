"""The lab in its load shape, for real: Kamailio with the shape's workers and memory, the
load accounts, round-robin over carrier-a and carrier-b, lab.json and the CLI.

One load-shape lab for the module (owned by this test process: it stops even if pytest is
killed). Calls are placed with SIPp exactly as tests/integration/test_lab.py places them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import qa.lab as lab
from qa.errors import BadInput
from qa.lab.seed import load_seed, shaped
from qa.paths import DEFAULT_SEED
from qa.tools import have_tool
from qa.transport.probe import sip_options

from tests.integration.cli import voipqa
from tests.integration.test_lab import ANSWER, run_sipp, wait_carrier, wait_cdr

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (have_tool("kamailio") and have_tool("sipp") and have_tool("openssl")),
                       reason="kamailio, sipp and openssl are needed"),
]

LOAD = shaped(load_seed(DEFAULT_SEED), "load")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("load-lab") / "run"
    try:
        _state, already = lab.up(path, shape="load", owner_pid=os.getpid())
        assert not already
        yield path
    finally:
        lab.down(path)


@pytest.fixture(scope="module")
def state(run_dir: Path) -> lab.LabState:
    return lab.load_state(run_dir)


def _kamailio_processes(main_pid: int) -> list[int]:
    """Kamailio's main process and the processes it forked (by /proc parentage)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == main_pid:
                children.append(int(entry.name))
    return [main_pid, *children]


def test_kamailio_runs_with_the_shapes_workers_and_memory(state: lab.LabState) -> None:
    assert (state.shape, state.workers, state.shm_mb, state.pkg_mb) == ("load", LOAD.workers, LOAD.shm_mb, LOAD.pkg_mb)
    assert state.workers > 1
    kpid = state.processes["kamailio"]
    argv = Path(f"/proc/{kpid}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"-m") + 1] == str(LOAD.shm_mb).encode()
    assert argv[argv.index(b"-M") + 1] == str(LOAD.pkg_mb).encode()
    described = [line.split(":", 1)[1].strip() for line in lab.kamcmd(state, "core.psx").splitlines()
                 if line.strip().startswith("DSC:")]
    assert sum(d.startswith("udp receiver") for d in described) == LOAD.workers, described
    assert sum(d.startswith("tcp receiver") for d in described) == LOAD.workers, described
    # every process Kamailio lists is one that runs (and none is left out)
    assert len(_kamailio_processes(kpid)) == len(described)
    shm_total = int(next(line.split(":")[1] for line in lab.kamcmd(state, "core.shmmem").splitlines()
                         if "total" in line))
    assert shm_total == LOAD.shm_mb * 1024 * 1024


def test_lab_json_and_status_show_the_shape(state: lab.LabState, run_dir: Path) -> None:
    saved = json.loads((run_dir / "lab.json").read_text())
    assert saved["shape"] == "load" and saved["workers"] == LOAD.workers and saved["shm_mb"] == LOAD.shm_mb
    assert saved["load_accounts"] == list(LOAD.load_users)
    assert saved["settings"]["dispatcher_algorithm"] == "round-robin"
    running = lab.effective_seed(state)
    assert running.shape == "load" and running.account("2001").password == LOAD.account("2001").password
    assert sip_options(state.host, state.ports["sip"], "udp", 3)[0] == 200
    rows = {r.name: r for r in lab.status(run_dir)}
    assert rows["kamailio"].health == "OPTIONS udp 200, tcp 200, tls 200"
    assert rows["kamailio"].details["shape"] == "load"
    shown = voipqa("lab", "status", "--run-dir", str(run_dir), lab_dir=run_dir, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"shape load: {LOAD.workers} Kamailio worker(s), shm {LOAD.shm_mb} MB" in shown.stdout


def test_load_accounts_call_and_calls_are_spread_over_both_carriers(state: lab.LabState, tmp_path: Path) -> None:
    carriers = []
    for account in LOAD.load_shape.accounts[:2]:
        call_id = run_sipp(state, tmp_path, ANSWER, account.user, account.password, 200, hold_ms=200)
        rows = wait_cdr(state, call_id)
        assert [(r["sip_code"], r["account"]) for r in rows] == [(200, account.user)], rows
        seen = wait_carrier(state, call_id)
        assert len(seen) == 1 and seen[0]["carrier"] == rows[0]["carrier"]
        carriers.append(rows[0]["carrier"])
    # round-robin: consecutive calls go to carrier-a and carrier-b (priority would send both to carrier-a)
    assert sorted(carriers) == ["carrier-a", "carrier-b"]


def test_up_with_the_other_shape_is_refused_the_same_shape_is_reported(state: lab.LabState, run_dir: Path) -> None:
    with pytest.raises(BadInput, match=r"^a load lab is running in .*; 'voipqa lab down' first$"):
        lab.up(run_dir)
    again, already = lab.up(run_dir, shape="load")
    assert already and again.supervisor_pid == state.supervisor_pid
    cli = voipqa("lab", "up", "--run-dir", str(run_dir), lab_dir=run_dir, timeout=60)
    assert cli.returncode == 2
    assert cli.stderr == f"voipqa: error: a load lab is running in {run_dir}; 'voipqa lab down' first\n"


def test_cli_unknown_shape_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = voipqa("lab", "up", "--shape", "bogus", "--run-dir", str(tmp_path / "lab"), lab_dir=tmp_path / "lab",
                  timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "voipqa: error: unknown lab shape 'bogus' (shapes: functional, load)\n"
    assert not (tmp_path / "lab").exists()

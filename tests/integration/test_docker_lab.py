"""The docker backend for real: ``voipqa lab up --backend docker`` (Compose v2, the host-
network variant) brings up Kamailio, rtpengine, two carriers and the capture as containers;
the smoke suite passes with the four witnesses joined, once with the customers in the
runner container (``voipqa run --backend docker``, the containerized customer simulators)
and once with them on the host against the same containers; Ctrl-C reaches the run in the
container, which writes its reports; the FreeSWITCH profile without its image is skipped
in one line; ``lab down`` removes everything.

Needs a Docker engine (./bootstrap --docker): with ``VOIPQA_REQUIRE_DOCKER=1`` (.ci/run)
its absence fails; elsewhere the module is skipped with the reason (the native path never
needs Docker). The images are built by ``lab up`` when missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from qa.paths import ROOT

from tests.integration import cli

pytestmark = pytest.mark.integration
NO_NATIVE_LAB = Path("/nonexistent/voipqa-native-lab")  # the docker backend never uses one


def voipqa(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return cli.voipqa(*args, lab_dir=NO_NATIVE_LAB, timeout=timeout, env=env)


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def docker_lab():
    """The docker lab, up for this module and removed with its volumes after it."""
    from qa import dockerlab
    from qa.errors import BadInput

    try:
        client = dockerlab.engine()
        dockerlab.compose_for("host")
    except BadInput as exc:
        if os.environ.get("VOIPQA_REQUIRE_DOCKER"):
            pytest.fail(f"VOIPQA_REQUIRE_DOCKER is set but {exc}")
        pytest.skip(f"{exc}")
    if dockerlab.running_network(client) is not None:
        pytest.fail("a docker lab is already running: voipqa lab down --backend docker first")
    started = time.monotonic()
    up = voipqa("lab", "up", "--backend", "docker", timeout=1800)
    up_s = time.monotonic() - started
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
        yield {"up": up, "up_s": up_s}
    finally:
        down = voipqa("lab", "down", "--backend", "docker", "--volumes", timeout=300)
        assert down.returncode == 0, down.stderr


def _volume(name: str) -> Path:
    return Path(json.loads(_docker("volume", "inspect", f"voipqa_{name}").stdout)[0]["Mountpoint"])


def _answered() -> int:
    return sum(len(p.read_text().splitlines()) for p in _volume("carrier-cdr").glob("carrier-*.jsonl"))


def test_the_docker_lab_comes_up_healthy_on_its_own_addresses(docker_lab):
    status = voipqa("lab", "status", "--backend", "docker", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {r["service"]: r for r in json.loads(status.stdout)}
    for service in ("platform", "rtpengine", "carrier-a", "carrier-b"):
        assert rows[service]["state"] == "running" and rows[service]["health"] == "healthy", rows[service]
    assert rows["platform"]["address"] == "127.0.0.10" and rows["carrier-a"]["address"] == "127.0.0.21:5080"
    assert rows["runner"]["state"] == rows["capture"]["state"] == "missing"   # profiles run and capture
    # idempotent: a second up keeps what runs
    again = voipqa("lab", "up", "--backend", "docker", timeout=300)
    assert again.returncode == 0 and "using the images" in again.stdout


def test_containerized_customers_pass_the_smoke_suite_with_every_witness(docker_lab, tmp_path):
    before = _answered()
    out = tmp_path / "out"
    run = voipqa("run", str(ROOT / "robot_suites" / "smoke.robot"), "--backend", "docker", "--output", str(out),
                 timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1500:]
    assert "running in the runner container" in run.stdout
    assert "4 passed, 0 failed" in run.stdout and "wire witness: 4 calls found" in run.stdout
    records = [json.loads(line) for line in (out / "calls.jsonl").read_text().splitlines()]
    assert len(records) == 4 and {r["verdict"] for r in records} == {"pass"}
    answered = [r for r in records if r["final_code"] == 200]
    assert len(answered) == 1 and answered[0]["cdr"] and answered[0]["carrier"]  # billed, and seen by a carrier
    assert (out / "report.html").is_file() and (out / "capture.pcapng").stat().st_size > 0
    assert _answered() == before + 1                      # the one answered call reached a carrier


def test_host_customers_pass_against_the_same_containers(docker_lab, tmp_path):
    """The environment file for the host: docker-host.yaml extended with the volumes' paths."""
    from qa import dockerlab

    lab = _volume("lab-run")
    env_file = tmp_path / "docker-from-host.yaml"
    env_file.write_text(yaml.safe_dump({
        "extends": str(ROOT / "environments" / "docker-host.yaml"),
        "target": {"ca_cert": str(lab / "ca.crt")},
        "carrier": {"plan": str(ROOT / "carriers" / "numberplan.yaml"),
                    "cdr": [str(_volume("carrier-cdr") / f"{n}.jsonl") for n in ("carrier-a", "carrier-b")]},
        "cdr": {"dsn": f"sqlite:///{lab / 'lab.db'}"}}))
    before = _answered()
    run = voipqa("run", str(ROOT / "robot_suites" / "smoke.robot"), "--env", str(env_file),
                 "--output", str(tmp_path / "out"), env=dockerlab.read_secrets(), timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-1500:]
    assert "4 passed, 0 failed" in run.stdout and "wire witness: 4 calls found" in run.stdout
    assert _answered() == before + 1


def test_ctrl_c_reaches_the_run_in_the_container_and_the_reports_are_written(docker_lab, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "run", str(ROOT / "robot_suites" / "smoke.robot"),
                             "--backend", "docker", "--parallel", "1", "--output", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("[  1/"):                    # one case finished: stop the run
            proc.send_signal(signal.SIGINT)
            break
    lines.extend(proc.stdout)
    code = proc.wait(timeout=180)
    text = "".join(lines)
    assert code == 130, text[-3000:]
    assert "SIGINT: stopping the run" in text and (out / "output.xml").is_file(), text[-3000:]
    planned = int(re.search(r"running (\d+) cases", text)[1])
    reported = (out / "output.xml").read_text().count("<test ")
    assert 1 <= reported < planned, f"{reported} of {planned} cases in the report"   # cut short, not lost
    assert re.search(r"^\d+ passed, \d+ failed", text, re.M), text[-2000:]
    assert _docker("ps", "-a", "--filter", "name=voipqa-run-", "--format", "{{.Names}}").stdout.strip() == ""


def test_freeswitch_without_its_image_is_skipped_in_one_line(docker_lab):
    up = voipqa("lab", "up", "--backend", "docker", "--profile", "freeswitch", timeout=300,
                env={"VOIPQA_FREESWITCH_IMAGE": "voipqa/no-such-freeswitch:0"})
    assert up.returncode == 0, up.stdout + up.stderr
    skipped = [ln for ln in up.stdout.splitlines() if ln.startswith("freeswitch: skipped")]
    assert skipped == ["freeswitch: skipped: no image voipqa/no-such-freeswitch:0 on this host (set "
                       "VOIPQA_FREESWITCH_IMAGE to your FreeSWITCH 1.10 image; docs/containers.md)"]
    bad = voipqa("lab", "up", "--backend", "docker", "--profile", "nonsense", timeout=120)
    assert bad.returncode == 2 and "--profile nonsense" in bad.stderr


def test_the_freeswitch_image_builds_from_the_named_image_and_installs_the_generated_configuration(docker_lab):
    """No FreeSWITCH exists here: the build is proven FROM a stand-in (debian:12-slim), and
    the entrypoint in that image refuses, in one line, a base without FreeSWITCH's config."""
    from qa import dockerlab

    compose = dockerlab.compose_for("host")
    built = compose.run("--profile", "freeswitch", "build", "freeswitch", timeout=600,
                        env={"VOIPQA_FREESWITCH_IMAGE": "debian:12-slim", "DOCKER_BUILDKIT": "0"})
    try:
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
        files = _docker("run", "--rm", "--entrypoint", "sh", "voipqa/freeswitch:0.1.0", "-c",
                        "ls /voipqa/freeswitch/dialplan/voipqa.xml /voipqa/freeswitch-entrypoint.sh")
        assert files.returncode == 0, files.stderr
        refused = _docker("run", "--rm", "voipqa/freeswitch:0.1.0")
        assert refused.returncode == 2 and refused.stderr.strip().count("\n") == 0
        assert "no stock configuration in /etc/freeswitch" in refused.stderr
    finally:
        _docker("rmi", "-f", "voipqa/freeswitch:0.1.0")

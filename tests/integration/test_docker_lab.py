"""The container images (./bootstrap --docker) as the platform under test: Kamailio,
rtpengine and two carriers as host-network containers, each role on its own loopback
address, pass the smoke suite with the four witnesses joined, once with the customers'
SIPp on the host and once with them in the runner container (the containerized customer
simulators). The platform's CDR database and the carriers' CDR files are bind mounts.

Needs a Docker engine and the images: with ``VOIPQA_REQUIRE_DOCKER=1`` their absence
fails; elsewhere the test is skipped with the reason (the native path never needs Docker).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from qa.paths import ROOT

from tests.integration.cli import voipqa

pytestmark = pytest.mark.integration
IMAGES = ("voipqa/lab:0.1.0", "voipqa/carrier:0.1.0", "voipqa/runner:0.1.0")
USERS = [f"10{n:02d}" for n in range(1, 11)]


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


def _require_engine() -> None:
    problem = None
    if shutil.which("docker") is None:
        problem = "no docker command"
    elif _docker("info", check=False).returncode != 0:
        problem = "no Docker engine answers"
    else:
        missing = [i for i in IMAGES if _docker("image", "inspect", i, check=False).returncode != 0]
        problem = f"images missing: {', '.join(missing)}" if missing else None
    if problem is None:
        return
    if os.environ.get("VOIPQA_REQUIRE_DOCKER"):
        pytest.fail(f"VOIPQA_REQUIRE_DOCKER is set but {problem} (./bootstrap --docker)")
    pytest.skip(f"{problem}: run ./bootstrap --docker for the container path")


@pytest.fixture
def shared():
    """A directory the containers' user (uid 10001) can reach: pytest's own is root's only."""
    path = Path(tempfile.mkdtemp(prefix="voipqa-docker-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_host_network_containers_pass_the_smoke_suite_with_every_witness(shared):
    _require_engine()
    tmp_path = shared
    base = random.randrange(40, 200, 4)                 # 127.0.0.B platform, B+1/B+2 carriers
    host, carriers = f"127.0.0.{base}", {"carrier-a": f"127.0.0.{base + 1}", "carrier-b": f"127.0.0.{base + 2}"}
    run, cdr, out_runner = tmp_path / "lab", tmp_path / "carriers", tmp_path / "out-runner"
    for d in (run, cdr, out_runner):
        d.mkdir()
        d.chmod(0o777)                                   # the images run as uid 10001
    secrets = {f"VOIPQA_PW_{u}": f"pw-{u}-{os.getpid()}" for u in USERS}
    pw = [a for k, v in secrets.items() for a in ("-e", f"{k}={v}")]
    name = f"voipqa-test-{os.getpid()}"
    common = ["run", "-d", "--network", "host", "--init"]
    started: list[str] = []
    try:
        for role, argv in [
            ("rtpengine", [*common, "-e", f"VOIPQA_HOST={host}", "voipqa/lab:0.1.0",
                           "python", "/opt/voipqa/docker/lab-entrypoint.py", "rtpengine"]),
            ("platform", [*common, *pw, "-v", f"{run}:/var/lib/voipqa/lab", "-e", f"VOIPQA_HOST={host}",
                          "-e", "VOIPQA_CARRIERS=" + ",".join(f"{n}={ip}:5080" for n, ip in carriers.items()),
                          "-e", "VOIPQA_ALLOW_CIDR=127.0.0.0/8", "voipqa/lab:0.1.0"]),
            *[(n, [*common, "-v", f"{cdr}:/var/lib/voipqa/carriers", "voipqa/carrier:0.1.0", "python", "-m",
                   "qa.carrier", "serve", "--plan", "/opt/voipqa/carriers/numberplan.yaml", "--listen",
                   f"{ip}:5080", "--cdr", f"/var/lib/voipqa/carriers/{n}.jsonl", "--name", n])
              for n, ip in carriers.items()],
        ]:
            argv.insert(1, f"--name={name}-{role}")
            _docker(*argv)
            started.append(f"{name}-{role}")
        _wait_healthy(host, carriers)
        env = yaml.safe_load((ROOT / "environments" / "docker.yaml").read_text())
        env["target"].update(host=host, ca_cert=str(run / "ca.crt"))
        env["carrier"].update(plan=str(ROOT / "carriers" / "numberplan.yaml"),
                              cdr=[str(cdr / f"{n}.jsonl") for n in carriers])
        env["cdr"]["dsn"] = f"sqlite:///{run / 'lab.db'}"
        env_file = tmp_path / "docker-host.yaml"
        env_file.write_text(yaml.safe_dump(env))
        env_file.chmod(0o644)
        proc = voipqa("run", str(ROOT / "robot_suites" / "smoke.robot"), "--env", str(env_file),
                      "--output", str(tmp_path / "out"), lab_dir=tmp_path / "no-native-lab", env=secrets)
        # the customers in the runner image: SIPp needs NET_RAW for its RTP, dumpcap to capture
        runner = _docker("run", "--rm", f"--name={name}-runner", "--network", "host", "--cap-add", "NET_RAW",
                         "--cap-add", "NET_ADMIN", *pw, "-v", f"{tmp_path}:{tmp_path}", "voipqa/runner:0.1.0",
                         "voipqa", "run", "robot_suites/smoke.robot", "--env", str(env_file),
                         "--output", str(out_runner), check=False)
    finally:
        if started:
            _docker("rm", "-f", *started, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1500:]
    assert "4 passed, 0 failed" in proc.stdout and "wire witness: 4 calls found" in proc.stdout
    assert runner.returncode == 0, runner.stdout[-3000:] + runner.stderr[-1500:]
    assert "4 passed, 0 failed" in runner.stdout and "wire witness: 4 calls found" in runner.stdout
    answered = [line for n in carriers for line in (cdr / f"{n}.jsonl").read_text().splitlines()]
    assert len(answered) == 2                            # one answered call per run reached a carrier
    leftovers = _docker("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}").stdout.split()
    assert leftovers == []


def _wait_healthy(host: str, carriers: dict[str, str], timeout: float = 60) -> None:
    """Each SIP role answers OPTIONS (the images' own healthcheck, run from the host)."""
    probe = ROOT / "docker" / "healthcheck.py"
    targets = [(host, "5060"), *[(ip, "5080") for ip in carriers.values()]]
    deadline = time.monotonic() + timeout
    while True:
        done = [subprocess.run([sys.executable, str(probe), "sip", ip, port], capture_output=True, timeout=10)
                for ip, port in targets]
        if all(d.returncode == 0 for d in done):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not answering after {timeout:.0f} s: "
                                 f"{[t for t, d in zip(targets, done) if d.returncode]}")
        time.sleep(1)

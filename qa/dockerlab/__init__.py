"""The docker backend (DESIGN §2, docs/containers.md): the lab as containers, by Compose v2.

``up`` / ``down`` / ``status`` are ``voipqa lab up|down|status --backend docker``;
``run_in_runner`` is ``voipqa run --backend docker``: the whole run (SIPp customers,
capture, the four witnesses, reports) inside the runner container.

Compose does what Compose does (build, create, start in dependency order, wait for health,
stop, remove): ``qa.dockerlab.compose`` calls the real binary with docker-compose.yml, plus
docker-compose.host.yml for the host-network variant (the default: it is what runs where
only the host's network may be used). The Docker SDK does what Compose does not: say
whether an engine answers, whether an image exists, which variant is running, a failing
service's health log, and forward a signal to the runner.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Iterable, Sequence

from qa.dockerlab.compose import Compose, compose_command, last_line
from qa.errors import BadInput, VoipqaError
from qa.paths import ROOT

__all__ = ["NETWORKS", "PROJECT", "ServiceStatus", "build", "compose_for", "engine", "ensure_secrets", "up", "down",
           "status", "running_network", "runner_argv", "run_in_runner"]

PROJECT = "voipqa"
NETWORKS = {"host": ("docker-compose.yml", "docker-compose.host.yml"), "bridge": ("docker-compose.yml",)}
#: the environment file the runner uses, per variant (inside the container: the checkout is /opt/voipqa)
RUNNER_ENV = {"host": "docker-host", "bridge": "docker"}
BASE_IMAGE = "debian:12-slim"
WAIT_S = 180
#: where ./bootstrap --docker keeps the wheels the image builds install from
WHEELHOUSE = ROOT / ".wheelhouse"
Echo = Callable[[str], None]


def compose_for(network: str = "host", *, secrets_needed: bool = True) -> Compose:
    """The project in one variant. Without ``secrets_needed`` (status, down: nothing is
    created) a secret neither the shell nor ``.env`` has is a placeholder, because compose
    interpolates the whole file for every command."""
    if network not in NETWORKS:
        raise BadInput(f"--network {network}: expected one of {', '.join(NETWORKS)}")
    have = read_secrets()
    defaults = {} if secrets_needed else {n: "not-set" for n in secret_names() if n not in have}
    return Compose(tuple(compose_command()), tuple(ROOT / f for f in NETWORKS[network]), PROJECT, defaults=defaults)


# -- the engine (SDK) -------------------------------------------------------------------------
def engine() -> Any:
    """A connected ``docker.DockerClient``; BadInput (exit 2, one line) when no engine answers."""
    import docker
    import requests

    address = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, ValueError):
        raise BadInput(f"no Docker engine reachable at {address}: run ./bootstrap --docker, "
                       "or use --backend native") from None
    return client


def _has_image(client: Any, tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def running_network(client: Any) -> str | None:
    """The variant the running lab uses ("host"/"bridge"), from its platform container; None if none runs."""
    found = client.containers.list(filters={"label": [f"com.docker.compose.project={PROJECT}",
                                                      "com.docker.compose.service=platform"]})
    if not found:
        return None
    return "host" if found[0].attrs["HostConfig"].get("NetworkMode") == "host" else "bridge"


# -- secrets ----------------------------------------------------------------------------------
def secret_names() -> list[str]:
    """``VOIPQA_PW_<USER>`` of every seed account: what docker-compose.yml requires."""
    from qa.lab.seed import load_seed
    from qa.paths import DEFAULT_SEED

    return [f"VOIPQA_PW_{a.user}" for a in load_seed(DEFAULT_SEED).accounts]


def ensure_secrets(path: Path = ROOT / ".env") -> list[str]:
    """Give every account a random password in ``.env`` (mode 0600) unless the shell or the
    file already has one; returns the names added. Compose reads ``.env`` from the project
    directory, so voipqa and a person typing ``docker compose`` share the same values."""
    have = {line.split("=", 1)[0].removeprefix("export ").strip()
            for line in (path.read_text().splitlines() if path.exists() else []) if "=" in line}
    added = [n for n in secret_names() if n not in have and not os.environ.get(n)]
    if added:
        with path.open("a") as out:
            out.writelines(f"{name}={secrets.token_hex(12)}\n" for name in added)
    if path.exists():
        path.chmod(0o600)
    return added


def read_secrets(path: Path = ROOT / ".env") -> dict[str, str]:
    """The account passwords the docker lab uses: the shell's, else ``.env``'s."""
    values = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        key, sep, value = line.removeprefix("export ").partition("=")
        if sep:
            values[key.strip()] = value.strip().strip("'\"")
    return {n: os.environ.get(n) or values[n] for n in secret_names() if os.environ.get(n) or n in values}


# -- up / down / status -----------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceStatus:
    """One service of the docker lab, as ``status`` reports it."""

    service: str
    container: str | None
    state: str                 # running | exited | created | missing | ...
    health: str | None = None  # healthy | unhealthy | starting | None (no healthcheck)
    address: str | None = None
    role: str | None = None

    @property
    def alive(self) -> bool:
        return self.state == "running" and self.health in (None, "", "healthy")


def up(network: str = "host", *, profiles: Iterable[str] = (), build: bool = False,
       echo: Echo = print) -> list[ServiceStatus]:
    """Build the images that are missing (all of them with ``build``), then ``compose up
    --wait``: every service started in dependency order and healthy, or VoipqaError naming
    the one that is not, with its last health output. Idempotent: what runs is kept."""
    client = engine()
    current = running_network(client)
    if current not in (None, network):
        raise BadInput(f"the docker lab runs with --network {current}: voipqa lab down --backend docker first")
    compose = compose_for(network)
    added = ensure_secrets()
    if added:
        echo(f"wrote random passwords for {len(added)} accounts to {ROOT / '.env'} (platform and runner share them)")
    profiles = _available_profiles(client, compose, list(profiles), echo)
    model = compose.config(*profiles)
    services = [n for n, s in model["services"].items() if not s.get("profiles") or set(s["profiles"]) & set(profiles)]
    images = sorted({model["services"][n]["image"] for n in services if "build" in model["services"][n]})
    missing = [tag for tag in images if not _has_image(client, tag)]
    if build or missing:
        _build(client, compose, model, services, echo, why="--build" if build else f"missing: {', '.join(missing)}")
    elif images:
        echo(f"using the images {', '.join(images)} (voipqa lab build after a change to rebuild them)")
    echo(f"starting the docker lab ({network} network): {', '.join(services)}")
    prof = [a for p in profiles for a in ("--profile", p)]
    done = compose.run(*prof, "up", "-d", "--wait", "--wait-timeout", str(WAIT_S), "--no-build", timeout=WAIT_S + 120)
    rows = status(network)
    if done.returncode != 0:
        raise VoipqaError(f"docker lab not up: {last_line(done.stderr)}{_unhealthy(client, rows)}")
    return rows


def _available_profiles(client: Any, compose: Compose, profiles: list[str], echo: Echo) -> list[str]:
    """The profiles to start; ``freeswitch`` is skipped with one line when the FreeSWITCH
    image its build starts FROM is not on this host (no FreeSWITCH can be installed here)."""
    known = {p for s in compose.config("*")["services"].values() for p in s.get("profiles", [])}
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise BadInput(f"--profile {unknown[0]}: docker-compose.yml has the profiles {', '.join(sorted(known))}")
    if "freeswitch" in profiles:
        model = compose.config("freeswitch")
        base = model["services"]["freeswitch"]["build"]["args"]["FREESWITCH_IMAGE"]
        if not _has_image(client, base) and not _has_image(client, model["services"]["freeswitch"]["image"]):
            echo(f"freeswitch: skipped: no image {base} on this host (set VOIPQA_FREESWITCH_IMAGE to your "
                 "FreeSWITCH 1.10 image; docs/containers.md)")
            profiles = [p for p in profiles if p != "freeswitch"]
    return profiles


def build(network: str = "host", *, echo: Echo = print) -> list[tuple[str, int]]:
    """Build (or bring up to date: cached layers are reused) the lab's, the carriers' and
    the runner's images; returns (tag, size in bytes) of each."""
    client = engine()
    ensure_secrets()
    compose = compose_for(network)
    model = compose.config("*")
    # every image voipqa makes itself; FreeSWITCH's starts FROM your image (``up --profile freeswitch``)
    services = [n for n, s in model["services"].items() if "freeswitch" not in s.get("profiles", [])]
    tags = _build(client, compose, model, services, echo, why="voipqa lab build")
    return [(tag, int(client.images.get(tag).attrs["Size"])) for tag in tags]


def _build(client: Any, compose: Compose, model: dict[str, Any], services: Sequence[str], echo: Echo,
           why: str) -> list[str]:
    """``compose build``, one service per image (services sharing an image share its build),
    with the classic builder (BuildKit would fetch a frontend image from a registry) and pip
    pointed at ./bootstrap --docker's wheelhouse when it exists. Returns the tags built."""
    builders: dict[str, str] = {}
    for name in services:
        if "build" in model["services"][name]:
            builders.setdefault(model["services"][name]["image"], name)
    if not _has_image(client, BASE_IMAGE):
        raise BadInput(f"no base image {BASE_IMAGE} on this host (no registry is reachable here): "
                       "run ./bootstrap --docker, which makes it from the Debian mirror")
    env = {"DOCKER_BUILDKIT": "0"}
    if "VOIPQA_PIP_OPTIONS" not in os.environ and WHEELHOUSE.is_dir():
        env["VOIPQA_PIP_OPTIONS"] = "--no-index --find-links /build"
    echo(f"building {', '.join(sorted(builders))} ({why})")
    done = compose.run("build", *builders.values(), env=env, timeout=3600)
    if done.returncode != 0:
        raise VoipqaError(f"docker compose build failed: {last_line(done.stderr or done.stdout)}")
    return sorted(builders)


def _unhealthy(client: Any, rows: list[ServiceStatus]) -> str:
    """`` (platform: exited 2: <last log line>)`` for the first service that is not alive."""
    for row in rows:
        if row.container is None or row.alive:
            continue
        container = client.containers.get(row.container)
        log = ((container.attrs["State"].get("Health") or {}).get("Log") or [])
        text = log[-1].get("Output", "") if log else container.logs(tail=3).decode(errors="replace")
        return f" ({row.service}: {row.state} {row.health or ''}: {last_line(text)})"
    return ""


def status(network: str | None = None) -> list[ServiceStatus]:
    """Every service of the file (active or not) with its container's state and health."""
    client = engine()
    network = network or running_network(client) or "host"
    compose = compose_for(network, secrets_needed=False)
    model = compose.config("*")
    by_service = {c["Service"]: c for c in compose.containers()}
    rows: list[ServiceStatus] = []
    for name, svc in model["services"].items():
        role = (svc.get("labels") or {}).get("org.voipqa.role")
        found = by_service.get(name)
        if found is None:
            rows.append(ServiceStatus(name, None, "missing", role=role))
            continue
        rows.append(ServiceStatus(name, found["Name"], found["State"], found.get("Health") or None,
                                  _address(svc), role))
    return rows


def _address(svc: dict[str, Any]) -> str | None:
    env = svc.get("environment") or {}
    nets = svc.get("networks") or {}
    fixed = next((n.get("ipv4_address") for n in nets.values() if n and n.get("ipv4_address")), None)
    return fixed or env.get("VOIPQA_LISTEN") or env.get("VOIPQA_HOST") or env.get("VOIPQA_SIP_IP")


def down(*, volumes: bool = False) -> list[str]:
    """Stop and remove every container of the project (all profiles) and its network; the
    volumes (the platform's CDRs, captures, results) too with ``volumes``. Returns the
    containers removed."""
    client = engine()
    compose = compose_for(running_network(client) or "host", secrets_needed=False)
    names = [c["Name"] for c in compose.containers()]
    compose.check("--profile", "*", "down", "--remove-orphans", *(["--volumes"] if volumes else []), timeout=300)
    return names


# -- the runner -------------------------------------------------------------------------------
def runner_argv(run_args: Sequence[str], *, output: Path, cwd: Path, mounts: Iterable[Path] = (),
                passthrough: Iterable[str] = (), name: str) -> list[str]:
    """``compose run`` of the runner service for ``voipqa run RUN_ARGS``: the checkout at
    /opt/voipqa (the run uses the code and suites in front of the user, not the image's
    copy), the working directory and every path named at their own paths, the output
    directory writable, as the calling user, so the reports belong to them."""
    binds = [f"{ROOT}:/opt/voipqa:ro", f"{cwd}:{cwd}:ro",
             *(f"{p}:{p}:ro" for p in mounts), f"{output}:{output}"]
    env = ["HOME=/tmp", *passthrough]
    return ["run", "--rm", "-T", "--no-deps", "--name", name, "--user", f"{os.getuid()}:{os.getgid()}",
            "--workdir", str(cwd), *(a for b in binds for a in ("--volume", b)),
            *(a for e in env for a in ("--env", e)), "runner", "voipqa", "run", *run_args]


def run_in_runner(run_args: Sequence[str], *, output: Path, mounts: Iterable[Path] = (),
                  passthrough: Iterable[str] = (), echo: Echo = print) -> int:
    """``voipqa run`` in the runner container; its exit code. SIGINT/SIGTERM are passed to
    the run in the container, which ends its cases and writes the reports as a native run
    does; compose runs in its own session so a terminal's Ctrl-C reaches only us."""
    client = engine()
    network = running_network(client)
    if network is None:
        raise BadInput("no docker lab runs: voipqa lab up --backend docker")
    compose = compose_for(network)
    model = compose.config("run")
    if not _has_image(client, model["services"]["runner"]["image"]):
        _build(client, compose, model, ["runner"], echo, why="the runner image is missing")
    output.mkdir(parents=True, exist_ok=True)
    name = f"voipqa-run-{os.getpid()}"
    argv = compose.argv(*runner_argv(run_args, output=output.resolve(), cwd=Path.cwd(),
                                     mounts=mounts, passthrough=passthrough, name=name))
    echo(f"running in the runner container {name} ({network} network)")
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)

    def forward(signum: int, frame: FrameType | None) -> None:
        try:  # the container's init (tini) hands it to voipqa, which exits 130/143 as natively
            client.containers.get(name).kill(signal=signal.Signals(signum).name)
        except Exception:  # noqa: BLE001 - not created yet, or gone: nothing to stop
            pass

    saved = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)

"""The docker backend (DESIGN §2): ``docker-compose.yml`` driven through the Python docker SDK.

``up(compose_file)`` / ``down(compose_file)`` / ``status(compose_file)`` are what
``voipqa lab up|down|status --backend docker`` call. No Docker engine runs on the
development machines, so this path is checked statically (tests/unit/test_container_path.py):
the compose file is parsed and translated into SDK calls here, and a fake client checks
the calls; only a user with an engine runs them for real.

Why the SDK and not ``docker compose``: DESIGN §2 names the SDK as the driver, and the
compose CLI plugin is a second install that may be missing where the SDK (a Python
dependency) is not. So this module implements the part of the Compose specification that
voipqa's own file uses — and nothing else: a key it does not support is a BadInput naming
it (``load_compose``), so the file and the driver cannot drift apart silently. Supported:

- top level: ``name``, ``services``, ``networks`` (bridge + IPAM subnets), ``volumes``
  (named, local), ``x-*`` extension fields (YAML anchors/merge keys resolve at parse time);
- a service: ``build`` (context, dockerfile), ``image``, ``profiles``, ``init``, ``user``,
  ``working_dir``, ``command``, ``entrypoint``, ``environment``, ``volumes`` (short
  syntax: named volume or ./bind path, ``:ro``), ``networks`` (``ipv4_address``,
  ``aliases``), ``network_mode`` (``service:NAME``, ``host``, ``none``), ``cap_add``,
  ``depends_on`` (``service_started`` / ``service_healthy`` /
  ``service_completed_successfully``), ``healthcheck``, ``labels``, ``restart``;
- variable interpolation as Compose does it: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
  ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``$$``; the process
  environment first, then ``.env`` beside the compose file.

Objects are named and labelled like Compose v2 names them (``PROJECT-SERVICE-1``,
``PROJECT_NETWORK``, ``PROJECT_VOLUME``; ``com.docker.compose.project``/``.service``
labels), so ``docker compose -p voipqa ps`` and ``down`` see them too.

Length: the Compose subset voipqa's file uses, translated to SDK calls in one place so
the file and the driver cannot drift (issue 10 replaces it with the Compose v2 binary).
"""

from __future__ import annotations

import os
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from qa.errors import BadInput, VoipqaError
from qa.paths import ROOT

__all__ = ["DEFAULT_COMPOSE", "DEFAULT_PROJECT", "Compose", "ServiceStatus", "load_compose", "interpolate",
           "start_order", "active_services", "container_kwargs", "engine", "up", "down", "status",
           "parse_duration"]

DEFAULT_COMPOSE = ROOT / "docker-compose.yml"
DEFAULT_PROJECT = "voipqa"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
HEALTH_WAIT_S = 180.0
STOP_TIMEOUT_S = 10

TOP_KEYS = frozenset({"name", "services", "networks", "volumes"})
SERVICE_KEYS = frozenset({"build", "image", "profiles", "init", "user", "working_dir", "command", "entrypoint",
                          "environment", "volumes", "networks", "network_mode", "cap_add", "depends_on",
                          "healthcheck", "labels", "restart"})
BUILD_KEYS = frozenset({"context", "dockerfile"})
HEALTH_KEYS = frozenset({"test", "interval", "timeout", "retries", "start_period"})
NETWORK_KEYS = frozenset({"driver", "ipam"})
SERVICE_NETWORK_KEYS = frozenset({"ipv4_address", "aliases"})
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
RESTART = {"no": None, "always": {"Name": "always"}, "unless-stopped": {"Name": "unless-stopped"},
           "on-failure": {"Name": "on-failure", "MaximumRetryCount": 0}}

_VAR = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_NS = {"us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


# -- the file ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Compose:
    """A parsed, interpolated and checked compose file."""

    path: Path
    name: str | None
    services: dict[str, dict[str, Any]]
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.resolve().parent


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional quotes), as Compose reads ``.env``."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return values
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror}") from None
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def interpolate(value: Any, environ: Mapping[str, str], where: str = "", *, required: bool = True) -> Any:
    """Compose variable substitution over every string of ``value`` (keys untouched).
    ``required=False``: an unset ``${VAR:?...}`` becomes "" (``status``/``down`` need no secrets)."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ, f"{where}.{k}" if where else str(k), required=required)
                for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ, f"{where}[{i}]", required=required) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4) or ""
        current = environ.get(name)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if unset else current  # type: ignore[return-value]
        if op in (":?", "?"):
            if unset and required:
                raise BadInput(f"{where}: variable {name} is not set: {arg or 'required'}")
            return current or ""
        return current or ""

    return _VAR.sub(sub, value)


def _fail(path: Path, where: str, problem: str) -> BadInput:
    return BadInput(f"{path}: {where}: {problem}")


def load_compose(path: Path | str = DEFAULT_COMPOSE, environ: Mapping[str, str] | None = None, *,
                 require_vars: bool = True) -> Compose:
    """Parse, interpolate and check ``path``; BadInput (one line: file, key, problem) on any fault.
    ``require_vars=False``: unset required variables (the secrets) are not an error."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BadInput(f"{path}: not valid YAML{f' (line {mark.line + 1})' if mark else ''}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict) or not raw["services"]:
        raise BadInput(f"{path}: needs a services: mapping")
    for key in raw:
        if key not in TOP_KEYS and not str(key).startswith("x-"):
            raise _fail(path, str(key), f"not supported by qa.dockerlab (supported: {', '.join(sorted(TOP_KEYS))})")
    env = {**read_dotenv(path.resolve().parent / ".env"), **(os.environ if environ is None else environ)}
    data = interpolate({k: v for k, v in raw.items() if not str(k).startswith("x-")}, env, required=require_vars)
    networks = {n: (v or {}) for n, v in (data.get("networks") or {}).items()}
    volumes = {n: (v or {}) for n, v in (data.get("volumes") or {}).items()}
    for name, net in networks.items():
        for key in net:
            if key not in NETWORK_KEYS:
                raise _fail(path, f"networks.{name}.{key}", "not supported by qa.dockerlab")
        if net.get("driver", "bridge") != "bridge":
            raise _fail(path, f"networks.{name}.driver", "only bridge is supported")
    for name, vol in volumes.items():
        if vol:
            raise _fail(path, f"volumes.{name}", "only plain named volumes ({}) are supported")
    services: dict[str, dict[str, Any]] = {}
    for name, svc in data["services"].items():
        services[name] = _check_service(path, name, svc or {}, networks, volumes)
    compose = Compose(path=path, name=data.get("name"), services=services, networks=networks, volumes=volumes)
    start_order(compose, list(services))  # unknown dependencies and cycles are bad input
    return compose


def _check_service(path: Path, name: str, svc: dict[str, Any], networks: dict[str, Any],
                   volumes: dict[str, Any]) -> dict[str, Any]:
    where = f"services.{name}"
    for key in svc:
        if key not in SERVICE_KEYS:
            raise _fail(path, f"{where}.{key}",
                        f"not supported by qa.dockerlab (supported: {', '.join(sorted(SERVICE_KEYS))})")
    if "image" not in svc and "build" not in svc:
        raise _fail(path, where, "needs image: or build:")
    build = svc.get("build")
    if build is not None:
        if isinstance(build, str):
            svc = {**svc, "build": {"context": build}}
        elif not isinstance(build, dict) or set(build) - BUILD_KEYS:
            raise _fail(path, f"{where}.build", f"only {', '.join(sorted(BUILD_KEYS))} are supported")
    if "healthcheck" in svc:
        extra = set(svc["healthcheck"]) - HEALTH_KEYS
        if extra:
            raise _fail(path, f"{where}.healthcheck.{sorted(extra)[0]}", "not supported by qa.dockerlab")
        for key in ("interval", "timeout", "start_period"):
            if key in svc["healthcheck"]:
                try:
                    parse_duration(svc["healthcheck"][key])
                except ValueError as exc:
                    raise _fail(path, f"{where}.healthcheck.{key}", str(exc)) from None
    mode = svc.get("network_mode")
    if mode is not None:
        if "networks" in svc:
            raise _fail(path, where, "network_mode and networks exclude each other")
        if not (mode in ("host", "none") or mode.startswith("service:")):
            raise _fail(path, f"{where}.network_mode", f"{mode!r}: only service:NAME, host or none")
    nets = svc.get("networks") or {}
    if isinstance(nets, list):
        nets = {n: {} for n in nets}
    for net, opts in nets.items():
        if net not in networks:
            raise _fail(path, f"{where}.networks.{net}", "not declared under the top-level networks:")
        extra = set(opts or {}) - SERVICE_NETWORK_KEYS
        if extra:
            raise _fail(path, f"{where}.networks.{net}.{sorted(extra)[0]}", "not supported by qa.dockerlab")
    for i, spec in enumerate(svc.get("volumes") or []):
        if not isinstance(spec, str):
            raise _fail(path, f"{where}.volumes[{i}]", "only the short syntax SOURCE:TARGET[:ro|rw] is supported")
        source, target, mode_ = _split_volume(spec)
        if not target.startswith("/") or mode_ not in ("ro", "rw"):
            raise _fail(path, f"{where}.volumes[{i}]", f"{spec!r}: expected SOURCE:/TARGET[:ro|rw]")
        if not _is_bind(source) and source not in volumes:
            raise _fail(path, f"{where}.volumes[{i}]", f"volume {source!r} not declared under volumes:")
    restart = str(svc.get("restart", "no"))
    if restart not in RESTART:
        raise _fail(path, f"{where}.restart", f"must be one of {', '.join(RESTART)}")
    for dep, cond in _depends(svc).items():
        if cond not in CONDITIONS:
            raise _fail(path, f"{where}.depends_on.{dep}", f"condition must be one of {', '.join(CONDITIONS)}")
    return {**svc, "networks": nets} if "networks" in svc else svc


def _split_volume(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) == 2:
        return parts[0], parts[1], "rw"
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    return spec, "", ""


def _is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def _depends(svc: Mapping[str, Any]) -> dict[str, str]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: (opts or {}).get("condition", "service_started") for d, opts in deps.items()}


def dependencies(svc: Mapping[str, Any]) -> dict[str, str]:
    """The services ``svc`` waits for and on what (``network_mode: service:X`` is one too)."""
    deps = _depends(svc)
    mode = svc.get("network_mode") or ""
    if mode.startswith("service:"):
        deps.setdefault(mode.split(":", 1)[1], "service_started")
    return deps


def start_order(compose: Compose, names: Iterable[str]) -> list[str]:
    """``names`` and what they depend on, dependencies first (file order among equals);
    BadInput on an unknown service or a cycle."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: list[str]) -> None:
        if name not in compose.services:
            raise BadInput(f"{compose.path}: services.{chain[-1] if chain else name}: depends on unknown "
                           f"service {name!r}")
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = chain[chain.index(name):] + [name]
            raise BadInput(f"{compose.path}: dependency cycle: {' -> '.join(cycle)}")
        state[name] = "visiting"
        for dep in dependencies(compose.services[name]):
            visit(dep, chain + [name])
        state[name] = "done"
        order.append(name)

    for name in names:
        visit(name, [])
    return order


def active_services(compose: Compose, profiles: Iterable[str] = ()) -> list[str]:
    """Services without ``profiles:`` or in one of ``profiles``, in start order."""
    wanted = set(profiles)
    chosen = [n for n, s in compose.services.items() if not s.get("profiles") or wanted & set(s["profiles"])]
    return start_order(compose, chosen)


def parse_duration(value: Any) -> int:
    """A Compose duration (``5s``, ``1m30s``, ``500ms``) in nanoseconds."""
    text = str(value).strip()
    if not text or _DURATION.sub("", text):
        raise ValueError(f"{value!r} is not a duration (e.g. 5s, 1m30s, 500ms)")
    return int(sum(float(n) * _NS[unit] for n, unit in _DURATION.findall(text)))


# -- translation to SDK calls -----------------------------------------------------------------
def image_of(compose: Compose, name: str, project: str) -> str:
    svc = compose.services[name]
    return svc.get("image") or f"{project}-{name}"


def container_name(project: str, service: str) -> str:
    return f"{project}-{service}-1"


def resource_name(project: str, name: str) -> str:
    return f"{project}_{name}"


def _argv(value: Any) -> list[str] | None:
    if value is None:
        return None
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def _environment(value: Any, environ: Mapping[str, str]) -> dict[str, str]:
    if isinstance(value, list):
        pairs = [item.partition("=") for item in value]
        return {k: (v if sep else environ.get(k, "")) for k, sep, v in pairs}
    return {str(k): environ.get(str(k), "") if v is None else str(v) for k, v in (value or {}).items()}


def healthcheck_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    test = spec.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    out: dict[str, Any] = {"test": test}
    for key, sdk in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "start_period")):
        if key in spec:
            out[sdk] = parse_duration(spec[key])
    if "retries" in spec:
        out["retries"] = int(spec["retries"])
    return out


def container_kwargs(compose: Compose, name: str, project: str, container_ids: Mapping[str, str],
                     environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``client.containers.create`` for service ``name`` (networks
    other than the first are connected after creation: see ``extra_networks``).
    ``container_ids``: the containers already created, for ``network_mode: service:X``."""
    svc = compose.services[name]
    env = os.environ if environ is None else environ
    labels = {PROJECT_LABEL: project, SERVICE_LABEL: name, "com.docker.compose.container-number": "1",
              "com.docker.compose.oneoff": "False",
              "com.docker.compose.project.config_files": str(compose.path.resolve())}
    labels.update({str(k): str(v) for k, v in (svc.get("labels") or {}).items()})
    kwargs: dict[str, Any] = {
        "image": image_of(compose, name, project),
        "name": container_name(project, name),
        "detach": True,
        "labels": labels,
        "environment": _environment(svc.get("environment"), env),
        "init": bool(svc.get("init", False)),
        "restart_policy": RESTART[str(svc.get("restart", "no"))],
    }
    for key, sdk in (("command", "command"), ("entrypoint", "entrypoint")):
        if key in svc:
            kwargs[sdk] = _argv(svc[key])
    for key, sdk in (("user", "user"), ("working_dir", "working_dir")):
        if key in svc:
            kwargs[sdk] = str(svc[key])
    if svc.get("cap_add"):
        kwargs["cap_add"] = list(svc["cap_add"])
    if "healthcheck" in svc:
        kwargs["healthcheck"] = healthcheck_kwargs(svc["healthcheck"])
    binds: dict[str, dict[str, str]] = {}
    for spec in svc.get("volumes") or []:
        source, target, mode = _split_volume(spec)
        if _is_bind(source):
            source = str((compose.root / Path(source).expanduser()).resolve())
        else:
            source = resource_name(project, source)
        binds[source] = {"bind": target, "mode": mode}
    if binds:
        kwargs["volumes"] = binds
    mode = svc.get("network_mode")
    if mode:
        if mode.startswith("service:"):
            owner = mode.split(":", 1)[1]
            if owner not in container_ids:
                raise VoipqaError(f"{name}: network_mode {mode}: {owner} has no container yet")
            kwargs["network_mode"] = f"container:{container_ids[owner]}"
        else:
            kwargs["network_mode"] = mode
    elif svc.get("networks"):
        net, opts = next(iter(svc["networks"].items()))
        kwargs["network"] = resource_name(project, net)
        kwargs["networking_config"] = {resource_name(project, net): _endpoint(name, opts or {})}
    return kwargs


def _endpoint(service: str, opts: Mapping[str, Any]) -> dict[str, Any]:
    """The endpoint settings (what ``client.api.create_endpoint_config`` takes)."""
    out: dict[str, Any] = {"aliases": [service, *(opts.get("aliases") or [])]}
    if opts.get("ipv4_address"):
        out["ipv4_address"] = opts["ipv4_address"]
    return out


def extra_networks(compose: Compose, name: str, project: str) -> list[tuple[str, dict[str, Any]]]:
    nets = list((compose.services[name].get("networks") or {}).items())
    return [(resource_name(project, n), _endpoint(name, o or {})) for n, o in nets[1:]]


def network_kwargs(compose: Compose, net: str, project: str) -> dict[str, Any]:
    spec = compose.networks[net]
    subnets = [c["subnet"] for c in ((spec.get("ipam") or {}).get("config") or []) if "subnet" in c]
    return {"name": resource_name(project, net), "driver": spec.get("driver", "bridge"),
            "labels": {PROJECT_LABEL: project, "com.docker.compose.network": net}, "subnets": subnets}


# -- the engine -------------------------------------------------------------------------------
def engine_address(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or DEFAULT_SOCKET


def engine() -> Any:
    """A connected ``docker.DockerClient``; BadInput (exit 2, one line) when no engine answers."""
    import docker
    import requests

    address = engine_address()
    message = f"no Docker engine reachable at {address}: start Docker, or use --backend native"
    try:
        client = docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, ValueError):
        raise BadInput(message) from None
    return client


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
        return self.state == "running" and self.health in (None, "healthy")


def _project(compose: Compose, project: str | None) -> str:
    return project or compose.name or DEFAULT_PROJECT


def up(compose_file: Path | str = DEFAULT_COMPOSE, project: str | None = None, *, profiles: Iterable[str] = (),
       build: bool = True, wait_s: float = HEALTH_WAIT_S, client: Any = None,
       environ: Mapping[str, str] | None = None) -> list[ServiceStatus]:
    """Build/pull the images, create the networks and volumes, then create and start each
    active service in dependency order, waiting for ``depends_on`` conditions; a service
    already running is left as it is. Returns ``status``. Raises BadInput (no engine, bad
    file, missing image) or VoipqaError (a build failed, a service exited or stayed unhealthy)."""
    cli = client if client is not None else engine()
    compose = load_compose(compose_file, environ)
    proj = _project(compose, project)
    names = active_services(compose, profiles)
    _images(cli, compose, names, proj, build)
    used_nets = {n for s in names for n in (compose.services[s].get("networks") or {})}
    for net in sorted(used_nets):
        _ensure_network(cli, compose, net, proj)
    used_vols = {_split_volume(v)[0] for s in names for v in (compose.services[s].get("volumes") or [])}
    for vol in sorted(v for v in used_vols if not _is_bind(v)):
        _ensure_volume(cli, resource_name(proj, vol), proj)
    ids: dict[str, str] = {}
    for name in names:
        svc = compose.services[name]
        for dep, cond in dependencies(svc).items():
            _wait(cli, proj, dep, cond, wait_s)
        ids[name] = _start(cli, compose, name, proj, ids, environ)
    return status(compose_file, proj, client=cli, environ=environ)


def _images(cli: Any, compose: Compose, names: list[str], project: str, build: bool) -> None:
    import docker

    done: set[str] = set()
    for name in names:
        svc, tag = compose.services[name], image_of(compose, name, project)
        if tag in done:
            continue
        done.add(tag)
        if "build" in svc and build:
            spec = svc["build"]
            context = (compose.root / spec.get("context", ".")).resolve()
            try:
                cli.images.build(path=str(context), dockerfile=spec.get("dockerfile", "Dockerfile"), tag=tag,
                                 rm=True, labels={PROJECT_LABEL: project})
            except docker.errors.BuildError as exc:
                tail = [str(c.get("stream", c.get("error", ""))).strip() for c in exc.build_log or []]
                raise VoipqaError(f"building {tag} for {name} failed: {exc.msg} "
                                  f"{' | '.join(t for t in tail if t)[-300:]}") from None
            continue
        try:
            cli.images.get(tag)
        except docker.errors.ImageNotFound:
            try:
                cli.images.pull(tag)
            except docker.errors.APIError as exc:
                raise BadInput(f"image {tag} for service {name}: not here and not pullable "
                               f"({exc.explanation or exc}): build or supply it (see docker-compose.yml)") from None


def _ensure_network(cli: Any, compose: Compose, net: str, project: str) -> None:
    import docker

    spec = network_kwargs(compose, net, project)
    if cli.networks.list(names=[spec["name"]]):
        return
    ipam = None
    if spec["subnets"]:
        ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=s) for s in spec["subnets"]])
    cli.networks.create(spec["name"], driver=spec["driver"], ipam=ipam, labels=spec["labels"])


def _ensure_volume(cli: Any, name: str, project: str) -> None:
    import docker

    try:
        cli.volumes.get(name)
    except docker.errors.NotFound:
        cli.volumes.create(name=name, labels={PROJECT_LABEL: project})


def _container(cli: Any, project: str, service: str) -> Any:
    found = cli.containers.list(all=True, filters={"label": [f"{PROJECT_LABEL}={project}",
                                                             f"{SERVICE_LABEL}={service}"]})
    return found[0] if found else None


def _start(cli: Any, compose: Compose, name: str, project: str, ids: dict[str, str],
           environ: Mapping[str, str] | None) -> str:
    existing = _container(cli, project, name)
    if existing is not None:
        if existing.status == "running":
            return existing.id
        existing.remove(force=True)
    kwargs = container_kwargs(compose, name, project, ids, environ)
    if "networking_config" in kwargs:
        kwargs["networking_config"] = {n: cli.api.create_endpoint_config(**opts)
                                       for n, opts in kwargs["networking_config"].items()}
    container = cli.containers.create(**kwargs)
    for net, opts in extra_networks(compose, name, project):
        cli.networks.get(net).connect(container, **opts)
    container.start()
    return container.id


def _wait(cli: Any, project: str, service: str, condition: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        container = _container(cli, project, service)
        if container is None:
            raise VoipqaError(f"{service}: no container (is its profile active?)")
        container.reload()
        state = container.attrs.get("State", {})
        health = (state.get("Health") or {}).get("Status")
        running = state.get("Status") == "running"
        if condition == "service_started" and running:
            return
        if condition == "service_healthy" and health == "healthy":
            return
        if condition == "service_completed_successfully" and state.get("Status") == "exited":
            if state.get("ExitCode") == 0:
                return
        if state.get("Status") in ("exited", "dead"):
            raise VoipqaError(f"{service} exited with code {state.get('ExitCode')}: {_log_tail(container)}")
        if health == "unhealthy":
            raise VoipqaError(f"{service} is unhealthy: {_health_tail(state)}")
        if time.monotonic() > deadline:
            raise VoipqaError(f"{service} not {condition.removeprefix('service_')} after {wait_s:g} s")
        time.sleep(1.0)


def _log_tail(container: Any, lines: int = 5) -> str:
    try:
        text = container.logs(tail=lines).decode(errors="replace").strip()
    except Exception:  # noqa: BLE001 - best effort, for the one-line message only
        return ""
    return " | ".join(text.splitlines()[-lines:])


def _health_tail(state: Mapping[str, Any]) -> str:
    log = (state.get("Health") or {}).get("Log") or []
    return str(log[-1].get("Output", "")).strip().replace("\n", " | ")[-300:] if log else ""


def status(compose_file: Path | str = DEFAULT_COMPOSE, project: str | None = None, *, client: Any = None,
           environ: Mapping[str, str] | None = None) -> list[ServiceStatus]:
    """Every service of the file (active or not) with its container's state and health."""
    cli = client if client is not None else engine()
    compose = load_compose(compose_file, environ, require_vars=False)
    proj = _project(compose, project)
    rows: list[ServiceStatus] = []
    for name, svc in compose.services.items():
        role = (svc.get("labels") or {}).get("org.voipqa.role")
        container = _container(cli, proj, name)
        if container is None:
            rows.append(ServiceStatus(name, None, "missing", role=role))
            continue
        container.reload()
        state = container.attrs.get("State", {})
        nets = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        address = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), None)
        rows.append(ServiceStatus(name, container.name, state.get("Status", container.status),
                                  (state.get("Health") or {}).get("Status"), address, role))
    return rows


def down(compose_file: Path | str = DEFAULT_COMPOSE, project: str | None = None, *, volumes: bool = False,
         client: Any = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Stop and remove the project's containers (dependents first) and networks, and its
    volumes too when ``volumes`` (results and captures live there: off by default).
    Returns the names removed."""
    cli = client if client is not None else engine()
    try:
        compose: Compose | None = load_compose(compose_file, environ, require_vars=False)
    except BadInput:
        compose = None  # a file that no longer parses must not keep a lab running
    proj = _project(compose, project) if compose else (project or DEFAULT_PROJECT)
    label = {"label": [f"{PROJECT_LABEL}={proj}"]}
    containers = cli.containers.list(all=True, filters=label)
    order = start_order(compose, [n for n in compose.services]) if compose else []
    rank = {n: i for i, n in enumerate(order)}
    containers.sort(key=lambda c: rank.get(c.labels.get(SERVICE_LABEL, ""), -1), reverse=True)
    removed: list[str] = []
    for container in containers:
        if container.status == "running":
            container.stop(timeout=STOP_TIMEOUT_S)
        container.remove(force=True)
        removed.append(container.name)
    for net in cli.networks.list(filters=label):
        net.remove()
        removed.append(net.name)
    if volumes:
        for vol in cli.volumes.list(filters=label):
            vol.remove(force=True)
            removed.append(vol.name)
    return removed

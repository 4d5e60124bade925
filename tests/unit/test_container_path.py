"""The docker backend, checked statically (DESIGN §2): no Docker engine runs here.

docker-compose.yml (schema, roles, build contexts, mounts, healthchecks, secrets,
dependencies, addresses), the three Dockerfiles (base image, Debian packages against
./bootstrap, no pipe-to-shell), the FreeSWITCH configuration it mounts, the environment
file the runner uses, the entrypoints (run here against the real renderer and Kamailio
when installed), and qa.dockerlab (the SDK driver) against a fake engine.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

import qa.dockerlab as dockerlab
from qa.errors import BadInput, VoipqaError
from qa.lab.seed import load_seed
from qa.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = {"runner": ROOT / "Dockerfile", "lab": ROOT / "lab" / "Dockerfile",
               "carrier": ROOT / "carriers" / "Dockerfile"}
ROLES = {"platform", "media", "carrier", "freeswitch", "capture", "runner"}
SEED = load_seed(ROOT / "lab" / "seed.yaml")
SECRETS = {f"VOIPQA_PW_{a.user}": f"pw-{a.user}-not-the-seed" for a in SEED.accounts}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def parsed() -> dockerlab.Compose:
    return dockerlab.load_compose(COMPOSE, SECRETS)


def _load(path: Path, name: str):  # noqa: ANN202 - a script from docker/ as a module
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    saved, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in docker/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = saved
    return module


def _bootstrap_packages() -> list[str]:
    text = (ROOT / "bootstrap").read_text()
    block = re.search(r"^DEB_PACKAGES=\((.*?)^\)", text, re.S | re.M)
    assert block, "./bootstrap has no DEB_PACKAGES=( ... ) array"
    words = [ln.split("#", 1)[0].split() for ln in block.group(1).splitlines()]
    return [w for line in words for w in line]


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not buf and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        buf += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            cmd, _, args = buf.strip().partition(" ")
            out.append((cmd.upper(), args.strip()))
            buf = ""
    assert not buf, f"{path}: dangling line continuation"
    return out


def _apt_packages(path: Path) -> set[str]:
    pkgs: set[str] = set()
    for cmd, args in _dockerfile_instructions(path):
        if cmd != "RUN":
            continue
        for part in re.split(r"&&|;", args):
            words = part.split()
            if "apt-get" in words and "install" in words:
                pkgs |= {w for w in words[words.index("install") + 1:] if not w.startswith("-")}
    return pkgs


# -- docker-compose.yml -----------------------------------------------------------------------
def test_compose_parses_without_version_and_has_every_role(compose):
    assert "version" not in compose, "Compose spec: the version: key is obsolete"
    services = compose["services"]
    roles = {s.get("labels", {}).get("org.voipqa.role") for s in services.values()}
    assert roles == ROLES
    assert {"platform", "rtpengine", "carrier-a", "carrier-b", "freeswitch", "capture", "runner"} <= set(services)
    assert services["capture"]["network_mode"] == "service:platform"
    assert "voipqa" in " ".join(services["runner"]["command"]) and "--env" in services["runner"]["command"]
    assert services["runner"]["command"][services["runner"]["command"].index("--env") + 1] == "docker"


def test_compose_validates_against_the_compose_spec_schema(compose):
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    from importlib.resources import files

    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    resolved = dockerlab.interpolate(compose, SECRETS)  # the schema wants ports etc. after interpolation
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(resolved), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


def test_every_key_of_the_compose_file_is_supported_by_the_sdk_driver(parsed):
    assert set(parsed.services) == set(yaml.safe_load(COMPOSE.read_text())["services"])


def test_build_contexts_have_their_dockerfiles(compose):
    built = 0
    for name, svc in compose["services"].items():
        if "build" not in svc:
            continue
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        context = (ROOT / build.get("context", ".")).resolve()
        assert context.is_dir(), f"{name}: build context {context} missing"
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile"
        built += 1
    assert built >= 3
    # a service using an image another service builds repeats that build (compose never pulls it)
    builders = {svc["image"]: svc["build"] for svc in compose["services"].values() if "build" in svc}
    for name, svc in compose["services"].items():
        if svc["image"] in builders:
            assert svc.get("build") == builders[svc["image"]], f"{name}: build differs for {svc['image']}"


def test_bind_mounts_exist_in_the_repository(compose):
    binds = 0
    for name, svc in compose["services"].items():
        for spec in svc.get("volumes", []):
            source = spec.split(":")[0]
            if source.startswith((".", "/")):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name}: {source} does not exist in the repository"
                assert ROOT in path.parents, f"{name}: {source} is outside the repository"
                binds += 1
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
    assert binds >= 2


def test_every_service_has_a_healthcheck(compose):
    for name, svc in compose["services"].items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
        for key in ("interval", "timeout"):
            assert dockerlab.parse_duration(hc[key]) > 0


def test_healthcheck_and_entrypoint_scripts_exist_in_the_images(compose):
    """/opt/voipqa/... in a command is the repository's file (COPY . /opt/voipqa)."""
    for name, svc in compose["services"].items():
        argv = [*svc.get("command", []), *svc.get("healthcheck", {}).get("test", [])]
        for word in argv:
            if isinstance(word, str) and word.startswith("/opt/voipqa/") and Path(word).suffix:
                assert (ROOT / word.removeprefix("/opt/voipqa/")).exists(), f"{name}: {word} not in the repo"


def test_no_literal_secrets_anywhere_in_the_container_path(compose):
    files = [COMPOSE, *DOCKERFILES.values(), ROOT / ".dockerignore", ROOT / "environments" / "docker.yaml",
             *sorted(p for p in (ROOT / "docker").iterdir() if p.is_file())]
    for path in files:
        text = path.read_text()
        for account in SEED.accounts:
            assert account.password not in text, f"{path.name} holds the password of {account.user}"
    # every secret-looking variable comes from the environment, never a value in the file
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key, value in (env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)):
            if re.search(r"PASS|PW|SECRET|TOKEN|KEY", key):
                assert re.fullmatch(r"\$\{%s(:?\?[^}]*)?\}" % key, str(value)), f"{name}: {key} is literal"


def test_service_dependencies_are_acyclic_and_known(parsed):
    order = dockerlab.start_order(parsed, list(parsed.services))
    assert len(order) == len(parsed.services)
    for name in parsed.services:
        for dep in dockerlab.dependencies(parsed.services[name]):
            assert order.index(dep) < order.index(name)
    # rtpengine and capture live in the platform's network namespace
    assert order.index("platform") < order.index("rtpengine") < order.index("capture")


def test_dependency_cycles_are_bad_input(tmp_path):
    path = tmp_path / "docker-compose.yml"
    path.write_text("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, network_mode: 'service:a'}\n")
    with pytest.raises(BadInput, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        dockerlab.load_compose(path, {})


def test_network_addresses_are_consistent(compose):
    subnet = ipaddress.ip_network(compose["networks"]["voipqa"]["ipam"]["config"][0]["subnet"])
    own: dict[str, str] = {}
    for name, svc in compose["services"].items():
        if "network_mode" in svc:
            assert "networks" not in svc
            assert svc["network_mode"].split(":", 1)[1] in compose["services"]
            continue
        nets = svc["networks"]
        assert set(nets) <= set(compose["networks"]), f"{name}: unknown network"
        ip = nets["voipqa"]["ipv4_address"]
        assert ipaddress.ip_address(ip) in subnet and ip != str(next(subnet.hosts())), f"{name}: {ip}"
        own[name] = ip
    assert len(set(own.values())) == len(own), "two services share an address"

    def host_of(name: str) -> str:  # the address a service answers on (its netns owner's)
        mode = compose["services"][name].get("network_mode", "")
        return own[mode.split(":", 1)[1]] if mode.startswith("service:") else own[name]

    # every address a service uses for itself is its own
    for name, svc in compose["services"].items():
        words = [*svc.get("command", []), *svc.get("healthcheck", {}).get("test", [])]
        env = svc.get("environment") or {}
        for word in [*words, env.get("VOIPQA_HOST", "")]:
            for ip in re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", str(word)):
                assert ip == host_of(name), f"{name}: uses {ip}, its address is {host_of(name)}"
    # the platform's dispatcher targets are the carriers' addresses, for carriers of the seed
    env = compose["services"]["platform"]["environment"]
    targets = dict(item.split("=") for item in env["VOIPQA_CARRIERS"].split(","))
    by_ip = {ip: n for n, ip in own.items()}
    assert set(targets) <= {c.name for c in SEED.carriers}
    assert {c.name for c in SEED.carriers if c.set == 1} <= set(targets)
    for carrier, addr in targets.items():
        ip, port = addr.split(":")
        service = by_ip[ip]
        assert service in ("carrier-a", "carrier-b", "freeswitch"), f"{carrier} -> {service}"
        assert port == "5080"
        if service.startswith("carrier-"):
            assert service == carrier and f"{ip}:{port}" in compose["services"][service]["command"]
    fs_name = compose["services"]["freeswitch"]["environment"]["VOIPQA_CARRIER_NAME"]
    assert by_ip[targets[fs_name].split(":")[0]] == "freeswitch"
    assert ipaddress.ip_network(env["VOIPQA_ALLOW_CIDR"]) == subnet
    # the runner's environment file points at the platform
    docker_env = yaml.safe_load((ROOT / "environments" / "docker.yaml").read_text())
    assert docker_env["target"]["host"] == own["platform"] == env["VOIPQA_HOST"]
    assert docker_env["target"]["domain"] == SEED.domain


def test_volumes_shared_between_platform_carriers_and_runner_match_the_environment_file(compose):
    services = compose["services"]
    mounts = {n: dict(v.split(":")[:2] for v in s.get("volumes", [])) for n, s in services.items()}
    env = services["platform"]["environment"]
    assert mounts["platform"]["lab-run"] == env["VOIPQA_RUN_DIR"]
    assert mounts["runner"]["lab-run"] == "/opt/voipqa/run/lab"
    assert mounts["runner"]["carrier-cdr"] == "/opt/voipqa/run/carriers"
    for carrier in ("carrier-a", "carrier-b"):
        argv = services[carrier]["command"]
        assert argv[argv.index("--cdr") + 1].startswith(mounts[carrier]["carrier-cdr"] + "/")
        assert argv[argv.index("--name") + 1] == carrier
    docker_env = yaml.safe_load((ROOT / "environments" / "docker.yaml").read_text())
    runner_dir = Path("/opt/voipqa/environments")
    for rel in docker_env["carrier"]["cdr"]:
        assert str((runner_dir / rel).resolve()).startswith("/opt/voipqa/run/carriers/")
    assert (runner_dir / docker_env["target"]["ca_cert"]).resolve() == Path("/opt/voipqa/run/lab/ca.crt")


# -- Dockerfiles ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", sorted(DOCKERFILES))
def test_dockerfile_base_image_is_debian_12(role):
    froms = [args for cmd, args in _dockerfile_instructions(DOCKERFILES[role]) if cmd == "FROM"]
    assert froms and all(re.fullmatch(r"debian:12[\w.-]*(@sha256:[0-9a-f]{64})?( AS \w+)?", f) for f in froms), froms


@pytest.mark.parametrize("role", sorted(DOCKERFILES))
def test_dockerfile_parses_with_the_buildkit_parser(role):
    dockerfile = pytest.importorskip("dockerfile")
    cmds = [c.cmd for c in dockerfile.parse_file(str(DOCKERFILES[role]))]
    assert cmds[0] == "FROM" and "CMD" in cmds and "USER" in cmds


def test_dockerfile_packages_cover_bootstrap_per_role():
    bootstrap = _bootstrap_packages()
    assert "kamailio" in bootstrap and "sip-tester" in bootstrap
    lab_role = {p for p in bootstrap if p.startswith("kamailio")} | {"rtpengine-daemon", "sqlite3", "openssl"}
    # the mypyc build's compiler stays out of the runner image: it runs the pure Python
    # analyzer (the same reports, qa/compiled.py) and stays smaller
    build_only = {"gcc", "python3-dev"}
    assert build_only <= set(bootstrap)
    wanted = {"runner": set(bootstrap) - build_only, "lab": lab_role, "carrier": {"python3-venv"}}
    for role, path in DOCKERFILES.items():
        missing = wanted[role] - _apt_packages(path)
        assert not missing, f"{path.relative_to(ROOT)}: missing Debian packages {sorted(missing)}"
        assert {"python3", "python3-venv"} <= _apt_packages(path)


@pytest.mark.parametrize("role", sorted(DOCKERFILES))
def test_dockerfile_hygiene(role):
    path = DOCKERFILES[role]
    text = path.read_text()
    assert not re.search(r"(curl|wget)[^|\n]*\|\s*(ba|z)?sh", text), "pipe-to-shell install"
    instructions = _dockerfile_instructions(path)
    for cmd, args in instructions:
        if cmd == "RUN" and "apt-get install" in args:
            assert "--no-install-recommends" in args and "apt-get update" in args
            assert "rm -rf /var/lib/apt/lists" in args
        if cmd in ("COPY", "ADD"):
            assert cmd == "COPY", "ADD fetches URLs and unpacks archives: use COPY"
            sources = [w for w in args.split()[:-1] if not w.startswith("--")]
            for src in sources:
                assert (ROOT / src).exists(), f"{path.name}: COPY {src}: not in the build context"
    users = [args for cmd, args in instructions if cmd == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"


def test_dockerignore_keeps_what_the_images_need():
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    for needed in ("qa", "lab", "carriers", "sipp", "robot_suites", "docker", "pyproject.toml", "README.md"):
        assert (ROOT / needed).exists()
        assert not any(Path(needed).match(p.strip("/")) for p in patterns), f".dockerignore drops {needed}"
    for dropped in (".git", ".venv", ".env", "results"):
        assert dropped in patterns


# -- FreeSWITCH -------------------------------------------------------------------------------
def test_freeswitch_mounts_the_generated_configuration(compose):
    from qa.carrier.freeswitch import FILES

    svc = compose["services"]["freeswitch"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in svc["volumes"]}
    assert mounts["./carriers/freeswitch"] == "/voipqa/freeswitch"
    script = (ROOT / "docker" / "freeswitch-entrypoint.sh").read_text()
    assert mounts["./docker/freeswitch-entrypoint.sh"] == svc["entrypoint"][-1]
    for rel in FILES:
        assert rel in script, f"docker/freeswitch-entrypoint.sh does not install {rel}"
    assert "${VOIPQA_FREESWITCH_IMAGE" in svc["image"] and svc.get("profiles") == ["freeswitch"]


def test_freeswitch_xml_is_well_formed():
    files = sorted((ROOT / "carriers" / "freeswitch").rglob("*.xml"))
    assert len(files) >= 5
    for path in files:
        ET.parse(path)


def test_freeswitch_configuration_has_not_drifted_from_the_number_plan():
    proc = subprocess.run([sys.executable, "-m", "qa.cli", "carrier", "render-freeswitch", "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("sh") is None, reason="no POSIX shell")
def test_freeswitch_entrypoint_installs_into_a_stock_configuration(tmp_path):
    """The script against a fake stock /etc/freeswitch; FreeSWITCH itself replaced by `true`."""
    conf = tmp_path / "conf"
    (conf / "sip_profiles" / "external").mkdir(parents=True)
    (conf / "sip_profiles" / "external.xml").write_text("<include/>")
    (conf / "freeswitch.xml").write_text("<document/>")
    (conf / "vars.xml").write_text("<include>\n  <X-PRE-PROCESS cmd=\"set\" data=\"a=b\"/>\n</include>\n")
    script = (ROOT / "docker" / "freeswitch-entrypoint.sh").read_text()
    script = script.replace("SRC=/voipqa/freeswitch", f"SRC={ROOT / 'carriers' / 'freeswitch'}")
    script = script.replace("/var/log/freeswitch/json_cdr", str(tmp_path / "cdr"))
    (tmp_path / "entry.sh").write_text(script)
    env = {"PATH": "/usr/bin:/bin", "FREESWITCH_CONF": str(conf), "VOIPQA_CARRIER_NAME": "carrier-c"}
    for _ in range(2):  # idempotent: a restarted container runs it again
        proc = subprocess.run(["sh", str(tmp_path / "entry.sh"), "true"], env=env, capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (conf / "sip_profiles").iterdir()) == ["voipqa.xml"]
    vars_xml = ET.parse(conf / "vars.xml").getroot()
    assert [e.get("data") for e in vars_xml if e.get("cmd") == "include"] == ["vars_voipqa.xml"]
    own = ET.parse(conf / "vars_voipqa.xml").getroot()
    assert [e.get("data") for e in own] == ["voipqa_carrier=carrier-c"]
    for rel in ("dialplan/voipqa.xml", "autoload_configs/modules.conf.xml", "autoload_configs/json_cdr.conf.xml"):
        ET.parse(conf / rel)
    bad = subprocess.run(["sh", str(tmp_path / "entry.sh"), "true"], capture_output=True, text=True, timeout=30,
                         env=env | {"VOIPQA_CARRIER_NAME": "x;rm"})
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


# -- environments/docker.yaml -----------------------------------------------------------------
def test_docker_environment_validates_and_loads_in_the_runner_layout(tmp_path, monkeypatch, compose):
    from qa.config import parse_environment_file
    from qa.environments import environment_from_file
    from qa.lab.config import create_db

    source = ROOT / "environments" / "docker.yaml"
    spec = parse_environment_file(source)
    assert [a.user for a in spec.accounts] == [a.user for a in SEED.accounts]
    assert all(a.password_env and a.password is None for a in spec.accounts)
    for role in ("platform", "runner"):
        env = dockerlab.load_compose(COMPOSE, SECRETS).services[role]["environment"]
        assert {a.password_env for a in spec.accounts} <= set(env), f"{role} lacks a password variable"
    # /opt/voipqa/{environments,run/lab,run/carriers} as the runner container has them
    (tmp_path / "environments").mkdir()
    shutil.copy(source, tmp_path / "environments" / "docker.yaml")
    lab = tmp_path / "run" / "lab"
    lab.mkdir(parents=True)
    (lab / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    create_db(lab / "lab.db", SEED)
    (tmp_path / "carriers").mkdir()
    shutil.copy(ROOT / "carriers" / "numberplan.yaml", tmp_path / "carriers")
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    env = environment_from_file(tmp_path / "environments" / "docker.yaml")
    assert env.target.host == "172.31.250.10" and env.target.tls_port == 5061
    assert env.password("1001") == SECRETS["VOIPQA_PW_1001"]
    assert env.target.ca_cert == tmp_path / "environments" / ".." / "run" / "lab" / "ca.crt"
    assert env.platform_cdr is not None and env.cdr is not None
    assert Path(env.platform_cdr.url.database).resolve() == (lab / "lab.db").resolve()
    assert env.mask(f"pw {SECRETS['VOIPQA_PW_1003']}") == "pw ******"
    monkeypatch.delenv("VOIPQA_PW_1004")
    with pytest.raises(BadInput, match=r"accounts\[3\]\.password_env: environment variable VOIPQA_PW_1004"):
        environment_from_file(tmp_path / "environments" / "docker.yaml")


# -- the entrypoints, run here ----------------------------------------------------------------
def test_lab_entrypoint_renders_a_config_kamailio_accepts(tmp_path):
    entry = _load(ROOT / "docker" / "lab-entrypoint.py", "lab_entrypoint")
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    environ = {"VOIPQA_PW_1001": SECRETS["VOIPQA_PW_1001"], "VOIPQA_ALLOW_CIDR": "127.0.0.0/24",
               "VOIPQA_CARRIERS": "carrier-a=127.0.0.3:5080,carrier-b=127.0.0.4:5080,carrier-c=127.0.0.5:5080"}
    from qa.lab import config

    saved = config.HOST
    try:
        cfg = entry.prepare_platform(tmp_path, ROOT / "lab" / "seed.yaml", "127.0.0.2", environ)
        if shutil.which("kamailio") or Path("/usr/sbin/kamailio").exists():
            config.check_config(cfg)
    finally:
        config.HOST = saved
    text = cfg.read_text()
    assert "listen=udp:127.0.0.2:5060" in text and "listen=tls:127.0.0.2:5062" in text
    assert '"udp:127.0.0.2:2223"' in text and "127.0.0.1" not in text.split("####### Modules")[0]
    assert (tmp_path / "dispatcher.list").read_text().splitlines()[1:] == [
        "1 sip:127.0.0.3:5080 0 10 name=carrier-a", "1 sip:127.0.0.4:5080 0 5 name=carrier-b",
        "2 sip:127.0.0.5:5080 0 10 name=carrier-c"]
    import sqlite3

    with sqlite3.connect(tmp_path / "lab.db") as db:
        pw = dict(db.execute("SELECT username, password FROM subscriber"))
        nets = db.execute("SELECT ip_addr, mask FROM address ORDER BY id").fetchall()
    assert pw["1001"] == SECRETS["VOIPQA_PW_1001"] and pw["1002"] == SEED.account("1002").password
    assert ("127.0.0.0", 24) in nets
    argv = entry.rtpengine_argv("127.0.0.2", ROOT / "lab" / "seed.yaml") if shutil.which("rtpengine") else None
    if argv:
        assert "--listen-ng=127.0.0.2:2223" in argv and "--b2b-url=http://127.0.0.2:5060/RPC2" in argv


@pytest.mark.parametrize("bad, message", [
    ("carrier-a=host:5080", "not NAME=IPV4:PORT"),
    ("carrier-z=10.0.0.1:5080", "no carrier carrier-z"),
    ("carrier-c=10.0.0.1:5080", "no carrier of dispatcher set 1"),
])
def test_lab_entrypoint_rejects_bad_carrier_lists(bad, message):
    entry = _load(ROOT / "docker" / "lab-entrypoint.py", "lab_entrypoint")
    with pytest.raises(BadInput, match=message):
        entry.docker_seed(SEED, entry.parse_carriers(bad), [], {})
    assert entry.main(["nonsense"]) == 2


def test_healthcheck_script_probes_a_live_native_carrier(tmp_path):
    from qa.ports import allocate_ports

    (port,) = allocate_ports(1, "127.0.0.1")
    carrier = subprocess.Popen([sys.executable, "-m", "qa.carrier", "serve", "--plan",
                                str(ROOT / "carriers" / "numberplan.yaml"), "--listen", f"127.0.0.1:{port}",
                                "--cdr", str(tmp_path / "c.jsonl"), "--name", "carrier-a"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        assert carrier.stdout is not None and "listening" in carrier.stdout.readline().decode()
        script = [sys.executable, str(ROOT / "docker" / "healthcheck.py")]
        ok = subprocess.run([*script, "sip", "127.0.0.1", str(port)], capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    finally:
        carrier.terminate()
        carrier.wait(timeout=10)
    down = subprocess.run([*script, "sip", "127.0.0.1", str(port)], capture_output=True, text=True, timeout=30)
    assert down.returncode == 1 and "OPTIONS" in down.stderr
    usage = subprocess.run([*script, "nope"], capture_output=True, text=True, timeout=30)
    assert usage.returncode == 1 and "usage" in usage.stderr


# -- qa.dockerlab -----------------------------------------------------------------------------
def test_up_without_an_engine_is_one_line_of_bad_input(tmp_path, monkeypatch):
    sock = tmp_path / "no-such-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    for call in (dockerlab.up, dockerlab.down, dockerlab.status):
        with pytest.raises(BadInput) as exc:
            call(COMPOSE)
        assert str(exc.value) == (f"no Docker engine reachable at unix://{sock}: "
                                  "start Docker, or use --backend native")
        assert exc.value.exit_code == 2


def test_interpolation_follows_compose():
    env = {"A": "1", "EMPTY": ""}
    assert dockerlab.interpolate("$A ${A} $$A ${B:-d} ${EMPTY:-d} ${EMPTY-d} ${A:?x}", env) == "1 1 $A d d  1"
    with pytest.raises(BadInput, match="variable B is not set: say why"):
        dockerlab.interpolate({"k": "${B:?say why}"}, env, "services.x")
    assert dockerlab.interpolate("${B:?x}", env, required=False) == ""
    assert dockerlab.parse_duration("1m30s") == 90 * 10**9 and dockerlab.parse_duration("500ms") == 5 * 10**8
    with pytest.raises(ValueError):
        dockerlab.parse_duration("5 seconds")


def test_missing_secret_names_the_variable(monkeypatch, tmp_path):
    env = {k: v for k, v in SECRETS.items() if k != "VOIPQA_PW_1007"}
    with pytest.raises(BadInput, match=r"services\.platform\.environment\.VOIPQA_PW_1007: variable VOIPQA_PW_1007"):
        dockerlab.load_compose(COMPOSE, env)
    dockerlab.load_compose(COMPOSE, {}, require_vars=False)  # status/down need no secrets


def test_dotenv_beside_the_compose_file_is_read(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("services:\n  a:\n    image: x\n    environment: {P: '${P:?no}'}\n")
    (tmp_path / ".env").write_text("# secrets\nexport P='from dotenv'\n")
    assert dockerlab.load_compose(tmp_path / "docker-compose.yml", {}).services["a"]["environment"]["P"] \
        == "from dotenv"


@pytest.mark.parametrize("snippet, where", [
    ("services:\n  a: {image: x, privileged: true}\n", "services.a.privileged: not supported"),
    ("services:\n  a: {image: x}\nconfigs: {}\n", "configs: not supported"),
    ("services:\n  a: {image: x, volumes: ['data:/d']}\n", "volume 'data' not declared"),
    ("services:\n  a: {image: x, networks: [n]}\n", "services.a.networks.n: not declared"),
    ("services:\n  a: {image: x, depends_on: [b]}\n", "unknown service 'b'"),
    ("services:\n  a: {image: x, healthcheck: {test: [CMD, x], interval: 5 s}}\n", "not a duration"),
])
def test_unsupported_or_wrong_compose_is_bad_input(tmp_path, snippet, where):
    path = tmp_path / "docker-compose.yml"
    path.write_text(snippet)
    with pytest.raises(BadInput, match=re.escape(where)):
        dockerlab.load_compose(path, {})


def test_container_arguments_are_accepted_by_the_docker_sdk(parsed):
    """Every service's create() arguments through the SDK's own argument builder (API 1.44,
    no engine contacted): an option the SDK does not know fails here, not on a user's host."""
    import docker
    from docker.models.containers import _create_container_args

    api = docker.APIClient(base_url="unix:///nonexistent.sock", version="1.44")
    ids = {name: f"{name}-id" for name in parsed.services}
    for name in dockerlab.start_order(parsed, list(parsed.services)):
        kwargs = dockerlab.container_kwargs(parsed, name, "voipqa", ids, SECRETS)
        kwargs.pop("detach")
        if "networking_config" in kwargs:
            kwargs["networking_config"] = {n: api.create_endpoint_config(**o)
                                           for n, o in kwargs["networking_config"].items()}
        kwargs["version"] = "1.44"
        args = _create_container_args(dict(kwargs))
        host = args["host_config"]
        if name in ("rtpengine", "capture"):
            assert host["NetworkMode"] == "container:platform-id"
        else:
            assert host["NetworkMode"] == "voipqa_voipqa"
            ep = args["networking_config"]["EndpointsConfig"]["voipqa_voipqa"]
            assert ep["IPAMConfig"]["IPv4Address"].startswith("172.31.250.")
        assert host["Init"] is True
        assert docker.types.Healthcheck(**args["healthcheck"])["Test"][0] in ("CMD", "CMD-SHELL")


class _Fake:
    """Just enough of docker.DockerClient for up/status/down; records what was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.containers_by_name: dict[str, Any] = {}
        outer = self

        class Container:
            def __init__(self, kwargs: dict[str, Any]) -> None:
                self.kwargs, self.name, self.id = kwargs, kwargs["name"], kwargs["name"] + "-id"
                self.labels, self.status = kwargs["labels"], "created"
                self.attrs: dict[str, Any] = {"State": {"Status": "created"}}

            def start(self) -> None:
                outer.calls.append(("start", self.labels["com.docker.compose.service"]))
                self.status = "running"
                health = {"Status": "healthy"} if "healthcheck" in self.kwargs else None
                self.attrs = {"State": {"Status": "running", "Health": health},
                              "NetworkSettings": {"Networks": {"n": {"IPAddress": "172.31.250.99"}}}}

            def reload(self) -> None:
                pass

            def stop(self, timeout: int) -> None:
                outer.calls.append(("stop", self.name))
                self.status = "exited"

            def remove(self, force: bool = False) -> None:
                outer.calls.append(("remove", self.name))
                outer.containers_by_name.pop(self.name, None)

        class Images:
            def build(self, **kw: Any) -> None:
                outer.calls.append(("build", (kw["tag"], kw["dockerfile"])))

            def get(self, tag: str) -> None:
                outer.calls.append(("get", tag))

            def pull(self, tag: str) -> None:
                outer.calls.append(("pull", tag))

        class Networks:
            made: list[Any] = []

            def list(self, names: list[str] | None = None, filters: Any = None) -> list[Any]:
                return [n for n in self.made if names is None or n.name in names]

            def create(self, name: str, **kw: Any) -> None:
                outer.calls.append(("network", (name, [p["Subnet"] for p in kw["ipam"]["Config"]])))
                net = type("Net", (), {"name": name, "remove": lambda s: outer.calls.append(("rmnet", name))})()
                self.made.append(net)

        class Volumes:
            def get(self, name: str) -> None:
                import docker

                raise docker.errors.NotFound(name)

            def create(self, name: str, labels: dict[str, str]) -> None:
                outer.calls.append(("volume", name))

            def list(self, filters: Any = None) -> list[Any]:
                return []

        class Containers:
            def list(self, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[Any]:  # noqa: A002
                wanted = dict(f.split("=", 1) for f in (filters or {}).get("label", []))
                return [c for c in outer.containers_by_name.values()
                        if all_items(c.labels, wanted)]

            def create(self, **kw: Any) -> Any:
                outer.calls.append(("create", kw["labels"]["com.docker.compose.service"]))
                container = Container(kw)
                outer.containers_by_name[container.name] = container
                return container

        def all_items(labels: dict[str, str], wanted: dict[str, str]) -> bool:
            return all(labels.get(k) == v for k, v in wanted.items())

        class Api:
            def create_endpoint_config(self, **kw: Any) -> dict[str, Any]:
                return kw

        self.images, self.networks, self.volumes = Images(), Networks(), Volumes()
        self.containers, self.api = Containers(), Api()


def test_up_status_down_against_a_fake_engine():
    fake = _Fake()
    rows = dockerlab.up(COMPOSE, client=fake, environ=SECRETS, wait_s=5)
    kinds = [c for c in fake.calls if c[0] == "build"]
    assert sorted(t for t, _ in (k[1] for k in kinds)) == ["voipqa/carrier:0.1.0", "voipqa/lab:0.1.0",
                                                           "voipqa/runner:0.1.0"]
    assert ("network", ("voipqa_voipqa", ["172.31.250.0/24"])) in fake.calls
    started = [c[1] for c in fake.calls if c[0] == "start"]
    assert started == ["platform", "rtpengine", "carrier-a", "carrier-b", "capture"]  # no profile services
    alive = {r.service: r.alive for r in rows}
    assert alive["platform"] and alive["capture"] and alive["runner"] is False
    assert {r.service: r.state for r in rows}["freeswitch"] == "missing"
    # idempotent: a second up starts nothing new
    fake.calls.clear()
    dockerlab.up(COMPOSE, client=fake, environ=SECRETS, build=False, wait_s=5)
    assert not [c for c in fake.calls if c[0] in ("create", "start")]
    # with the profiles: the runner last, after everything it waits for
    dockerlab.up(COMPOSE, client=fake, environ=SECRETS, profiles=["run", "freeswitch"], build=False, wait_s=5)
    assert [c[1] for c in fake.calls if c[0] == "start"] == ["freeswitch", "runner"]
    assert ("get", "voipqa/freeswitch:1.10") in fake.calls
    removed = dockerlab.down(COMPOSE, client=fake, environ={})
    assert removed[0] == "voipqa-runner-1" and removed.index("voipqa-capture-1") < removed.index("voipqa-platform-1")
    assert "voipqa_voipqa" in removed and not fake.containers_by_name


def test_up_reports_a_service_that_exits():
    fake = _Fake()
    original = fake.containers.create

    def create(**kw: Any) -> Any:
        container = original(**kw)
        if kw["name"] == "voipqa-platform-1":
            def start() -> None:
                container.status = "exited"
                container.attrs = {"State": {"Status": "exited", "ExitCode": 2}}
            container.start = start
            container.logs = lambda tail: b"lab-entrypoint: kamailio -c rejected the config\n"
        return container

    fake.containers.create = create
    with pytest.raises(VoipqaError, match="platform exited with code 2: lab-entrypoint: kamailio -c rejected"):
        dockerlab.up(COMPOSE, client=fake, environ=SECRETS, build=False, wait_s=5)


# -- ./bootstrap --docker ------------------------------------------------------------------------
def test_bootstrap_docker_without_root_is_one_line_and_exit_2():
    """Where the engine cannot be installed (no root): one line, exit 2, nothing done."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the script as an unprivileged user")
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "bash",
                           str(ROOT / "docker" / "bootstrap-docker.sh")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("bootstrap --docker: needs root (it installs and starts the Docker engine; "
                                   "rootless Docker is not supported)")


def test_bootstrap_refuses_an_unknown_option():
    done = subprocess.run([str(ROOT / "bootstrap"), "--dockr"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "unknown option --dockr" in done.stderr and done.stdout == ""


def test_images_install_python_packages_from_the_wheelhouse_the_bootstrap_passes():
    script = (ROOT / "docker" / "bootstrap-docker.sh").read_text()
    assert '--build-arg PIP_OPTIONS="--no-index --find-links /opt/voipqa/.wheelhouse"' in script
    for role, path in DOCKERFILES.items():
        text = path.read_text()
        assert "# syntax=" not in text, f"{role}: BuildKit would fetch a frontend image from a registry"
        assert 'ARG PIP_OPTIONS=""' in text and text.count("$PIP_OPTIONS") == 2, role
    assert "setcap cap_net_raw+ep /usr/bin/sipp" in DOCKERFILES["runner"].read_text()  # SIPp's RTP as non-root
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".wheelhouse" not in ignored and "qa/_compiled" in ignored  # the host's .so never enters an image

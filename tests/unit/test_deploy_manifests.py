"""Load workers on many machines: the worker compose file and the Kubernetes manifest are
valid (compose-spec schema; Kubernetes objects that select each other), and every voipqa
command line in them is one the real `voipqa` parser accepts with the options meant."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
import yaml

from qa.dockerlab.compose import Compose, compose_command
from qa.errors import BadInput
from qa.cli import build_parser
from qa.load.profile import load_profile

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ROOT / "deploy" / "load-workers.compose.yml"
K8S = ROOT / "deploy" / "kubernetes" / "voipqa-load.yaml"


def _voipqa(argv: list[str]):
    assert argv[0] == "voipqa", argv
    return build_parser().parse_args(argv[1:])


# -- compose: workers on other hosts ------------------------------------------------------------
def test_the_worker_compose_file_is_valid_and_runs_voipqa_load_worker():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    resolved = _compose({"VOIPQA_MASTER": "10.0.0.1:5557"}).config()     # Compose v2 validates it
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(resolved))
    assert not errors, [e.message for e in errors[:3]]
    worker = resolved["services"]["worker"]
    assert worker["network_mode"] == "host"          # no bridge network (and the platform sees the host)
    args = _voipqa(worker["command"])
    assert (args.command, args.load_command, args.master) == ("load", "worker", "10.0.0.1:5557")


def test_the_worker_compose_file_needs_the_master_address(monkeypatch):
    monkeypatch.delenv("VOIPQA_MASTER", raising=False)
    with pytest.raises(BadInput, match="VOIPQA_MASTER"):
        _compose({}).config()


def _compose(defaults: dict[str, str]) -> Compose:
    return Compose(tuple(compose_command()), (WORKERS,), "voipqa-workers-test", directory=WORKERS.parent,
                   defaults=defaults)


# -- Kubernetes -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def objects() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(K8S.read_text()) if d]
    for doc in docs:
        assert {"apiVersion", "kind", "metadata", "spec"} <= set(doc), doc.get("kind")
        assert doc["metadata"]["name"]
    return {d["kind"]: d for d in docs}


def _container(obj: dict) -> dict:
    (container,) = obj["spec"]["template"]["spec"]["containers"]
    return container


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_manifest_has_a_master_job_a_service_and_worker_deployment(objects):
    assert set(objects) == {"Job", "Service", "Deployment"}
    assert (objects["Job"]["apiVersion"], objects["Service"]["apiVersion"], objects["Deployment"]["apiVersion"]) \
        == ("batch/v1", "v1", "apps/v1")


def test_the_service_selects_the_master_and_the_deployment_its_workers(objects):
    job, service, deploy = objects["Job"], objects["Service"], objects["Deployment"]
    master_labels = job["spec"]["template"]["metadata"]["labels"]
    worker_labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert _selects(service["spec"]["selector"], master_labels)
    assert not _selects(service["spec"]["selector"], worker_labels)
    assert _selects(deploy["spec"]["selector"]["matchLabels"], worker_labels)


def test_master_and_workers_agree_on_the_port_the_host_and_the_number_of_workers(objects):
    job, service, deploy = objects["Job"], objects["Service"], objects["Deployment"]
    master = _voipqa(_container(job)["args"])
    worker = _voipqa(_container(deploy)["args"])
    assert (master.command, master.load_command, worker.load_command) == ("load", "run", "worker")
    assert master.master_bind == "0.0.0.0"
    assert master.expect_workers == deploy["spec"]["replicas"]
    (port,) = service["spec"]["ports"]
    host, worker_port = worker.master.rsplit(":", 1)
    assert host == service["metadata"]["name"] and int(worker_port) == port["port"] == master.master_port
    named = {p["name"]: p["containerPort"] for p in _container(job)["ports"]}
    assert named[port["targetPort"]] == master.master_port
    assert load_profile(master.profile).name == master.profile   # a shipped profile


def test_every_pod_is_bounded(objects):
    job = objects["Job"]
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] > 0
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    for obj in (job, objects["Deployment"]):
        limits = _container(obj)["resources"]["limits"]
        assert limits["cpu"] and limits["memory"], obj["kind"]
        assert _container(obj)["image"] == "voipqa/runner:0.1.0"

"""The compiled pipelines, checked as the KFP backend and its pods will take them, not only parsed.

The KFP API server (backend/src/apiserver/template/v2_template.go, `NewV2SpecTemplate`) decodes
the spec with protojson, which refuses unknown fields, accepts only schemaVersion 2.1.0 and a DNS
style name; the driver decodes each step's kubernetes executor config the same way. Here the same
protos (kfp-pipeline-spec, kfp-kubernetes) at the release scripts/kind-env.sh installs decode it
strictly; every task must resolve to an executor with image, command and args, and every
dependency must name a task that exists. Keys of Secrets and ConfigMaps: test_contract.py.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from kfops import cluster
from tests.manifests import conftest

# Every compiled pipeline (a new one is checked without editing a list); training first.
COMPILED = ("pipelines/compiled/training.yaml", *sorted(
    f"pipelines/compiled/{p.name}" for p in (conftest.ROOT / "pipelines/compiled").glob("*.yaml")
    if p.name != "training.yaml"))  # fmt: skip
# The backend's pipeline name check (v2_template.go).
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _docs(rel: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((conftest.ROOT / rel).read_text()) if d]


def _kfp_version_installed_on_kind() -> str:
    text = (conftest.ROOT / "scripts/kind-env.sh").read_text()
    return re.search(r'KFP_VERSION="\$\{KFP_VERSION:-([0-9.]+)\}"', text).group(1)


def dag_problems(spec: dict) -> list[str]:
    """Tasks whose component, executor or dependency does not resolve."""
    problems = []
    executors = spec["deploymentSpec"]["executors"]
    dags = {"root": spec["root"]["dag"]}
    dags |= {name: c["dag"] for name, c in spec["components"].items() if "dag" in c}
    for dag_name, dag in dags.items():
        tasks = dag.get("tasks", {})
        for task_name, task in tasks.items():
            where = f"{dag_name}/{task_name}"
            ref = task["componentRef"]["name"]
            component = spec["components"].get(ref)
            if component is None:
                problems.append(f"{where}: no component {ref}")
                continue
            for dep in task.get("dependentTasks", []):
                if dep not in tasks:
                    problems.append(f"{where}: depends on missing task {dep}")
            for value in task.get("inputs", {}).get("parameters", {}).values():
                producer = value.get("taskOutputParameter", {}).get("producerTask")
                if producer and producer not in tasks:
                    problems.append(f"{where}: input from missing task {producer}")
            for value in task.get("inputs", {}).get("artifacts", {}).values():
                producer = value.get("taskOutputArtifact", {}).get("producerTask")
                if producer and producer not in tasks:
                    problems.append(f"{where}: artifact from missing task {producer}")
            if "dag" in component:
                continue
            label = component.get("executorLabel")
            container = executors.get(label, {}).get("container")
            if not container:
                problems.append(f"{where}: no executor {label}")
                continue
            for field in ("image", "command", "args"):
                if not container.get(field):
                    problems.append(f"{where}: executor {label} has no {field}")
    return problems


@pytest.mark.parametrize("rel", COMPILED)
def test_compiled_every_task_resolves_to_an_executor(rel):
    assert dag_problems(_docs(rel)[0]) == []


def test_compiled_dag_check_catches_a_missing_dependency_and_executor():
    spec = _docs(COMPILED[0])[0]
    body = "comp-exit-handler-1"  # the training steps run under the exit handler
    spec["components"][body]["dag"]["tasks"]["split"]["dependentTasks"] = ["no-such-task"]
    del spec["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
    problems = dag_problems(spec)
    assert f"{body}/split: depends on missing task no-such-task" in problems
    assert f"{body}/train: executor exec-train has no args" in problems


@pytest.mark.parametrize("rel", COMPILED)
def test_compiled_spec_decodes_with_the_backends_protos(rel):
    spec, platform = _docs(rel)
    # Strict, as protojson.Unmarshal: an unknown field raises ParseError.
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    assert spec["schemaVersion"] == "2.1.0"  # SCHEMA_VERSION_2_1_0, the only one accepted
    assert _NAME.fullmatch(spec["pipelineInfo"]["name"])
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors
    for config in executors.values():
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())


def test_compiled_proto_check_refuses_an_unknown_field():
    _, platform = _docs(COMPILED[0])
    config = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-ingest"]
    config["secretAsEnv"][0]["notAField"] = True
    with pytest.raises(json_format.ParseError, match="notAField"):
        json_format.ParseDict(config, kubernetes_executor_config_pb2.KubernetesExecutorConfig())


def test_compiled_protos_are_the_release_kind_installs():
    """SDK, protos and server API client at the KFP release `make kind-up` installs."""
    release = _kfp_version_installed_on_kind()
    assert importlib.metadata.version("kfp-pipeline-spec") == release
    assert importlib.metadata.version("kfp-server-api") == release
    sdk = _docs(COMPILED[0])[0]["sdkVersion"]
    assert sdk == f"kfp-{importlib.metadata.version('kfp')}"
    assert sdk.split("-")[1].split(".")[:2] == release.split(".")[:2], "SDK minor != backend's"


@pytest.mark.parametrize("rel", COMPILED)
def test_compiled_pipelines_default_to_object_storage(rel):
    parameters = _docs(rel)[0]["root"]["inputDefinitions"]["parameters"]
    assert parameters["store_uri"]["defaultValue"] == cluster.CLUSTER_STORE_URI


def _executor_command(component_yaml: str, executor: str) -> list[str]:
    spec = _docs(component_yaml)[0]
    container = spec["deploymentSpec"]["executors"][executor]["container"]
    return [*container["command"], *container["args"]]


@pytest.mark.parametrize(
    ("env", "code", "line"),
    [
        ({"KFP_POD_NAME": "p-1", "KFP_POD_UID": "u-1"}, 2, "is a path inside this pod"),
        ({}, 0, None),
    ],
)
def test_compiled_step_in_a_kfp_pod_refuses_a_local_store(tmp_path, env, code, line):
    """The run-context step's own command, as its pod runs it, with the env KFP sets there."""
    argv = _executor_command("components/compiled/run_context.yaml", "exec-run-context")
    executor_input = {
        "inputs": {"parameterValues": {"store_uri": str(tmp_path / "store"), "job_id": "j-1"}},
        "outputs": {
            "parameters": {"Output": {"outputFile": str(tmp_path / "Output")}},
            "outputFile": str(tmp_path / "executor_output.json"),
        },
    }
    argv = [json.dumps(executor_input) if a == "{{$}}" else a for a in argv]
    bin_dir = str(conftest.KUBECTL.parent)  # python3 of this venv, as the image has kfops
    proc = subprocess.run(
        argv,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == code, proc.stderr[-2000:]
    if line:
        last = proc.stderr.strip().splitlines()
        assert last[-1].startswith("kfops: error: store_uri") and line in last[-1]
        assert "Traceback" not in proc.stderr
    else:
        assert (tmp_path / "store" / "runs" / "j-1").exists()
    assert sys.executable  # the venv python3 is what ran it

"""The compiled training pipeline: fresh, wired as designed, one image, no secrets."""

import pathlib
import re

import yaml
from kfops.components import _image
from kfops.pipelines import training
from kfp import compiler

from kfops import cluster
from kfops.commands import compile as compile_cmd

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPILED = ROOT / "pipelines" / "compiled"


def normalize(text: str) -> str:
    """Drops fields that change with the SDK build, not with our code."""
    return re.sub(r"(?m)^\s*sdkVersion:.*$", "", text)


def _spec(tmp_path):
    out = tmp_path / "training.yaml"
    compiler.Compiler().compile(training.training, str(out))
    return out, list(yaml.safe_load_all(out.read_text()))


def test_compiled_pipelines_and_components_are_fresh(tmp_path):
    written = compile_cmd.compile_all(tmp_path / "p", tmp_path / "c")
    assert written, "nothing compiled"
    for path in written:
        committed = (
            ROOT
            / ("pipelines" if path.parent.name == "p" else "components")
            / "compiled"
            / path.name
        )
        assert committed.is_file(), f"{committed} missing: run `make compile`"
        assert normalize(path.read_text()) == normalize(committed.read_text()), (
            "stale: run `make compile`"
        )


def _nested_task(spec, name):
    """A task inside the condition branches (push sits under gate's and infra-validate's)."""
    for component in spec["components"].values():
        tasks = component.get("dag", {}).get("tasks", {})
        if name in tasks:
            return tasks[name]
    raise KeyError(name)


def _body(spec):
    """The tasks under the exit handler: every step but the outcome."""
    return spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]


def test_the_outcome_step_runs_after_everything_failed_or_not(tmp_path):
    _, docs = _spec(tmp_path)
    root = docs[0]["root"]["dag"]["tasks"]
    assert set(root) == {"outcome", "exit-handler-1"}
    assert root["outcome"]["dependentTasks"] == ["exit-handler-1"]
    assert root["outcome"]["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    status = root["outcome"]["inputs"]["parameters"]["status"]
    assert status["taskFinalStatus"]["producerTask"] == "exit-handler-1"


def test_training_graph_runs_stages_in_order(tmp_path):
    _, docs = _spec(tmp_path)
    dag = _body(docs[0])
    deps = {name: set(task.get("dependentTasks", [])) for name, task in dag.items()}
    assert deps["ingest"] == {"run-context"}  # every step records under the run's id
    assert deps["validate"] == {"ingest", "run-context"}
    assert {"ingest", "validate"} <= deps["split"]
    assert {"split", "validate"} <= deps["train"]
    assert {"train", "split", "validate"} <= deps["evaluate"]
    assert {"evaluate", "champion"} <= deps["gate"]
    # infra-validate runs only if the gate blesses; push only if the model also serves
    assert "push" not in dag and "infra-validate" not in dag
    branch = next(t for n, t in dag.items() if n.startswith("condition"))
    assert "gate" in branch["dependentTasks"]
    assert "Output" in branch["triggerPolicy"]["condition"]
    blessed = docs[0]["components"][branch["componentRef"]["name"]]["dag"]["tasks"]
    serves = next(t for n, t in blessed.items() if n.startswith("condition"))
    assert "infra-validate" in blessed and "infra-validate" in serves["dependentTasks"]
    assert _nested_task(docs[0], "push")
    assert _nested_task(docs[0], "deploy")  # behind the `deploy` parameter, after push


def test_every_executor_uses_the_project_image(tmp_path):
    _, docs = _spec(tmp_path)
    executors = docs[0]["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values()}
    assert images == {_image.KFOPS_IMAGE}
    assert all("pip install" not in " ".join(e["container"]["command"]) for e in executors.values())


def test_storage_steps_get_credentials_from_a_secret_and_retry(tmp_path):
    out, docs = _spec(tmp_path)
    platform = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in ("exec-ingest", "exec-champion", "exec-push", "exec-deploy", "exec-outcome"):
        secret = platform[step]["secretAsEnv"][0]
        assert secret["secretName"] == cluster.STORE_SECRET
        envs = {k["envVar"] for k in secret["keyToEnv"]}
        assert envs >= {"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY"}
    tasks = _body(docs[0])
    assert tasks["champion"]["retryPolicy"]["maxRetryCount"] == 3
    assert _nested_task(docs[0], "push")["retryPolicy"]["maxRetryCount"] == 3
    # bad data must fail once, not three times; caching off for a mutable source
    assert "retryPolicy" not in tasks["ingest"] and "retryPolicy" not in tasks["validate"]
    assert tasks["ingest"]["cachingOptions"] == {}


def test_steps_carry_resource_limits(tmp_path):
    _, docs = _spec(tmp_path)
    for name, executor in docs[0]["deploymentSpec"]["executors"].items():
        resources = executor["container"].get("resources", {})
        assert resources.get("cpuLimit") and resources.get("memoryLimit"), name


def test_compiled_yaml_holds_no_secret_values(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIO_SECRET_KEY", "s3cr3t-should-never-appear")
    monkeypatch.setenv("MINIO_ACCESS_KEY", "AKIA-should-never-appear")
    out, _ = _spec(tmp_path)
    text = out.read_text()
    assert "s3cr3t-should-never-appear" not in text and "AKIA-should-never-appear" not in text
    params = next(yaml.safe_load_all(text))["root"]["inputDefinitions"]["parameters"]
    assert not [p for p in params if re.search("secret|password|access_key|token", p, re.I)]


def test_committed_yaml_loads_with_kfp_and_pins_the_versioned_image():
    from kfp import components

    for path in sorted(
        [*COMPILED.glob("*.yaml"), *(ROOT / "components" / "compiled").glob("*.yaml")]
    ):
        loaded = components.load_component_from_file(str(path))
        assert loaded.name, path
        assert f"kfops:{_image.DEFAULT_IMAGE.rsplit(':', 1)[1]}" in path.read_text(), path

"""The run header is the same on a cluster as locally: every pipeline parameter, the image's code.

On a cluster no `kfops run` writes the header first: the run_context step does, from its own
inputs. This runs that step for real (kfp.local) inside a pipeline with the training pipeline's
exact signature, and compares its header with the one `kfops run` writes.
"""

import inspect
import json
import re
from pathlib import Path

import yaml
from kfops.components.run_context import run_context_with
from kfops.pipelines import training
from kfp import compiler, dsl

from kfops import store
from kfops.commands import run as run_cmd
from kfops.runs import context, records

_SIGNATURE = inspect.signature(training.training.pipeline_func)


def _header_only(*values):
    run_context_with(dict(zip(_SIGNATURE.parameters, values, strict=True)))


_header_only.__signature__ = _SIGNATURE
header_only = dsl.pipeline(name="kfops-training")(_header_only)


def test_cluster_run_header_holds_every_parameter_as_kfops_run_records_it(
    kfp_local, tmp_path, monkeypatch
):
    items = [
        'slice_columns=["plan", "region"]',
        'gate_thresholds={"roc_auc": 0.7}',
        'source_delimiter="\\t"',
        'experiment="it\'s \\"quoted\\""',
        "search_iterations=5",
        "strict_categories=true",
    ]
    arguments = run_cmd.pipeline_arguments(
        training.PARAMETERS, "builtin:churn", store=str(tmp_path / "store"), param_items=items
    )
    arguments["code_version"] = ""  # a pod has no git checkout
    monkeypatch.setenv(context.REVISION_ENV, "0123abc")  # what the image's ENV says
    header_only(**arguments)

    st = store.open_store(str(tmp_path / "store"))
    (key,) = [k for k in st.list("runs/") if k.endswith("/" + records.HEADER)]
    header = json.loads(st.get_bytes(key))
    local = records.clean_parameters(arguments)  # what `kfops run` writes (commands/run.py)
    assert header["parameters"] == local
    assert json.dumps(header["parameters"], sort_keys=True) == json.dumps(local, sort_keys=True)
    assert header["code_version"] == "0123abc"


def test_compiled_training_pipeline_wires_every_parameter_into_run_context(tmp_path):
    path = tmp_path / "training.yaml"
    compiler.Compiler().compile(training.training, str(path))
    spec = next(yaml.safe_load_all(path.read_text()))  # then the platform spec
    tasks = _all_tasks(spec)
    (ctx,) = [t for name, t in tasks.items() if name.startswith("run-context")]
    wired = {
        name: value.get("componentInputParameter")
        for name, value in ctx["inputs"]["parameters"].items()
    }
    for name in _SIGNATURE.parameters:  # inside the exit handler's sub-DAG: its channels
        assert wired.get(name) in (name, f"pipelinechannel--{name}"), name


def _all_tasks(spec):
    tasks = dict(spec["root"]["dag"]["tasks"])
    for component in spec["components"].values():
        tasks.update(component.get("dag", {}).get("tasks", {}))
    return tasks


def test_code_version_prefers_git_then_the_image_revision():
    assert context.code_version("deadbeef", {context.REVISION_ENV: "0123abc"}) == "deadbeef"
    assert context.code_version("", {context.REVISION_ENV: "0123abc"}) == "0123abc"
    assert context.code_version("", {context.REVISION_ENV: "unknown"}) == ""
    assert context.code_version("", {}) == ""


def test_task_parameters_reads_the_executor_input_kfp_passes():
    executor_input = {"inputs": {"parameterValues": {"seed": 3, "job_id": "j", "l": [1]}}}
    argv = ["main", "--executor_input", json.dumps(executor_input), "--function_to_execute", "f"]
    assert context.task_parameters(argv, exclude=("job_id",)) == {"seed": 3, "l": [1]}
    assert context.task_parameters(["python", "-c", "x"]) == {}


def test_image_carries_its_git_revision_as_label_and_env():
    """`make image` and scripts/image-local.sh pass REVISION; the image exposes it at run time."""
    root = Path(__file__).parents[2]
    dockerfile = (root / "Dockerfile").read_text()
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "ARG REVISION" in final_stage
    assert f"ENV {context.REVISION_ENV}=${{REVISION}}" in final_stage
    assert 'org.opencontainers.image.revision="${REVISION}"' in final_stage
    for builder in ("Makefile", "scripts/image-local.sh"):
        assert re.search(r"--build-arg\s+\"?REVISION=", (root / builder).read_text()), builder

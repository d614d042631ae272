"""`kfops run --promote manual` through kfp.local: the run ends with the blessed model staged,
not champion, until `kfops models approve`."""

import json

import pytest
import yaml
from kfops.pipelines import training
from kfp import compiler

from kfops import approval, cli, registry, store


def test_compiled_pipeline_deploys_only_when_promotion_is_automatic(tmp_path):
    """The deploy step sits under a condition on `promote` == "auto": a staged model is never
    rolled out by the pipeline."""
    out = tmp_path / "training.yaml"
    compiler.Compiler().compile(training.training, str(out))
    spec = next(yaml.safe_load_all(out.read_text()))
    holder = next(
        n for n, c in spec["components"].items() if "deploy" in c.get("dag", {}).get("tasks", {})
    )
    gates = [
        t["triggerPolicy"]["condition"]
        for c in spec["components"].values()
        for t in c.get("dag", {}).get("tasks", {}).values()
        if t.get("componentRef", {}).get("name") == holder
    ]
    assert len(gates) == 1 and "pipelinechannel--promote" in gates[0] and "'auto'" in gates[0]
    push_inputs = next(
        c["dag"]["tasks"]["push"]
        for c in spec["components"].values()
        if "push" in c.get("dag", {}).get("tasks", {})
    )["inputs"]["parameters"]
    assert push_inputs["promote"]["componentInputParameter"] == "pipelinechannel--promote"


@pytest.mark.slow
def test_manual_promotion_ends_the_run_with_the_model_staged(capsys, tmp_path):
    store_dir = tmp_path / "store"
    argv = [
        "run", "--source", "builtin:churn?rows=1500&seed=1", "--store", str(store_dir),
        "--runs-dir", str(tmp_path / "runs"), "--json", "--promote", "manual",
        "--param", "search_iterations=2", "--param", "cv_folds=2",
    ]  # fmt: skip
    code = cli.main(argv)
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["blessed"] is True and summary["model_version"] == "1", summary
    reg = registry.Registry(store.open_store(str(store_dir)))
    assert reg.champion("churn") is None and approval.pending(reg, "churn") == ["1"]
    assert approval.entries(reg, "churn")["1"]["run_id"] == summary["run_id"]
    approve = ["models", "approve", "churn", "1", "--by", "ana", "--reason", "report read"]
    assert cli.main([*approve, "--store", str(store_dir)]) == 0
    assert reg.champion("churn") == "1"

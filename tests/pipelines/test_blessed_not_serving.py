"""A blessed candidate that fails infra-validate is not pushed; the champion stays (issue 15.9).

The steps are the real components in the training pipeline's wiring (push runs only under
`dsl.If(infra-validate == True)`, checked on the compiled YAML in test_training_compiled.py),
run for real by kfp.local. The candidate trains and evaluates fine but serves probabilities that
differ from its in-process ones (tests/kfops/unstable_models.py), so every bad-input test of the
training pipeline, which fails before the gate, cannot stand in for this one.
"""

import pytest
from kfops.components.infra_validate import infra_validate
from kfops.components.push import push
from kfp import dsl

from kfops import dataio, evaluate, gate, modelio, registry, store
from tests.kfops import unstable_models
from tests.kfops.serving import factories

pytestmark = pytest.mark.slow


def _artifacts(tmp_path, candidate, spec, df) -> dict:
    """The files the blessed branch reads, as the earlier steps would have written them."""
    paths = {n: tmp_path / n for n in ("model", "test", "schema", "eval", "blessing", "data")}
    sha = modelio.save_model(candidate, paths["model"])
    dataio.write_frame(df.head(60), paths["test"])
    dataio.write_frame(df, paths["data"])
    spec.save(paths["schema"])
    result = evaluate.evaluate(
        candidate, df.head(60), evaluate.EvalConfig(label="churned", task="classification")
    )
    dataio.write_json(result.to_dict(), paths["eval"])
    blessing = gate.Blessing(True, (), ())  # blessed: this test is about what follows the gate
    dataio.write_json(blessing.to_dict(), paths["blessing"])
    return {"sha": sha, **{k: str(v) for k, v in paths.items()}}


def _blessed_branch(files: dict, store_uri: str, run_id: str):
    @dsl.pipeline
    def branch():
        def imported(key, cls, **meta):
            return dsl.importer(artifact_uri=files[key], artifact_class=cls, metadata=meta).output

        model = imported("model", dsl.Model, sha256=files["sha"])
        schema = imported("schema", dsl.Artifact)
        test = imported("test", dsl.Dataset)
        infra = infra_validate(
            model=model, test_data=test, data_schema=schema, max_rows=10,
            store_uri=store_uri, run_id=run_id,
        )  # fmt: skip
        with dsl.If(infra.outputs["Output"] == True):  # noqa: E712 (as pipelines/training.py)
            push(
                model=model, data_schema=schema, evaluation=imported("eval", dsl.Artifact),
                blessing=imported("blessing", dsl.Artifact),
                data=imported("data", dsl.Dataset, source="factories"),
                train_data=imported("data", dsl.Dataset), store_uri=store_uri,
                model_name="churn", run_id=run_id,
            )  # fmt: skip

    return branch


@pytest.fixture
def champion_store(tmp_path):
    """A store whose champion `churn` is version 1."""
    pipeline, spec, _ = factories.classifier(c=0.5)
    reg = registry.Registry(store.open_store(str(tmp_path / "store")))
    factories.publish(reg, "churn", pipeline, spec, tmp_path)
    return tmp_path / "store", reg


def test_blessed_candidate_that_serves_wrong_answers_is_not_pushed(
    kfp_local, tmp_path, champion_store
):
    store_dir, reg = champion_store
    before = reg.champion_pointer("churn")
    pipeline, spec, df = factories.classifier()
    candidate = unstable_models.drifting(pipeline, df[spec.feature_names], df["churned"])
    files = _artifacts(tmp_path, candidate, spec, df)
    _blessed_branch(files, str(store_dir), "bad-1")()
    assert reg.versions("churn") == ["1"]
    assert reg.champion_pointer("churn") == before
    steps = store_dir / "runs" / "bad-1" / "steps"
    [report] = dataio.read_json(steps / "infra-validate.json")["outputs"]
    assert report["passed"] is False and len(report["reasons"]) == 3, report
    assert all("probability rows differ" in r for r in report["reasons"]), report["reasons"]
    assert not (steps / "push.json").exists()


def test_same_branch_pushes_a_candidate_that_serves_correctly(kfp_local, tmp_path, champion_store):
    """The control: the wiring above does push when infra-validate passes."""
    store_dir, reg = champion_store
    pipeline, spec, df = factories.classifier()
    files = _artifacts(tmp_path, pipeline, spec, df)
    _blessed_branch(files, str(store_dir), "good-1")()
    assert reg.versions("churn") == ["1", "2"] and reg.champion("churn") == "2"
    steps = store_dir / "runs" / "good-1" / "steps"
    [report] = dataio.read_json(steps / "infra-validate.json")["outputs"]
    assert report["passed"] is True and (steps / "push.json").exists()

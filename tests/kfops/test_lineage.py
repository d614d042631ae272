"""Lineage both ways, through real pushes into a real registry, on both stores."""

import pandas as pd
import pytest
from sklearn import linear_model

from kfops import dataio, errors, lineage, modelio, push, registry, runs, schema

SCHEMA = schema.Schema(
    (schema.ColumnSpec("x", "float"), schema.ColumnSpec("y", "int", role="label")),
    label="y",
    task="classification",
    label_classes=(0, 1),
)


def make_frame(n: int, seed: int) -> pd.DataFrame:
    xs = [((i * 7 + seed * 13) % 50) / 10 for i in range(n)]
    return pd.DataFrame({"x": xs, "y": [int(x > 2.5) for x in xs]})


def train_and_push(store, tmp_path, run_id: str, seed: int, n: int = 60) -> dict:
    """Records a run the way the pipeline does and pushes its blessed model; returns facts."""
    frame = make_frame(n, seed)
    rec = runs.RunRecorder(store, run_id)
    rec.start("kfops-training", {"seed": seed, "source": f"builtin:test?n={n}"})
    with rec.step("ingest") as step:
        meta = dataio.write_frame(frame, tmp_path / f"{run_id}.parquet")
        step.output("data", sha256=meta["sha256"], rows=meta["rows"])
    with rec.step("train", {"seed": seed}) as step:
        step.input("train_data", str(tmp_path / f"{run_id}.parquet"), meta["sha256"])
        model = linear_model.LogisticRegression().fit(frame[["x"]], frame["y"])
        model_path = tmp_path / f"{run_id}.joblib"
        step.output("model", sha256=modelio.save_model(model, model_path))
        step.runtime.update(threads=seed + 1)  # as components/train.py records it
    with rec.step("push") as step:
        result = push.push(
            registry.Registry(store),
            "churn",
            model_path=model_path,
            data_schema=SCHEMA,
            evaluation={"task": "classification", "metrics": {"roc_auc": 0.9}},
            blessing={"blessed": True, "reasons": []},
            reference=frame,
            lineage=push.build_lineage(
                run_id=run_id,
                source=f"builtin:test?n={n}",
                data_sha256=meta["sha256"],
                rows=meta["rows"],
                seed=seed,
                n_threads=seed + 1,
                code_version="c0ffee",
                image="ghcr.io/kfops/kfops:test",
            ),
        )
        step.output("registered", model_name=result.name, version=result.version)
    rec.finish("succeeded", blessed=True, model={"name": "churn", "version": result.version})
    return {"sha256": meta["sha256"], "version": result.version}


@pytest.fixture
def two_champions(any_store, tmp_path):
    first = train_and_push(any_store, tmp_path, "run-one", seed=1)
    second = train_and_push(any_store, tmp_path, "run-two", seed=2)
    return any_store, first, second


def test_model_lineage_of_champion_leads_to_exact_data_and_run(two_champions):
    store, first, second = two_champions
    facts = lineage.model_lineage(registry.Registry(store), runs.RunIndex(store), "churn")
    assert facts["model"]["version"] == second["version"] == "2"
    assert facts["model"]["champion"] is True
    assert facts["run_id"] == "run-two"
    assert facts["run"]["status"] == "succeeded"
    assert facts["data"]["data_sha256"] == second["sha256"]
    assert facts["data"]["rows"] == 60
    assert facts["parameters"]["seed"] == 2
    assert facts["code_version"] == "c0ffee"
    assert facts["n_threads"] == 3
    assert facts["library_versions"]["scikit-learn"]
    ingest = [s for s in facts["run"]["steps"] if s["step"] == "ingest"][0]
    trained = [s for s in facts["run"]["steps"] if s["step"] == "train"][0]
    assert trained["runtime"] == {"threads": 3}
    assert "runtime" not in ingest  # only steps that say how they ran
    assert ingest["outputs"][0]["sha256"] == second["sha256"]


def test_model_lineage_walks_the_parent_champion_chain(two_champions):
    store, first, _ = two_champions
    facts = lineage.model_lineage(registry.Registry(store), runs.RunIndex(store), "churn", "2")
    assert [p["version"] for p in facts["parents"]] == ["1"]
    assert facts["parents"][0]["run_id"] == "run-one"
    assert facts["parents"][0]["data_sha256"] == first["sha256"]
    oldest = lineage.model_lineage(registry.Registry(store), runs.RunIndex(store), "churn", "1")
    assert oldest["parents"] == [] and oldest["model"]["champion"] is False


def test_model_lineage_without_run_record_falls_back_to_manifest(two_champions):
    store, _, second = two_champions
    for key in list(store.list("runs/run-two/")):
        store.delete(key)
    facts = lineage.model_lineage(registry.Registry(store), runs.RunIndex(store), "churn", "2")
    assert facts["run"] is None and facts["run_id"] == "run-two"
    assert facts["parameters"]["seed"] == 2
    assert facts["data"]["data_sha256"] == second["sha256"]


def test_model_lineage_ignores_a_run_that_only_shares_the_prefix(any_store, tmp_path):
    train_and_push(any_store, tmp_path, "run", seed=1)
    for key in list(any_store.list("runs/run/")):
        any_store.delete(key)
    runs.RunRecorder(any_store, "run-later").start("other")
    facts = lineage.model_lineage(registry.Registry(any_store), runs.RunIndex(any_store), "churn")
    assert facts["run"] is None


def test_models_for_data_finds_every_version_trained_on_it(two_champions):
    store, first, second = two_champions
    reg = registry.Registry(store)
    assert lineage.models_for_data(reg, first["sha256"]) == [("churn", "1")]
    assert lineage.models_for_data(reg, second["sha256"][:12].upper()) == [("churn", "2")]
    assert lineage.models_for_data(reg, "0" * 64) == []


def test_runs_for_data_finds_the_runs_that_read_or_wrote_it(two_champions):
    store, first, _ = two_champions
    found = lineage.runs_for_data(runs.RunIndex(store), first["sha256"])
    assert [i.run_id for i in found] == ["run-one"]


def test_data_lookups_refuse_a_too_short_hash(tmp_path):
    from kfops.store import local

    with pytest.raises(errors.ConfigError, match="at least 8"):
        lineage.runs_for_data(runs.RunIndex(local.LocalStore(tmp_path)), "abc")


def test_model_lineage_without_champion_names_the_problem(tmp_path):
    from kfops.store import local

    store = local.LocalStore(tmp_path)
    with pytest.raises(errors.NotFound, match="no champion"):
        lineage.model_lineage(registry.Registry(store), runs.RunIndex(store), "churn")


def test_model_lineage_points_at_its_snapshot_and_the_snapshots_it_was_built_from(
    any_store, tmp_path
):
    from kfops import snapshots
    from kfops.commands import runs as runs_cmd

    old = snapshots.put_frame(any_store, make_frame(40, 1), {"source": "first"})
    built = snapshots.put_frame(any_store, make_frame(80, 2), {"parents": [old.sha256]})
    path = tmp_path / "train.parquet"
    snapshots.export(any_store, built.sha256, path)
    facts = snapshots.keep_training_data(any_store, path, {"source": "ignored: already kept"})
    assert facts == {
        "data_sha256": built.sha256,
        "data_snapshot": f"data/{built.sha256}/data.parquet",
        "data_parents": [old.sha256],
    }
    model = linear_model.LogisticRegression().fit(make_frame(80, 2)[["x"]], make_frame(80, 2)["y"])
    modelio.save_model(model, tmp_path / "m.joblib")
    facts = push.build_lineage(run_id="r", source=str(path), rows=80, **facts)
    push.push(registry.Registry(any_store), "churn", model_path=tmp_path / "m.joblib",
              data_schema=SCHEMA, evaluation={"task": "classification", "metrics": {}},
              blessing={"blessed": True}, reference=make_frame(80, 2), lineage=facts)  # fmt: skip
    found = lineage.model_lineage(registry.Registry(any_store), runs.RunIndex(any_store), "churn")
    assert found["data"]["data_snapshot"] == facts["data_snapshot"]
    assert found["data"]["parents"] == [old.sha256]
    text = runs_cmd.render_lineage(found)
    assert f"snapshot data/{built.sha256}/data.parquet  built from {old.sha256[:12]}" in text
    assert snapshots.read(any_store, found["data"]["data_sha256"]).equals(make_frame(80, 2))

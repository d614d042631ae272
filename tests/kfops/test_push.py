import pandas as pd
import pytest

from kfops import dataio, errors, push, registry, schema, store

SCHEMA = schema.Schema(
    columns=(schema.ColumnSpec("x", "float"), schema.ColumnSpec("y", "int", role="label")),
    label="y",
    task="classification",
    label_classes=(0, 1),
)
EVALUATION = {"task": "classification", "metrics": {"roc_auc": 0.9}, "baseline_metrics": {}}
BLESSED = {"blessed": True, "reasons": [], "checks": [], "notes": []}


def _push(tmp_path, blessing=BLESSED, **kw):
    (tmp_path / "model.joblib").write_bytes(b"model bytes")
    reg = registry.Registry(store.open_store(str(tmp_path / "store")))
    frame = pd.DataFrame({"x": [0.1, 0.2, 0.3], "y": [0, 1, 0]})
    result = push.push(
        reg,
        "m",
        model_path=tmp_path / "model.joblib",
        data_schema=SCHEMA,
        evaluation=EVALUATION,
        blessing=blessing,
        reference=frame,
        lineage={"run_id": "r1"},
        **kw,
    )
    return reg, result


def test_push_registers_every_file_with_its_sha256_and_promotes(tmp_path):
    reg, result = _push(tmp_path)
    assert result.version == "1" and reg.champion("m") == "1"
    assert set(result.files) >= {
        "model.joblib",
        "schema.json",
        "metrics.json",
        "blessing.json",
        "lineage.json",
        "reference.parquet",
        "model_card.md",
    }
    assert result.files["model.joblib"] == dataio.sha256_bytes(b"model bytes")
    assert result.uri.endswith("models/m/1")
    assert "# Model card: m" in result.model_card


def test_push_records_the_parent_champion_in_lineage(tmp_path):
    reg, _ = _push(tmp_path)
    _, second = _push(tmp_path)
    assert reg.manifest("m", second.version)["metadata"]["lineage"]["parent_champion"] == "1"


def test_push_without_promote_leaves_the_champion(tmp_path):
    reg, _ = _push(tmp_path)
    _, second = _push(tmp_path, promote=False)
    assert second.version == "2" and reg.champion("m") == "1"


def test_push_refuses_an_unblessed_model_and_writes_nothing(tmp_path):
    refused = {"blessed": False, "reasons": ["threshold roc_auc: too low"]}
    with pytest.raises(errors.ConfigError, match="not blessed .*threshold roc_auc"):
        _push(tmp_path, blessing=refused)
    assert registry.Registry(store.open_store(str(tmp_path / "store"))).models() == []


def test_reference_sample_is_capped_and_deterministic():
    df = pd.DataFrame({"a": range(100)})
    first, second = push.reference_sample(df, 10, seed=3), push.reference_sample(df, 10, seed=3)
    assert len(first) == 10
    pd.testing.assert_frame_equal(first, second)
    assert push.reference_sample(df, 500).equals(df)


def test_lineage_code_version_falls_back_to_the_image_revision(monkeypatch):
    from kfops.runs import context  # noqa: PLC0415

    monkeypatch.setenv(context.REVISION_ENV, "0123abc")
    assert push.build_lineage(code_version="")["code_version"] == "0123abc"
    assert push.build_lineage(code_version="deadbeef")["code_version"] == "deadbeef"
    assert "code_version" not in push.build_lineage(run_id="r")

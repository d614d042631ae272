"""Batch scoring: equal to in-process predict, independent of the shard count, checked rows.

A real HistGradientBoosting pipeline is registered in a temporary store; the plan, shard and
merge functions run as the components run them (the kfp.local pipeline run is in
tests/pipelines/test_batch_scoring.py).
"""

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from kfops import batchscore, datasets, errors, modelio, push, registry, store, validate

NAME = "churn"


def register(store_dir, df: pd.DataFrame, version_of=None):
    """Fits and registers (as champion) a pipeline the serving fast path compiles."""
    schema = validate.infer_schema(df, "churned")
    numeric = [c.name for c in schema.features if c.dtype in ("int", "float", "bool")]
    other = [c.name for c in schema.features if c.name not in numeric]
    pre = ColumnTransformer([
        ("num", SimpleImputer(), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                              OneHotEncoder(handle_unknown="ignore")), other),
    ])  # fmt: skip
    model = make_pipeline(pre, HistGradientBoostingClassifier(max_iter=30, random_state=0))
    model.fit(df[schema.feature_names], df["churned"])
    path = store_dir.parent / "model.joblib"
    modelio.save_model(model, path)
    reg = registry.Registry(store.open_store(str(store_dir)))
    push.push(reg, NAME, model_path=path, data_schema=schema,
              evaluation={"task": "classification", "metrics": {}, "baseline_metrics": {}},
              blessing={"blessed": True, "reasons": [], "checks": []},
              reference=df.head(50), lineage={"run_id": "test"})  # fmt: skip
    return reg, model, schema


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    train = datasets.churn(2000, seed=0)
    reg, model, schema = register(root / "store", train)
    rows = datasets.churn(3000, seed=1)
    source = root / "rows.parquet"
    rows.to_parquet(source, index=False)
    return reg, model, schema, rows, source, root


def score_all(reg, source, out_dir, shards, **read):
    """Plan, every shard, merge: what the pipeline does, in one process."""
    version = batchscore.resolve_version(reg, NAME, "")
    plan = batchscore.plan(str(source), shards, version, **read)
    out = store.open_store(str(out_dir))
    written = [batchscore.run_shard(reg, NAME, str(source), s, out, 700, **read) for s in plan]
    return plan, written, batchscore.merge(out, plan, written)


def read_out(out_dir) -> pd.DataFrame:
    parts = sorted(p for p in out_dir.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def test_batchscore_equals_in_process_predict_for_every_row(trained, tmp_path):
    reg, model, schema, rows, source, _ = trained
    _, written, manifest = score_all(reg, source, tmp_path / "out", 3)
    got = read_out(tmp_path / "out")
    features = rows[schema.feature_names]
    assert manifest["rows"] == len(rows) == len(got)
    assert got["customer_id"].tolist() == rows["customer_id"].tolist()
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(features))
    proba = model.predict_proba(features)
    expected = proba[np.arange(len(rows)), model.predict(features)]
    np.testing.assert_allclose(got["probability"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert set(got["model_version"]) == {"1"} and set(got["model_name"]) == {NAME}
    assert all(w["paths"] == {"fast": w["rows"]} for w in written), written  # the compiled path


def test_batchscore_output_is_the_same_for_1_2_and_4_shards(trained, tmp_path):
    reg, *_, source, _ = trained
    outputs = []
    for shards in (1, 2, 4):
        plan, _, manifest = score_all(reg, source, tmp_path / str(shards), shards)
        assert len(plan) == len(manifest["parts"]) == shards
        outputs.append(read_out(tmp_path / str(shards)).drop(columns="scored_at"))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    pd.testing.assert_frame_equal(outputs[0], outputs[2])


def test_batchscore_partitioned_prefix_keys_rows_by_global_index(trained, tmp_path):
    reg, model, schema, rows, *_ = trained
    data = tmp_path / "parts"
    no_id = rows.drop(columns="customer_id")
    for i, lo in enumerate(range(0, len(rows), 1000)):  # three uneven-free files, four shards
        (data / f"dt={i}").mkdir(parents=True)
        no_id.iloc[lo : lo + 1000].to_parquet(data / f"dt={i}" / "part-0.parquet", index=False)
    reg2, _, _ = register(tmp_path / "store", datasets.churn(2000, seed=0).drop(
        columns="customer_id"))  # fmt: skip
    plan, _, manifest = score_all(reg2, str(data) + "/", tmp_path / "out", 4)
    assert [s["rows"] for s in plan] == [750] * 4 and len(plan[1]["segments"]) == 2
    got = read_out(tmp_path / "out")
    assert manifest["key"] == "row" and got["row"].tolist() == list(range(len(rows)))
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(rows[schema.feature_names]))


def test_batchscore_merge_fails_on_a_lost_shard(trained, tmp_path):
    reg, *_, source, _ = trained
    plan, written, _ = score_all(reg, source, tmp_path / "out", 4)
    out = store.open_store(str(tmp_path / "out"))
    out.delete(written[2]["key"])
    with pytest.raises(errors.IntegrityError, match="part-00002-of-00004.parquet is missing"):
        batchscore.merge(out, plan, written)


def test_batchscore_merge_fails_on_a_short_or_duplicated_shard(trained, tmp_path):
    reg, *_, source, _ = trained
    plan, written, _ = score_all(reg, source, tmp_path / "out", 2)
    out = store.open_store(str(tmp_path / "out"))
    first = pd.read_parquet(tmp_path / "out" / written[0]["key"])
    # the second part rewritten with the first part's keys: counts agree, keys repeat
    batchscore.write_part(out, plan[1], first)
    with pytest.raises(errors.IntegrityError, match="duplicate row keys"):
        batchscore.merge(out, plan, written)
    short = batchscore.write_part(out, plan[1], first.head(10))
    with pytest.raises(errors.IntegrityError, match="wrote 10 rows, the plan says 1500"):
        batchscore.merge(out, plan, [written[0], short])


def test_batchscore_rerun_with_fewer_shards_leaves_only_its_parts(trained, tmp_path):
    reg, *_, source, _ = trained
    score_all(reg, source, tmp_path / "out", 4)
    _, _, manifest = score_all(reg, source, tmp_path / "out", 2)
    on_disk = sorted(p.name for p in (tmp_path / "out").glob("part-*"))
    assert on_disk == manifest["parts"] == ["part-00000-of-00002.parquet",
                                            "part-00001-of-00002.parquet"]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="plan"), "the source has no column 'plan' the model needs"),
        (lambda f: f.assign(tenure_months="x"), "column 'tenure_months' type"),
        (lambda f: f.head(0), "has no rows to score"),
    ],
)
def test_batchscore_bad_input_is_one_line(trained, tmp_path, change, message):
    reg, *_, rows, _, _ = trained
    source = tmp_path / "bad.parquet"
    change(rows.head(50)).to_parquet(source, index=False)
    with pytest.raises(errors.DataError, match=message) as info:
        score_all(reg, source, tmp_path / "out", 2)
    assert "\n" not in str(info.value)


def test_batchscore_unknown_version_is_not_found(trained):
    reg, *_ = trained
    with pytest.raises(errors.NotFound, match="has no version '9'"):
        batchscore.resolve_version(reg, NAME, "9")


def test_batchscore_sql_query_shards_equal_in_process_predict(trained, tmp_path, postgres,
                                                               monkeypatch):  # fmt: skip
    """A table in a real PostgreSQL, read by kfops.ingest's SQL reader in every shard."""
    import sqlalchemy

    from kfops.ingest import sql

    reg, model, schema, rows, *_ = trained
    monkeypatch.setenv(sql.PASSWORD_ENV, postgres.password)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    engine = sqlalchemy.create_engine(postgres.url.replace("kfops@", f"kfops:{postgres.password}@"))
    rows.head(600).to_sql("to_score", engine, if_exists="replace", index=False)
    engine.dispose()
    query = "SELECT * FROM to_score ORDER BY customer_id"  # a stable order: shards are row ranges
    _, _, manifest = score_all(reg, postgres.url, tmp_path / "out", 3, query=query)
    got = read_out(tmp_path / "out")
    want = rows.head(600).sort_values("customer_id")
    assert manifest["rows"] == 600 and got["customer_id"].tolist() == want["customer_id"].tolist()
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(want[schema.feature_names]))


def test_batchscore_s3_prefix_in_and_s3_parts_out(trained, tmp_path, s3_server, s3_shared_bucket):
    """Partitions under an s3:// prefix on a real S3 server; the parts and manifest go to S3."""
    import uuid

    reg, model, schema, rows, *_ = trained
    prefix = f"batch-{uuid.uuid4().hex[:8]}"
    bucket = s3_server.store(s3_shared_bucket, prefix=prefix)
    for i, lo in enumerate(range(0, 1500, 500)):
        rows.iloc[lo : lo + 500].to_parquet(tmp_path / f"{i}.parquet", index=False)
        bucket.put_file(f"in/dt={i}/part.parquet", tmp_path / f"{i}.parquet")
    source = f"s3://{s3_shared_bucket}/{prefix}/in/"
    version = batchscore.resolve_version(reg, NAME, "")
    plan = batchscore.plan(source, 2, version, s3_server.settings)
    out = s3_server.store(s3_shared_bucket, prefix=f"{prefix}/out")
    written = [batchscore.run_shard(reg, NAME, source, s, out, 400, s3_server.settings)
               for s in plan]  # fmt: skip
    manifest = batchscore.merge(out, plan, written)
    got = pd.concat([pd.read_parquet(io.BytesIO(out.get_bytes(k))) for k in manifest["parts"]])
    assert sorted(out.list("")) == sorted([batchscore.MANIFEST, *manifest["parts"]])
    assert got["customer_id"].tolist() == rows["customer_id"].head(1500).tolist()
    want = model.predict(rows.head(1500)[schema.feature_names])
    assert np.array_equal(got["prediction"].to_numpy(), want)


def test_batchscore_regressor_has_predictions_and_no_probability(tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    df = datasets.churn(1500, seed=0).drop(columns="churned").dropna(subset=["total_charges"])
    schema = validate.infer_schema(df, "total_charges")
    numeric = [c.name for c in schema.features if c.dtype in ("int", "float", "bool")]
    other = [c.name for c in schema.features if c.name not in numeric]
    pre = ColumnTransformer([("num", SimpleImputer(), numeric),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), other)])  # fmt: skip
    model = make_pipeline(pre, HistGradientBoostingRegressor(max_iter=20, random_state=0))
    model.fit(df[schema.feature_names], df["total_charges"])
    modelio.save_model(model, tmp_path / "m.joblib")
    reg = registry.Registry(store.open_store(str(tmp_path / "store")))
    push.push(reg, NAME, model_path=tmp_path / "m.joblib", data_schema=schema,
              evaluation={"task": "regression", "metrics": {}, "baseline_metrics": {}},
              blessing={"blessed": True, "reasons": [], "checks": []},
              reference=df.head(50), lineage={"run_id": "test"})  # fmt: skip
    rows = datasets.churn(900, seed=2).drop(columns="churned")
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    score_all(reg, tmp_path / "rows.parquet", tmp_path / "out", 2)
    got = read_out(tmp_path / "out")
    assert got["probability"].isna().all()
    np.testing.assert_array_equal(got["prediction"], model.predict(rows[schema.feature_names]))


def test_localrun_keep_print_undoes_a_print_swap_left_behind():
    """kfp.local's ParallelFor threads can leave builtins.print indented (kfops.localrun)."""
    import builtins

    from kfops import localrun

    original = builtins.print
    with localrun.keep_print():
        builtins.print = lambda *a, **k: original("    ", *a, **k)  # what a lost swap leaves
    assert builtins.print is original


def test_batchscore_merge_checks_row_number_keys_part_by_part(trained, tmp_path):
    reg, *_, rows, _, _ = trained
    reg2, _, _ = register(tmp_path / "store", datasets.churn(2000, seed=0).drop(
        columns="customer_id"))  # fmt: skip
    rows.drop(columns="customer_id").head(900).to_parquet(tmp_path / "r.parquet", index=False)
    plan, written, manifest = score_all(reg2, tmp_path / "r.parquet", tmp_path / "out", 3)
    assert manifest["key"] == "row"
    out = store.open_store(str(tmp_path / "out"))
    first = pd.read_parquet(tmp_path / "out" / written[0]["key"])
    batchscore.write_part(out, plan[2], first)  # rows 0-299 again where 600-899 belong
    with pytest.raises(errors.IntegrityError, match="does not hold rows 600 to 899 in order"):
        batchscore.merge(out, plan, written)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"out": "", "shards": 2}, "out must name a directory"),
        ({"out": "o", "shards": 0}, "shards must be >= 1, got 0"),
        ({"out": "o", "chunk_rows": 0}, "chunk_rows must be >= 1, got 0"),
        ({"out": "o", "shards": "2"}, "shards must be int"),
    ],
)
def test_batchscore_steps_check_their_options_through_score_config(tmp_path, options, message):
    """The plan and shard steps build ScoreConfig (its checks), as `kfops score` does."""
    with pytest.raises(errors.ConfigError, match=message):
        batchscore.open_run(str(tmp_path / "store"), "builtin:churn", **options)


def test_batchscore_open_run_hands_back_the_checked_config(tmp_path):
    *_, read, cfg = batchscore.open_run(str(tmp_path / "store"), "x.csv", "o", delimiter=";",
                                        shards=3, chunk_rows=7)  # fmt: skip
    assert (cfg.out, cfg.shards, cfg.chunk_rows) == ("o", 3, 7)
    assert read == {"format": None, "delimiter": ";", "query": None}

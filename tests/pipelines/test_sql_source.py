"""A real PostgreSQL table through `kfops run`: trained, blessed, the query and rows in lineage."""

import json

import pytest
import sqlalchemy

from kfops import cli, datasets, registry, store
from kfops.ingest import sql

pytestmark = pytest.mark.slow


def test_run_trains_on_a_postgres_table_and_lineage_names_the_query(
    capsys, tmp_path, postgres, monkeypatch
):
    frame = datasets.load_builtin("builtin:churn?rows=1200&seed=1")
    owner = sqlalchemy.create_engine(postgres.url.replace("kfops@", f"kfops:{postgres.password}@"))
    frame.to_sql("churn_rows", owner, if_exists="replace", index=False)
    owner.dispose()
    monkeypatch.setenv(sql.PASSWORD_ENV, postgres.password)
    query = "SELECT * FROM churn_rows WHERE tenure_months >= 0"
    argv = ["run", "--source", postgres.url, "--source-query", query, "--label", "churned",
            "--name", "churn", "--store", str(tmp_path / "store"), "--runs-dir",
            str(tmp_path / "runs"), "--json", "--param", "search_iterations=2",
            "--param", "cv_folds=2"]  # fmt: skip
    code = cli.main(argv)
    out = capsys.readouterr().out
    summary = json.loads(out)
    assert code == 0 and summary["blessed"] is True, summary
    loaded = registry.Registry(store.open_store(str(tmp_path / "store"))).load("churn")
    lineage = loaded.manifest["metadata"]["lineage"]
    assert lineage["query"] == query and lineage["source_rows"] == 1200
    assert lineage["source"] == postgres.url and postgres.password not in json.dumps(lineage)
    step = json.loads((tmp_path / "store" / "runs" / summary["run_id"] / "steps" / "ingest.json")
                      .read_text())  # fmt: skip
    assert step["outputs"][0]["query"] == query and step["outputs"][0]["source_rows"] == 1200


def test_bad_sql_fails_the_run_with_the_data_exit_code_and_registers_nothing(
    capsys, tmp_path, postgres, monkeypatch
):
    monkeypatch.setenv(sql.PASSWORD_ENV, postgres.password)
    argv = ["run", "--source", postgres.url, "--source-query", "SELEC 1", "--label", "y",
            "--name", "m", "--store", str(tmp_path / "store"), "--runs-dir",
            str(tmp_path / "runs"), "--json"]  # fmt: skip
    code = cli.main(argv)
    out = capsys.readouterr()
    assert code == 3, out
    assert "syntax error" in out.out + out.err
    assert registry.Registry(store.open_store(str(tmp_path / "store"))).versions("m") == []


def test_compiled_pipeline_maps_the_sql_secret_into_ingest_only_and_holds_no_password(
    tmp_path, monkeypatch
):
    import yaml
    from kfops.pipelines import training
    from kfp import compiler

    from kfops import cluster

    monkeypatch.setenv(sql.PASSWORD_ENV, "pg-password-must-not-appear")
    out = tmp_path / "training.yaml"
    compiler.Compiler().compile(training.training, str(out))
    text = out.read_text()
    assert "pg-password-must-not-appear" not in text
    platform = list(yaml.safe_load_all(text))[1]["platforms"]["kubernetes"]["deploymentSpec"]
    mapped = {
        name: [s for s in spec.get("secretAsEnv", []) if s["secretName"] == cluster.SQL_SECRET]
        for name, spec in platform["executors"].items()
    }
    assert [name for name, found in mapped.items() if found] == ["exec-ingest"]
    (secret,) = mapped["exec-ingest"]
    assert secret["optional"] is True
    assert {(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]} == {
        (sql.PASSWORD_ENV, sql.PASSWORD_ENV)
    }

"""`kfops score` end to end: the batch-scoring pipeline through kfp.local, ParallelFor included.

kfp 2.17's local runner runs ParallelFor iterations on a thread pool capped at 2 workers
(kfp/local/orchestrator/enhanced_dag_orchestrator.py, ParallelExecutor.conservative_max) and
gives the merge the shards' outputs through dsl.Collected, as the KFP backend does.
"""

import json

import numpy as np
import pandas as pd
import pytest

from kfops import batchscore, cli, datasets, ingest
from tests.kfops.test_batchscore import register


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_score_cli_runs_the_sharded_pipeline_and_equals_in_process_predict(suffix, tmp_path,
                                                                           capsys):  # fmt: skip
    """CSV too: its plan entries carry the column types through the ParallelFor items."""
    _, model, schema = register(tmp_path / "store", datasets.churn(1500, seed=0))
    source = tmp_path / f"rows.{suffix}"
    getattr(datasets.churn(1200, seed=3), f"to_{suffix}")(source, index=False)
    rows = ingest.ingest(str(source)).frame
    argv = ["score", "--source", str(source), "--name", "churn",
            "--out", str(tmp_path / "out"), "--shards", "3", "--store", str(tmp_path / "store"),
            "--runs-dir", str(tmp_path / "runs"), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["rows"] == 1200 and len(manifest["parts"]) == 3 and manifest["version"] == "1"
    got = pd.concat([pd.read_parquet(tmp_path / "out" / p) for p in manifest["parts"]])
    assert got["customer_id"].tolist() == rows["customer_id"].tolist()
    assert np.array_equal(got["prediction"].to_numpy(), model.predict(rows[schema.feature_names]))


def test_score_cli_fails_the_run_on_a_failed_shard_with_one_line(tmp_path, capsys):
    register(tmp_path / "store", datasets.churn(1500, seed=0))
    rows = datasets.churn(400, seed=3)
    rows.loc[300:, "plan"] = "platinum"  # only the last shard's rows hold an unseen category
    rows.to_parquet(tmp_path / "rows.parquet", index=False)
    argv = ["score", "--source", str(tmp_path / "rows.parquet"), "--name", "churn",
            "--out", str(tmp_path / "out"), "--shards", "4", "--store", str(tmp_path / "store"),
            "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    assert cli.main(argv) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "step 'score-shard-3' failed" in err and "'platinum'" in err and "rows [300," in err
    assert not (tmp_path / "out" / batchscore.MANIFEST).exists()


def test_score_cli_refuses_zero_shards_before_running(tmp_path, capsys):
    argv = ["score", "--source", "x.parquet", "--name", "churn", "--out", str(tmp_path),
            "--shards", "0"]  # fmt: skip
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.strip() == "kfops: error: shards must be >= 1, got 0"

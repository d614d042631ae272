"""The champion step: no champion, no scikit-learn and no test rows read; a champion is scored."""

import json
import subprocess
import sys

import pandas as pd

from kfops import champion, registry, schema
from kfops.store import local

SCHEMA = schema.Schema(
    (
        schema.ColumnSpec("a", "float"),
        schema.ColumnSpec("b", "float"),
        schema.ColumnSpec("y", "int", role="label"),
    ),
    label="y",
    task="classification",
)


def test_first_run_reads_no_rows_and_loads_no_scikit_learn(tmp_path):
    # a fresh interpreter, as the step is: what the no-champion path loads is what it costs
    probe = f"""
import json, sys
from kfops import champion, registry, schema
from kfops.store import local
def unread():
    raise AssertionError("the test rows were read with no champion to score")
reg = registry.Registry(local.LocalStore({str(tmp_path / "store")!r}))
data_schema = schema.Schema.from_dict({SCHEMA.to_dict()!r})
record = champion.resolve(reg, "churn", unread, data_schema)
print(json.dumps([record, "sklearn" in sys.modules]))
"""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    record, sklearn_loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert record == {"exists": False}
    assert not sklearn_loaded


def test_champion_is_scored_on_the_candidates_test_rows(tmp_path, model_files):
    reg = registry.Registry(local.LocalStore(tmp_path / "store"))
    version = reg.register("churn", model_files).version
    reg.promote("churn", version)
    test = pd.DataFrame({"a": [2.0, -2.0, 0.5, -1.0], "b": [-1.0, 1.0, 3.0, -3.0]})
    test["y"] = (test["a"] > test["b"]).astype(int)
    reads = []

    def read_test():
        reads.append(1)
        return test

    record = champion.resolve(reg, "churn", read_test, SCHEMA)
    assert reads == [1]
    assert record["exists"] and record["comparable"] and record["version"] == version
    assert record["evaluation"]["n_rows"] == 4
    assert record["evaluation"]["metrics"]["accuracy"] == 1.0


def test_champion_without_the_candidates_features_is_not_comparable(tmp_path, model_files):
    reg = registry.Registry(local.LocalStore(tmp_path / "store"))
    reg.promote("churn", reg.register("churn", model_files).version)
    record = champion.resolve(reg, "churn", lambda: pd.DataFrame({"a": [1.0], "y": [1]}), SCHEMA)
    assert record["comparable"] is False
    assert "lacks the champion's features ['b']" in record["reason"]

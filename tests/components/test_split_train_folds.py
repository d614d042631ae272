"""The split step hands the train step how it held rows out; the search folds follow (issue 13).

Through kfp.local: ingest -> validate -> split (group) -> train; the train step's record names
the folds its search used, and they keep every group on one side.
"""

import json

import numpy as np
import pandas as pd
from kfops.components.ingest import ingest
from kfops.components.split import split
from kfops.components.train import train
from kfops.components.validate import validate
from kfp import dsl


@dsl.pipeline(name="split-train")
def _split_train(source: str, store_uri: str, run_id: str):
    """The data and train steps as the training pipeline wires them (kfp.local runs pipelines)."""
    run = {"store_uri": store_uri, "run_id": run_id}
    data = ingest(source=source, **run).outputs["data"]
    checked = validate(data=data, label="y", group_column="customer", **run)
    parts = split(data=data, label="y", strategy="group", group_column="customer", **run)
    train(
        train_data=parts.outputs["train"],
        data_schema=checked.outputs["data_schema"],
        search_iterations=1,
        cv_folds=3,
        **run,
    )


def _grouped(tmp_path):
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 6)
    df = pd.DataFrame(
        {
            "customer": [f"c{g:03d}" for g in groups],
            "x": rng.normal(size=groups.size),
            "y": rng.permutation(np.arange(40) % 2)[groups],
        }
    )
    path = tmp_path / "grouped.csv"
    df.to_csv(path, index=False)
    return path


def test_group_split_gives_the_train_step_grouped_search_folds(kfp_local, tmp_path):
    store_dir, run_id = tmp_path / "store", "r-folds"
    _split_train(source=str(_grouped(tmp_path)), store_uri=str(store_dir), run_id=run_id)
    record = json.loads((store_dir / "runs" / run_id / "steps" / "train.json").read_text())
    folds = next(o for o in record["outputs"] if o["name"] == "model")["search_folds"]
    assert folds["kind"] == "GroupKFold" and folds["column"] == "customer"
    assert [f["shared_groups"] for f in folds["folds"]] == [0, 0, 0]

"""Split component: train/test Datasets, disjoint, with class balance per split."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def split(
    data: dsl.Input[dsl.Dataset],
    label: str,
    train: dsl.Output[dsl.Dataset],
    test: dsl.Output[dsl.Dataset],
    store_uri: str,
    run_id: str,
    strategy: str = "stratified",
    test_fraction: float = 0.2,
    seed: int = 0,
    time_column: str = "",
    group_column: str = "",
    cross_duplicates: str = "drop",
):
    """Splits data into train and test. Rules: kfops.split."""
    from kfops import dataio, parameters, recording
    from kfops import split as core

    params = {
        "strategy": strategy,
        "test_fraction": test_fraction,
        "seed": seed,
        "cross_duplicates": cross_duplicates,
    }
    with recording.recorded("split", store_uri, run_id, params) as step:
        cfg = parameters.build(
            core.SplitConfig,
            label=label,
            time_column=time_column,
            group_column=group_column,
            **params,
        )
        parts = core.split(dataio.read_frame(data.path), cfg)
        train.metadata.update(dataio.write_frame(parts.train, train.path))
        test.metadata.update(dataio.write_frame(parts.test, test.path))
        train.metadata["balance"] = parts.report.get("train", {})
        test.metadata["balance"] = parts.report.get("test", {})
        test.metadata["cross_duplicates"] = parts.report["cross_duplicates"]
        # What the train step needs for leak-free search folds (kfops.train: grouped or in time)
        train.metadata["split"] = {
            "strategy": parts.report["strategy"],
            "time_column": cfg.time_column or "",
            "group_column": cfg.group_column or "",
        }
        step.metric(
            "cross_duplicates", parts.report["cross_duplicates"]["test_rows_equal_to_train_rows"]
        )
        step.input("data", data.uri, data.metadata.get("sha256"))
        for name, art in (("train", train), ("test", test)):
            step.output(name, sha256=art.metadata["sha256"], rows=art.metadata["rows"])

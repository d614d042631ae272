"""Train component: one sklearn Pipeline (preprocessing + estimator) and a Dummy baseline."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def train(
    train_data: dsl.Input[dsl.Dataset],
    data_schema: dsl.Input[dsl.Artifact],
    model: dsl.Output[dsl.Model],
    baseline: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    store_uri: str,
    run_id: str,
    estimator: str = "hist_gradient_boosting",
    search_iterations: int = 8,
    cv_folds: int = 3,
    seed: int = 0,
    n_threads: int = 0,
    positive_class: str = "",
    threshold_objective: str = "f1",
    derived_features: list = [],  # noqa: B006 (KFP reads the default; never mutated)
):
    """Fits the tuned model and the baseline. Rules: kfops.train."""
    from kfops import cpus, dataio, modelio, parameters, recording, schema
    from kfops import train as core

    params = {
        "estimator": estimator,
        "search_iterations": search_iterations,
        "cv_folds": cv_folds,
        "seed": seed,
        "n_threads": n_threads,
        "positive_class": positive_class,
        "threshold_objective": threshold_objective,
        "derived_features": derived_features,
    }
    with recording.recorded("train", store_uri, run_id, params) as step:
        expected = schema.Schema.load(data_schema.path)
        # The split says how it held rows out; the search folds hold them out the same way.
        held_out = train_data.metadata.get("split", {})
        strategy = held_out.get("strategy")
        cfg = parameters.build(
            core.TrainConfig,
            label=expected.label,
            task=expected.task,
            group_column=held_out.get("group_column") if strategy == "group" else None,
            time_column=held_out.get("time_column") if strategy == "time" else None,
            **params,
        )
        result = core.train(dataio.read_frame(train_data.path), expected, cfg)
        model.metadata.update(result.metadata())
        model.metadata.update(
            {
                "sha256": modelio.save_model(result.pipeline, model.path),
                "train_data_sha256": train_data.metadata.get("sha256"),
                "seed": seed,
            }
        )
        baseline.metadata["sha256"] = modelio.save_model(result.baseline, baseline.path)
        metrics.log_metric("cv_score", round(float(result.cv_score), 4))
        step.input("train", train_data.uri, train_data.metadata.get("sha256"))
        step.output(
            "model",
            sha256=model.metadata["sha256"],
            params=result.params,
            search_folds=result.folds,
            decision=result.decision,
        )
        step.metric("cv_score", float(result.cv_score))
        step.runtime.update(
            threads=result.n_threads,
            search_processes=result.search_processes,
            cpus=cpus.available(),
            quota=cpus.quota(),
        )

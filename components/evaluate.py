"""Evaluate component: metrics, slices, fairness, KFP UI curves and an HTML report."""

from typing import List

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def evaluate(
    model: dsl.Input[dsl.Model],
    baseline: dsl.Input[dsl.Model],
    test_data: dsl.Input[dsl.Dataset],
    data_schema: dsl.Input[dsl.Artifact],
    metrics: dsl.Output[dsl.Metrics],
    curves: dsl.Output[dsl.ClassificationMetrics],
    evaluation: dsl.Output[dsl.Artifact],
    report: dsl.Output[dsl.HTML],
    store_uri: str,
    run_id: str,
    slice_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    sensitive_column: str = "",
    n_threads: int = 0,
):
    """Scores the model and its baseline on the test split. Rules: kfops.evaluate."""
    from kfops import cpus, dataio, modelio, recording, schema
    from kfops import evaluate as core
    from kfops.reports import evaluation as rendering
    from kfops.reports import identity

    params = {
        "slice_columns": slice_columns,
        "sensitive_column": sensitive_column,
        "n_threads": n_threads,
    }
    with recording.recorded("evaluate", store_uri, run_id, params) as step:
        expected = schema.Schema.load(data_schema.path)
        cfg = core.config_for(expected, **params)
        result = core.evaluate(
            modelio.load_model(model.path, model.metadata.get("sha256")),
            dataio.read_frame(test_data.path),
            cfg,
            baseline=modelio.load_model(baseline.path, baseline.metadata.get("sha256")),
        )
        for name, value in core.flat_metrics(result).items():
            metrics.log_metric(name, round(value, 4))
            if not name.startswith("slice/"):  # slices stay in the evaluation artifact
                step.metric(name, value)
        for call, args in core.kfp_curves(result):
            getattr(curves, call)(*args)
        dataio.write_json(result.to_dict(), evaluation.path)
        step.runtime.update(threads=result.n_threads, cpus=cpus.available(), quota=cpus.quota())
        who = identity.from_run(recording.recorder(store_uri, run_id).store, run_id, model.metadata)
        page = rendering.evaluation_html(result, identity=who)  # verdict pending: gate is next
        dataio.write_text(report.path, page)
        step.report("evaluation", page)

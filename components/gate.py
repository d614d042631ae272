"""Gate component: writes the blessing (every failed rule) and returns the decision."""

from typing import Dict

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def gate(
    model: dsl.Input[dsl.Model],
    evaluation: dsl.Input[dsl.Artifact],
    champion_evaluation: dsl.Input[dsl.Artifact],
    blessing: dsl.Output[dsl.Artifact],
    store_uri: str,
    run_id: str,
    metric: str = "",
    thresholds: Dict[str, float] = {},  # noqa: B006 ({} = the task's; KFP reads, never mutated)
    min_lift_over_baseline: float = 0.02,
    slice_floor: float = 0.6,
    fairness_metric: str = "recall_difference",
    max_fairness_gap: float = 0.25,
    champion_tolerance: float = 0.01,
) -> bool:
    """Blesses only if every rule passes; a rejection is a successful step. Rules: kfops.gate."""
    from kfops import dataio, parameters, recording
    from kfops import gate as core
    from kfops.reports import evaluation as rendering
    from kfops.reports import identity

    cfg = parameters.build(
        core.GateConfig,
        metric=metric,
        thresholds=thresholds,
        min_lift_over_baseline=min_lift_over_baseline,
        slice_floor=slice_floor,
        fairness_metric=fairness_metric,
        max_fairness_gap=max_fairness_gap,
        champion_tolerance=champion_tolerance,
    )
    with recording.recorded("gate", store_uri, run_id, {"config": repr(cfg)}) as step:
        decision = core.decide_against_record(
            dataio.read_json(evaluation.path),
            cfg,
            dataio.read_json(champion_evaluation.path),
            model.metadata.get("sha256"),
        )
        dataio.write_json(decision.to_dict(), blessing.path)
        blessing.metadata.update({"blessed": decision.blessed, "reasons": list(decision.reasons)})
        step.output(
            "blessing",
            blessed=decision.blessed,
            reasons=list(decision.reasons),
            notes=list(decision.notes),
        )
        # The run's evaluation report, now headed by the verdict and the champion comparison.
        who = identity.from_run(recording.recorder(store_uri, run_id).store, run_id, model.metadata)
        page = rendering.evaluation_html(
            dataio.read_json(evaluation.path),
            identity=who,
            blessing=decision.to_dict(),
            champion=dataio.read_json(champion_evaluation.path),
        )
        step.report("evaluation", page)
    return decision.blessed

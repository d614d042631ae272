"""Rollout component: judges a running shadow/canary rollout and promotes, aborts or waits."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def rollout(
    store_uri: str,
    run_id: str,
    model_name: str,
    verdict: dsl.Output[dsl.Artifact],
    min_requests: int = 200,
    min_labelled: int = 100,
    confidence: float = 0.95,
    margin: float = 0.0,
    max_error_increase: float = 0.01,
    max_p99_ratio: float = 1.5,
    by: str = "",
) -> str:
    """Returns promote, wait or abort, having acted on it. Rules: kfops.rollout.judge.

    The outcome is recorded as ended by `by` (who scheduled it) and this pipeline run. With no
    rollout running it returns idle and changes nothing (a recurring run between rollouts).
    """
    from kfops import config, dataio, parameters, recording, store
    from kfops import rollout as core

    rule = parameters.build(
        core.RolloutRule,
        min_requests=min_requests,
        min_labelled=min_labelled,
        confidence=confidence,
        margin=margin,
        max_error_increase=max_error_increase,
        max_p99_ratio=max_p99_ratio,
    )
    with recording.recorded("rollout", store_uri, run_id, {"rule": repr(rule)}) as step:
        st = store.open_store(store_uri, config.StoreSettings.from_env())
        summary = core.scheduled_decision(st, model_name, rule, by, run_id)
        dataio.write_json(summary, verdict.path)
        said = {k: summary[k] for k in ("decision", "reasons")}
        verdict.metadata.update(said)
        step.output("verdict", **said)
    return summary["decision"]

"""Outcome component: the run's end record, derived from the step records; the pipeline's exit step.

It runs under `dsl.ExitHandler`, after the body whether it succeeded or failed, so it is the one
writer of `runs/<run_id>/end.json`. Rules: kfops.runs.outcome.
"""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def outcome(
    store_uri: str,
    status: dsl.PipelineTaskFinalStatus,
    record: dsl.Output[dsl.Artifact],
    run_id: str = "",
    job_id: str = "",
) -> str:
    """Writes the run's outcome and returns its status ("succeeded" or "failed")."""
    from kfops import dataio, errors, recording, runs
    from kfops.runs import outcome as core

    recorder = recording.recorder(store_uri, run_id or job_id)  # the id run_context chose
    try:
        recorded = runs.RunIndex(recorder.store).show(recorder.run_id)["steps"]
    except errors.NotFound:  # no step recorded anything: the runner's state decides
        recorded = []
    result = core.derive(recorded, status.state, status.error_message)
    # The runner put this step's output under the run's output root: tell readers where it is.
    result["outputs"] = record.uri.rsplit("/", 2)[0]
    recorder.finish(**result)
    dataio.write_json(result, record.path)
    return result["status"]

"""Run context component: the run id every step records under, and the run header."""

import copy
from typing import Any, Dict

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl
from kfp.dsl import python_component, structures


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def run_context(
    store_uri: str,
    run_id: str = "",
    job_id: str = "",
    pipeline: str = "kfops-training",
    experiment: str = "",
    code_version: str = "",
) -> str:
    """Returns `run_id` (set by `kfops run`) or KFP's job id, after writing the run header.

    The header's parameters are every input of this task: `run_context_with` gives it one per
    pipeline parameter, read here from KFP's executor input (kfops.runs.context).
    """
    from kfops.components._image import KFOPS_IMAGE as image

    from kfops import recording
    from kfops.runs import context

    effective = run_id or job_id
    recording.recorder(store_uri, effective).start(
        pipeline,
        context.task_parameters(exclude=("job_id", "pipeline")),
        experiment=experiment or None,
        code_version=context.code_version(code_version),
        image=image,
    )
    return effective


def run_context_with(parameters: Dict[str, Any]) -> dsl.PipelineTask:
    """A run_context task that also receives every pipeline parameter, for the run header.

    Args:
        parameters: the pipeline's parameters by name (its `locals()` on entry), so a cluster run
            records the same parameters `kfops run` records, with no list kept in two places.
    """
    spec = copy.deepcopy(run_context.component_spec)
    for name, channel in parameters.items():
        if name not in spec.inputs:
            spec.inputs[name] = structures.InputSpec(type=channel.channel_type)
    component = python_component.PythonComponent(spec, run_context.python_func)
    return component(job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, **parameters)

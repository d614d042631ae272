"""Run context component: the run id every step records under, and the run header."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def run_context(
    store_uri: str,
    run_id: str = "",
    job_id: str = "",
    pipeline: str = "kfops-training",
    experiment: str = "",
    code_version: str = "",
) -> str:
    """Returns `run_id` (set by `kfops run`) or KFP's job id, after writing the run header."""
    from kfops.components._image import KFOPS_IMAGE as image

    from kfops import steps

    effective = run_id or job_id
    steps.recorder(store_uri, effective).start(
        pipeline, experiment=experiment or None, code_version=code_version, image=image
    )
    return effective

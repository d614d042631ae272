"""Deploy component: move the live serving workload to the pushed model version, in-cluster.

Runs as the `kfops-deployer` service account (manifests/deployer: get/patch on the server and its
ConfigMaps only). Rendering, applying, waiting and rolling back are kfops.deploy, the code
`kfops deploy` runs from a workstation.
"""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def deploy(
    version: str,
    store_uri: str,
    run_id: str,
    namespace: str = "kfops",
    timeout_seconds: float = 300.0,
) -> str:
    """Returns the model version now served; fails (after rolling back) when it is not ready.

    Recorded like every step, so a rollout that fails after the push shows in `kfops runs show`.
    """
    from kfops import deploy as core
    from kfops import recording

    params = {"version": version, "namespace": namespace, "timeout_seconds": timeout_seconds}
    with recording.recorded("deploy", store_uri, run_id, params) as step:
        api = core.connect(in_cluster=True)
        result = core.rollout(api, core.promotion(api, namespace, version), timeout_seconds)
        step.output("served", version=result.version, previous=result.previous_version)
    print(f"{result.workload}: model version {result.version} (was {result.previous_version})")
    return result.version

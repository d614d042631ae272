"""kfops: Kubeflow-native ML pipeline components.

Every lifecycle stage is a plain module here (no kfp import) plus a thin KFP component in
`kfops.components`. Pipelines in `kfops.pipelines` only compose the components.
"""

import os


def passive_wait(load: float, cpus: int) -> bool:
    """Whether OpenMP threads should sleep instead of spin while waiting for work.

    Measured on the 2-core machine (bench/pipeline.py, HistGradientBoosting): idle, libgomp's
    default spin-then-sleep made the bare script 13.7 s at 100k rows and 41.3 s at 1M, PASSIVE
    64.4 s and 81.1 s; with the machine oversubscribed (load average 14-17) a 2-thread fit of
    100k x 12 took 123-245 s spinning and 1.8-2.6 s passive. So: passive only when the machine's
    run queue already fills its CPUs (a pod sees its node's load and CPU count, which is the
    contention that matters for spinning).
    """
    return load >= cpus


# libgomp reads the policy when it loads, so it is decided before anything imports scikit-learn;
# a value already set wins.
if passive_wait(os.getloadavg()[0], os.cpu_count() or 1):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

"""kfops: Kubeflow-native ML pipeline components.

Every lifecycle stage is a plain module here (no kfp import) plus a thin KFP component in
`kfops.components`. Pipelines in `kfops.pipelines` only compose the components.
"""

import os

# OpenMP threads that wait for work sleep instead of spinning. On a loaded 2-core machine
# (load average 14-17) a 2-thread HistGradientBoosting fit of 100k x 12 took 123-245 s with
# libgomp's default spin-wait and 1.8-2.6 s passive (1 thread: 9-13 s). libgomp reads this when
# it loads, so it is set before anything imports scikit-learn; a value already set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

"""kfops: Kubeflow-native ML pipeline components.

Every lifecycle stage is a plain module here (no kfp import) plus a thin KFP component in
`kfops.components`. Pipelines in `kfops.pipelines` only compose the components.
"""

__version__ = "0.1.0"

"""The monitoring pipeline: monitor -> (if retrain) the training pipeline, nested. Composition only.

One compiled YAML runs the whole continuous-training loop; schedule it as a KFP recurring run
(`kfops submit --schedule`) or from a CronJob. Retraining goes through the full training pipeline,
gate included, so a retrained model that is not better than the champion is a reasoned rejection,
not a silent swap.

Its parameters are not declared here: they are the monitor component's parameters plus every
training pipeline parameter (a name both have, such as store_uri, model_name and seed, is one
parameter with training's default), taken from their signatures. So whatever training accepts,
monitoring passes on, and a default changes in one place. The store's default is the cluster
bucket (kfops.cluster.CLUSTER_STORE_URI), through training's signature.
"""

import inspect

from kfops.components.monitor import monitor
from kfops.pipelines.training import configure, training
from kfp import dsl

from kfops import parameters

_ARTIFACTS = ("report", "metrics", "decision")
_MONITOR = [
    p
    for name, p in inspect.signature(monitor.python_func).parameters.items()
    if name not in _ARTIFACTS
]
_TRAINING = list(inspect.signature(training.pipeline_func).parameters.values())
_SIGNATURE = inspect.Signature(
    [p for p in _MONITOR if p.name not in {t.name for t in _TRAINING}] + _TRAINING
)


def _monitoring(*values):
    """Monitors `model_name`; when the decision says retrain, trains on `source` and gates it."""
    given = dict(zip(_SIGNATURE.parameters, values, strict=True))
    monitor_task = monitor(**{p.name: given[p.name] for p in _MONITOR})
    configure(monitor_task, "monitor", "1", "4Gi", cache=False)
    with dsl.If(monitor_task.outputs["Output"] == True, name="retrain"):  # noqa: E712 (KFP channel)
        training(**{p.name: given[p.name] for p in _TRAINING}).set_display_name("training")


_monitoring.__signature__ = _SIGNATURE  # KFP reads parameters through inspect.signature
monitoring = dsl.pipeline(
    name="kfops-monitoring",
    description="Judge the served model's logged traffic for drift and quality; retrain if needed.",
)(_monitoring)
PARAMETERS = parameters.pipeline_parameters(_SIGNATURE.parameters)

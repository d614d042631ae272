"""The monitoring pipeline: monitor -> (if retrain) the training pipeline, nested. Composition only.

One compiled YAML runs the whole continuous-training loop; schedule it as a KFP recurring run
(`kfops submit --schedule`) or from a CronJob. Retraining goes through the full training pipeline,
gate included, so a retrained model that is not better than the champion is a reasoned rejection,
not a silent swap.

Its parameters are not declared here: they are the monitor and fresh-data components'
parameters plus every training pipeline parameter (a name both have, such as store_uri,
model_name and seed, is one parameter with training's default), taken from their signatures.
So whatever training accepts, monitoring passes on, and a default changes in one place. The
store's default is the cluster bucket (kfops.cluster.CLUSTER_STORE_URI), through training's
signature. Retraining ingests what the fresh-data step returns (kfops.monitor.fresh), not
`source`, unless retrain_on=source.
"""

import inspect

from kfops.components.fresh_data import fresh_data
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
_FRESH = [
    p
    for name, p in inspect.signature(fresh_data.python_func).parameters.items()
    if name != "dataset"
]
_OWN = {t.name for t in _TRAINING}
_SIGNATURE = inspect.Signature(
    [p for p in _MONITOR if p.name not in _OWN]
    + [p for p in _FRESH if p.name not in _OWN | {m.name for m in _MONITOR}]
    + _TRAINING
)


def _monitoring(*values):
    """Monitors `model_name`; when the decision says retrain, trains on fresh data and gates it."""
    given = dict(zip(_SIGNATURE.parameters, values, strict=True))
    monitor_task = monitor(**{p.name: given[p.name] for p in _MONITOR})
    configure(monitor_task, "monitor", "1", "4Gi", cache=False)
    with dsl.If(monitor_task.outputs["Output"] == True, name="retrain"):  # noqa: E712 (KFP channel)
        # what to retrain on: the champion's snapshot plus labelled traffic (kfops.monitor.fresh)
        data_task = fresh_data(**{p.name: given[p.name] for p in _FRESH})
        configure(data_task, "fresh data", "1", "4Gi", cache=False)
        arguments = {p.name: given[p.name] for p in _TRAINING}
        arguments["source"] = data_task.outputs["Output"]
        training(**arguments).set_display_name("training")


_monitoring.__signature__ = _SIGNATURE  # KFP reads parameters through inspect.signature
monitoring = dsl.pipeline(
    name="kfops-monitoring",
    description="Judge the served model's logged traffic for drift and quality; retrain if needed.",
)(_monitoring)
PARAMETERS = parameters.pipeline_parameters(_SIGNATURE.parameters)

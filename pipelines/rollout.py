"""The rollout pipeline: one step that judges a running shadow/canary rollout. Composition only.

It does what `kfops rollout decide NAME --by BY` does (kfops.rollout.decide): promote, abort, or
leave the rollout running, as the rule says. Schedule it as a KFP recurring run
(`kfops submit --package <compiled>/rollout.yaml --schedule ...`): each run looks at the events
logged since the rollout started, so its step is never cached. Like every kfops step it gets the
store's credentials from the Secret `kfops.cluster.STORE_SECRET` as environment variables, never
as parameters.

Its rule parameters are not declared here: they are `kfops.rollout.RolloutRule`'s fields (names,
types, defaults), the same the CLI's flags and the rollout component take; a field added there is
a parameter here. The run's outcome step and run header are the other pipelines' (run_context,
outcome), so `kfops runs show` lists it.
"""

import inspect

from kfops.components.outcome import outcome
from kfops.components.rollout import rollout as rollout_step
from kfops.components.run_context import run_context_with
from kfops.pipelines.training import configure
from kfp import dsl

from kfops import cluster, parameters
from kfops import rollout as core

NAME = "kfops-rollout"
_P = inspect.Parameter.POSITIONAL_OR_KEYWORD
RULE = list(parameters.surface(core.RolloutRule))
_SIGNATURE = inspect.Signature(
    [
        inspect.Parameter("model_name", _P, default="churn", annotation=str),
        inspect.Parameter("by", _P, default="", annotation=str),
        inspect.Parameter("store_uri", _P, default=cluster.CLUSTER_STORE_URI, annotation=str),
    ]
    + [
        inspect.Parameter(p.name, _P, annotation=p.type)
        if p.required
        else inspect.Parameter(p.name, _P, default=p.default, annotation=p.type)
        for p in parameters.surface(core.RolloutRule).values()
    ]
    + [inspect.Parameter("run_id", _P, default="", annotation=str)]
)


def _rollout(*values):
    """Judges `model_name`'s running rollout and promotes, aborts or leaves it, recorded as `by`."""
    p = dict(zip(_SIGNATURE.parameters, values, strict=True))
    done = outcome(store_uri=p["store_uri"], run_id=p["run_id"],
                   job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)  # fmt: skip
    configure(done, "outcome", "250m", "512Mi", retry=True, cache=False)
    with dsl.ExitHandler(done, name="run"):
        ctx = run_context_with({**p, "pipeline": NAME})
        configure(ctx, "run context", "500m", "512Mi", retry=True, cache=False)
        decide = rollout_step(
            store_uri=p["store_uri"],
            run_id=ctx.output,
            model_name=p["model_name"],
            by=p["by"],
            **{name: p[name] for name in RULE},
        )
        # not cached: the verdict depends on the events logged since the last run
        configure(decide, "rollout", "1", "2Gi", cache=False)


_rollout.__signature__ = _SIGNATURE  # KFP reads parameters through inspect.signature
rollout = dsl.pipeline(
    name=NAME,
    description="Judge a running shadow/canary rollout; promote, abort or keep it running.",
)(_rollout)
PARAMETERS = parameters.pipeline_parameters(_SIGNATURE.parameters)

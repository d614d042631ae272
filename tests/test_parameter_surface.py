"""Every component, pipeline and CLI parameter agrees with the stage config that owns it.

Component and pipeline signatures are literal Python (KFP reads them), so this test is what keeps
them equal to the config dataclasses (kfops.parameters): same name, type and default, allowed
values on the CLI, and no None a KFP signature cannot carry.
"""

import importlib
import inspect
import pkgutil

import pytest
from kfops.pipelines import batch_scoring, monitoring, training
from kfops.pipelines import rollout as rollout_pipeline

from kfops import (
    batchscore,
    cli,
    components,
    evaluate,
    gate,
    infra_validate,
    ingest,
    parameters,
    push,
    rollout,
    schema,
    split,
    traffic,
    train,
)
from kfops import validate as validate_mod
from kfops.commands import monitor as monitor_cmd
from kfops.commands import run as run_cmd
from kfops.monitor import fresh
from kfops.monitor import rules as monitor_config

# component -> the configs whose surface its parameters belong to
OWNERS = {
    # the column flags: --drop and --type on ingest; --ignore, --id and --type on validate
    "ingest": [ingest.IngestConfig, schema.ColumnConfig],
    # label, task and the time/group columns mean the same to validate as to split
    # ... and the sensitive column to validate as to evaluate (class balance per group)
    "validate": [
        validate_mod.ValidateConfig,
        split.SplitConfig,
        evaluate.EvalConfig,
        schema.ColumnConfig,
    ],
    "split": [split.SplitConfig],
    "train": [train.TrainConfig],
    "evaluate": [evaluate.EvalConfig],
    "champion": [evaluate.EvalConfig],
    "gate": [gate.GateConfig],
    "infra_validate": [infra_validate.InfraConfig],
    "monitor": [monitor_config.MonitorConfig],
    # the source it passes on when retrain_on=source is ingest's
    "fresh_data": [fresh.FreshDataConfig, ingest.IngestConfig],
    "run_context": [],
    "push": [push.PushConfig],
    "rollout": [rollout.RolloutRule],
    "deploy": [],
    "outcome": [],
    "score_plan": [batchscore.ScoreConfig, ingest.IngestConfig],
    "score_shard": [batchscore.ScoreConfig, ingest.IngestConfig],
    "score_merge": [batchscore.ScoreConfig],
}
# Run plumbing, not stage knobs: where to record, under which run, which model.
PLUMBING = {
    "store_uri", "run_id", "job_id", "pipeline", "experiment", "code_version", "model_name",
    "labels_key", "version", "namespace", "timeout_seconds",
    "shard", "plan", "written",  # batch scoring's plan, handed from step to step
    "by",  # who a rollout decision is recorded as ended by (kfops rollout decide --by)
}  # fmt: skip
# push records the training seed in the model's lineage: the same parameter as TrainConfig.seed
SHARED = {("push", "seed"): (train.TrainConfig, "seed")}


def _components():
    for info in pkgutil.iter_modules(components.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"kfops.components.{info.name}")
        yield info.name, getattr(module, info.name)


def _parameters(func):
    """(name, carriable type, default) of a component function's non-artifact parameters."""
    for name, p in inspect.signature(func).parameters.items():
        if "dsl.Input" in str(p.annotation) or "dsl.Output" in str(p.annotation):
            continue
        if getattr(p.annotation, "__module__", "").startswith("kfp"):
            continue
        yield name, p


def _surface_entry(component: str, name: str) -> parameters.Param | None:
    if (component, name) in SHARED:
        cls, field = SHARED[(component, name)]
        return parameters.surface(cls)[field]
    for cls in OWNERS[component]:
        entry = parameters.surface(cls).get(name)
        if entry is not None:
            return entry
    return None


def _component_bindings():
    """(component, parameter, Param) for every stage knob of every component."""
    for comp, obj in _components():
        assert comp in OWNERS, f"component {comp!r}: say which config owns its parameters"
        for name, p in _parameters(obj.python_func):
            entry = _surface_entry(comp, name)
            if entry is None:
                assert name in PLUMBING, f"{comp}.{name} is on no config surface"
                continue
            yield comp, name, p, entry


def test_component_signatures_match_their_configs():
    problems = []
    for comp, name, p, entry in _component_bindings():
        kind = parameters.pipeline_parameters({name: p})[name].type
        if kind is not entry.type:
            problems.append(f"{comp}.{name}: type {kind.__name__} != {entry.type.__name__}")
        default = parameters.REQUIRED if p.default is p.empty else p.default
        if not entry.required and default != entry.default:
            problems.append(f"{comp}.{name}: default {default!r} != {entry.default!r}")
    assert problems == []


PIPELINES = [
    training.training,
    monitoring.monitoring,
    batch_scoring.batch_scoring,
    rollout_pipeline.rollout,
]


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_no_signature_default_is_none(pipeline):
    """KFP cannot carry None: a rule that is off says so with its config's `none_as` value."""
    nones = [f"{c}.{n}" for c, obj in _components() for n, p in _parameters(obj.python_func)
             if p.default is None]  # fmt: skip
    nones += [n for n, p in inspect.signature(pipeline.pipeline_func).parameters.items()
              if p.default is None]  # fmt: skip
    assert nones == []


def _feeds(spec) -> set[tuple[str, str, str]]:
    """(pipeline parameter, component, component parameter) for every task input it feeds."""
    out = set()
    for comp_spec in [spec.root, *spec.components.values()]:
        if not comp_spec.HasField("dag"):
            continue
        for task in comp_spec.dag.tasks.values():
            component = task.component_ref.name.removeprefix("comp-").replace("-", "_")
            component = component.rstrip("_0123456789") or component
            for name, value in task.inputs.parameters.items():
                source = value.component_input_parameter
                if source:
                    out.add((source.removeprefix("pipelinechannel--"), component, name))
    return out


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_pipeline_parameters_match_the_configs_they_feed(pipeline):
    signature = inspect.signature(pipeline.pipeline_func).parameters
    known = parameters.pipeline_parameters(signature)
    problems, fed = [], set()
    for param, comp, name in _feeds(pipeline.pipeline_spec):
        if param not in known or comp not in OWNERS:
            continue  # a nested pipeline's own input: checked as that pipeline
        fed.add(param)
        entry = _surface_entry(comp, name)
        if entry is None:
            continue
        if known[param].type is not entry.type:
            problems.append(f"{param} -> {comp}.{name}: type differs")
        if not entry.required and known[param].default != entry.default:
            problems.append(
                f"{param} -> {comp}.{name}: default {known[param].default!r} != {entry.default!r}"
            )
    assert problems == []
    assert set(known) - fed - {"deploy"} == set(), "pipeline parameters that feed no step"


def test_monitoring_takes_every_training_parameter():
    assert set(training.PARAMETERS) <= set(monitoring.PARAMETERS)
    for name, param in training.PARAMETERS.items():
        assert monitoring.PARAMETERS[name] == param


def _flags(command: str):
    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {flag: action for action in sub._actions for flag in action.option_strings}


def _cli_surfaces():
    yield "run", {flag: p for flag, (_, p) in run_cmd.stage_flags().items()}
    yield "monitor", monitor_cmd.monitor_flags()
    surface = parameters.surface(traffic.TrafficConfig)
    yield "simulate-traffic", {f"--{n.replace('_', '-')}": p for n, p in surface.items()}
    scoring = {**parameters.surface(batchscore.ScoreConfig), **{
        n: p for n, p in parameters.surface(ingest.IngestConfig).items()
        if n in ("source", "format", "delimiter", "query")}}  # fmt: skip
    yield "score", {f"--{n.replace('_', '-')}": p for n, p in scoring.items()}


@pytest.mark.parametrize(("command", "surface"), list(_cli_surfaces()))
def test_cli_flags_match_the_configs(command, surface):
    flags = _flags(command)
    problems = []
    for flag, entry in surface.items():
        action = flags[flag]
        if action.default is not None and not entry.required and action.default != entry.default:
            problems.append(f"{flag}: default {action.default!r} != {entry.default!r}")
        if action.choices and set(action.choices) - {""} != set(entry.choices) - {""}:
            problems.append(f"{flag}: choices {action.choices} != {entry.choices}")
        if action.type not in (None, entry.type):
            problems.append(f"{flag}: type {action.type} != {entry.type}")
    assert problems == []


def test_run_flags_set_pipeline_parameters_of_the_same_type():
    for flag, (name, entry) in run_cmd.stage_flags().items():
        assert training.PARAMETERS[name].type is entry.type, flag


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "gate_treshold=0.9",
            "unknown parameter 'gate_treshold'; did you mean gate_thresholds?",
        ),
        ("cv_folds=three", "cv_folds must be int, got 'three'"),
        ("gate_thresholds=[1]", "gate_thresholds must be dict, got [1]"),
    ],
)
def test_run_param_rejects_unknown_keys_and_wrong_types(item, message, capsys):
    assert cli.main(["run", "--param", item]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1

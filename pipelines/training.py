"""The training pipeline, composition only; every knob is a parameter with a default.

ingest -> validate -> split -> train -> evaluate -> champion -> gate -> (if blessed)
infra-validate -> (if it serves) push -> (if deploy and promote=auto) deploy; then, always, the
outcome step. With promote=manual the run ends with the model staged for `kfops models approve`.

MinIO credentials reach the steps that touch object storage from the Kubernetes Secret
`kfops.cluster.STORE_SECRET` as environment variables, never as parameters, so they never appear
in the compiled YAML. Locally, the same variables come from the user's environment. `store_uri`
defaults to the cluster's bucket; `kfops run` passes the local store explicitly.
"""

import inspect
from typing import Dict, List

from kfops.components.champion import champion
from kfops.components.deploy import deploy as deploy_step
from kfops.components.evaluate import evaluate
from kfops.components.gate import gate
from kfops.components.infra_validate import infra_validate
from kfops.components.ingest import ingest
from kfops.components.outcome import outcome
from kfops.components.push import push
from kfops.components.run_context import run_context_with
from kfops.components.split import split
from kfops.components.train import train
from kfops.components.validate import validate
from kfp import dsl, kubernetes

from kfops import cluster, parameters


def with_storage(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Gives a step the MinIO credentials from the cluster Secret."""
    kubernetes.use_secret_as_env(
        task, secret_name=cluster.STORE_SECRET, secret_key_to_env=cluster.STORE_SECRET_ENV
    )
    return task


def retried(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Retries a registry step whose pod dies (eviction, OOM, node loss).

    Not used on ingest and validate: KFP cannot tell bad data from a transient fault and would
    re-run a bad-data failure three times. Transient S3 errors are already retried with bounded
    backoff inside the storage client, in every step.
    """
    return task.set_retry(num_retries=3, backoff_duration="30s", backoff_factor=2.0)


def sized(task: dsl.PipelineTask, cpu: str, memory: str) -> dsl.PipelineTask:
    """Requests and limits per step, so the scheduler can place it and a runaway step is capped."""
    return (
        task.set_cpu_request(cpu)
        .set_cpu_limit(cpu)
        .set_memory_request(memory)
        .set_memory_limit(memory)
    )


def configure(
    task: dsl.PipelineTask,
    name: str,
    cpu: str,
    memory: str,
    *,
    retry: bool = False,
    cache: bool = True,
) -> dsl.PipelineTask:
    """Sets up a step as every kfops step runs.

    Named and sized, with the store credentials (each step records itself in the store), retried
    only when asked, cached unless its input may change.
    """
    sized(with_storage(task), cpu, memory).set_display_name(name)
    if retry:
        retried(task)
    return task if cache else task.set_caching_options(False)


def _data_steps(p: dict, run: dict) -> dict:
    """The data steps: ingest -> validate -> split."""
    ingest_task = ingest(
        source=p["source"],
        format=p["source_format"],
        delimiter=p["source_delimiter"],
        query=p["source_query"],
        incremental=p["source_incremental"],
        incremental_column=p["source_incremental_column"],
        retention=p["source_retention"],
        column_types=p["column_types"],
        **run,
    )
    configure(ingest_task, "ingest", "1", "4Gi", cache=False)
    # A SQL source's password, when the cluster has the Secret (optional: file sources need none).
    kubernetes.use_secret_as_env(
        ingest_task, secret_name=cluster.SQL_SECRET, secret_key_to_env=cluster.SQL_SECRET_ENV,
        optional=True,
    )  # fmt: skip
    validate_task = validate(
        data=ingest_task.outputs["data"],
        label=p["label"],
        task=p["task"],
        schema_uri=p["schema_uri"],
        strict_categories=p["strict_categories"],
        time_column=p["time_column"],
        group_column=p["group_column"],
        model_name=p["model_name"],
        range_margin=p["range_margin"],
        max_unseen_fraction=p["max_unseen_fraction"],
        rule_severities=p["rule_severities"],
        sensitive_column=p["sensitive_column"],
        drop_columns=p["drop_columns"],
        ignore_columns=p["ignore_columns"],
        id_columns=p["id_columns"],
        column_types=p["column_types"],
        **run,
    )
    configure(validate_task, "validate", "1", "4Gi", cache=False)  # the champion may change
    split_task = split(
        data=ingest_task.outputs["data"],
        label=p["label"],
        strategy=p["split_strategy"],
        test_fraction=p["test_fraction"],
        seed=p["seed"],
        time_column=p["time_column"],
        group_column=p["group_column"],
        cross_duplicates=p["cross_duplicates"],
        **run,
    ).after(validate_task)
    configure(split_task, "split", "1", "4Gi")
    return {
        "data": ingest_task.outputs["data"],
        "schema": validate_task.outputs["data_schema"],
        "train": split_task.outputs["train"],
        "test": split_task.outputs["test"],
    }


def _model_steps(p: dict, run: dict, data: dict) -> dict:
    """The model steps: train -> evaluate, resolve champion -> gate."""
    train_task = train(
        train_data=data["train"],
        data_schema=data["schema"],
        estimator=p["estimator"],
        search_iterations=p["search_iterations"],
        cv_folds=p["cv_folds"],
        seed=p["seed"],
        n_threads=p["n_threads"],
        positive_class=p["positive_class"],
        threshold_objective=p["threshold_objective"],
        derived_features=p["derived_features"],
        **run,
    )
    # n_threads=0 counts the CPUs from the pod's cgroup (kfops.cpus), so the thread count
    # follows this limit: 2 for train, 1 for evaluate.
    configure(train_task, "train", "2", "8Gi")
    scoring = {"slice_columns": p["slice_columns"], "sensitive_column": p["sensitive_column"]}
    evaluate_task = evaluate(
        model=train_task.outputs["model"],
        baseline=train_task.outputs["baseline"],
        test_data=data["test"],
        data_schema=data["schema"],
        n_threads=p["n_threads"],
        **scoring,
        **run,
    )
    configure(evaluate_task, "evaluate", "1", "4Gi")
    champion_task = champion(
        test_data=data["test"],
        data_schema=data["schema"],
        model_name=p["model_name"],
        **scoring,
        **run,
    )
    configure(champion_task, "resolve champion", "1", "4Gi", retry=True, cache=False)
    gate_task = gate(
        model=train_task.outputs["model"],
        evaluation=evaluate_task.outputs["evaluation"],
        champion_evaluation=champion_task.outputs["champion_evaluation"],
        metric=p["gate_metric"],
        thresholds=p["gate_thresholds"],
        min_lift_over_baseline=p["min_lift_over_baseline"],
        slice_floor=p["slice_floor"],
        fairness_metric=p["fairness_metric"],
        max_fairness_gap=p["max_fairness_gap"],
        champion_tolerance=p["champion_tolerance"],
        **run,
    )
    configure(gate_task, "gate", "500m", "1Gi", cache=False)
    return {
        "model": train_task.outputs["model"],
        "evaluation": evaluate_task.outputs["evaluation"],
        "blessing": gate_task.outputs["blessing"],
        "blessed": gate_task.outputs["Output"],
    }


def _release_steps(p: dict, run: dict, data: dict, model: dict) -> None:
    """The release steps: (blessed) infra-validate -> (serves) push -> (deploy=true) deploy."""
    with dsl.If(model["blessed"] == True, name="blessed"):  # noqa: E712 (KFP channel)
        infra_task = infra_validate(
            model=model["model"], test_data=data["test"], data_schema=data["schema"], **run
        )
        configure(infra_task, "infra-validate", "1", "2Gi", cache=False)
        with dsl.If(infra_task.outputs["Output"] == True, name="serves"):  # noqa: E712
            push_task = push(
                model=model["model"],
                data_schema=data["schema"],
                evaluation=model["evaluation"],
                blessing=model["blessing"],
                data=data["data"],
                train_data=data["train"],
                model_name=p["model_name"],
                seed=p["seed"],
                code_version=p["code_version"],
                promote=p["promote"],
                **run,
            )
            configure(push_task, "push", "1", "4Gi", retry=True, cache=False)
            # A staged model (promote=manual) waits for `kfops models approve`: never deployed.
            with dsl.If(p["deploy"] == True, name="deploy"):  # noqa: E712
                with dsl.If(p["promote"] == "auto", name="promoted"):
                    deploy_task = deploy_step(
                        version=push_task.outputs["Output"], namespace=p["deploy_namespace"], **run
                    )
                    configure(deploy_task, "deploy", "250m", "512Mi", cache=False)
                    kubernetes.set_image_pull_policy(deploy_task, "IfNotPresent")


@dsl.pipeline(name="kfops-training", description="Train, evaluate, gate and register a model.")
def training(
    source: str = "builtin:churn",
    label: str = "churned",
    task: str = "",
    model_name: str = "churn",
    store_uri: str = cluster.CLUSTER_STORE_URI,
    seed: int = 0,
    source_format: str = "",
    source_delimiter: str = "",
    source_query: str = "",
    source_incremental: bool = False,
    source_incremental_column: str = "",
    source_retention: int = 0,
    drop_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    ignore_columns: List[str] = [],  # noqa: B006
    id_columns: List[str] = [],  # noqa: B006
    column_types: Dict[str, str] = {},  # noqa: B006 ({} = every column as inferred)
    schema_uri: str = "",
    strict_categories: bool = False,
    range_margin: float = 0.2,
    max_unseen_fraction: float = 0.01,
    rule_severities: Dict[str, str] = {},  # noqa: B006 ({} = every rule's default severity)
    split_strategy: str = "stratified",
    test_fraction: float = 0.2,
    time_column: str = "",
    group_column: str = "",
    cross_duplicates: str = "drop",
    estimator: str = "hist_gradient_boosting",
    search_iterations: int = 8,
    cv_folds: int = 3,
    n_threads: int = 0,
    positive_class: str = "",
    threshold_objective: str = "f1",
    derived_features: list = [],  # noqa: B006 (kfops.features: expressions or JSON objects)
    slice_columns: List[str] = [],  # noqa: B006 (KFP reads the default; never mutated)
    sensitive_column: str = "",
    gate_metric: str = "",
    gate_thresholds: Dict[str, float] = {},  # noqa: B006 ({} = the task's default thresholds)
    min_lift_over_baseline: float = 0.02,
    slice_floor: float = 0.6,
    fairness_metric: str = "recall_difference",
    max_fairness_gap: float = 0.25,
    champion_tolerance: float = 0.01,
    promote: str = "auto",
    code_version: str = "",
    experiment: str = "",
    deploy: bool = False,
    deploy_namespace: str = "kfops",
    run_id: str = "",
):
    """Trains a model on `source` and registers it in `store_uri` if the gate blesses it."""
    p = dict(locals())  # every parameter by name, for the stage helpers below
    # The exit step runs after everything else, failed or not, and writes the run's outcome.
    done = outcome(store_uri=store_uri, run_id=run_id, job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
    configure(done, "outcome", "250m", "512Mi", retry=True, cache=False)
    with dsl.ExitHandler(done, name="run"):
        ctx = run_context_with(p)  # every parameter goes into the run header
        configure(ctx, "run context", "500m", "512Mi", retry=True, cache=False)
        run = {"store_uri": store_uri, "run_id": ctx.output}
        data = _data_steps(p, run)
        model = _model_steps(p, run, data)
        _release_steps(p, run, data, model)


# The training pipeline's parameters (names, types, defaults): `kfops run --param` is checked
# against these, and the monitoring pipeline takes its training parameters from here.
PARAMETERS = parameters.pipeline_parameters(inspect.signature(training.pipeline_func).parameters)

"""Submits a compiled pipeline to Kubeflow Pipelines: upload or new version, then run or schedule.

One of the few modules allowed to import kfp: it is the edge to a KFP API server. Authentication
is kfp.Client's own: in a pod, the projected service account token (KF_PIPELINES_SA_TOKEN_PATH);
elsewhere an existing token (KF_PIPELINES_TOKEN, read by the CLI) or the kfp context file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pathlib
import re
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from kfops import __version__, cluster, errors

HEALTHZ = "/apis/v2beta1/healthz"


@dataclasses.dataclass(frozen=True)
class SubmitConfig:
    """What to submit where.

    Attributes:
        host: KFP API endpoint, e.g. http://localhost:8080 (a port-forward of ml-pipeline-ui).
        package: compiled pipeline YAML.
        experiment: experiment name (created when missing).
        schedule: cron expression for a recurring run (5 fields, or KFP's 6 with seconds); None
            starts one run now.
        params: pipeline parameters; names are checked against the package's inputs.
        run_name: run (or recurring run) name; default "<pipeline> <version name>".
        namespace: KFP namespace (multi-user installs); None lets kfp decide.
        service_account: Kubernetes service account the run's pods use (e.g. kfops-deployer).
        token: bearer token for the API (never printed).
        wait_seconds: wait this long for a one-off run to finish and fail unless it SUCCEEDED;
            None returns once the run is started.
        allow_local_store: submit even though store_uri is not object storage (only right when
            every step mounts one shared volume at that path).
    """

    host: str
    package: pathlib.Path
    experiment: str = "kfops"
    schedule: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    run_name: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    token: str | None = dataclasses.field(default=None, repr=False)
    wait_seconds: float | None = None
    allow_local_store: bool = False

    def __post_init__(self):
        if not self.host.startswith(("http://", "https://")):
            raise errors.ConfigError(f"host must start with http:// or https://, got {self.host!r}")
        if not pathlib.Path(self.package).is_file():
            raise errors.ConfigError(
                f"pipeline package {self.package} not found: run `make compile`"
            )
        if self.wait_seconds is not None and (self.schedule or self.wait_seconds <= 0):
            raise errors.ConfigError(
                "wait_seconds must be > 0 and needs a one-off run (no schedule)"
            )
        if self.schedule is not None:
            object.__setattr__(self, "schedule", kfp_cron(self.schedule))


@dataclasses.dataclass(frozen=True)
class SubmitResult:
    """IDs of what was created or reused, and where to look at it."""

    pipeline_id: str
    version_id: str
    version_name: str
    experiment_id: str
    run_id: str | None
    recurring_run_id: str | None
    url: str


def kfp_cron(expression: str) -> str:
    """KFP wants 6 cron fields (seconds first); a usual 5-field expression gets "0" seconds.

    Example: `kfp_cron("0 3 * * *") == "0 0 3 * * *"` (every day at 03:00).
    """
    fields = expression.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise errors.ConfigError(f"schedule must have 5 or 6 cron fields, got {expression!r}")
    return " ".join(fields)


def parse_params(items: list[str]) -> dict[str, str]:
    """`["k=v", ...]` -> {k: "v"}, the text kept: `typed_params` reads it as the pipeline says.

    Example: `parse_params(["seed=3", "model_name=2024"]) == {"seed": "3", "model_name": "2024"}`.
    """
    params: dict[str, str] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise errors.ConfigError(f"--param must look like name=value, got {item!r}")
        params[key] = raw
    return params


_INTEGER = re.compile(r"[+-]?\d+")


def _from_text(kind: str, text: str) -> Any:
    """A --param's text as KFP's parameterType `kind`; ValueError when it is not one."""
    if kind == "STRING":
        return text
    if kind == "NUMBER_INTEGER":
        if not _INTEGER.fullmatch(text):
            raise ValueError
        return int(text)
    if kind == "NUMBER_DOUBLE":
        return float(text)
    if kind == "BOOLEAN":
        return {"true": True, "false": False}[text.lower()]  # KeyError is a LookupError
    value = json.loads(text)  # LIST, STRUCT
    if not isinstance(value, list if kind == "LIST" else dict):
        raise ValueError
    return value


def _is_kind(kind: str, value: Any) -> bool:
    """Whether a value given as Python (not text) already is of KFP's parameterType `kind`."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return {
        "STRING": isinstance(value, str),
        "NUMBER_INTEGER": number and isinstance(value, int),
        "NUMBER_DOUBLE": number,
        "BOOLEAN": isinstance(value, bool),
        "LIST": isinstance(value, list),
        "STRUCT": isinstance(value, dict),
    }.get(kind, True)


_KIND_NAMES = {
    "STRING": "text", "NUMBER_INTEGER": "an integer", "NUMBER_DOUBLE": "a finite number",
    "BOOLEAN": "true or false", "LIST": "a JSON list", "STRUCT": "a JSON object",
}  # fmt: skip


def typed_params(pipeline: str, params: Mapping[str, Any], kinds: Mapping[str, str]) -> dict:
    """Each parameter as the type the pipeline declares, or one line naming the first that is not.

    KFP checks the types only when the run starts, so a scheduled run would fail at every tick;
    this refuses before anything is uploaded. Text (from `--param`) is read as the type says
    (`model_name=2024` stays text for a STRING); a value given as Python must already be one.
    """
    typed = {}
    for name, value in params.items():
        kind = kinds.get(name, "")
        if kind not in _KIND_NAMES:  # a type this reader does not know: KFP judges it
            typed[name] = value
            continue
        try:
            typed[name] = _from_text(kind, value) if isinstance(value, str) else value
            if not _is_kind(kind, typed[name]):
                raise ValueError
            if kind == "NUMBER_DOUBLE" and not math.isfinite(typed[name]):
                raise ValueError
        except (ValueError, LookupError, json.JSONDecodeError):
            raise errors.ConfigError(
                f"{pipeline} takes {name} as {_KIND_NAMES[kind]} ({kind}), got {value!r}"
            ) from None
    return typed


def read_package(path: pathlib.Path) -> tuple[str, set[str], str]:
    """(pipeline name, parameter names, version name) of a compiled pipeline YAML.

    The version name is the package version plus a content hash, so the same YAML maps to the
    same version and any change makes a new one.
    """
    raw = pathlib.Path(path).read_bytes()
    spec = next(yaml.safe_load_all(raw))  # a second document holds the platform (k8s) spec
    name = spec["pipelineInfo"]["name"]
    inputs = set(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))
    return name, inputs, f"{__version__}-{hashlib.sha256(raw).hexdigest()[:12]}"


def package_kinds(path: pathlib.Path) -> dict[str, str]:
    """Parameter name -> KFP parameterType (STRING, NUMBER_INTEGER, ...) of a compiled pipeline."""
    spec = next(yaml.safe_load_all(pathlib.Path(path).read_bytes()))
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {k: v.get("parameterType", "") for k, v in parameters.items()}


def package_defaults(path: pathlib.Path) -> dict[str, Any]:
    """Parameter name -> default value of a compiled pipeline (parameters without one omitted)."""
    spec = next(yaml.safe_load_all(pathlib.Path(path).read_bytes()))
    parameters = spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    return {k: v["defaultValue"] for k, v in parameters.items() if "defaultValue" in v}


def check_store(params: Mapping[str, Any], defaults: Mapping[str, Any], allow_local: bool) -> None:
    """Refuses a run whose store_uri is a path: each KFP step would write it in its own pod.

    Raises:
        ConfigError: store_uri is not object storage and allow_local is False.
    """
    if "store_uri" not in params and "store_uri" not in defaults:
        return
    uri = str(params.get("store_uri", defaults.get("store_uri")))
    if not cluster.is_object_store(uri) and not allow_local:
        raise errors.ConfigError(
            f"store_uri {uri!r} is not object storage: on KFP every step would write it inside "
            "its own pod, where it vanishes; pass --param store_uri=s3://BUCKET/PREFIX (or "
            "--allow-local-store when every step mounts one shared volume at that path)"
        )


def check_reachable(host: str, timeout: float = 5.0) -> None:
    """Fails fast with one clear line when nothing answers at host (any HTTP answer is fine).

    Raises:
        ConfigError: connection refused, unknown host, or timeout.
    """
    try:
        urllib.request.urlopen(host.rstrip("/") + HEALTHZ, timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # something answered (perhaps an auth proxy): reachable
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise errors.ConfigError(
            f"cannot reach Kubeflow Pipelines at {host}: {reason} (is the host right? on kind: "
            "kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80)"
        ) from e


def _pipeline_and_version(client, config: SubmitConfig, name: str, version_name: str):
    """Uploads the pipeline, or a new version of it; reuses a version of identical content."""
    package = str(config.package)
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(package, pipeline_name=name, namespace=config.namespace)
        pipeline_id = pipeline.pipeline_id
    versions = client.list_pipeline_versions(pipeline_id, page_size=100).pipeline_versions or []
    for version in versions:
        if version.display_name == version_name:
            return pipeline_id, version.pipeline_version_id
    version = client.upload_pipeline_version(
        package, pipeline_version_name=version_name, pipeline_id=pipeline_id
    )
    return pipeline_id, version.pipeline_version_id


def submit(config: SubmitConfig, client_factory: Callable[..., Any] | None = None) -> SubmitResult:
    """Uploads the package (or a new version) and starts a run, or a recurring run on schedule.

    Raises:
        ConfigError: host unreachable, a parameter the pipeline does not take, or a store that
            is not object storage.
        PipelineFailed: the KFP API refused a request (its status and reason are in the message).
    """
    name, inputs, version_name = read_package(config.package)
    unknown = sorted(set(config.params) - inputs)
    if unknown:
        raise errors.ConfigError(f"{name} has no parameter(s) {unknown}; it takes {sorted(inputs)}")
    params = typed_params(name, config.params, package_kinds(config.package))
    config = dataclasses.replace(config, params=params)
    check_store(config.params, package_defaults(config.package), config.allow_local_store)
    check_reachable(config.host)
    # Imported here, not at the top: `kfops --help` should not pay kfp's import time.
    if client_factory is None:
        import kfp

        client_factory = kfp.Client
    import kfp_server_api

    try:
        return _submit(client_factory, config, name, version_name)
    except kfp_server_api.ApiException as e:
        raise errors.PipelineFailed("submit", f"KFP API answered {e.status} {e.reason}") from e


def _wait(client, run_id: str, seconds: float) -> None:
    """Blocks until the run finishes; fails unless it SUCCEEDED."""
    try:
        run = client.wait_for_run_completion(run_id, timeout=seconds, sleep_duration=2)
    except TimeoutError as e:
        raise errors.PipelineFailed(
            "submit", f"run {run_id} not finished after {seconds:g}s"
        ) from e
    if (run.state or "").upper() != "SUCCEEDED":
        raise errors.PipelineFailed("submit", f"run {run_id} ended {run.state}")


def _submit(client_factory, config: SubmitConfig, name: str, version_name: str) -> SubmitResult:
    kwargs = {"host": config.host, "existing_token": config.token}
    if config.namespace:
        kwargs["namespace"] = config.namespace
    with warnings.catch_warnings():
        # kfp warns on every Client() that it needs a KFP >= 2.0 server; kind-up installs 2.x.
        warnings.filterwarnings("ignore", "This client only works", FutureWarning)
        client = client_factory(**kwargs)
    pipeline_id, version_id = _pipeline_and_version(client, config, name, version_name)
    experiment = client.create_experiment(config.experiment, namespace=config.namespace)
    common = {
        "experiment_id": experiment.experiment_id,
        "job_name": config.run_name or f"{name} {version_name}",
        "params": dict(config.params),
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "service_account": config.service_account,
    }
    run_id = recurring_id = None
    if config.schedule:
        recurring = client.create_recurring_run(
            cron_expression=config.schedule, max_concurrency=1, no_catchup=True, **common
        )
        recurring_id = recurring.recurring_run_id
        url = f"{config.host.rstrip('/')}/#/recurringrun/details/{recurring_id}"
    else:
        run_id = client.run_pipeline(**common).run_id
        url = f"{config.host.rstrip('/')}/#/runs/details/{run_id}"
        if config.wait_seconds:
            _wait(client, run_id, config.wait_seconds)
    return SubmitResult(
        pipeline_id, version_id, version_name, experiment.experiment_id, run_id, recurring_id, url
    )

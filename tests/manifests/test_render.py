import base64
import re
import shutil
import subprocess

import pytest
import yaml

from kfops import __version__, cli, cluster, errors
from tests.manifests import conftest

CORE_SECURITY = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _server_container(obj: dict) -> dict:
    spec = (
        obj["spec"]["template"]["spec"] if obj["kind"] == "Deployment" else obj["spec"]["predictor"]
    )
    return spec["containers"][0]


@pytest.mark.parametrize("target", sorted(conftest.TARGETS))
def test_manifests_render_every_target(objects, target):
    assert objects[target], f"{target} rendered no objects"
    namespaced = [o for o in objects[target] if o["kind"] != "Namespace"]
    assert all(o["metadata"].get("namespace") for o in namespaced), "an object has no namespace"


def test_manifests_base_image_tag_is_package_version():
    kustomization = yaml.safe_load(
        (conftest.ROOT / "manifests/base/kustomization.yaml").read_text()
    )
    assert kustomization["images"] == [{"name": "ghcr.io/kfops/kfops", "newTag": __version__}]


@pytest.mark.parametrize("target", ["base", "kind", "production"])
def test_manifests_server_runs_kfops_serve_with_model_from_configmap(objects, target):
    deployment = conftest.find(objects[target], "Deployment", "kfops-server")
    container = _server_container(deployment)
    assert container["image"] == f"ghcr.io/kfops/kfops:{__version__}"
    assert container["command"] == ["kfops"]
    assert container["args"][:2] == ["serve", "--store"]
    cm_name = container["envFrom"][0]["configMapRef"]["name"]
    configmap = conftest.find(objects[target], "ConfigMap", cm_name)
    assert set(configmap["data"]) == set(cluster.SERVER_CONFIG_KEYS)


@pytest.mark.parametrize("target", ["base", "kind", "production", "kserve"])
def test_manifests_server_args_use_exactly_the_configmap_keys(objects, target):
    """The kubelet leaves an unknown $(VAR) as literal text: a key misspelt in the args would be
    served as that text, so the args name exactly cluster.SERVER_CONFIG_KEYS."""
    kind = "InferenceService" if target == "kserve" else "Deployment"
    container = _server_container(conftest.find(objects[target], kind, "kfops-server"))
    refs = {m for a in container["args"] for m in re.findall(r"\$\((\w+)\)", a)}
    assert refs == set(cluster.SERVER_CONFIG_KEYS)
    assert container["envFrom"][0]["configMapRef"]["name"].startswith(cluster.SERVER_CONFIGMAP)


@pytest.mark.parametrize("target", ["base", "kind", "production", "kserve"])
def test_manifests_server_container_is_locked_down(objects, target):
    kind = "InferenceService" if target == "kserve" else "Deployment"
    container = _server_container(conftest.find(objects[target], kind, "kfops-server"))
    assert CORE_SECURITY.items() <= container["securityContext"].items()
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_manifests_server_service_account_mounts_no_token(objects):
    sa = conftest.find(objects["base"], "ServiceAccount", "kfops-server")
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize(
    "kind", ["PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"]
)
def test_manifests_base_has_availability_and_network_objects(objects, kind):
    assert conftest.find(objects["base"], kind, "kfops-server")


def test_manifests_kind_adds_minio_nodeport_and_local_image(objects):
    objs = objects["kind"]
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        conftest.find(objs, kind, "minio")
    conftest.find(objs, "PersistentVolumeClaim", "minio-data")
    service = conftest.find(objs, "Service", "kfops-server")
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["nodePort"] == 30080
    server = _server_container(conftest.find(objs, "Deployment", "kfops-server"))
    assert server["imagePullPolicy"] == "IfNotPresent"


def test_manifests_kind_secret_comes_from_env_file_and_reaches_server(objects, manifests_copy):
    objs = objects["kind"]
    secret = next(o for o in objs if o["kind"] == "Secret")
    env = cluster.read_env_file(manifests_copy / cluster.ENV_FILES[0])
    assert base64.b64decode(secret["data"]["MINIO_SECRET_KEY"]).decode() == env["MINIO_SECRET_KEY"]
    server = _server_container(conftest.find(objs, "Deployment", "kfops-server"))
    assert server["envFrom"][1]["secretRef"]["name"] == secret["metadata"]["name"]


def test_manifests_kserve_replaces_deployment_with_inferenceservice(objects):
    objs = objects["kserve"]
    assert {o["kind"] for o in objs} == {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "NetworkPolicy",
        "InferenceService",
    }
    isvc = conftest.find(objs, "InferenceService", "kfops-server")
    container = _server_container(isvc)
    assert container["image"] == f"ghcr.io/kfops/kfops:{__version__}"
    configmap_name = container["envFrom"][0]["configMapRef"]["name"]
    assert conftest.find(objs, "ConfigMap", configmap_name)


def test_manifests_kserve_reads_the_one_storage_secret(objects):
    objs = objects["kserve"]
    [secret] = [o for o in objs if o["kind"] == "Secret"]
    assert secret["metadata"]["name"].startswith(cluster.STORE_SECRET + "-")
    assert set(secret["data"]) == set(cluster.STORE_SECRET_KEYS)
    container = _server_container(conftest.find(objs, "InferenceService", "kfops-server"))
    assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"]


def test_manifests_production_requires_the_credentials_secret(objects):
    server = _server_container(conftest.find(objects["production"], "Deployment", "kfops-server"))
    assert server["envFrom"][1]["secretRef"] == {"name": "kfops-minio", "optional": False}
    assert not [o for o in objects["production"] if o["kind"] == "Secret"]


def test_manifests_deployer_role_grants_only_reads_and_patches(objects):
    role = conftest.find(objects["deployer"], "Role", "kfops-deployer")
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    assert verbs == {"get", "create", "patch"}
    assert all("*" not in rule["resources"] for rule in role["rules"])
    binding = conftest.find(objects["deployer"], "RoleBinding", "kfops-deployer")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kfops-deployer", "namespace": "kubeflow"}
    ]


def test_manifests_commit_no_env_files():
    for rel in cluster.ENV_FILES:
        path = conftest.ROOT / "manifests" / rel
        gitignore = path.parent / ".gitignore"
        assert path.name in gitignore.read_text().split()
        assert (path.parent / (path.name + ".example")).is_file()


def test_manifests_render_on_a_fresh_clone_after_one_command(tmp_path, capsys):
    """Tracked files only (a clone has no env file): one clear line, the one command, then all."""
    tracked = subprocess.run(
        ["git", "-C", str(conftest.ROOT), "ls-files", "manifests"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for rel in tracked:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(conftest.ROOT / rel, tmp_path / rel)
    clone = tmp_path / "manifests"
    argv = ["deploy", "--overlay", "kind", "--dry-run", "--manifests", str(clone)]
    assert cli.main([*argv, "--kubectl", str(conftest.KUBECTL)]) == errors.ConfigError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"run `{cluster.ENV_COMMAND}`" in err
    makefile = (conftest.ROOT / "Makefile").read_text()
    assert "cluster-env: install\n\t$(BIN)/python -m kfops.cluster env-files" in makefile
    conftest.write_env_files(clone)  # what `make cluster-env` runs
    for rel in conftest.TARGETS.values():
        assert conftest.render(clone / rel)
    assert cli.main([*argv, "--kubectl", str(conftest.KUBECTL)]) == 0
    rendered = list(yaml.safe_load_all(capsys.readouterr().out))
    configmap = next(
        o for o in rendered if o["kind"] == "ConfigMap" and "kfops-model" in o["metadata"]["name"]
    )
    assert configmap["data"][cluster.MODEL_VERSION_KEY] == ""

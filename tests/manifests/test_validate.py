import copy
import json

import jsonschema
import kubernetes_validate
import pytest
import referencing
from kubernetes_validate import utils as kv_utils

from tests.manifests import conftest

K8S_VERSION = "1.30.0"
# ServiceMonitor, PodMonitor and PrometheusRule: checked by promtool, test_monitoring.py and
# test_scrape.py (selectors, port names, NetworkPolicy).
CRD_KINDS = {"InferenceService", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
SCHEMA_PATH = conftest.ROOT / "manifests/schemas/inferenceservice-v1beta1.schema.json"


def _isvc_validator() -> jsonschema.Draft202012Validator:
    """The InferenceService schema; core types resolve to kubernetes-validate's strict set."""
    version = kv_utils.latest_version()
    defs = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{version}-local-strict/_definitions.json", version
    )
    registry = referencing.Resource.from_contents(defs) @ referencing.Registry()
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()), registry=registry)


def _isvc(objects) -> dict:
    return conftest.find(objects["kserve"], "InferenceService", "kfops-server")


@pytest.mark.parametrize("target", sorted(conftest.TARGETS))
def test_manifests_core_objects_pass_strict_validation(objects, target):
    core = [o for o in objects[target] if o["kind"] not in CRD_KINDS]
    for obj in core:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_manifests_strict_validation_rejects_unknown_field(objects):
    deployment = copy.deepcopy(conftest.find(objects["base"], "Deployment", "kfops-server"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kv_utils.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_manifests_every_crd_object_has_a_schema(objects):
    kinds = {o["kind"] for objs in objects.values() for o in objs}
    known = {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "Namespace",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "CronJob",
    }
    assert kinds - known <= CRD_KINDS, "a new custom resource kind needs a schema check"


def test_manifests_inferenceservice_matches_its_schema(objects):
    _isvc_validator().validate(_isvc(objects))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("spec", "predictor", "canaryTrafficPercent"), 150),
        (("spec", "predictor", "containers", 0, "imagePullPolcy"), "Always"),
        (("spec", "predictor", "minReplica"), 1),
        (("spec", "predictor", "scaleMetric"), "latency"),
        (("apiVersion",), "serving.kserve.io/v1alpha2"),
    ],
)
def test_manifests_inferenceservice_schema_rejects_bad_field(objects, path, value):
    isvc = copy.deepcopy(_isvc(objects))
    node = isvc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        _isvc_validator().validate(isvc)


def test_manifests_inferenceservice_schema_accepts_canary_percent(objects):
    isvc = copy.deepcopy(_isvc(objects))
    isvc["spec"]["predictor"]["canaryTrafficPercent"] = 10
    _isvc_validator().validate(isvc)

"""Knative's autoscaler can read the KServe predictor pods' load, so the KPA can add pods.

Knative's autoscaler (Deployment `autoscaler`, namespace knative-serving) scrapes each revision
pod's queue-proxy on 9090 (knative/serving pkg/autoscaler/metrics/stats_scraper.go: direct
http://<pod IP>:9090/metrics, falling back to the revision's private Service on 9090, which
reaches the same pod port). The KServe overlay's NetworkPolicy selects the predictor pods; if it
does not admit that port from knative-serving, the KPA gets no concurrency figures and never
scales beyond minReplicas. The pod and the NetworkPolicy semantics are test_scrape's.
"""

import copy

from tests.manifests import test_scrape

KNATIVE_SERVING = {"kubernetes.io/metadata.name": "knative-serving"}
AUTOSCALER_POD = {"app": "autoscaler"}  # knative/serving config/core/deployments/autoscaler.yaml
AUTOSCALER_PORT = 9090  # networking.AutoscalingQueueMetricsPort


def _autoscaler_admitted(overlay: list[dict]) -> bool:
    [pod], _ = test_scrape.cluster(overlay)
    policies = [o for o in overlay if o["kind"] == "NetworkPolicy"]
    return test_scrape.admitted(
        policies, pod, AUTOSCALER_PORT, source_namespace=KNATIVE_SERVING, source_pod=AUTOSCALER_POD
    )


def test_kserve_network_policy_admits_knatives_autoscaler_on_queue_proxys_metrics_port(objects):
    assert _autoscaler_admitted(objects["kserve"])


def test_only_knative_serving_gets_queue_proxys_autoscaling_port(objects):
    [pod], _ = test_scrape.cluster(objects["kserve"])
    policies = [o for o in objects["kserve"] if o["kind"] == "NetworkPolicy"]
    assert not test_scrape.admitted(policies, pod, AUTOSCALER_PORT)  # not from monitoring


def test_the_check_fails_without_the_rule(objects):
    overlay = copy.deepcopy(objects["kserve"])
    [policy] = [o for o in overlay if o["kind"] == "NetworkPolicy"]
    policy["spec"]["ingress"] = [
        r for r in policy["spec"]["ingress"] if {"port": 9090, "protocol": "TCP"} not in r["ports"]
    ]
    assert not _autoscaler_admitted(overlay)

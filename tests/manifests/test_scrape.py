"""Every serving overlay's server pods are scraped by Prometheus, once each.

For each overlay as rendered (`kubectl kustomize`), the server's pods are derived as the cluster
would run them; some monitor in manifests/monitoring must select each pod (ServiceMonitor -> Service
-> pod, or PodMonitor -> pod) on a port the pod declares by that name, and the overlay's
NetworkPolicy must admit Prometheus's namespace on that port. The selection, port and NetworkPolicy
rules below follow the upstream semantics cited at each function; the mutation tests at the end
show the check failing on a wrong label, a wrong port name and a port the policy does not admit.
"""

import copy
import dataclasses

import pytest

SERVING = ["base", "kind", "production", "kserve"]
SERVER = "kfops-server"
# Where Prometheus runs: the namespace's automatic kubernetes.io/metadata.name label (Kubernetes
# >= 1.22) and kube-prometheus-stack's pod label.
PROMETHEUS_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}
MONITORING = {"matchLabels": PROMETHEUS_NAMESPACE}


@dataclasses.dataclass
class Pod:
    namespace: str
    labels: dict
    annotations: dict
    containers: list


@dataclasses.dataclass
class Target:
    pod: Pod
    port: int
    path: str
    monitor: str


def _selects(selector: dict | None, labels: dict) -> bool:
    """metav1.LabelSelector: matchLabels and every matchExpression; empty selects all."""
    selector = selector or {}
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def _knative_pod(isvc: dict) -> Pod:
    """The predictor pod KServe (Serverless mode) and Knative make from the InferenceService.

    Labels: KServe unions the InferenceService's labels, spec.predictor.labels and
    serving.kserve.io/inferenceservice=<name>, component=predictor (kserve/kserve
    pkg/controller/v1beta1/inferenceservice/components/predictor.go); Knative adds its revision
    labels (knative/serving pkg/reconciler/revision/resources/meta.go makeLabels). Annotations:
    spec.predictor.annotations (same predictor.go). Ports: Knative gives the serving container one
    port named user-port with the number of the first port declared (revision/resources/deploy.go
    getUserPort, buildContainerPorts); queue-proxy's ports are left out: nothing here scrapes them.
    """
    predictor = isvc["spec"]["predictor"]
    name = isvc["metadata"]["name"]
    labels = {
        **isvc["metadata"].get("labels", {}),
        **predictor.get("labels", {}),
        "serving.kserve.io/inferenceservice": name,
        "component": "predictor",
        "serving.knative.dev/revision": f"{name}-predictor-00001",
        "serving.knative.dev/revisionUID": "00000000-0000-0000-0000-000000000001",
        "serving.knative.dev/service": f"{name}-predictor",
    }
    containers = copy.deepcopy(predictor["containers"])
    declared = containers[0].get("ports", [])
    number = declared[0]["containerPort"] if declared else 8080
    containers[0]["ports"] = [{"name": "user-port", "containerPort": number, "protocol": "TCP"}]
    return Pod(
        isvc["metadata"]["namespace"], labels, dict(predictor.get("annotations", {})), containers
    )


def _knative_private_service(pod: Pod) -> dict:
    """The revision's private Service Knative makes: the revision's labels, port `http` to
    queue-proxy's 8012 (knative/serving pkg/reconciler/serverlessservice/resources/services.go)."""
    return {
        "kind": "Service",
        "metadata": {
            "name": pod.labels["serving.knative.dev/revision"] + "-private",
            "namespace": pod.namespace,
            "labels": {**pod.labels, "networking.internal.knative.dev/serviceType": "Private"},
        },
        "spec": {
            "selector": {
                "serving.knative.dev/revisionUID": pod.labels["serving.knative.dev/revisionUID"]
            },
            "ports": [{"name": "http", "port": 80, "targetPort": 8012}],
        },
    }


def cluster(objs: list[dict]) -> tuple[list[Pod], list[dict]]:
    """The server's pods and the Services next to them, as the cluster runs the overlay."""
    pods, services = [], [o for o in objs if o["kind"] == "Service"]
    for obj in objs:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == SERVER:
            template = obj["spec"]["template"]
            pods.append(
                Pod(
                    obj["metadata"]["namespace"],
                    template["metadata"].get("labels", {}),
                    template["metadata"].get("annotations", {}),
                    template["spec"]["containers"],
                )
            )
        elif obj["kind"] == "InferenceService" and obj["metadata"]["name"] == SERVER:
            pod = _knative_pod(obj)
            pods.append(pod)
            services.append(_knative_private_service(pod))
    return pods, services


def _watches(monitor: dict, namespace: str) -> bool:
    """prometheus-operator: no namespaceSelector = the monitor's own namespace; any; matchNames."""
    selector = monitor["spec"].get("namespaceSelector")
    if not selector:
        return monitor["metadata"]["namespace"] == namespace
    return bool(selector.get("any")) or namespace in selector.get("matchNames", [])


def _named_ports(pod: Pod, name: str) -> list[int]:
    return [
        p["containerPort"]
        for c in pod.containers
        for p in c.get("ports", [])
        if p.get("name") == name
    ]


def targets(monitors: list[dict], pods: list[Pod], services: list[dict]) -> list[Target]:
    """What the operator's scrape configs would scrape among these pods.

    PodMonitor: podMetricsEndpoints[].port is a container port NAME; a pod without it yields no
    target (prometheus-operator PodMetricsEndpoint.port). ServiceMonitor: endpoints[].port names a
    Service port; its targetPort, a container port name or a number, picks the pod's port.
    """
    found = []
    for monitor in monitors:
        name = f"{monitor['kind']}/{monitor['metadata']['name']}"
        if monitor["kind"] == "PodMonitor":
            for pod in pods:
                if not (
                    _watches(monitor, pod.namespace)
                    and _selects(monitor["spec"]["selector"], pod.labels)
                ):
                    continue
                for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                    for number in _named_ports(pod, endpoint["port"]):
                        found.append(Target(pod, number, endpoint.get("path", "/metrics"), name))
        elif monitor["kind"] == "ServiceMonitor":
            for service in services:
                meta = service["metadata"]
                if _watches(monitor, meta["namespace"]) and _selects(
                    monitor["spec"]["selector"], meta.get("labels", {})
                ):
                    found.extend(_service_targets(monitor, name, service, pods))
    return found


def _service_targets(monitor: dict, name: str, service: dict, pods: list[Pod]) -> list[Target]:
    """A selected Service's endpoints: its pods (spec.selector), on each named port's targetPort."""
    selector = service["spec"].get("selector")
    backed = [
        pod
        for pod in pods
        if selector
        and pod.namespace == service["metadata"]["namespace"]
        and selector.items() <= pod.labels.items()
    ]
    found = []
    for endpoint in monitor["spec"]["endpoints"]:
        path = endpoint.get("path", "/metrics")
        for port in service["spec"]["ports"]:
            if port.get("name") != endpoint["port"]:
                continue
            target_port = port.get("targetPort", port["port"])
            for pod in backed:
                if isinstance(target_port, str):
                    numbers = _named_ports(pod, target_port)
                else:
                    numbers = [target_port]
                found.extend(Target(pod, n, path, name) for n in numbers)
    return found


def admitted(
    policies: list[dict],
    pod: Pod,
    number: int,
    source_namespace: dict = PROMETHEUS_NAMESPACE,
    source_pod: dict = PROMETHEUS_POD,
) -> bool:
    """networking.k8s.io/v1 NetworkPolicy: ingress to the pod on TCP `number` from a source pod
    (labels `source_pod`, in the namespace labelled `source_namespace`; default: Prometheus).

    No policy selecting the pod for Ingress: allowed. Otherwise some rule must match: its ports
    empty or one matching (by number, or by a name the pod gives that number; endPort ranges),
    and its `from` empty or a peer selecting Prometheus (namespaceSelector alone: any pod in a
    matching namespace; podSelector alone: the policy's own namespace; both: both). ipBlock: not
    matched.
    """
    names = {
        p.get("name")
        for c in pod.containers
        for p in c.get("ports", [])
        if p["containerPort"] == number
    }
    applying = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and _selects(p["spec"]["podSelector"], pod.labels)
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not applying:
        return True

    def port_ok(rule):
        for p in rule.get("ports") or [{}]:
            if p.get("protocol", "TCP") != "TCP":
                continue
            want = p.get("port")
            if want is None or want == number or want in names:
                return True
            if isinstance(want, int) and want <= number <= p.get("endPort", want):
                return True
        return False

    def peer_ok(rule, policy_namespace):
        peers = rule.get("from")
        if not peers:
            return True
        for peer in peers:
            if "ipBlock" in peer:
                continue
            ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
            in_ns = (
                _selects(ns_sel, source_namespace)
                if ns_sel is not None
                else source_namespace["kubernetes.io/metadata.name"] == policy_namespace
            )
            if in_ns and (pod_sel is None or _selects(pod_sel, source_pod)):
                return True
        return False

    return any(
        port_ok(rule) and peer_ok(rule, policy["metadata"]["namespace"])
        for policy in applying
        for rule in policy["spec"].get("ingress", [])
    )


def _server_port(pod: Pod) -> int:
    args = pod.containers[0]["args"]
    return int(args[args.index("--port") + 1])


def problems(monitoring: list[dict], overlay: list[dict]) -> list[str]:
    """Every way the overlay's server pods fail to be scraped once, on /metrics of the server."""
    pods, services = cluster(overlay)
    monitors = [o for o in monitoring if o["kind"] in ("ServiceMonitor", "PodMonitor")]
    policies = [o for o in overlay if o["kind"] == "NetworkPolicy"]
    found = targets(monitors, pods, services)
    out = [] if pods else ["no server pod"]
    for i, pod in enumerate(pods):
        mine = [t for t in found if t.pod is pod]
        if len(mine) != 1:
            scraped = [(t.monitor, t.port) for t in mine]
            out.append(f"pod {i}: scraped by {scraped}, not exactly once")
            continue
        [target] = mine
        if target.port != _server_port(pod) or target.path != "/metrics":
            out.append(f"pod {i}: scraped on {target.port}{target.path}, not the server's /metrics")
        if not admitted(policies, pod, target.port):
            out.append(f"pod {i}: the NetworkPolicy does not admit Prometheus on {target.port}")
        # The same port for a Prometheus that discovers pods by annotation.
        ann = pod.annotations
        declared = (ann.get("prometheus.io/scrape"), ann.get("prometheus.io/port"))
        if declared != ("true", str(target.port)):
            out.append(f"pod {i}: prometheus.io annotations {ann} do not name port {target.port}")
    return out


@pytest.mark.parametrize("overlay", SERVING)
def test_scrape_every_server_pod_once_on_a_declared_admitted_port(objects, overlay):
    assert problems(objects["monitoring"], objects[overlay]) == []


def test_scrape_kserve_pod_is_found_by_the_pod_monitor_on_knatives_port_name(objects):
    pods, services = cluster(objects["kserve"])
    monitors = [o for o in objects["monitoring"] if o["kind"] in ("ServiceMonitor", "PodMonitor")]
    [target] = targets(monitors, pods, services)
    assert target.monitor == "PodMonitor/kfops-server-kserve" and target.port == 8080


def _mutated(objects, target: str, kind: str, edit) -> list[dict]:
    objs = copy.deepcopy(objects[target])
    [obj] = [o for o in objs if o["kind"] == kind]
    edit(obj)
    return objs


def test_scrape_check_fails_on_a_label_kserve_does_not_put_on_the_pod(objects):
    def edit(pm):
        pm["spec"]["selector"]["matchLabels"] = {"app": SERVER}

    monitoring = _mutated(objects, "monitoring", "PodMonitor", edit)
    assert "not exactly once" in " ".join(problems(monitoring, objects["kserve"]))


def test_scrape_check_fails_on_the_port_name_the_inferenceservice_declares(objects):
    # http1 is the InferenceService's name for the port; Knative names the pod's port user-port.
    def edit(pm):
        pm["spec"]["podMetricsEndpoints"][0]["port"] = "http1"

    monitoring = _mutated(objects, "monitoring", "PodMonitor", edit)
    assert "not exactly once" in " ".join(problems(monitoring, objects["kserve"]))


@pytest.mark.parametrize("overlay", ["kserve", "base"])
def test_scrape_check_fails_when_the_network_policy_does_not_admit_the_port(objects, overlay):
    def edit(policy):
        policy["spec"]["ingress"][0]["ports"] = [
            p for p in policy["spec"]["ingress"][0]["ports"] if p["port"] != 8080
        ] or [{"port": 8012, "protocol": "TCP"}]

    broken = _mutated(objects, overlay, "NetworkPolicy", edit)
    assert "does not admit" in " ".join(problems(objects["monitoring"], broken))


def test_scrape_check_fails_when_the_policy_admits_only_another_namespace(objects):
    def edit(policy):
        policy["spec"]["ingress"][0]["from"] = [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}
        ]

    broken = _mutated(objects, "kserve", "NetworkPolicy", edit)
    assert "does not admit" in " ".join(problems(objects["monitoring"], broken))
    # Admitting the monitoring namespace alone is enough.
    edit_ok = _mutated(
        objects,
        "kserve",
        "NetworkPolicy",
        lambda p: p["spec"]["ingress"][0].__setitem__("from", [{"namespaceSelector": MONITORING}]),
    )
    assert problems(objects["monitoring"], edit_ok) == []


def test_scrape_check_fails_when_the_service_monitor_also_selects_knatives_services(objects):
    def edit(sm):
        del sm["spec"]["selector"]["matchExpressions"]

    monitoring = _mutated(objects, "monitoring", "ServiceMonitor", edit)
    assert "not exactly once" in " ".join(problems(monitoring, objects["kserve"]))
    # The plain Deployment is still scraped once: the exclusion only concerns KServe's Services.
    assert problems(monitoring, objects["base"]) == []


def test_scrape_check_fails_on_a_wrong_service_monitor_port_name(objects):
    def edit(sm):
        sm["spec"]["endpoints"][0]["port"] = "metrics"

    monitoring = _mutated(objects, "monitoring", "ServiceMonitor", edit)
    assert "not exactly once" in " ".join(problems(monitoring, objects["production"]))


def test_scrape_check_fails_when_the_predictor_annotations_name_queue_proxys_port(objects):
    def edit(isvc):
        isvc["spec"]["predictor"]["annotations"]["prometheus.io/port"] = "9088"

    broken = _mutated(objects, "kserve", "InferenceService", edit)
    assert "annotations" in " ".join(problems(objects["monitoring"], broken))

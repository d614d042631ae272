"""The rendered server Deployment, run by an independent Kubernetes YAML consumer (podman).

The kind overlay is rendered (its Secret from an env file with the test store's keys, as `make
cluster-env` writes one), and the Deployment, its ConfigMap and its Secret are handed to podman
as they are: envFrom configMapRef/secretRef, read-only root filesystem, user 10001, all
capabilities dropped, no privilege escalation, resource limits, the emptyDir on /tmp, the image and
its pull policy. The pod reaches the SeaweedFS server on the host's loopback through slirp4netns
(10.0.2.2 is the host's 127.0.0.1 as the pod sees it), serves the champion, answers a V2
prediction and follows a new champion; a Secret with a wrong key keeps it from ever being ready.

What podman 4.3 (Debian bookworm) does not do, and how it is checked instead:
- A `kind: Secret` document is stored as a podman secret in YAML, but envFrom secretRef reads a
  podman secret as a JSON map of base64 values (and, the reference being optional, silently gives
  no variables). The rendered Secret's `data` map is that JSON: it is created with
  `podman secret create` under the rendered (hash-suffixed) name, and the Deployment's envFrom
  reads it; the keys are the Secret's own, so a wrong key still reaches the pod wrong.
- $(VAR) in command/args is not expanded (the kubelet expands it): expanded here with the
  kubelet's rules from the same ConfigMap and Secret (tests/manifests/kubelet.py), and
  tests/manifests/test_contract.py checks every $(VAR) resolves.
- readinessProbe is ignored, and the livenessProbe becomes a healthcheck that needs systemd timers
  and does not resolve the named port `http` (it probes port 0): this test GETs both probes' paths
  on the port the name resolves to, and requires both to answer 200.
- containerPort is published on the same host port: a free hostPort is set so that runs do not
  collide.
- runAsNonRoot is not enforced by podman: the user (10001) is read from the running container.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid

import httpx
import pandas as pd
import pytest
import yaml

from kfops import cluster, deploy, registry
from tests.kfops.serving import factories
from tests.manifests import conftest, kubelet
from tests.manifests import test_rendered_server as rendered

pytestmark = pytest.mark.container
HOST_FROM_POD = "10.0.2.2"  # slirp4netns with allow_host_loopback: the host's 127.0.0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pod_objects(objects: list[dict], host_port: int) -> tuple[list[dict], dict]:
    """The server Deployment with its ConfigMap and Secret, as podman gets them; and the container.

    Changed, and only because podman needs it: $(VAR) expanded (podman does not) and a hostPort.
    """
    deployment = conftest.find(objects, "Deployment", deploy.SERVER)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    refs = {
        (kind, source[field]["name"])
        for source in container["envFrom"]
        for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef"))
        if field in source
    }
    env = kubelet.container_env(container, objects)
    container["command"] = [kubelet.expand(w, env) for w in container["command"]]
    container["args"] = [kubelet.expand(w, env) for w in container["args"]]
    container["ports"][0]["hostPort"] = host_port
    kept = [o for o in objects if (o["kind"], o["metadata"]["name"]) in refs]
    assert len(kept) == len(refs), f"missing {refs}"
    return [*kept, deployment], container


def _secrets(kfops_image, tmp_path, docs: list[dict]) -> list[str]:
    """Creates each Secret document as the podman secret its envFrom reads; returns the names."""
    names = []
    for secret in (d for d in docs if d["kind"] == "Secret"):
        name = secret["metadata"]["name"]
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(secret["data"]))
        kfops_image.podman("secret", "rm", name, check=False)
        kfops_image.podman("secret", "create", name, str(path))
        path.unlink()
        names.append(name)
    return names


@contextlib.contextmanager
def played(kfops_image, tmp_path, docs: list[dict]):
    path = tmp_path / "pod.yaml"
    played_docs = [d for d in docs if d["kind"] != "Secret"]
    path.write_text(yaml.safe_dump_all(played_docs, sort_keys=False))
    kfops_image.podman("kube", "down", str(path), check=False)
    secrets = _secrets(kfops_image, tmp_path, docs)
    proc = kfops_image.podman(
        "kube", "play", "--network", "slirp4netns:allow_host_loopback=true", str(path), check=False
    )
    assert proc.returncode == 0, proc.stderr
    deployment = docs[-1]
    server = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    container = f"{deployment['metadata']['name']}-pod-0-{server}"  # podman's naming
    try:
        yield container
    finally:
        kfops_image.podman("kube", "down", str(path), check=False, timeout=120)
        for name in secrets:
            kfops_image.podman("secret", "rm", name, check=False)


def _logs(kfops_image, container: str) -> str:
    proc = kfops_image.podman("logs", container, check=False)
    return (proc.stdout + proc.stderr)[-3000:]


def _named_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p.get("name") == port)


def _probe_urls(container: dict, host_port: int) -> list[str]:
    """Both probes' paths; the port name resolves to the containerPort published on host_port."""
    urls = []
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert _named_port(container, get["port"]) == container["ports"][0]["containerPort"]
        urls.append(f"http://127.0.0.1:{host_port}{get['path']}")
    return urls


def _wait_ready(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        time.sleep(0.5)
    return False


def _store(s3_server, tmp_path):
    bucket = s3_server.make_bucket()
    reg = registry.Registry(s3_server.store(bucket, "store"))
    pipe, spec, _ = factories.classifier(c=1.0)
    return bucket, reg, factories.publish(reg, "churn", pipe, spec, tmp_path)


def test_kube_play_rendered_deployment_serves_v2_and_follows_the_champion(
    kfops_image, s3_server, tmp_path
):
    bucket, reg, v1 = _store(s3_server, tmp_path)
    endpoint = f"{HOST_FROM_POD}:{s3_server.endpoint.rsplit(':', 1)[1]}"
    env_file = rendered.store_env_file(s3_server.settings, endpoint)
    objects = rendered.render_kind_for_store(tmp_path, env_file, bucket, poll_seconds="1")
    host_port = _free_port()
    docs, container = pod_objects(objects, host_port)
    assert container["image"] == kfops_image.name
    assert container["imagePullPolicy"] == "IfNotPresent"
    ready_url, live_url = _probe_urls(container, host_port)
    url = f"http://127.0.0.1:{host_port}"
    with played(kfops_image, tmp_path, docs) as name:
        assert _wait_ready(ready_url, 120), _logs(kfops_image, name)
        assert httpx.get(live_url, timeout=2).status_code == 200
        inspect = json.loads(kfops_image.podman("inspect", name).stdout)[0]
        assert inspect["Config"]["User"] == "10001:10001"
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        assert inspect["EffectiveCaps"] in (None, [])
        assert "no-new-privileges" in inspect["HostConfig"]["SecurityOpt"]
        assert inspect["HostConfig"]["Memory"] == 1024**3
        env = dict(e.split("=", 1) for e in inspect["Config"]["Env"])
        assert {k: env[k] for k in cluster.STORE_SECRET_KEYS} == env_file  # from secretRef
        assert env["STORE_URI"] == f"s3://{bucket}/store"  # from configMapRef
        status = kfops_image.podman("exec", name, "cat", "/proc/1/status").stdout
        assert "\nSeccomp:\t2" in status, "RuntimeDefault seccomp filter not applied"
        rows = factories.instances(factories.frame(n=3, seed=1), 3)
        reply = httpx.post(
            f"{url}/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows)}, timeout=10
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert (body["model_name"], body["model_version"]) == ("churn", v1)
        pipe, _, _ = factories.classifier(c=1.0)
        labels = pipe.predict(pd.DataFrame(rows)).tolist()
        assert body["outputs"][0]["data"] == labels
        # A retrained champion is served by the running pod, with no deploy.
        pipe2, spec2, _ = factories.classifier(c=0.05)
        v2 = factories.publish(reg, "churn", pipe2, spec2, tmp_path)
        rendered.wait_for_version(url, v2, 30, lambda: _logs(kfops_image, name))


def test_kube_play_catches_a_wrong_secret_key(kfops_image, s3_server, tmp_path):
    bucket, _, _ = _store(s3_server, tmp_path)
    endpoint = f"{HOST_FROM_POD}:{s3_server.endpoint.rsplit(':', 1)[1]}"
    env_file = rendered.store_env_file(s3_server.settings, endpoint)
    env_file["accesskey"] = env_file.pop("MINIO_ACCESS_KEY")  # the issue-12 kind of key
    objects = rendered.render_kind_for_store(tmp_path, env_file, bucket, poll_seconds="1")
    host_port = _free_port()
    docs, container = pod_objects(objects, host_port)
    docs[-1]["metadata"]["name"] = f"kfops-bad-{uuid.uuid4().hex[:6]}"
    ready_url, _ = _probe_urls(container, host_port)
    with played(kfops_image, tmp_path, docs) as name:
        # Until the server has said what is wrong (on a loaded machine its start alone can take
        # longer than a fixed wait), it must never answer ready.
        deadline = time.monotonic() + 120
        while "MINIO_ACCESS_KEY" not in (logs := _logs(kfops_image, name)):
            assert time.monotonic() < deadline, logs
            assert not _wait_ready(ready_url, 2), "a server without its access key answered ready"
        assert not _wait_ready(ready_url, 5), "a server without its access key answered ready"

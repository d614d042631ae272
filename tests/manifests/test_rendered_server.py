"""The rendered server Deployment, started as its pod would start it, follows the champion.

The kind overlay is rendered with its Secret made from an env file holding the test store's keys
(as `make cluster-env` writes one), the kubelet's env and $(VAR) rules give the process its
environment and arguments, and a real `kfops serve` runs them against the SeaweedFS S3 server.
Only what a laptop cannot give a pod changes: the port (taken), POLL_SECONDS (30 s in the
manifests) and STORE_URI (a fresh bucket), both as a configMapGenerator merge would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time

import httpx
import pytest
import yaml

from kfops import cluster, deploy, registry
from tests.kfops.serving import factories
from tests.manifests import conftest, kubelet


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_env_file(settings, endpoint: str | None = None) -> dict[str, str]:
    """The env file `make cluster-env` would write, with this store's keys."""
    endpoint = endpoint or settings.endpoint
    return cluster.store_env(settings.access_key, settings.secret_key, endpoint)


def render_kind_for_store(tmp_path, env_file: dict, bucket: str, poll_seconds: str = "0.5") -> list:
    """The kind overlay, its Secret made from an env file with these lines."""
    root = tmp_path / "manifests"
    shutil.copytree(conftest.ROOT / "manifests", root, ignore=shutil.ignore_patterns("*.env"))
    text = "".join(f"{k}={v}\n" for k, v in env_file.items())
    for rel in cluster.ENV_FILES:
        (root / rel).write_text(text)
    objects = [o for o in yaml.safe_load_all(conftest.render(root / "overlays/kind")) if o]
    server = conftest.find(objects, "Deployment", deploy.SERVER)
    configmap = conftest.find(objects, "ConfigMap", deploy._configmap_ref(server))
    configmap["data"].update({"STORE_URI": f"s3://{bucket}/store", "POLL_SECONDS": poll_seconds})
    return objects


def server_container(objects: list[dict]) -> dict:
    deployment = conftest.find(objects, "Deployment", deploy.SERVER)
    return deployment["spec"]["template"]["spec"]["containers"][0]


def served_version(url: str) -> str | None:
    try:
        reply = httpx.get(f"{url}/v2/models/churn", timeout=2)
    except httpx.TransportError:
        return None
    return reply.json()["versions"][0] if reply.status_code == 200 else None


def wait_for_version(url: str, version: str, timeout: float, logs=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served_version(url) == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"server never served v{version} (serves {served_version(url)})\n{logs()}")


@contextlib.contextmanager
def running(words: list[str], env: dict[str, str], log_path):
    with open(log_path, "w") as log:
        proc = subprocess.Popen(words, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def rendered_server(tmp_path, s3_server, pin: str | None = None):
    """v1 registered and promoted, then the rendered server running; yields (url, registry, v1).

    `pin`: MODEL_VERSION as `kfops deploy --version` would set it ("v1" pins the first version).
    """
    bucket = s3_server.make_bucket()
    reg = registry.Registry(s3_server.store(bucket, "store"))
    pipe, spec, _ = factories.classifier(c=1.0)
    v1 = factories.publish(reg, "churn", pipe, spec, tmp_path)
    objects = render_kind_for_store(tmp_path, store_env_file(s3_server.settings), bucket)
    container = server_container(objects)
    env = kubelet.container_env(container, objects)
    assert env[cluster.MODEL_VERSION_KEY] == "", "the manifests must not pin a version"
    if pin:
        env[cluster.MODEL_VERSION_KEY] = v1
    port = free_port()
    words = kubelet.set_arg(kubelet.argv(container, env), "--port", str(port))
    assert words[0] == "kfops" and "$(" not in " ".join(words)
    words[0] = str(conftest.KUBECTL.parent / "kfops")  # the image's kfops, from this venv
    url, log = f"http://127.0.0.1:{port}", tmp_path / "server.log"
    with running(words, {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **env}, log):
        wait_for_version(url, v1, 60, log.read_text)
        yield url, reg, v1, log


def _push_v2(reg, tmp_path) -> str:
    """A retrained model pushed and made champion, as the pipeline's push step does."""
    pipe, spec, _ = factories.classifier(c=0.05)
    return factories.publish(reg, "churn", pipe, spec, tmp_path)


def test_rendered_server_serves_the_champion_and_follows_it(tmp_path, s3_server):
    with rendered_server(tmp_path, s3_server) as (url, reg, v1, log):
        v2 = _push_v2(reg, tmp_path)  # served with no deploy and no restart
        wait_for_version(url, v2, 20, log.read_text)
        assert reg.rollback("churn") == v1  # the pointer moves back: the server follows
        wait_for_version(url, v1, 20, log.read_text)


def test_rendered_server_with_a_pinned_version_does_not_follow(tmp_path, s3_server):
    with rendered_server(tmp_path, s3_server, pin="v1") as (url, reg, v1, _):
        _push_v2(reg, tmp_path)
        time.sleep(2)  # four polls of the follower, were it following
        assert served_version(url) == v1


def test_kubelet_expansion_leaves_unknown_variables_and_unescapes():
    env = {"A": "1"}
    assert kubelet.expand("$(A)-$(B)-$$(A)", env) == "1-$(B)-$(A)"


def test_kubelet_env_refuses_a_missing_secret_key(objects):
    objs = yaml.safe_load(yaml.safe_dump(objects["kind"]))
    minio = conftest.find(objs, "Deployment", "minio")
    container = minio["spec"]["template"]["spec"]["containers"][0]
    container["env"][1]["valueFrom"]["secretKeyRef"]["key"] = "accesskey"
    with pytest.raises(kubelet.MissingKey, match="has no key accesskey"):
        kubelet.container_env(container, objs)

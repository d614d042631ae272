"""The kfops image, for real: who it runs as, what it holds, and the server answering from it."""

import json
import socket
import tempfile
import time
import uuid

import httpx
import numpy as np
import pandas as pd
import pytest

from kfops import __version__, infra_validate, registry
from kfops.store import local
from tests.kfops.serving import factories

pytestmark = pytest.mark.container


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_runs_as_non_root_user(kfops_image):
    out = kfops_image.podman("run", "--rm", kfops_image.name, "id", "-u").stdout
    config = json.loads(kfops_image.podman("image", "inspect", kfops_image.name).stdout)[0][
        "Config"
    ]
    assert out.strip() == "10001"
    assert config["User"] == "10001:10001"


def test_image_holds_no_compiler(kfops_image):
    probe = "for c in gcc cc c++ g++ clang make ld; do command -v $c; done; true"
    found = kfops_image.podman("run", "--rm", kfops_image.name, "sh", "-c", probe).stdout
    assert found.split() == []


def test_image_has_kfops_with_serve_extra_and_kfp(kfops_image):
    code = (
        "import kfops, kfp, starlette, uvicorn, prometheus_client, orjson; print(kfops.__version__)"
    )
    out = kfops_image.podman("run", "--rm", kfops_image.name, "python3", "-c", code).stdout
    assert out.strip() == __version__


def test_image_carries_oci_labels(kfops_image):
    labels = json.loads(kfops_image.podman("image", "inspect", kfops_image.name).stdout)[0][
        "Labels"
    ]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.title"] == "kfops"
    assert labels["org.opencontainers.image.base.name"]


def test_image_is_visible_to_docker_clients_through_podman_socket(docker_client, kfops_image):
    tags = {tag for image in docker_client.images.list() for tag in image.tags}
    assert kfops_image.name in tags, "kfp.local.DockerRunner would try to pull it"


@pytest.fixture
def store_dir(tmp_path):
    """A local store with one registered churn classifier (made here, not downloaded)."""
    store = local.LocalStore(tmp_path / "store")
    pipe, spec, _ = factories.classifier()
    with tempfile.TemporaryDirectory() as work:
        factories.publish(registry.Registry(store), "churn", pipe, spec, work)
    # The container runs as uid 10001, as on the cluster (where fsGroup makes volumes readable).
    for path in [tmp_path / "store", *(tmp_path / "store").rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tmp_path / "store"


def _wait_ready(url: str, container: str, image) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    logs = image.podman("logs", container, check=False)
    raise AssertionError(
        f"server in container not ready:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}"
    )


def test_image_serves_v2_inference_as_on_the_cluster(kfops_image, store_dir):
    port, name = _free_port(), f"kfops-test-{uuid.uuid4().hex[:8]}"
    # Same constraints as manifests/base: read-only root, /tmp writable, no privileges, user 10001.
    kfops_image.podman(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-v",
        f"{store_dir}:/store:ro",
        kfops_image.name,
        "kfops",
        "serve",
        "--store",
        "/store",
        "--name",
        "churn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-sample-rate",
        "0",
        "--no-admin",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, name, kfops_image)
        rows = factories.instances(factories.frame(n=3, seed=1), 3)
        reply = httpx.post(
            f"{url}/v2/models/churn/infer", json={"inputs": factories.v2_inputs(rows)}
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["model_name"] == "churn"
        assert body["outputs"][0]["shape"][0] == 3
        # The image answers what the model answers in process: labels exactly, probabilities
        # within infra-validate's stated tolerance (V2 by default, V1 when asked).
        pipe, _, _ = factories.classifier()
        frame = pd.DataFrame(rows)
        labels, proba = pipe.predict(frame), pipe.predict_proba(frame)
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["predict"]["data"] == labels.tolist()
        assert outputs["predict_proba"]["shape"] == [3, 2]
        v2_proba = np.asarray(outputs["predict_proba"]["data"]).reshape(3, 2)
        tol = {"rtol": infra_validate.PROBA_RTOL, "atol": infra_validate.PROBA_ATOL}
        np.testing.assert_allclose(v2_proba, proba, **tol)
        v1 = httpx.post(
            f"{url}/v1/models/churn:predict",
            json={"instances": rows, "parameters": {"probabilities": True}},
        )
        assert v1.status_code == 200, v1.text
        assert v1.json()["predictions"] == labels.tolist()
        np.testing.assert_allclose(np.asarray(v1.json()["probabilities"]), proba, **tol)
    finally:
        kfops_image.podman("rm", "-f", "-t", "5", name, check=False, timeout=60)

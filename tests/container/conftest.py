"""Container fixtures: the kfops image built with podman (scripts/image-local.sh) and a Docker API.

`kfops_image` builds only when the image for the current sources is missing (the script caches by
source hash), then serves the Podman API on a private socket so Docker clients such as
`kfp.local.DockerRunner` can use it:

    def test_x(kfops_image):
        local.init(runner=local.DockerRunner(), ...)  # with DOCKER_HOST=kfops_image.docker_host
"""

import dataclasses
import os
import pathlib
import subprocess
import time

import docker
import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "image-local.sh"
STATE = ROOT / ".kfops" / "podman"
BUILD_TIMEOUT_S = 45 * 60


@dataclasses.dataclass(frozen=True)
class KfopsImage:
    """The built image and how to reach the container engine.

    Attributes:
        name: image reference, e.g. ghcr.io/kfops/kfops:0.1.0 (what KFOPS_IMAGE defaults to).
        docker_host: DOCKER_HOST value (unix socket of the Podman API service).
        env: environment for running `podman` directly (CONTAINERS_CONF set).
    """

    name: str
    docker_host: str
    env: dict

    def podman(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Runs `podman ARGS` with the project's containers.conf; returns the finished process."""
        return subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )


def _build() -> str:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "build"], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    assert proc.returncode == 0, f"image build failed:\n{proc.stderr[-4000:]}"
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return values["KFOPS_IMAGE"]


def _wait_answers(docker_host: str, service: subprocess.Popen, seconds: float = 60) -> None:
    """Until the API answers a ping: `kfops run --runner docker` pings once with a 10 s timeout,
    and on a loaded machine the service may still be starting when its socket appears."""
    deadline = time.monotonic() + seconds
    while True:
        assert service.poll() is None, "podman system service exited"
        try:
            client = docker.DockerClient(base_url=docker_host, timeout=10)  # asks the version
            try:
                client.ping()
                return
            finally:
                client.close()
        except (docker.errors.DockerException, requests.RequestException) as e:
            assert time.monotonic() < deadline, f"the Podman API does not answer: {e}"
            time.sleep(0.2)


@pytest.fixture(scope="session")
def kfops_image(tmp_path_factory):
    """Builds (if needed) the kfops image and serves the Podman API; yields a `KfopsImage`."""
    name = _build()
    env = {**os.environ, "CONTAINERS_CONF": str(STATE / "containers.conf")}
    socket = tmp_path_factory.mktemp("podman") / "podman.sock"
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    docker_host = f"unix://{socket}"
    deadline = time.monotonic() + 30
    while not socket.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert socket.exists(), "podman system service did not create its socket"
    _wait_answers(docker_host, service)
    try:
        yield KfopsImage(name=name, docker_host=docker_host, env=env)
    finally:
        service.terminate()
        service.wait(timeout=30)


@pytest.fixture(scope="session")
def docker_client(kfops_image):
    """A docker-py client talking to podman (what kfp.local.DockerRunner uses)."""
    client = docker.DockerClient(base_url=kfops_image.docker_host)
    yield client
    client.close()

"""Step containers for kfp.local's DockerRunner that report their real exit code and logs.

kfp 2.17 runs each step with `client.containers.run(..., detach=True, auto_remove=True)`, then
streams the logs and waits (kfp/local/docker_task_handler.py `run_docker_container`). With
auto-remove the container can be gone by the time the logs or the exit code are asked for; kfp
catches docker's NotFound for that and returns exit code 0, "assumed success". Against podman's
Docker API (`podman system service`, the engine this project uses) it is worse: an inspect of a
container that podman is removing answers 500 "container ... does not exist in database: no such
container" instead of Docker's 404 (podman issues #10225, #17341), which docker-py raises as a
plain APIError, so the step fails with a traceback. Measured here with podman 4.3.1: a container
running `sh -c "echo hi; exit 3"` came back from kfp's function as exit 0 in 8 of 10 runs (its
log line lost in 4), and raised the 500 in the other 2; under CPU load quick steps raised it in
4 of 40 runs, which is how the project's CI failed once.

`run_step_container` keeps the container until its logs are read and its exit code taken, then
removes it: the same command, volumes and run arguments, without the race. kfops.localrun puts it
in kfp's place for the duration of a docker run (`docker_steps_kept_until_read`).
"""

from __future__ import annotations

import contextlib
from typing import Any


def run_step_container(
    client: Any, image: str, command: list[str], volumes: dict[str, Any], **run_args: Any
) -> int:
    """Runs one step's container to the end; its output printed as it comes, its exit code."""
    import docker  # noqa: PLC0415  (only the docker runner needs it)

    image = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
    try:
        client.images.get(image)
        print(f"Found image {image!r}\n")  # the line kfp prints, kept for the run log's readers
    except docker.errors.ImageNotFound:
        print(f"Pulling image {image!r}")
        client.images.pull(image)
    run_args.pop("auto_remove", None)
    container = client.containers.run(
        image=image, command=command, detach=True, stdout=True, stderr=True, volumes=volumes,
        **run_args,
    )  # fmt: skip
    try:
        for chunk in container.logs(stream=True, follow=True):
            print(chunk.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)

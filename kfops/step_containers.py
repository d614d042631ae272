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

The exit is what ends a step, not the end of its log stream: podman's API can leave a `follow`
log stream open after the container exited (seen here, podman 4.3.1: a container "Exited (0) 14
minutes ago" while the stream still waited, and a CI rehearsal with it). The log is followed in a
thread while `wait` waits for the exit; a stream still open `LOG_GRACE_S` after the exit is
closed, and what it had not delivered is printed from the whole log.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

LOG_GRACE_S = 5.0  # how long a log stream may lag behind its container's exit


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
        stream = container.logs(stream=True, follow=True)
        printed, lock, taken_over = bytearray(), threading.Lock(), threading.Event()

        def follow() -> None:
            with contextlib.suppress(Exception):  # closed below, or the engine went away
                for chunk in stream:
                    with lock:
                        if taken_over.is_set():  # the rest was printed from the whole log
                            return
                        printed.extend(chunk)
                        print(chunk.decode(errors="replace"), end="")

        reader = threading.Thread(target=follow, name="kfops-step-log", daemon=True)
        reader.start()
        code = int(container.wait()["StatusCode"])
        reader.join(LOG_GRACE_S)
        if reader.is_alive():  # the stream outlived the container: print the rest from the log
            with contextlib.suppress(Exception):
                stream.close()
            reader.join(LOG_GRACE_S)
            whole = container.logs(stream=False)
            with lock:
                print(whole[len(printed) :].decode(errors="replace"), end="")
                taken_over.set()
        return code
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)

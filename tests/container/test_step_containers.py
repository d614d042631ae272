"""Step containers report their real exit code and output through podman's Docker API."""

import pytest
from kfp.local import docker_task_handler

from kfops import errors, localrun, step_containers
from kfops.commands import run as run_command

pytestmark = [pytest.mark.container]


def _containers(client):
    return {c.id for c in client.containers.list(all=True)}


def test_a_quick_failing_step_reports_its_exit_code_and_output_every_time(
    kfops_image, docker_client, capsys
):
    """kfp's auto-removing run answered 0 for most of these and raised a 500 for some."""
    before = _containers(docker_client)
    codes = []
    for attempt in range(8):
        codes.append(
            step_containers.run_step_container(
                docker_client, kfops_image.name, ["sh", "-c", f"echo step {attempt}; exit 3"], {}
            )
        )
    out = capsys.readouterr().out
    assert codes == [3] * 8
    assert [f"step {i}" for i in range(8)] == [
        line for line in out.splitlines() if line.startswith("step ")
    ]
    assert _containers(docker_client) == before  # each one removed once read


def test_a_succeeding_step_answers_zero_and_run_arguments_reach_the_container(
    kfops_image, docker_client, capsys
):
    code = step_containers.run_step_container(
        docker_client,
        kfops_image.name,
        ["sh", "-c", 'echo "$KFOPS_PROBE"'],
        {},
        environment={"KFOPS_PROBE": "seen"},
        auto_remove=True,  # what kfp passes is overridden: the container is removed after reading
    )
    assert code == 0
    assert "seen" in capsys.readouterr().out.splitlines()


def test_runs_use_it_only_inside_the_block():
    upstream = docker_task_handler.run_docker_container
    with localrun.docker_steps_kept_until_read():
        assert docker_task_handler.run_docker_container is step_containers.run_step_container
    assert docker_task_handler.run_docker_container is upstream


def test_a_run_without_the_steps_image_stops_in_one_line_before_it_starts(kfops_image, monkeypatch):
    """An image the engine lacks and cannot pull (not built, a wrong KFOPS_IMAGE) is a one-line
    ConfigError naming the image and `make image`, not a traceback from the first step."""
    monkeypatch.setenv("DOCKER_HOST", kfops_image.docker_host)
    run_command.check_container_engine(kfops_image.name)  # built: nothing to say
    missing = "127.0.0.1:1/kfops/kfops:not-built"  # a registry that refuses at once
    with pytest.raises(errors.ConfigError) as caught:
        run_command.check_container_engine(missing)
    message = str(caught.value)
    assert message.startswith(f"--runner docker: the steps' image {missing} is not in the engine")
    assert "`make image`" in message and "KFOPS_IMAGE" in message and "\n" not in message

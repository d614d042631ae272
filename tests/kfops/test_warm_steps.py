"""Warm steps (kfops.warm_steps): kfp.local subprocess steps forked from one ready interpreter.

Real processes throughout: tiny `@dsl.component`s run by kfp.local through kfops.localrun, warm
(the default) and cold (KFOPS_COLD_STEPS=1), and single steps run through the zygote directly.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kfp import dsl
from kfp.local import subprocess_task_handler

from kfops import localrun, warm_steps


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def double(x: int) -> int:
    return 2 * x


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def facts(value: int, out: str):
    """Writes what a step process sees, to compare warm with cold."""
    import json
    import os
    import sys

    parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    seen = {
        "value": value,
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "path": sys.path[1:],  # [0]: the source's own temp dir
        "argv": [a for a in sys.argv[1:] if not a.startswith("{")][-2:],
        "main": sys.modules["__main__"].__spec__.name,
        "stdout_tty": sys.stdout.isatty(),
        "warm": "zygote" + "_main" in parent,  # (split: the source is in a cold parent's argv)
        "pid": os.getpid(),
        "parent": os.getppid(),
    }
    if os.path.isdir(out):
        out = os.path.join(out, f"{value}.json")
    with open(out, "w") as f:
        json.dump(seen, f)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def boom():
    raise ValueError("boom from the step h1")


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def exit_three():
    import sys

    print("leaving with 3")
    sys.exit(3)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def killed():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def sleeper(out: str):
    import os
    import time

    with open(out, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def stubborn(out: str):
    """Ignores ctrl-C: only the zygote's clean-up at the orchestrator's exit ends it."""
    import os
    import signal
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(out, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)


@dsl.pipeline
def stubborn_pipeline(out: str):
    stubborn(out=out)


@dsl.pipeline
def facts_pipeline(x: int, out: str):
    facts(value=double(x=x).output, out=out)


@dsl.pipeline
def parallel_pipeline(out_dir: str):
    with dsl.ParallelFor(items=[1, 2, 3, 4], parallelism=2) as item:
        facts(value=item, out=out_dir)


@dsl.pipeline
def boom_pipeline():
    boom()


@dsl.pipeline
def exit_pipeline():
    exit_three()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _living(field: int, value: int) -> list[int]:
    """Live processes whose /proc stat field (after the name: 1 ppid, 3 session) is `value`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[field]) == value and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


_BEFORE: set[int] = set()


@pytest.fixture(autouse=True)
def _children_before():
    """The suite's own long-lived children (servers, fixtures of earlier tests) are not ours."""
    global _BEFORE  # noqa: PLW0603
    _BEFORE = set(_living(1, os.getpid()))


def _children() -> list[int]:
    """Live children of this process that appeared during the test."""
    return sorted(set(_living(1, os.getpid())) - _BEFORE)


def _run(pipeline, args, tmp_path, monkeypatch, *, cold=False):
    monkeypatch.setenv("KFOPS_COLD_STEPS", "1" if cold else "0")
    summary, _ = localrun.run_pipeline(pipeline, args, tmp_path / ("cold" if cold else "warm"))
    return summary, Path(summary.log).read_text()


def test_warm_steps_give_what_cold_steps_give_and_leave_no_process(tmp_path, monkeypatch):
    # kfops' import sets OMP_WAIT_POLICY=PASSIVE when the load average is high (kfops/__init__.py)
    # unless it is set: fixed here, so the two runs' environments do not differ by the load at
    # each one's start (a CI run failed on that: the warm run at a high load, the cold at a low)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    seen = {}
    for cold in (False, True):
        out = tmp_path / f"facts-{cold}.json"
        summary, log = _run(
            facts_pipeline, {"x": 21, "out": str(out)}, tmp_path, monkeypatch, cold=cold
        )
        assert summary.status == "succeeded", log
        assert "fresh process" not in log
        seen[cold] = json.loads(out.read_text())
    warm, cold = seen[False], seen[True]
    assert warm["warm"] and not cold["warm"]
    assert warm["value"] == cold["value"] == 42
    # KFOPS_COLD_STEPS differs by design; the rest is the environment a cold step gets
    assert {k: v for k, v in warm["env"].items() if k != "KFOPS_COLD_STEPS"} == {
        k: v for k, v in cold["env"].items() if k != "KFOPS_COLD_STEPS"
    }
    for key in ("cwd", "path", "argv", "main", "stdout_tty"):
        assert warm[key] == cold[key], key
    assert not _alive(warm["pid"]) and not _alive(warm["parent"])  # the step, the zygote
    assert _children() == []


def test_parallel_steps_run_warm_side_by_side(tmp_path, monkeypatch):
    """kfp.local runs ParallelFor iterations on two threads: each gets its own forked child."""
    out_dir = tmp_path / "facts"
    out_dir.mkdir()
    summary, log = _run(parallel_pipeline, {"out_dir": str(out_dir)}, tmp_path, monkeypatch)
    assert summary.status == "succeeded", log
    seen = [json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))]
    assert sorted(s["value"] for s in seen) == [1, 2, 3, 4]
    assert all(s["warm"] for s in seen) and "fresh process" not in log
    assert _children() == []


def test_a_step_that_raises_fails_with_its_traceback_in_the_log(tmp_path, monkeypatch):
    summary, log = _run(boom_pipeline, {}, tmp_path, monkeypatch)
    assert summary.status == "failed"
    assert "Traceback (most recent call last)" in log
    assert "ValueError: boom from the step h1" in log
    assert "fresh process" not in log  # it ran warm
    assert _children() == []


def test_a_step_that_exits_non_zero_fails(tmp_path, monkeypatch):
    summary, log = _run(exit_pipeline, {}, tmp_path, monkeypatch)
    assert summary.status == "failed"
    assert "leaving with 3" in log and "fresh process" not in log


def _command(component, **inputs) -> list[str]:
    """The command kfp.local's SubprocessRunner runs for `component` (executor input filled)."""
    spec = component.pipeline_spec
    container = next(iter(spec.deployment_spec["executors"].values()))["container"]
    executor_input = json.dumps(
        {"inputs": {"parameterValues": inputs}, "outputs": {"outputFile": "/dev/null"}}
    )
    args = [executor_input if a == "{{$}}" else a for a in container["args"]]
    return subprocess_task_handler.replace_python_executable(
        [*container["command"], *args], sys.executable
    )


def _step(zygote, command, capsys, env_vars=None):
    code = warm_steps.run_step(
        zygote, command, env_vars, cold=subprocess_task_handler.run_local_subprocess
    )
    return code, capsys.readouterr().out


def _session(sid: int) -> list[int]:
    return _living(3, sid)


def test_ctrl_c_during_a_warm_step_leaves_no_process(tmp_path):
    pid_file = tmp_path / "pid"
    root = Path(__file__).resolve().parents[2]
    # ctrl-C as a terminal's foreground job gets it: a suite started in the background of a
    # non-interactive shell inherits SIGINT ignored, and Python keeps an ignored SIGINT ignored.
    script = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"import sys; sys.path.insert(0, {str(root)!r}); "
        "from tests.kfops import test_warm_steps as t; from kfops import localrun; "
        f"localrun.run_pipeline(t.stubborn_pipeline, {{'out': {str(pid_file)!r}}}, "
        f"{str(tmp_path / 'runs')!r})"
    )
    env = {k: v for k, v in os.environ.items() if k != "KFOPS_COLD_STEPS"}
    run = subprocess.Popen(
        [sys.executable, "-c", script],
        start_new_session=True,  # its own process group, as a terminal's foreground job
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(1200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.1)
    step = int(pid_file.read_text())
    assert len(_session(run.pid)) == 3  # the orchestrator, the zygote, the step
    os.killpg(run.pid, signal.SIGINT)  # what ctrl-C does
    run.wait(timeout=60)
    for _ in range(100):
        if not _session(run.pid):
            break
        time.sleep(0.1)
    assert _session(run.pid) == [] and not _alive(step)


def test_exit_codes_reach_the_orchestrator(capsys):
    with warm_steps.started() as zygote:
        assert _step(zygote, _command(exit_three), capsys)[0] == 3
        assert _step(zygote, _command(killed), capsys)[0] == -signal.SIGKILL
        code, out = _step(zygote, _command(boom), capsys)
        assert code == 1 and "ValueError: boom from the step h1" in out
        assert "fresh process" not in out


def test_environment_set_after_the_zygote_started_reaches_the_step(tmp_path, capsys, monkeypatch):
    out = tmp_path / "facts.json"
    command = _command(facts, value=1, out=str(out))
    with warm_steps.started() as zygote:
        monkeypatch.setenv("H1_LATE", "set after start")
        code, log = _step(zygote, command, capsys)
        assert code == 0, log
        assert json.loads(out.read_text())["env"].get("H1_LATE") == "set after start"
        assert "fresh process (environment differs" in log and "H1_LATE" in log
        monkeypatch.delenv("H1_LATE")
        code, log = _step(zygote, command, capsys, env_vars={"H1_STEP": "from kfp"})
        assert code == 0, log
        assert json.loads(out.read_text())["env"].get("H1_STEP") == "from kfp"
        code, log = _step(zygote, command, capsys)  # back to the start environment: warm again
        assert code == 0 and "fresh process" not in log
        assert json.loads(out.read_text())["warm"]


def test_other_commands_and_a_dead_zygote_run_cold(tmp_path, capsys):
    out = tmp_path / "facts.json"
    command = _command(facts, value=1, out=str(out))
    with warm_steps.started() as zygote:
        other = [
            command[0],
            command[1],
            command[2].replace("-m kfp", "-X dev -m kfp"),
            *command[3:],
        ]
        code, log = _step(zygote, other, capsys)
        assert code == 0 and "fresh process (not kfp's lightweight-step command" in log
        assert zygote.ready()
        zygote.process.kill()
        zygote.process.wait()
        code, log = _step(zygote, command, capsys)
        assert code == 0 and "fresh process (the warm process exited with code -9" in log
        assert not json.loads(out.read_text())["warm"]


def test_a_step_dies_with_its_zygote(tmp_path, capsys):
    out = tmp_path / "pid"
    with warm_steps.started() as zygote:
        assert zygote.ready()

        def kill_zygote_once_the_step_runs():
            for _ in range(600):
                if out.exists() and out.read_text():
                    break
                time.sleep(0.05)
            os.kill(zygote.process.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_zygote_once_the_step_runs)
        killer.start()
        started = time.monotonic()
        code, _ = _step(zygote, _command(sleeper, out=str(out)), capsys)
        killer.join()
        assert code != 0
        assert time.monotonic() - started < 30  # the step sleeps 60 s unless it died with it
    step = int(out.read_text())
    for _ in range(100):
        if not _alive(step):
            break
        time.sleep(0.05)
    assert not _alive(step)
    assert _children() == []


def test_the_zygote_imports_none_of_the_heavy_packages():
    assert not set(warm_steps.ZYGOTE_IMPORTS) & set(warm_steps.HEAVY)
    code = (
        "import sys; from kfops import warm_steps; import importlib; "
        "[importlib.import_module(m) for m in warm_steps.ZYGOTE_IMPORTS]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in warm_steps.HEAVY))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_kfp_command_is_recognised():
    source, args = warm_steps.step_arguments(_command(double, x=1))
    assert "def double" in source and args[-2:] == ["--function_to_execute", "double"]
    assert warm_steps.wrapper_script(sys.executable).startswith("program_path=$(mktemp -d)")


@pytest.mark.slow
def test_training_pipeline_warm_gives_the_cold_model_digest(capsys, tmp_path, monkeypatch):
    """`kfops run` end to end, warm (default) then cold: same data + seed -> same model bytes."""
    from kfops import cli, runs, store

    models = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("KFOPS_COLD_STEPS", mode)
        root = tmp_path / mode
        argv = ["run", "--source", "builtin:churn?rows=1500&seed=1", "--json",
                "--store", str(root / "store"), "--runs-dir", str(root / "runs"),
                "--param", "search_iterations=2", "--param", "cv_folds=2"]  # fmt: skip
        assert cli.main(argv) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["status"] == "succeeded", summary
        shown = runs.RunIndex(store.open_store(str(tmp_path / mode / "store"))).show(
            summary["run_id"]
        )
        train = next(s for s in shown["steps"] if s["step"] == "train")
        models[mode] = next(o for o in train["outputs"] if o["name"] == "model")["sha256"]
        log = (tmp_path / mode / "runs" / summary["run_id"] / "run.log").read_text()
        # every step warm (but for a load average crossing kfops' OpenMP wait-policy line)
        assert log.count("fresh process") == log.count("fresh process (OpenMP"), log
    assert models["0"] == models["1"]
    assert _children() == []

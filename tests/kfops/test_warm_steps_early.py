"""`kfops run` starts its warm-step zygote before its own imports (kfops.warm_steps.start_early).

The zygote's imports (~1.3 CPU s) then overlap the orchestrator's (kfp, pandas, the pipeline
build) instead of following them: the first step waited ~1.5 s for a zygote started in
run_pipeline. Real processes throughout.
"""

import atexit
import json
import os
import signal
import subprocess
import sys

import pytest

from kfops import warm_steps


@pytest.fixture(autouse=True)
def _no_zygote_left():
    """A zygote a test leaves in warm_steps._early (one it expected none from) is stopped."""
    yield
    early, warm_steps._early = warm_steps._early, None
    if early is not None:
        atexit.unregister(early.close)
        early.close()


PROBE = """
import json, sys

class Watch:
    seen = None

    def find_spec(self, name, path=None, target=None):
        if name == "kfp" and Watch.seen is None:
            ws = sys.modules.get("kfops.warm_steps")
            Watch.seen = ws is not None and ws._early is not None
        return None

sys.meta_path.insert(0, Watch())
from kfops import cli, warm_steps
code = cli.main(["run", "--store", sys.argv[1], "--param", "not-a-pair"])
left = warm_steps._early is not None
# after kfops run's imports (and what they set in os.environ) the zygote still fits a run
taken = warm_steps._take_early()
print(json.dumps({"before_kfp": Watch.seen, "code": code, "left": left, "fits": taken is not None}))
"""


def test_kfops_run_starts_the_zygote_before_kfp_loads(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "store")],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "KFOPS_COLD_STEPS": "0"},
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    # a mistake caught before the run is still one line
    assert seen == {"before_kfp": True, "code": 2, "left": True, "fits": True}, done.stderr
    assert "--param expects KEY=VALUE" in done.stderr


@pytest.mark.parametrize(
    ("argv", "cold"),
    [
        (["--help"], "0"),
        (["-h"], "0"),
        (["--he"], "0"),
        (["--runner", "docker"], "0"),
        (["--runner=docker"], "0"),
        (["--runn", "docker"], "0"),
        (["--runn=docker"], "0"),
        (["--runne", "docker", "--seed", "3"], "0"),
        (["--runner", "subprocess", "--runn", "docker"], "0"),  # the last one counts
        (["--run", "docker"], "0"),  # ambiguous (--runs-dir): kfops run's own error follows
        (["--runner"], "0"),  # no value: an error too
        ([], "1"),
    ],
)
def test_no_early_zygote_for_help_docker_or_cold_steps(argv, cold, monkeypatch):
    monkeypatch.setenv("KFOPS_COLD_STEPS", cold)
    warm_steps.start_early(argv)
    assert warm_steps._early is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--runn", "subprocess"],
        ["--runne=subprocess"],
        ["--runner", "docker", "--runner", "subprocess"],
        ["--name", "--runner docker"],  # a space, no "=": a value for argparse, not an option
        ["--name=--runner=docker"],
    ],
)
def test_an_early_zygote_for_every_spelling_of_the_subprocess_runner(argv, monkeypatch):
    monkeypatch.setenv("KFOPS_COLD_STEPS", "0")
    warm_steps.start_early(argv)
    assert warm_steps._early is not None


# Every spelling of every `kfops run` option (each prefix argparse could take, with its value
# apart and after `=`), read by the real parser; and `kfops` commands that stop at a mistake or
# help, with whether they started a zygote.
REAL_PARSER = """
import atexit, contextlib, io, json, sys
from kfops import cli, warm_steps

run = cli.build_parser("run")._subparsers._group_actions[0].choices["run"]
cases = []
for option in sorted(run._option_string_actions):
    for end in range(2 if option[1] != "-" else 3, len(option) + 1):
        spelled = option[:end]
        for value in ("subprocess", "docker"):
            for before in ([], ["--runner", "docker"], ["--runner", "subprocess"]):
                cases += [[*before, spelled, value], [*before, f"{spelled}={value}"]]
        cases += [[spelled], [spelled, "--runner", "docker"]]
read = []
for argv in cases:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            read.append(run.parse_args(argv).runner)
        except SystemExit as e:
            read.append("help" if e.code == 0 else "error")

mains = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    early = warm_steps._early
    if early is not None:
        atexit.unregister(early.close)
        warm_steps._early = None
        early.close()
    mains.append({"code": code, "stderr": err.getvalue(), "zygote": early is not None})
print(json.dumps({"cases": cases, "read": read, "mains": mains}))
"""
MAINS = [
    ["run", "--run", "docker"],
    ["run", "--runner", "dockr"],
    ["run", "--runner"],
    ["--help", "run"],
    ["--version", "run"],
    ["--store", "x", "run"],
]


@pytest.fixture(scope="module")
def real_parser():
    done = subprocess.run(
        [sys.executable, "-c", REAL_PARSER, json.dumps(MAINS)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "KFOPS_COLD_STEPS": "0"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_early_read_agrees_with_kfops_runs_parser_on_every_spelling_it_accepts(real_parser):
    accepted = {
        tuple(argv): read
        for argv, read in zip(real_parser["cases"], real_parser["read"], strict=True)
        if read != "error"
    }
    assert accepted[("--runn=docker",)] == accepted[("--runne", "docker")] == "docker"
    assert accepted[("--runner", "docker", "--runn", "subprocess")] == "subprocess"
    assert accepted[("--he",)] == accepted[("-h",)] == "help"
    assert ("--run", "docker") not in accepted  # ambiguous: --runs-dir
    assert len(accepted) > 1000
    wrong = {
        argv: read
        for argv, read in accepted.items()
        if warm_steps.forks_steps(argv) != (read == "subprocess")
    }
    assert wrong == {}
    for argv, read in zip(real_parser["cases"], real_parser["read"], strict=True):
        if read == "error":
            warm_steps.forks_steps(argv)  # decides without raising; the real parser says why


def test_a_mistake_or_help_around_run_starts_no_zygote_and_stays_one_line(real_parser):
    mains = dict(zip(map(tuple, MAINS), real_parser["mains"], strict=True))
    assert not any(m["zygote"] for m in mains.values()), mains
    assert mains[("--help", "run")]["code"] == mains[("--version", "run")]["code"] == 0
    for argv in (
        ("run", "--run", "docker"),
        ("run", "--runner", "dockr"),
        ("run", "--runner"),
        ("--store", "x", "run"),
    ):
        main = mains[argv]
        assert main["code"] == 2 and "Traceback" not in main["stderr"], main
        assert main["stderr"].count("error:") == 1, main
    assert (
        "ambiguous option: --run could match --runner, --runs-dir"
        in mains[("run", "--run", "docker")]["stderr"]
    )
    assert "invalid choice: 'dockr'" in mains[("run", "--runner", "dockr")]["stderr"]


def test_the_run_takes_the_early_zygote_and_steps_fork_from_it(monkeypatch):
    for name, value in warm_steps.RUN_IMPORTS_SET.items():
        monkeypatch.setenv(name, value)  # as kfops run's imports leave them
    warm_steps.start_early(["--runner", "subprocess", "--seed", "3"])
    early = warm_steps._early
    assert early is not None
    with warm_steps.started() as zygote:
        assert zygote is early and warm_steps._early is None
        assert zygote.ready()
    assert early.process.returncode == 0  # stopped by EOF after its steps


def test_an_early_zygote_that_no_longer_fits_is_stopped_and_replaced(monkeypatch):
    warm_steps.start_early([])
    early = warm_steps._early
    monkeypatch.setenv("H9_AFTER_START", "1")  # the steps would start with another environment
    with warm_steps.started() as zygote:
        assert zygote is not early and zygote.ready()
        assert early.process.returncode == -signal.SIGKILL  # never ready: killed, not waited for
    assert warm_steps._early is None

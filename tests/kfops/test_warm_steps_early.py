"""`kfops run` starts its warm-step zygote before its own imports (kfops.warm_steps.start_early).

The zygote's imports (~1.3 CPU s) then overlap the orchestrator's (kfp, pandas, the pipeline
build) instead of following them: the first step waited ~1.5 s for a zygote started in
run_pipeline. Real processes throughout.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from kfops import warm_steps

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
        (["--runner", "docker"], "0"),
        (["--runner=docker"], "0"),
        ([], "1"),
    ],
)
def test_no_early_zygote_for_help_docker_or_cold_steps(argv, cold, monkeypatch):
    monkeypatch.setenv("KFOPS_COLD_STEPS", cold)
    warm_steps.start_early(argv)
    assert warm_steps._early is None


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

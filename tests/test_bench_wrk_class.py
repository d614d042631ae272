"""bench/serving.py runs wrk in the SCHED_BATCH class, so its wake-ups do not preempt the server.

A stand-in `wrk` on PATH reports the scheduling policy it was started with in the line wrk's
Lua hook would print; `wrk_run` must hand it over as the run's result.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap

from bench import serving


def test_wrk_runs_in_the_batch_class(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "wrk"
    fake.parent.mkdir()
    fake.write_text(
        textwrap.dedent(
            f"""\
            #!{sys.executable}
            import json, os
            policy = os.sched_getscheduler(0)
            print("KFOPS-WRK " + json.dumps({{"requests": 10, "seconds": 1.0, "p50": policy,
                "p99": 0, "p999": 0, "max": 0, "errors": 0}}))
            """
        )
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    r = serving.wrk_run(1, "/v1/models/churn:predict", {"instances": [{}]}, 8, 1, tmp_path)
    assert r["p50"] == os.SCHED_BATCH
    assert r["rps"] == 10.0
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the bench itself is left as it was

"""A `kfops run` process freezes its objects before the interpreter's shutdown collections.

kfops.commands.run `leave_without_final_collections` says why (~1 s at the end of every run). The
probe's own atexit handler, registered first, runs last: it sees whether the freeze happened.
"""

import subprocess
import sys

PROBE = """
import atexit, gc, sys
atexit.register(lambda: print("frozen objects:", gc.get_freeze_count(), flush=True))
from kfops import cli
sys.exit(cli.main(["run", "--store", sys.argv[1]]))
"""


def test_a_run_leaves_with_its_objects_frozen(tmp_path):
    not_a_directory = tmp_path / "store"
    not_a_directory.write_text("a file where the store should be")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(not_a_directory)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr  # the mistake, one line
    frozen = int(done.stdout.strip().splitlines()[-1].split(":")[1])
    assert frozen > 10_000  # every object kfp, pandas and the stage modules made

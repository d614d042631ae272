"""bench/run_steps.py reads kfp.local's log as kfp.local writes it (colours, outputs lines)."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run_steps.py"
spec = importlib.util.spec_from_file_location("run_steps", BENCH)
run_steps = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_steps)

# kfp/local/logging_utils.py colours task names; each task ends with "finished" then "outputs:"
LOG = """\
05:00:00.000 - INFO - Executing task \x1b[96m'ingest'\x1b[0m
    KFOPS_BENCH_PID 100
    import time:       500 |     300000 | pandas
    import time:       200 |     100000 |   pandas.core
    import time:       100 |     200000 | kfops.ingest
05:00:01.500 - INFO - Task \x1b[96m'ingest'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
05:00:01.501 - INFO - Task \x1b[96m'ingest'\x1b[0m outputs:
05:00:01.510 - INFO - Executing task \x1b[96m'train'\x1b[0m
    KFOPS_BENCH_PID 200
    import time:      1000 |    1000000 | sklearn
05:00:05.010 - INFO - Task \x1b[96m'train'\x1b[0m finished with status \x1b[92mSUCCESS\x1b[0m
05:00:05.020 - INFO - Task \x1b[96m'train'\x1b[0m outputs:
"""


def test_steps_attributes_wall_imports_and_the_workers_cpu(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(LOG)
    # train (200) reaped its forked search workers: 2.0 s its own, 1.5 s theirs; 1 is `kfops run`
    lines = [
        {"pid": 100, "ppid": 1, "cpu_s": 0.4, "children_cpu_s": 0.0},
        {"pid": 200, "ppid": 1, "cpu_s": 2.0, "children_cpu_s": 1.5},
        {"pid": 1, "ppid": 0, "cpu_s": 3.0, "children_cpu_s": 99.0},  # its children: the steps
    ]
    pids = {line["pid"]: run_steps.cpu_of(line, orchestrator=1) for line in lines}
    assert pids[1] == 3.0
    rows = run_steps.steps(log, pids)
    assert rows == [
        {"step": "ingest", "wall": 1.5, "imports": 0.5, "cpu": 0.4},
        {"step": "train", "wall": 3.5, "imports": 1.0, "cpu": 3.5},
    ]

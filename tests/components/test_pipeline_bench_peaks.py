"""bench/pipeline.py's largest step is a step's own process, never its "(children)" row, whose
forked workers' RSS counts the pages they share with the step."""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pipeline.py"
spec = importlib.util.spec_from_file_location("pipeline_bench", BENCH)
pipeline_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pipeline_bench)


def test_largest_skips_the_children_rows():
    rows = [
        {"process": "train", "maxrss_kb": 900 * 1024},
        {"process": "train (children)", "maxrss_kb": 950 * 1024},
        {"process": "evaluate", "maxrss_kb": 400 * 1024},
    ]
    assert pipeline_bench.largest(rows) == ("train", 900.0)

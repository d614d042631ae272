"""`kfops run` builds the training pipeline before the stage modules load (issue 16).

kfp's task setters call `inspect.stack()`, whose cost grows with every module in `sys.modules`
(kfops.commands.run `register` says why): built among scikit-learn's thousand-odd modules the
pipeline took ~4.5 CPU s instead of ~1.1. The probe records, when the pipeline module starts
to load, whether scikit-learn or scipy was already there (pandas is: kfops.commands.run's own
imports need it, ~400 modules), and whether kfp's `inspect` was kfops.localrun.cheap_caller_names'
(the setters then look up no module at all).
"""

import json
import subprocess
import sys

PROBE = """
import json, sys

class Watch:
    seen = None

    def find_spec(self, name, path=None, target=None):
        if name == "kfops.pipelines.training" and Watch.seen is None:
            Watch.seen = {
                "loaded": sorted(m for m in ("sklearn", "scipy") if m in sys.modules),
                "inspect": type(sys.modules["kfp.dsl.pipeline_task"].inspect).__name__,
            }
        return None

sys.meta_path.insert(0, Watch())
from kfops import cli
cli.build_parser("run").parse_args(["run"])
print(json.dumps(Watch.seen))
"""


def test_the_pipeline_is_built_before_scikit_learn_loads_with_cheap_caller_names():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"loaded": [], "inspect": "_FramesOnly"}


NO_MODEL_LIBRARIES = """
import json, sys
from kfops import cli
from kfops.commands import run
cli.build_parser("run").parse_args(["run"])
flags = run.stage_flags()
print(json.dumps([m for m in ("sklearn", "scipy") if m in sys.modules]))
"""


def test_the_run_parser_and_its_stage_flags_load_neither_scikit_learn_nor_scipy():
    # The flags read TrainConfig/EvalConfig (kfops.train.core, kfops.evaluate.core) and what they
    # import (kfops.decision, kfops.train.setup, kfops.evaluate.explain): scikit-learn and scipy
    # load where a model is built, split or scored, not at import (~0.9 CPU s of start-up).
    done = subprocess.run(
        [sys.executable, "-c", NO_MODEL_LIBRARIES],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

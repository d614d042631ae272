"""`kfops run` builds the training pipeline before the stage modules load (issue 16).

kfp's task setters call `inspect.stack()`, whose cost grows with every module in `sys.modules`
(kfops.commands.run `register` says why): built among scikit-learn's thousand-odd modules the
pipeline took ~4.5 CPU s instead of ~1.1. The probe records, when the pipeline module starts
to load, whether scikit-learn or scipy was already there (pandas is: kfops.commands.run's own
imports need it, ~400 modules).
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
            Watch.seen = sorted(m for m in ("sklearn", "scipy") if m in sys.modules)
        return None

sys.meta_path.insert(0, Watch())
from kfops import cli
cli.build_parser("run").parse_args(["run"])
print(json.dumps(Watch.seen))
"""


def test_the_pipeline_is_built_before_scikit_learn_loads():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

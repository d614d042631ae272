"""Each pipeline step imports only the heavy libraries its work needs.

A step is its own process (a pod on KFP, a subprocess under kfp.local): it starts with
`python -m kfp.dsl.executor_main` on the component's source, then runs the function, whose body
holds every kfops import. The probe does the same imports in a fresh interpreter and asserts on
`sys.modules`, not on time, which varies with load. A library a step does not need costs it a
second or more of start-up per run (scikit-learn ~1 s, Evidently 4-5 s on an idle 2-core box).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parents[2] / "components"
HEAVY = (
    "sklearn",
    "scipy",
    "pandas",
    "pyarrow",
    "evidently",
    "matplotlib",
    "plotly",
    "uvicorn",
    "sqlalchemy",
)
FRAMES = {"pandas", "pyarrow"}
MODELS = FRAMES | {"sklearn", "scipy"}  # unpickling or fitting a scikit-learn model
# What each step needs; everything else in HEAVY must stay out of its process.
NEEDS = {
    "run_context": set(),
    "outcome": set(),
    "gate": set(),
    "deploy": set(),
    "ingest": FRAMES,  # SQLAlchemy loads only for a database source
    "validate": FRAMES,
    "split": FRAMES,  # scikit-learn only for a group split (tests/kfops/test_split_numpy.py)
    "train": MODELS,
    "evaluate": MODELS,
    "champion": FRAMES,  # scikit-learn only once a champion exists (kfops.champion.resolve)
    "infra_validate": MODELS | {"uvicorn"},  # serves the model on a real port
    "push": FRAMES,  # kfops.features loads scikit-learn only with DerivedFeatures (features_step)
    "rollout": FRAMES,
    "fresh_data": FRAMES,
    "monitor": MODELS | {"evidently", "plotly"},
    "score_plan": MODELS,
    "score_shard": MODELS,
    "score_merge": MODELS,
}
# How kfp's ephemeral module starts (kfp/dsl/component_factory.py writes these lines above the
# function's source); kfp.dsl.executor_main adds no library of HEAVY.
PRELUDE = "import kfp\nfrom kfp import dsl\nfrom kfp.dsl import *\nfrom typing import *\n"


def _body_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    (function,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.decorator_list]
    found = ast.walk(function)
    return [ast.unparse(n) for n in found if isinstance(n, ast.Import | ast.ImportFrom)]


STEPS = sorted(p.stem for p in COMPONENTS.glob("*.py") if not p.name.startswith("_"))


def test_every_step_declares_what_it_needs():
    missing = sorted(set(STEPS) - set(NEEDS))
    assert not missing, f"add {missing} to NEEDS with the libraries each needs"


@pytest.mark.parametrize("step", STEPS)
def test_step_loads_only_what_it_needs(step):
    imports = _body_imports(COMPONENTS / f"{step}.py")
    probe = (
        PRELUDE
        + "import json, sys\n"
        + "\n".join(imports)
        + f"\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert loaded <= NEEDS.get(step, set()), f"{step} imports {sorted(loaded - NEEDS[step])}"

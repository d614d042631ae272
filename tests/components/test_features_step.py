"""DerivedFeatures lives apart from kfops.features (no scikit-learn there) but pickles as before."""

import pickle
import subprocess
import sys

import pandas as pd

from kfops import features


def _fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_parsing_specs_loads_no_scikit_learn():
    probe = (
        "import sys\nfrom kfops import features\n"
        "features.parse_all(['gap = total_charges - monthly_charges'])\n"
        "features.derived_step(object())\n"
        "print('sklearn' in sys.modules)"
    )
    assert _fresh(probe) == "False"


def test_pickles_name_kfops_features_and_load_in_a_fresh_process(tmp_path):
    step = features.DerivedFeatures(["gap = b - a"]).fit(pd.DataFrame({"a": [1.0], "b": [3.0]}))
    data = pickle.dumps(step)
    # the name older models were pickled under, so they keep loading (and new ones load anywhere)
    assert b"kfops.features" in data and b"features_step" not in data
    path = tmp_path / "step.pkl"
    path.write_bytes(data)
    probe = (
        "import pickle, pandas as pd\n"
        f"step = pickle.loads(open({str(path)!r}, 'rb').read())\n"
        "print(step.transform(pd.DataFrame({'a': [1.0], 'b': [3.0]}))['gap'].tolist())"
    )
    assert _fresh(probe) == "[2.0]"


def test_derived_step_finds_the_step_in_a_pipeline():
    from sklearn import pipeline, preprocessing  # noqa: PLC0415

    step = features.DerivedFeatures(["gap = b - a"])
    model = pipeline.Pipeline([("derive", step), ("scale", preprocessing.FunctionTransformer())])
    assert features.derived_step(model) is step
    assert (
        features.derived_step(pipeline.Pipeline([("s", preprocessing.FunctionTransformer())]))
        is None
    )

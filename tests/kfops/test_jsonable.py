"""kfops.jsonable: numpy scalars unwrapped in one place, for every module that hands them on."""

import json
import pathlib
import re

import numpy as np

import kfops
from kfops import decision, jsonable


def test_plain_turns_numpy_scalars_into_python_values():
    assert type(jsonable.plain(np.int64(3))) is int
    assert type(jsonable.plain(np.float32(0.5))) is float
    assert type(jsonable.plain(np.str_("yes"))) is str
    assert jsonable.plain(np.bool_(True)) is True
    for value in ("x", None, 2, [np.int64(1)]):  # not a numpy scalar: the same object back
        assert jsonable.plain(value) is value
    labels = jsonable.plain_list(np.unique(np.array([2, 1, 2])))
    assert json.dumps(labels) == "[1, 2]" and repr(labels) == "[1, 2]"


def test_a_positive_class_from_numpy_labels_is_a_python_value():
    """decision.positive_of goes through jsonable: the rule is written to metadata as JSON."""
    positive = decision.positive_of(np.array(["no", "yes"]))
    assert type(positive) is str and json.dumps(positive) == '"yes"'


def test_no_module_writes_its_own_numpy_scalar_unwrapper():
    own = re.compile(r"\.item\(\) if isinstance\(\w+, np\.generic\)")
    root = pathlib.Path(kfops.__file__).parent
    found = [str(p.relative_to(root)) for p in root.rglob("*.py") if own.search(p.read_text())]
    assert found == ["jsonable.py"], found

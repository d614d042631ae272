"""Class counts of the prediction collector: the same keys and totals whatever the batch size."""

import collections
import types

import numpy as np
import pytest

from kfops.serving import metrics


def _counts(classes, batches):
    collector = metrics.PredictionCollector()
    served = types.SimpleNamespace(name="m", version="1", classes=classes)
    for batch in batches:
        collector.add(served, batch)
    family = next(iter(collector.collect()))
    return {s.labels["class"]: s.value for s in family.samples}


@pytest.mark.parametrize(
    ("classes", "values"),
    [
        ((0, 1), [1, 0, 0, 1, 1]),
        (("no", "yes"), ["yes", "no", "no"]),
        ((1.5, 2.5, 7.0), [2.5, 7.0, 1.5, 7.0]),
        ((0, 1), [0, 1, 2]),  # a label outside the classes is still counted
        ((0, 1, 2), [0, 1]),  # a class never predicted is not exported
        (tuple(range(40)), list(range(40))),  # many classes: np.unique
    ],
)
def test_class_counts_match_a_row_by_row_count(classes, values):
    rng = np.random.default_rng(3)
    dtype = object if isinstance(values[0], str) else None
    batches = [np.array(rng.choice(values, n).tolist(), dtype=dtype) for n in (1, 7, 33, 100, 257)]
    expected = collections.Counter(str(v) for b in batches for v in b.tolist())
    assert _counts(classes, batches) == expected

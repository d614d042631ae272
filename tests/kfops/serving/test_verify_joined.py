"""fastpath.verify asks sklearn once for all probe sets it accepts, and still finds each refusal."""

import sys

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from kfops.serving import fastpath
from tests.kfops.serving import factories

VERIFY = sys.modules["kfops.serving.fastpath.verify"]  # the package exports the function


def _one_hot(handle_unknown: str):
    df = factories.frame()
    names = [c.name for c in factories.feature_specs()]
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown=handle_unknown), ["plan"])], remainder="drop"
    )
    return Pipeline([("pre", pre), ("est", LogisticRegression())]).fit(df[names], df["churned"])


def _counted(monkeypatch) -> list:
    calls = []
    real = VERIFY._sklearn

    def counting(fitted, columns, want_proba):
        calls.append(len(next(iter(columns.values()))))
        return real(fitted, columns, want_proba)

    monkeypatch.setattr(VERIFY, "_sklearn", counting)
    return calls


@pytest.mark.parametrize("handle_unknown", ["ignore", "error"])
def test_each_set_gets_the_answer_it_gets_alone(monkeypatch, handle_unknown):
    fitted, spec = _one_hot(handle_unknown), factories.classifier()[1]
    sets = fastpath.probes(spec)
    alone = [VERIFY._sklearn(fitted, s, True) for s in sets]
    calls = _counted(monkeypatch)
    joined = VERIFY._answers(fitted, sets, True)
    assert len(joined) == len(sets)
    for got, want in zip(joined, alone, strict=True):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    if handle_unknown == "error":  # the unseen-category set is refused: it is found alone
        assert any(a is None for a in alone) and any(a is not None for a in alone)
        assert len(calls) > 1
    else:  # every set answered: one call for all of them
        assert all(a is not None for a in alone)
        assert calls == [sum(len(next(iter(s.values()))) for s in sets)]


def test_sets_of_other_dtypes_are_not_joined(monkeypatch):
    fitted, spec = _one_hot("ignore"), factories.classifier()[1]
    sets = fastpath.probes(spec)[:2]
    other = {k: (v.astype(object) if v.dtype.kind in "if" else v) for k, v in sets[1].items()}
    calls = _counted(monkeypatch)
    VERIFY._answers(fitted, [sets[0], other], True)
    assert len(calls) == 2

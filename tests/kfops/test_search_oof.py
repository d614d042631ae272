"""The search keeps its out-of-fold probabilities and the threshold reuses them (#17).

The search is kfops' own loop over (candidate, fold) fits: its scores must be GridSearchCV's on
the same folds, and the threshold must come from the chosen candidate's out-of-fold
probabilities (sklearn's cross_val_predict of that candidate), not another candidate's.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn import base, metrics, model_selection

from kfops import decision, schema, train

LABEL = "y"


def frame(n: int = 1200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] - 2.0)))
    out = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    out["k"] = rng.choice(["u", "v", "w"], size=n).astype(object)
    out[LABEL] = np.where(rng.random(n) < p, "yes", "no")
    return out


def spec(df: pd.DataFrame) -> schema.Schema:
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == LABEL else "feature")
        for c in df.columns
    )
    return schema.Schema(cols, label=LABEL, task="classification")


@pytest.fixture(scope="module")
def trained():
    df = frame()
    cfg = train.TrainConfig(LABEL, estimator="logistic", search_iterations=5, cv_folds=3)
    return df, train.train(df, spec(df), cfg)


def folds(df: pd.DataFrame) -> model_selection.StratifiedKFold:
    return model_selection.StratifiedKFold(3, shuffle=True, random_state=0)


def unfitted(result: train.TrainResult, params: dict):
    pipe = base.clone(result.pipeline)
    pipe.steps[-1] = (pipe.steps[-1][0], base.clone(decision.inner(result.pipeline)))
    return pipe.set_params(**{f"model__{k}": v for k, v in params.items()})


def test_the_search_scores_are_gridsearchcv_scores(trained):
    df, result = trained
    grid = [{f"model__{k}": [v] for k, v in c["params"].items()} for c in result.search]
    searcher = model_selection.GridSearchCV(
        unfitted(result, result.search[0]["params"]), grid, scoring="roc_auc", cv=folds(df)
    )
    searcher.fit(df.drop(columns=[LABEL]), df[LABEL].to_numpy())
    np.testing.assert_allclose(
        [c["score"] for c in result.search], searcher.cv_results_["mean_test_score"], rtol=0,
        atol=1e-12,
    )  # fmt: skip
    np.testing.assert_allclose(
        [c["std"] for c in result.search], searcher.cv_results_["std_test_score"], rtol=0,
        atol=1e-12,
    )  # fmt: skip
    assert len({round(c["score"], 6) for c in result.search}) > 1


def test_the_threshold_comes_from_the_chosen_candidates_out_of_fold_probabilities(trained):
    df, result = trained
    chosen = [c["params"] for c in result.search].index(result.params)
    assert chosen != 0  # the defaults did not win, so a wrong candidate's scores would show
    actual = df[LABEL].to_numpy() == "yes"
    best_f1 = []
    for candidate in result.search:
        oof = model_selection.cross_val_predict(
            unfitted(result, candidate["params"]), df.drop(columns=[LABEL]), df[LABEL],
            cv=folds(df), method="predict_proba",
        )[:, 1]  # fmt: skip
        best_f1.append(max(metrics.f1_score(actual, oof >= t) for t in np.unique(oof)))
    assert result.decision["validation_f1"] == pytest.approx(best_f1[chosen], abs=1e-12)
    assert abs(best_f1[0] - best_f1[chosen]) > 1e-6  # candidate 0's data would give another F1

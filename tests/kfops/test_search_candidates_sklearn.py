"""kfops' search candidates are RandomizedSearchCV's, with the estimator's defaults put first.

A user coming from `RandomizedSearchCV(n_iter=n, random_state=seed)` over the same space gets
its first n - 1 candidates after the defaults, which take the place of sklearn's n-th
(ParameterSampler permutes the grid, so a shorter draw is a prefix of a longer one while n stays
between 1 % and 99 % of the grid, or both take the whole grid). When the defaults are among
those n - 1 they are tried once, so kfops tries n - 1 candidates where sklearn tries n. Outside
that range (n - 1 under 1 % of the grid: 2 candidates of HistGradientBoosting's 108) sklearn
samples differently and the lists part.
"""

import pytest
from sklearn.model_selection import ParameterSampler

from kfops.train import setup


@pytest.mark.parametrize(
    ("estimator", "task", "n", "seed"),
    [
        ("hist_gradient_boosting", "classification", 8, 0),
        ("hist_gradient_boosting", "classification", 8, 3),
        ("hist_gradient_boosting", "regression", 20, 5),
        ("random_forest", "regression", 8, 0),
        ("random_forest", "classification", 5, 11),
        ("logistic", "classification", 8, 0),  # 4 candidates: both take the whole grid
        ("ridge", "regression", 3, 2),
    ],
)
def test_candidates_are_the_defaults_then_randomized_search_cvs(estimator, task, n, seed):
    space = setup._SPACES[estimator]
    estimator = "linear" if estimator in ("logistic", "ridge") else estimator
    defaults = setup._estimator(task, estimator, seed, None).get_params()
    first = {k: defaults[k] for k in sorted(space)}
    # what RandomizedSearchCV(n_iter=n, random_state=seed) tries (ParameterSampler caps n)
    sklearns = [dict(sorted(c.items())) for c in ParameterSampler(space, n, random_state=seed)]
    expected = [first] + [c for c in sklearns[: n - 1] if c != first]
    assert setup.candidates(estimator, task, n, seed) == expected


def test_the_bench_spaces_first_seven_draws_follow_the_defaults():
    # bench/pipeline.py's bare RandomizedSearchCV(n_iter=8, random_state=0) over this space
    space = setup._SPACES["hist_gradient_boosting"]
    bare = [dict(sorted(c.items())) for c in ParameterSampler(space, 8, random_state=0)]
    ours = setup.candidates("hist_gradient_boosting", "classification", 8, 0)
    assert ours[0] == {"l2_regularization": 0.0, "learning_rate": 0.1, "max_leaf_nodes": 31,
                       "min_samples_leaf": 20}  # fmt: skip
    assert ours[1:] == bare[:7]

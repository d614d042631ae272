"""The random and stratified splits are numpy's own: what they guarantee, and that they need no
scikit-learn (the split step's start-up no longer pays its import)."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn import model_selection

from kfops import split


@pytest.mark.parametrize(("n", "seed", "fraction"), [(10, 0, 0.2), (101, 3, 0.3), (5000, 0, 0.2)])
def test_random_split_takes_the_rows_train_test_split_takes_for_the_seed(n, seed, fraction):
    df = pd.DataFrame({"v": np.linspace(0, 1, n), "row": np.arange(n)})  # continuous: random
    cfg = split.SplitConfig(label="v", strategy="random", seed=seed, test_fraction=fraction)
    parts = split.split(df, cfg)
    train, test = model_selection.train_test_split(
        np.arange(n), test_size=int(np.ceil(n * fraction)), random_state=seed
    )
    assert parts.train["row"].tolist() == sorted(train)
    assert parts.test["row"].tolist() == sorted(test)


def _labels(rng, n, weights):
    names = [f"c{i}" for i in range(len(weights))]
    y = rng.choice(names, p=np.asarray(weights) / sum(weights), size=n)
    y[: 2 * len(names)] = np.repeat(names, 2)  # every class has 2+ rows
    return y


@pytest.mark.parametrize("case", range(40))
def test_stratified_split_is_proportional_to_a_row_and_keeps_every_class_on_both_sides(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(200, 3000))  # both sides hold 20+ rows: above the class count
    weights = rng.dirichlet(np.full(int(rng.integers(2, 9)), 0.7))
    fraction = float(rng.choice([0.1, 0.2, 0.25, 1 / 3, 0.5, 0.8]))
    y = _labels(rng, n, weights)
    df = pd.DataFrame({"y": y, "row": np.arange(n)})
    size = int(np.ceil(n * fraction))
    classes, counts = np.unique(y, return_counts=True)
    parts = split.split(df, split.SplitConfig(label="y", seed=case, test_fraction=fraction))
    assert len(parts.test) == size and len(parts.train) == n - size
    test_counts = parts.test["y"].value_counts()
    for name, count in zip(classes, counts, strict=True):
        got = int(test_counts.get(name, 0))
        assert 1 <= got <= count - 1, (name, got, count)
        exact = count * size / n
        # within a row of the exact share, unless the one-row-each-side bound moved it
        assert abs(got - exact) < 1 or got in (1, count - 1), (name, got, exact)
    rows = sorted(parts.train["row"].tolist() + parts.test["row"].tolist())
    assert rows == list(range(n))


def test_stratified_gives_the_largest_remainders_their_row():
    # exact test shares 137.4, 41.0, 19.8, 1.8: the floors leave 2 rows for the two largest
    # fractional parts (c2's .8 and c3's .8, not c0's .4)
    y = np.repeat(["c0", "c1", "c2", "c3"], [687, 205, 99, 9])
    parts = split.split(pd.DataFrame({"y": y, "r": np.arange(1000)}), split.SplitConfig(label="y"))
    assert parts.report["test"]["class_counts"] == {"c0": 137, "c1": 41, "c2": 20, "c3": 2}


def test_stratified_split_pins_its_rows_for_a_seed():
    """The same data and seed give these rows on any numpy (RandomState's stream is frozen)."""
    df = pd.DataFrame({"y": np.arange(20) % 2, "row": np.arange(20)})
    parts = split.split(df, split.SplitConfig(label="y", seed=3, test_fraction=0.25))
    assert parts.test["row"].tolist() == PINNED


PINNED = [1, 2, 4, 14, 17]


def test_stratified_and_random_splits_import_no_scikit_learn():
    probe = (
        "import json, sys\nimport numpy as np, pandas as pd\nfrom kfops import split\n"
        "df = pd.DataFrame({'y': np.arange(100) % 3, 'v': np.linspace(0, 1, 100)})\n"
        "split.split(df, split.SplitConfig(label='y'))\n"
        "split.split(df, split.SplitConfig(label='v', strategy='random'))\n"
        "print(json.dumps([m for m in ('sklearn', 'scipy') if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []

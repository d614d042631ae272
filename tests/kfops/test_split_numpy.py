"""The random and stratified splits are numpy's own: what they guarantee, and that they need no
scikit-learn (the split step's start-up no longer pays its import)."""

import json
import subprocess
import sys
import time

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


def _rescan_quota(counts, size):
    """The quota as first written: one rescan of every class per row moved (the oracle)."""
    share = counts * size / counts.sum()
    quota = np.clip(np.floor(share).astype(np.int64), 1, counts - 1)
    while (missing := size - int(quota.sum())) != 0:
        gap = share - quota
        if missing > 0:
            quota[np.argmax(np.where(quota < counts - 1, gap, -np.inf))] += 1
        else:
            quota[np.argmin(np.where(quota > 1, gap, np.inf))] -= 1
    return quota


@pytest.mark.parametrize("case", range(300))
def test_test_quota_is_the_rescans_both_when_adding_and_taking_back_rows(case):
    rng = np.random.default_rng(case)
    small = rng.integers(2, 4, size=int(rng.integers(2, 40)))  # shares under 1 row: clipped up
    large = rng.integers(20, 400, size=int(rng.integers(1, 4)))
    counts = rng.permutation(np.concatenate([small, large]))
    k, n = len(counts), int(counts.sum())
    size = int(rng.integers(k, n - k + 1))
    np.testing.assert_array_equal(split._test_quota(counts, size), _rescan_quota(counts, size))


def test_test_quota_of_an_id_like_label_is_not_quadratic_in_the_classes():
    """200k classes of 2-5 rows (a label that is nearly an id): the rescan per row took
    minutes; the heap takes well under a second."""
    counts = np.random.default_rng(0).integers(2, 6, size=200_000)
    size = int(np.ceil(counts.sum() * 0.45))
    started = time.process_time()
    quota = split._test_quota(counts, size)
    assert time.process_time() - started < 10
    assert quota.sum() == size and (quota >= 1).all() and (quota <= counts - 1).all()


def test_a_categorical_label_with_unused_categories_is_split_on_the_classes_it_has():
    """A pandas categorical (as a Parquet file written from one reads back) lists every
    category; one without rows is no class that must be on both sides."""
    y = pd.Categorical(["a", "b"] * 20, categories=["a", "b", "unused"])
    parts = split.split(pd.DataFrame({"y": y, "r": np.arange(40)}), split.SplitConfig(label="y"))
    assert len(parts.test) == 8
    assert parts.test["y"].value_counts()[["a", "b"]].tolist() == [4, 4]


def _seeded_configs(seed):
    from kfops import traffic, train
    from kfops.monitor import fresh, rules

    yield lambda: split.SplitConfig(label="y", seed=seed)
    yield lambda: train.TrainConfig(label="y", task="classification", seed=seed)
    yield lambda: fresh.FreshDataConfig(seed=seed)
    yield lambda: rules.MonitorConfig(seed=seed)
    yield lambda: traffic.TrafficConfig(seed=seed)  # default_rng refuses a negative seed


@pytest.mark.parametrize("config", range(5))
def test_a_seed_numpy_cannot_take_is_a_config_error_in_every_seeded_step(config):
    """numpy's RandomState (scikit-learn's random_state, pandas' sample) raised a bare
    ValueError for these, a traceback from the step."""
    from kfops import errors

    for bad in (2**32, -1, True):
        make = list(_seeded_configs(bad))[config]
        with pytest.raises(errors.ConfigError) as caught:
            make()
        assert str(caught.value) == f"seed must be an integer in [0, 4294967295], got {bad!r}"
    list(_seeded_configs(2**32 - 1))[config]()
    list(_seeded_configs(0))[config]()

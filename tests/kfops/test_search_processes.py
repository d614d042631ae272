"""How the search's worker processes start (issue 16: the per-step fixed cost).

One-thread workers are forked from the train step's process, so they start with scikit-learn
loaded and the rows in memory instead of importing scikit-learn again (~1.3-2 CPU s each);
workers of 2+ OpenMP threads start fresh (loky), since libgomp's pool does not survive fork.
Either way the scores, the winner and the model bytes are those of the one-process search.
"""

import os
import sys
import types

import numpy as np
import pandas as pd
import pytest

from kfops import errors, modelio, schema, train
from kfops.train import core


def _frame(n=600):
    rng = np.random.default_rng(11)
    df = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(4)})
    df["c"] = rng.choice(list("abc"), size=n).astype(object)
    df["y"] = (df.x0 + (df.c == "a") + rng.normal(size=n) > 0.5).astype(int)
    return df


def _schema(df):
    cols = tuple(
        schema.ColumnSpec(c, schema.dtype_of(df[c]), role="label" if c == "y" else "feature")
        for c in df.columns
    )
    return schema.Schema(cols, label="y", task="classification")


def _train(df, **kw):
    cfg = train.TrainConfig(label="y", task="classification", cv_folds=2, **kw)
    return train.train(df, _schema(df), cfg)


def _record_fits(seen, monkeypatch):
    """Each search fit appends `pid parent-pid inherited` to `seen`; inherited says whether the
    fitting process has a module only this process put in memory (a fork has it, a fresh
    interpreter does not)."""
    original = core._fit_fold
    monkeypatch.setitem(sys.modules, "only_in_the_parent", types.ModuleType("only_in_the_parent"))

    def recording(*args):
        with open(seen, "a") as f:
            f.write(f"{os.getpid()} {os.getppid()} {'only_in_the_parent' in sys.modules}\n")
        return original(*args)

    monkeypatch.setattr(core, "_fit_fold", recording)


def test_one_thread_workers_are_forks_of_the_step_process(tmp_path, monkeypatch):
    """The workers see a module only this process has in memory: they are its forks (a fresh
    interpreter, as loky starts, would have to import everything, scikit-learn included)."""
    seen = tmp_path / "pids"
    _record_fits(seen, monkeypatch)
    result = _train(_frame(), search_iterations=3, n_threads=2)
    assert result.search_processes == 2
    lines = seen.read_text().splitlines()
    assert len(lines) == 6  # 3 candidates x 2 folds, each fit once
    fits = {tuple(line.split()) for line in lines}
    assert {inherited for _, _, inherited in fits} == {"True"}
    assert {int(parent) for _, parent, _ in fits} == {os.getpid()}
    assert str(os.getpid()) not in {pid for pid, _, _ in fits} and len(fits) == 2


def test_every_way_of_running_the_search_gives_the_same_scores_and_model(tmp_path):
    """Two fits: serial (1 CPU), two forked one-thread workers (2 CPUs) and two fresh workers of
    two threads (4 CPUs)."""
    df = _frame()
    seen = {}
    for n in (1, 2, 4):
        result = _train(df, search_iterations=1, n_threads=n)
        path = tmp_path / f"{n}.joblib"
        seen[n] = (result.search, result.params, modelio.save_model(result.pipeline, path))
        assert result.search_processes == min(n, 2)
    assert seen[1] == seen[2] == seen[4]


def test_workers_start_fresh_off_linux(tmp_path, monkeypatch):
    """macOS has fork, but its system libraries are not fork-safe (CPython spawns there): the
    one-thread workers then start as fresh interpreters, and the scores are the same."""
    seen = tmp_path / "pids"
    _record_fits(seen, monkeypatch)
    df = _frame()
    forked = _train(df, search_iterations=1, n_threads=2).search
    seen.unlink()
    monkeypatch.setattr(core.platform, "system", lambda: "Darwin")
    result = _train(df, search_iterations=1, n_threads=2)
    assert result.search_processes == 2 and result.search == forked
    fits = [line.split() for line in seen.read_text().splitlines()]
    assert len(fits) == 2 and {inherited for _, _, inherited in fits} == {"False"}
    assert str(os.getpid()) not in {pid for pid, _, _ in fits}


def test_a_fit_that_fails_in_a_forked_worker_is_a_model_error(monkeypatch):
    def failing(*args):
        raise ValueError("Input contains NaN")

    monkeypatch.setattr(core, "_fit_fold", failing)
    with pytest.raises(errors.ModelError) as caught:
        _train(_frame(), search_iterations=2, n_threads=2)
    assert str(caught.value) == (
        "hist_gradient_boosting failed during the hyperparameter search: Input contains NaN"
    )


def test_a_search_worker_that_dies_is_a_model_error(monkeypatch):
    monkeypatch.setattr(core, "_fit_fold", lambda *args: os._exit(9))  # as the OOM killer would
    with pytest.raises(errors.ModelError, match="a search worker process died"):
        _train(_frame(), search_iterations=2, n_threads=2)

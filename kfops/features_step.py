"""`DerivedFeatures`, the scikit-learn step of `kfops.features`, kept apart from its sklearn import.

The class says it lives in `kfops.features` (its `__module__`), which hands it out by name
(`kfops.features.__getattr__`): models pickled before the split and after it name the same
`kfops.features.DerivedFeatures`. A step that only parses or checks feature specs (push,
`kfops run`) then skips scikit-learn's import, about a second of its start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import base

from kfops import features


class DerivedFeatures(base.TransformerMixin, base.BaseEstimator):
    """Adds derived columns to a DataFrame: the first step of a fitted kfops Pipeline.

    Stateless (nothing is learned from the data), so it is fitted only to record the column
    names it was trained on. Parameters are the JSON-form specs, so `get_params` and the pickle
    hold exactly what the user declared.
    """

    def __init__(self, specs: Sequence[Mapping[str, Any]] = ()):
        self.specs = specs

    def fit(self, x: pd.DataFrame, y: Any = None) -> DerivedFeatures:
        """Records the input column names and checks every feature's inputs are among them."""
        self.features_ = features.parse_all(list(self.specs))
        self.feature_names_in_ = np.asarray([str(c) for c in x.columns], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        missing = [(f.name, c) for f in self.features_ for c in f.inputs if c not in x.columns]
        if missing:
            name, column = missing[0]
            raise ValueError(f"derived feature {name!r}: column {column!r} is not in the data")
        return self

    def transform(self, x: pd.DataFrame) -> pd.DataFrame:
        """The frame with every derived column appended (raw columns kept, in order)."""
        arrays = {}
        for f in self.features_:
            for c in f.inputs:
                if c not in arrays:
                    if c not in x.columns:
                        raise ValueError(f"derived feature {f.name!r}: input {c!r} is missing")
                    arrays[c] = x[c].to_numpy()
        return x.assign(**{f.name: features.compute(f, arrays) for f in self.features_})

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Raw column names, then the derived ones."""
        derived = [f.name for f in self.features_]
        return np.asarray([*self.feature_names_in_, *derived], dtype=object)


# pickles (and sklearn's repr) name it where users and older models know it
DerivedFeatures.__module__ = "kfops.features"

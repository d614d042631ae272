"""validate takes each column's null mask once and hands it to the column and quality checks
(issue 17): neither scans a 1M-row column for nulls again, and the answers are the same."""

import numpy as np
import pandas as pd
import pytest

from kfops import validate as v
from kfops.validate import checks, quality


def frame(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    region = rng.choice(["n", "s", "e", None], n).astype(object)
    charges = rng.random(n) * 100
    charges[(region == "s") & (rng.random(n) < 0.5)] = np.nan  # nulls concentrated in one slice
    return pd.DataFrame(
        {
            "region": region,
            "plan": rng.choice(["a", "b", np.nan], n).astype(object),
            "charges": charges,
            "y": rng.integers(0, 2, n),
        }
    )


def test_checks_given_the_masks_answer_as_without():
    df = frame()
    sch = v.infer_schema(df.iloc[:500], "y")  # so later rows can break the schema's limits
    cfg = v.ValidateConfig()
    masks = {c: df[c].isna().to_numpy() for c in df.columns}
    for spec in sch.columns:
        got = checks.column_checks(df[spec.name], spec, cfg, masks[spec.name])
        assert got == checks.column_checks(df[spec.name], spec, cfg)
    got = quality.quality_checks(df, sch, cfg, "region", masks)
    assert got == quality.quality_checks(df, sch, cfg, "region")
    assert any(a.rule == "null_concentration" for a in got[0])


def test_validate_does_not_scan_columns_for_nulls_twice(monkeypatch):
    df = frame()
    sch = v.infer_schema(df, "y")
    expected = v.validate(df, sch, sensitive_column="region").to_dict()
    plain = pd.Series.isna
    scanned = []

    def counting(self):
        scanned.append(self.name)
        return plain(self)

    monkeypatch.setattr(pd.Series, "isna", counting)
    monkeypatch.setattr(pd.Series, "hasnans", property(lambda self: pytest.fail("rescanned")))
    assert v.validate(df, sch, sensitive_column="region").to_dict() == expected
    features = [name for name in scanned if name != "y"]  # label_checks reads the label again
    assert sorted(features) == ["charges", "plan", "region"]  # once per column


def test_the_given_masks_are_used():
    df = frame()
    sch = v.infer_schema(df, "y")
    cfg = v.ValidateConfig()
    spec = next(s for s in sch.columns if s.name == "charges")
    none = np.zeros(len(df), bool)  # a mask saying "no nulls": the checks must believe it
    assert checks.column_checks(df["charges"].fillna(1.0), spec, cfg) == checks.column_checks(
        df["charges"].fillna(1.0), spec, cfg, none
    )
    found, _ = quality.quality_checks(df, sch, cfg, "region", {"charges": none})
    assert not any(a.rule == "null_concentration" and a.column == "charges" for a in found)

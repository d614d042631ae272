import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from kfops import dataio, datasets, errors

CHURN_COLUMNS = [
    "customer_id",
    "signup_date",
    "region",
    "plan",
    "age_band",
    "contract",
    "payment_method",
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls",
    "has_internet",
    "churned",
]


def test_churn_has_documented_columns_and_types():
    df = datasets.churn(300, seed=0)
    assert list(df.columns) == CHURN_COLUMNS
    assert len(df) == 300
    assert df["customer_id"].is_unique
    assert pd.api.types.is_datetime64_any_dtype(df["signup_date"])
    assert df["has_internet"].dtype == bool
    assert df["tenure_months"].dtype == np.int64 and df["support_calls"].dtype == np.int64
    assert set(df["churned"].unique()) == {0, 1}


def test_churn_categories_use_the_documented_values():
    df = datasets.churn(2000, seed=1)
    assert set(df["region"]) == set(datasets.REGIONS)
    assert set(df["plan"]) == set(datasets.PLANS)
    assert set(df["age_band"]) == set(datasets.AGE_BANDS)
    assert set(df["contract"]) == set(datasets.CONTRACTS)
    assert set(df["payment_method"]) == set(datasets.PAYMENT_METHODS)


def test_churn_is_deterministic_for_a_seed(tmp_path):
    a = dataio.write_frame(datasets.churn(500, seed=7), tmp_path / "a.parquet")
    b = dataio.write_frame(datasets.churn(500, seed=7), tmp_path / "b.parquet")
    assert a["sha256"] == b["sha256"]


def test_churn_differs_across_seeds():
    a, b = datasets.churn(500, seed=1), datasets.churn(500, seed=2)
    assert not a["monthly_charges"].equals(b["monthly_charges"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_churn_positive_rate_and_missing_values_are_realistic(seed):
    df = datasets.churn(5000, seed=seed)
    assert 0.2 <= df["churned"].mean() <= 0.32
    assert 0.03 <= df["total_charges"].isna().mean() <= 0.05
    assert df.drop(columns="total_charges").notna().all().all()


def test_churn_label_is_learnable_without_a_leaking_feature():
    df = datasets.churn(6000, seed=0)
    y = df.pop("churned")
    x = df.drop(columns=["customer_id", "signup_date"])
    for col in x.select_dtypes(object):
        x[col] = x[col].astype("category")
    single = {
        c: roc_auc_score(y, x[c].cat.codes if x[c].dtype == "category" else x[c].fillna(-1))
        for c in x
    }
    assert max(max(a, 1 - a) for a in single.values()) < 0.8
    model = HistGradientBoostingClassifier(
        categorical_features="from_dtype", max_iter=60, learning_rate=0.1, random_state=0
    )
    model.fit(x.iloc[:4000], y.iloc[:4000])
    auc = roc_auc_score(y.iloc[4000:], model.predict_proba(x.iloc[4000:])[:, 1])
    assert 0.78 <= auc <= 0.9


def test_churn_drift_raises_charges_shortens_tenure_and_shifts_mix():
    base, drifted = datasets.churn(5000, seed=0), datasets.churn(5000, seed=0, drift=1.0)
    assert drifted["monthly_charges"].mean() > base["monthly_charges"].mean() * 1.1
    assert drifted["tenure_months"].mean() < base["tenure_months"].mean() * 0.75
    share = lambda df, col, v: (df[col] == v).mean()  # noqa: E731
    assert (
        share(drifted, "contract", "month-to-month")
        > share(base, "contract", "month-to-month") + 0.15
    )
    assert share(drifted, "region", "south") > share(base, "region", "south") + 0.15


def test_churn_refuses_bad_sizes_and_drift():
    with pytest.raises(errors.ConfigError, match="rows must be >= 1"):
        datasets.churn(0)
    with pytest.raises(errors.ConfigError, match="drift must be"):
        datasets.churn(10, drift=-0.5)


def test_breast_cancer_has_clean_names_and_malignant_label():
    df = datasets.breast_cancer()
    assert df.shape == (569, 31)
    assert "mean_radius" in df.columns
    assert not any(" " in c for c in df.columns)
    assert df["malignant"].sum() == 212  # the dataset has 212 malignant and 357 benign tumours


def test_load_builtin_reads_options():
    df = datasets.load_builtin("builtin:churn?rows=120&seed=3&drift=0.5")
    pd.testing.assert_frame_equal(df, datasets.churn(120, seed=3, drift=0.5))


def test_load_builtin_defaults_to_5000_churn_rows():
    assert len(datasets.load_builtin("builtin:churn")) == 5000


def test_load_builtin_reads_breast_cancer():
    assert datasets.load_builtin("builtin:breast_cancer").shape == (569, 31)


def test_load_builtin_names_unknown_dataset_and_lists_available():
    with pytest.raises(
        errors.ConfigError, match="unknown builtin dataset 'iris'.*breast_cancer, churn"
    ):
        datasets.load_builtin("builtin:iris")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "builtin:churn?size=10",
            r"unknown option\(s\) \['size'\]; accepted options: rows, seed, drift",
        ),
        ("builtin:churn?rows=ten", "rows='ten' is not a valid int"),
        ("builtin:churn?drift=much", "drift='much' is not a valid float"),
        ("builtin:churn?seed=1&seed=2", "an option given twice"),
        ("builtin:breast_cancer?rows=5", "accepted options: none"),
        ("churn", "not a builtin: URI"),
    ],
)
def test_load_builtin_names_bad_option(uri, message):
    with pytest.raises(errors.ConfigError, match=message):
        datasets.load_builtin(uri)

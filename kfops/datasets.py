"""Built-in data sources: a synthetic customer-churn generator and scikit-learn's breast cancer set.

Both work offline (nothing is downloaded), so `kfops run`, the tests and the benchmarks have data on
any machine. `load_builtin` turns a `builtin:NAME?key=value` URI into a frame.

The churn generator draws every column with vectorised numpy from one seeded generator, then draws
the label from a logistic model of the features plus noise, so the label is learnable (gradient
boosting reaches a ROC AUC around 0.85) while no single feature gives it away. `drift` shifts the
feature distributions (higher charges, shorter tenure, more month-to-month contracts, more customers
in the south) for monitoring demos; the label model itself does not change.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

import numpy as np
import pandas as pd

from kfops import errors

REGIONS = ("north", "south", "east", "west")
PLANS = ("basic", "standard", "premium")
AGE_BANDS = ("18-29", "30-44", "45-59", "60+")
CONTRACTS = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("electronic_check", "mailed_check", "bank_transfer", "credit_card")
CHURN_LABEL = "churned"
BREAST_CANCER_LABEL = "malignant"
_REFERENCE_DATE = np.datetime64("2024-06-30")
# column -> (values, base probabilities, change per unit of drift); drawn in this order.
_MIX = {
    "region": (REGIONS, (0.3, 0.25, 0.25, 0.2), (-0.1, 0.25, -0.1, -0.05)),
    "plan": (PLANS, (0.5, 0.35, 0.15), (0.0, 0.0, 0.0)),
    "age_band": (AGE_BANDS, (0.25, 0.3, 0.27, 0.18), (0.0, 0.0, 0.0, 0.0)),
    "contract": (CONTRACTS, (0.55, 0.25, 0.2), (0.25, -0.12, -0.13)),
    "payment_method": (PAYMENT_METHODS, (0.35, 0.2, 0.23, 0.22), (0.0, 0.0, 0.0, 0.0)),
}
_MAX_TENURE = 72


def churn(n_rows: int = 5000, seed: int = 0, drift: float = 0.0) -> pd.DataFrame:
    """Synthetic customer churn: mixed feature types, realistic missing values, a 0/1 label.

    Args:
        n_rows: number of customers (rows).
        seed: seeds the one random generator; the same (n_rows, seed, drift) gives the same frame.
        drift: 0 gives the reference distribution; larger values shift charges up, tenure down,
            contracts towards month-to-month and the region mix towards the south (1 is a strong,
            clearly detectable shift).

    Returns:
        Columns customer_id, signup_date, region, plan, age_band, contract, payment_method,
        tenure_months, monthly_charges, total_charges (about 4% missing), support_calls,
        has_internet, churned (about 25% positive at drift 0).

    Raises:
        ConfigError: n_rows < 1 or drift < 0.
    """
    if int(n_rows) < 1:
        raise errors.ConfigError(f"churn: rows must be >= 1, got {n_rows}")
    if not np.isfinite(drift) or drift < 0:
        raise errors.ConfigError(f"churn: drift must be a finite number >= 0, got {drift}")
    n, rng, d = int(n_rows), np.random.default_rng(seed), float(drift)
    codes = {col: _pick(rng, n, base, shift, d) for col, (_, base, shift) in _MIX.items()}
    has_internet = rng.random(n) < 0.78
    tenure = _tenure(rng, codes["contract"], d)
    monthly = _monthly_charges(rng, codes["plan"], has_internet, d)
    support_calls = rng.poisson(1.0 + 0.6 * (codes["plan"] == 0) + 0.5 * has_internet, n)
    total = np.round(monthly * tenure * rng.normal(1.0, 0.03, n), 2)
    # Like the public Telco churn data, brand-new customers have no total yet; a few more are
    # missing at random (billing export gaps).
    total[(tenure == 0) | (rng.random(n) < 0.035)] = np.nan
    signup = _REFERENCE_DATE - (tenure * 30.44 + rng.integers(0, 30, n)).astype("timedelta64[D]")
    churned = _label(rng, codes, tenure, monthly, support_calls, has_internet)
    return pd.DataFrame(
        {
            "customer_id": pd.Index(np.arange(n)).map("C{:07d}".format).to_numpy(dtype=object),
            "signup_date": signup.astype("datetime64[ns]"),
            **{col: np.asarray(_MIX[col][0], dtype=object)[codes[col]] for col in _MIX},
            "tenure_months": tenure.astype(np.int64),
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support_calls.astype(np.int64),
            "has_internet": has_internet,
            CHURN_LABEL: churned.astype(np.int64),
        }
    )


def _pick(
    rng: np.random.Generator, n: int, base: tuple[float, ...], shift: tuple[float, ...], d: float
) -> np.ndarray:
    """Category codes drawn from base + drift * shift (floored at 2% and renormalised)."""
    probs = np.clip(np.asarray(base) + d * np.asarray(shift), 0.02, None)
    return rng.choice(len(base), size=n, p=probs / probs.sum())


def _tenure(rng: np.random.Generator, contract: np.ndarray, drift: float) -> np.ndarray:
    """Months as a customer: longer contracts mean longer tenure; drift shortens it."""
    mean = np.array([14.0, 32.0, 48.0])[contract] / (1.0 + 0.6 * drift)
    return np.clip(np.round(rng.gamma(2.0, mean / 2.0)), 0, _MAX_TENURE).astype(np.int64)


def _monthly_charges(
    rng: np.random.Generator, plan: np.ndarray, has_internet: np.ndarray, drift: float
) -> np.ndarray:
    """Charges by plan plus internet, with noise; drift raises prices."""
    base = np.array([30.0, 55.0, 85.0])[plan] + 18.0 * has_internet
    charges = (base + rng.normal(0.0, 9.0, len(plan))) * (1.0 + 0.2 * drift)
    return np.round(np.clip(charges, 10.0, None), 2)


def _label(
    rng: np.random.Generator,
    codes: dict[str, np.ndarray],
    tenure: np.ndarray,
    monthly: np.ndarray,
    support_calls: np.ndarray,
    has_internet: np.ndarray,
) -> np.ndarray:
    """0/1 churn drawn from a logistic model of the features; the noise keeps AUC below ~0.9."""
    contract = codes["contract"]
    logit = (
        -2.4
        + np.array([0.9, -0.4, -1.2])[contract]
        - 0.055 * (tenure - 24.0)
        + 0.025 * (monthly - 60.0)
        + 0.5 * (support_calls - 1.5)
        + np.array([0.5, 0.0, -0.15, -0.2])[codes["payment_method"]]
        + np.array([0.3, 0.0, -0.1, 0.15])[codes["age_band"]]
        + np.array([0.0, 0.1, 0.3, -0.15])[codes["region"]]
        + 0.4 * (has_internet & (contract == 0))
        + rng.normal(0.0, 0.5, len(contract))
    )
    return (rng.random(len(contract)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)


def breast_cancer() -> pd.DataFrame:
    """Scikit-learn's bundled Wisconsin breast cancer data (569 rows, 30 numeric features).

    Column names use underscores ("mean radius" -> "mean_radius"). The label `malignant` is 1 for
    malignant tumours; scikit-learn's own `target` codes malignant as 0, which reads backwards in
    metrics such as recall.
    """
    from sklearn import datasets as sk_datasets  # noqa: PLC0415 (sklearn import is slow; lazy)

    bunch = sk_datasets.load_breast_cancer(as_frame=True)
    frame = bunch.data.rename(columns=lambda c: c.strip().replace(" ", "_"))
    frame[BREAST_CANCER_LABEL] = (bunch.target.to_numpy() == 0).astype(np.int64)
    return frame


def _churn_from_options(options: dict[str, str]) -> pd.DataFrame:
    return churn(
        n_rows=_option(options, "rows", int, 5000),
        seed=_option(options, "seed", int, 0),
        drift=_option(options, "drift", float, 0.0),
    )


def _breast_cancer_from_options(options: dict[str, str]) -> pd.DataFrame:
    return breast_cancer()


# name -> (builder, accepted options)
BUILTINS: dict[str, tuple[Callable[[dict[str, str]], pd.DataFrame], tuple[str, ...]]] = {
    "churn": (_churn_from_options, ("rows", "seed", "drift")),
    "breast_cancer": (_breast_cancer_from_options, ()),
}


def load_builtin(uri: str) -> pd.DataFrame:
    """Builds a built-in dataset from its URI.

    Args:
        uri: `builtin:NAME` with optional query options, e.g. `builtin:churn`,
            `builtin:churn?rows=1000&seed=3&drift=0.5`, `builtin:breast_cancer`.

    Returns:
        The frame.

    Raises:
        ConfigError: not a builtin URI, unknown name, unknown option or a bad option value; the
            message lists what exists.
    """
    if not uri.startswith("builtin:"):
        raise errors.ConfigError(f"{uri!r} is not a builtin: URI; use builtin:NAME")
    name, _, query = uri[len("builtin:") :].partition("?")
    if name not in BUILTINS:
        raise errors.ConfigError(
            f"unknown builtin dataset {name!r}; available: {', '.join(sorted(BUILTINS))}"
        )
    build, allowed = BUILTINS[name]
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    options = dict(pairs)
    unknown = sorted({k for k, _ in pairs} - set(allowed))
    if unknown or len(options) != len(pairs):
        accepted = ", ".join(allowed) if allowed else "none"
        problem = f"unknown option(s) {unknown}" if unknown else "an option given twice"
        raise errors.ConfigError(f"builtin:{name}: {problem}; accepted options: {accepted}")
    return build(options)


def _option(options: dict[str, str], key: str, kind: type, default: int | float) -> int | float:
    """One typed option value; the error names the option and the bad value."""
    if key not in options:
        return default
    try:
        return kind(options[key])
    except ValueError as e:
        raise errors.ConfigError(
            f"builtin option {key}={options[key]!r} is not a valid {kind.__name__}"
        ) from e

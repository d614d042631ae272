"""Column flags through the real pipeline (kfp.local): `--ignore`, `--id` and `--type` end up in the
registered schema, the run record and the summary; an unknown `--drop` column fails validate in one
line with exit 2. (The issue's four datasets are in test_first_hour_data.py.)"""

import json

import numpy as np
import pandas as pd
import pytest

from kfops import errors, registry, runs, store
from tests.pipelines.test_first_hour_data import _run

pytestmark = pytest.mark.slow


def _orders(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Orders with a key, a numeric code that is really a category, and a channel to slice by."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    store_code = rng.choice([101, 205, 307], size=n)  # codes, not quantities
    y = (x + 0.8 * (store_code == 205) + rng.normal(scale=0.6, size=n) > 0.4).astype(int)
    frame = pd.DataFrame({
        "order_id": [f"o-{i:05d}" for i in range(n)],
        "x": x,
        "store_code": store_code,
        "channel": rng.choice(["web", "shop"], size=n),
        "y": y,
    })  # fmt: skip
    dupes = frame.sample(n=n // 8, random_state=seed)  # 12.5% exact repeats: a warning, not a stop
    return pd.concat([frame, dupes], ignore_index=True)


def test_ignore_id_and_type_reach_the_schema_the_record_and_the_summary(capsys, tmp_path):
    path = tmp_path / "orders.csv"
    _orders().to_csv(path, index=False)
    flags = ["--label", "y", "--id", "order_id", "--ignore", "channel", "--slice", "channel",
             "--type", "store_code=categorical"]  # fmt: skip
    code, summary = _run(capsys, tmp_path, path, *flags)
    assert code == 0 and summary["blessed"] is True, summary
    assert any("duplicate_rows" in w for w in summary["warnings"]), summary["warnings"]
    st = store.open_store(str(tmp_path / "store"))
    sch = registry.Registry(st).load("orders", "1").schema
    assert sch.column("order_id").role == "id" and sch.column("channel").role == "ignore"
    assert sch.column("store_code").dtype == "string"
    assert sch.column("store_code").domain == ("101", "205", "307")
    assert sch.feature_names == ["x", "store_code"]
    header = runs.RunIndex(st).show(summary["run_id"])["parameters"]
    assert header["id_columns"] == ["order_id"] and header["ignore_columns"] == ["channel"]
    assert header["column_types"] == {"store_code": "categorical"}
    # The second run is held to v1's schema: the same flags restate it and pass; the summary
    # carries the gate's comparison with the champion.
    code, again = _run(capsys, tmp_path, path, *flags, "--seed", "1")
    assert code == 0 and again["status"] == "succeeded", again
    assert again["champion"] and " vs champion " in again["champion"], again
    # ... and a flag that would change that schema is refused, naming both
    code, changed = _run(capsys, tmp_path, path, "--label", "y", "--ignore", "x")
    assert code == errors.ConfigError.exit_code and changed["failed_step"] == "validate", changed
    assert "--ignore x: the schema from " in changed["error"], changed["error"]
    assert "has it as role 'feature'" in changed["error"]


def test_an_unknown_drop_column_fails_validate_in_one_line_exit_2(capsys, tmp_path):
    path = tmp_path / "orders.csv"
    _orders(300).to_csv(path, index=False)
    code, summary = _run(capsys, tmp_path, path, "--label", "y", "--drop", "store_cod")
    assert code == errors.ConfigError.exit_code and summary["failed_step"] == "validate", summary
    assert "--drop 'store_cod': no such column; did you mean 'store_code'?" in summary["error"]
    assert "\n" not in summary["error"]
    assert summary["model_version"] is None
    assert registry.Registry(store.open_store(str(tmp_path / "store"))).models() == []
    json.dumps(summary)  # the --json summary carries the same error

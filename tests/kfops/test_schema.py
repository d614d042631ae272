import pandas as pd
import pytest

from kfops import errors, schema


def _schema():
    return schema.Schema(
        columns=(
            schema.ColumnSpec("age", "int", nullable=False, max_null_fraction=0.0, min=18, max=90),
            schema.ColumnSpec("plan", "string", domain=("basic", "pro")),
            schema.ColumnSpec("churned", "int", role="label"),
        ),
        label="churned",
        task="classification",
        label_classes=(0, 1),
    )


def test_schema_round_trips_through_json(tmp_path):
    s = _schema()
    s.save(tmp_path / "schema.json")
    assert schema.Schema.load(tmp_path / "schema.json") == s


def test_schema_features_exclude_label():
    assert _schema().feature_names == ["age", "plan"]


def test_schema_refuses_duplicate_columns():
    with pytest.raises(errors.ConfigError, match="more than once"):
        schema.Schema(columns=(schema.ColumnSpec("a", "int"), schema.ColumnSpec("a", "float")))


def test_schema_refuses_label_not_in_columns():
    with pytest.raises(errors.ConfigError, match="label 'y'"):
        schema.Schema(columns=(schema.ColumnSpec("a", "int"),), label="y")


def test_column_spec_refuses_unknown_dtype():
    with pytest.raises(errors.ConfigError, match="dtype"):
        schema.ColumnSpec("a", "complex")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2], "int"),
        ([1.5, None], "float"),
        ([True, False], "bool"),
        (["a", None], "string"),
        (pd.to_datetime(["2024-01-01"]), "datetime"),
    ],
)
def test_dtype_of_maps_pandas_types(values, expected):
    assert schema.dtype_of(pd.Series(values)) == expected

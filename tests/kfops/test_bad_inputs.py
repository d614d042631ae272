"""Every kind of bad input ends in a specific error that names the problem (the issue's corpus)."""

import pytest

from kfops import errors
from tests.fixtures import data


def test_bad_inputs_corpus_covers_the_required_kinds():
    ids = {case.id for case in data.BAD_INPUTS}
    required = {
        "empty_file",
        "header_only",
        "wrong_delimiter",
        "non_utf8",
        "missing_label_column",
        "single_class_label",
        "all_null_column",
        "inf_values",
        "mixed_types_csv",
        "unseen_category_strict",
        "duplicate_column_names",
        "ragged_rows",
        "label_with_nulls",
        "constant_feature",
        "leaking_feature",
        "truncated_parquet",
    }
    assert required <= ids
    assert len(ids) == len(data.BAD_INPUTS) >= 15


def test_good_frame_passes_ingest_and_validate(tmp_path):
    path = tmp_path / "good.csv"
    data.good_frame().to_csv(path, index=False)
    report = data.ingest_and_validate(path, "good")
    assert report.anomalies == ()


@pytest.mark.parametrize("case", data.BAD_INPUTS, ids=[c.id for c in data.BAD_INPUTS])
def test_bad_input_fails_with_specific_error(case, tmp_path):
    path = case.write(tmp_path)
    with pytest.raises(errors.DataError) as caught:
        data.ingest_and_validate(path, case.id)
    assert case.fragment in str(caught.value)


@pytest.mark.parametrize("case_id", ["unseen_category_strict", "type_mismatch", "missing_column"])
def test_schema_cases_pass_without_their_schema(case_id, tmp_path):
    # The data of a schema case is fine on its own; only the saved schema makes it bad. This
    # keeps those cases honest: they test the schema check, not something else in the file.
    case = next(c for c in data.BAD_INPUTS if c.id == case_id)
    path = case.write(tmp_path)
    assert data.validate_params(case_id, path)["schema_uri"].endswith(".schema.json")
    assert data.ingest_and_validate(path, "as_is").ok

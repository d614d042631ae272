"""Infra-validate: the candidate goes through the server load path and answers V1/V2 smoke calls."""

from kfops.components.infra_validate import infra_validate as component
from kfp import dsl

from kfops import dataio, infra_validate, modelio
from tests.kfops.serving import factories


def test_infra_validate_passes_a_good_classifier():
    pipeline, spec, df = factories.classifier()
    report = infra_validate.infra_validate(
        pipeline, spec, df.head(40), infra_validate.InfraConfig(max_rows=10)
    )
    assert report.passed, report.reasons
    assert {c.name for c in report.checks} >= {
        "load",
        "v1_objects",
        "v1_lists",
        "v2_infer",
        "v2_metadata",
    }
    assert report.rows_used == 10 and report.p50_ms > 0


def test_infra_validate_passes_a_regressor_with_label_columns_present():
    pipeline, spec, df = factories.regressor()
    assert infra_validate.infra_validate(pipeline, spec, df.head(30)).passed


def test_infra_validate_fails_when_file_cannot_be_unpickled(tmp_path):
    _, spec, df = factories.classifier()
    bad = tmp_path / "model.joblib"
    bad.write_bytes(b"not a pickle at all")
    report = infra_validate.infra_validate_file(bad, spec, df.head(5))
    assert not report.passed
    assert report.reasons[0].startswith("load: the server cannot load the model")


def test_infra_validate_fails_on_sha256_mismatch(tmp_path):
    pipeline, spec, df = factories.classifier()
    path = tmp_path / "model.joblib"
    modelio.save_model(pipeline, path)
    report = infra_validate.infra_validate_file(path, spec, df.head(5), sha256="0" * 64)
    assert not report.passed and "sha256" in report.reasons[0]


def test_infra_validate_fails_when_schema_does_not_fit_the_model():
    pipeline, spec, df = factories.classifier()
    renamed = df.rename(columns={"plan": "tier"})
    columns = tuple(
        c if c.name != "plan" else type(c)(**{**c.__dict__, "name": "tier"}) for c in spec.columns
    )
    wrong = type(spec)(columns, spec.label, spec.task, spec.label_classes)
    report = infra_validate.infra_validate(pipeline, wrong, renamed.head(10))
    assert not report.passed and "load" in report.reasons[0]


def test_infra_validate_fails_when_no_test_row_passes_the_schema():
    pipeline, spec, df = factories.classifier()
    rows = df.head(5).assign(plan="gold")  # unseen category: rejected by default
    report = infra_validate.infra_validate(pipeline, spec, rows)
    assert not report.passed and report.rows_rejected == 5
    assert "none of 5 test rows" in report.reasons[-1]


def test_infra_validate_component_runs_through_kfp_local(kfp_local, tmp_path):
    pipeline, spec, df = factories.classifier()
    model_path, data_path, schema_path = (
        tmp_path / "model.joblib",
        tmp_path / "t.parquet",
        tmp_path / "s.json",
    )
    sha = modelio.save_model(pipeline, model_path)
    dataio.write_frame(df.head(30), data_path)
    spec.save(schema_path)

    @dsl.pipeline
    def smoke() -> dsl.Artifact:
        m = dsl.importer(
            artifact_uri=str(model_path), artifact_class=dsl.Model, metadata={"sha256": sha}
        )
        d = dsl.importer(artifact_uri=str(data_path), artifact_class=dsl.Dataset)
        s = dsl.importer(artifact_uri=str(schema_path), artifact_class=dsl.Artifact)
        task = component(
            model=m.output,
            test_data=d.output,
            data_schema=s.output,
            max_rows=5,
            store_uri=str(tmp_path / "store"),
            run_id="smoke-1",
        )
        return task.outputs["report"]

    report = smoke().output
    assert report.metadata["passed"] is True and report.metadata["reasons"] == []
    assert dataio.read_json(report.path)["rows_used"] == 5
    step = dataio.read_json(
        tmp_path / "store" / "runs" / "smoke-1" / "steps" / "infra-validate.json"
    )
    assert step["status"] == "succeeded"

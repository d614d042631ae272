"""Infra-validate component: serve the candidate for real and check V1/V2 answers before push."""

from kfops.components._image import KFOPS_IMAGE
from kfp import dsl


@dsl.component(base_image=KFOPS_IMAGE, install_kfp_package=False)
def infra_validate(
    model: dsl.Input[dsl.Model],
    test_data: dsl.Input[dsl.Dataset],
    data_schema: dsl.Input[dsl.Artifact],
    report: dsl.Output[dsl.Artifact],
    store_uri: str,
    run_id: str,
    max_rows: int = 20,
) -> bool:
    """Serves the model via the server's load path; smoke-tests it. Rules: kfops.infra_validate."""
    from kfops import dataio, features, parameters, recording, schema
    from kfops import infra_validate as core

    with recording.recorded("infra-validate", store_uri, run_id, {"max_rows": max_rows}) as step:
        config = parameters.build(core.InfraConfig, max_rows=max_rows)
        result = core.infra_validate_file(
            model.path,
            features.served_schema(schema.Schema.load(data_schema.path), model.metadata),
            core.read_sample(test_data.path, config),
            config,
            sha256=model.metadata.get("sha256"),
        )
        dataio.write_json(result.to_dict(), report.path)
        report.metadata.update({"passed": result.passed, "reasons": list(result.reasons)})
        if result.p50_ms is not None:
            report.metadata.update({"p50_ms": result.p50_ms, "p99_ms": result.p99_ms})
            step.metric("p99_ms", result.p99_ms)
        step.output("report", passed=result.passed, reasons=list(result.reasons))
    return result.passed

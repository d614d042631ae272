"""Infra-validate compares what the served model answers, labels and probabilities (issue 15.7)."""

import numpy as np

from kfops import infra_validate
from tests.kfops import unstable_models
from tests.kfops.serving import factories


def test_good_classifier_passes_with_probabilities_compared():
    pipeline, spec, df = factories.classifier()
    report = infra_validate.infra_validate(
        pipeline, spec, df.head(40), infra_validate.InfraConfig(max_rows=10)
    )
    assert report.passed, report.reasons
    answers = {c.name: c for c in report.checks if c.name in ("v1_objects", "v1_lists", "v2_infer")}
    assert len(answers) == 3 and all(c.passed for c in answers.values())


def test_candidate_whose_served_probabilities_differ_fails_every_answer_check():
    pipeline, spec, df = factories.classifier()
    unstable = unstable_models.drifting(pipeline, df[spec.feature_names], df["churned"])
    # Same labels in process on every call: only the probabilities move.
    rows = df[spec.feature_names].head(10)
    assert (unstable.predict(rows) == pipeline.predict(rows)).all()
    report = infra_validate.infra_validate(
        unstable, spec, df.head(40), infra_validate.InfraConfig(max_rows=10)
    )
    assert not report.passed
    failed = {r.split(":", 1)[0] for r in report.reasons}
    assert failed == {"v1_objects", "v1_lists", "v2_infer"}, report.reasons
    assert all("served probability rows differ from in-process" in r for r in report.reasons)
    assert all("tolerance rtol 1e-09" in r for r in report.reasons)


def test_probability_difference_below_tolerance_passes_and_above_fails():
    """The stated tolerance is the one applied: 1e-10 of drift per call passes, 1e-7 fails."""
    pipeline, spec, df = factories.classifier()
    x, y = df[spec.feature_names], df["churned"]
    config = infra_validate.InfraConfig(max_rows=5, single_requests=1)
    tiny = unstable_models.drifting(pipeline, x, y, step=1e-12)
    assert infra_validate.infra_validate(tiny, spec, df.head(20), config).passed
    small = unstable_models.drifting(pipeline, x, y, step=1e-7)
    report = infra_validate.infra_validate(small, spec, df.head(20), config)
    assert not report.passed and len(report.reasons) == 3


def test_regressor_values_are_compared():
    pipeline, spec, df = factories.regressor()
    report = infra_validate.infra_validate(pipeline, spec, df.head(30))
    assert report.passed, report.reasons
    assert not any(c.name.startswith("v") and "probab" in c.detail for c in report.checks)


def test_loopback_server_is_reached_even_with_a_proxy_in_the_environment(monkeypatch):
    """A pod's HTTP_PROXY must not send the loopback smoke requests to the proxy."""
    import socket

    with socket.socket() as dead:  # a proxy address that refuses connections
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    pipeline, spec, df = factories.classifier()
    report = infra_validate.infra_validate(
        pipeline, spec, df.head(20), infra_validate.InfraConfig(max_rows=5, single_requests=2)
    )
    assert report.passed, report.reasons
    assert np.isfinite(report.p50_ms)

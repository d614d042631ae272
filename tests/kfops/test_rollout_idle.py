"""What a scheduled rollout decision says when there is nothing to decide (idle_reason)."""

import pytest

from kfops import errors, registry
from kfops import rollout as core
from kfops.store import local
from tests.kfops.serving import factories
from tests.kfops.serving import test_rollout_serving as live


def test_idle_reason_before_during_and_after_a_rollout_and_for_an_unknown_model(tmp_path):
    store = local.LocalStore(tmp_path / "store")
    good, _, _ = factories.classifier()
    live._publish(store, tmp_path, good, good)
    reg = registry.Registry(store)
    assert core.idle_reason(reg, "churn") == (
        "no rollout of 'churn' has started; nothing to decide"
    )
    live._start(store, "shadow")
    assert core.idle_reason(reg, "churn") is None  # one runs: decide
    core.finish(reg, "churn", core.ABORTED, "ana", "too slow", {})
    said = core.idle_reason(reg, "churn")
    assert said.startswith(
        "no rollout of 'churn' is running (the last, of version 2, was aborted at "
    )
    with pytest.raises(errors.NotFound, match="model 'chrun' has no version in the registry"):
        core.idle_reason(reg, "chrun")

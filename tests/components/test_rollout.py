"""The rollout step through kfp.local: it judges real logged traffic and acts on the verdict."""

import json
from pathlib import Path

from kfops.components.rollout import rollout

from kfops import registry, runs
from kfops import rollout as core
from kfops.store import local
from tests.kfops.serving import test_rollout_serving as live


def test_rollout_step_promotes_a_better_challenger_and_records_itself(kfp_local, tmp_path):
    store = local.LocalStore(tmp_path / "store")
    sent, df = live.shadowed_traffic(store, tmp_path, 160)
    live._deliver_truth(store, sent, df)

    task = rollout(store_uri=store.uri, run_id="rollout-run", model_name="churn", min_requests=150)

    assert task.outputs["Output"] == "promote"
    verdict = json.loads(Path(task.outputs["verdict"].path).read_text())
    assert verdict["ended"]["ended_by"] == "pipeline run rollout-run"
    assert verdict["comparison"]["challenger"]["labelled"] == 160
    reg = registry.Registry(store)
    assert reg.champion("churn") == "2"
    assert core.pointer(reg, "churn")["state"] == "promoted"
    steps = runs.RunIndex(store).show("rollout-run")["steps"]
    assert [(s["step"], s["status"]) for s in steps] == [("rollout", "succeeded")]

"""A challenger staged for human approval never becomes champion through a rollout.

Two real registered versions (v1 champion, v2 registered and staged as `--promote manual` does),
a shadow rollout of v2 and logged events written as the server writes them, with delayed labels:
v2 is right on every row, v1 on 70 %, so the rule alone would promote v2.
"""

import datetime as dt
import io

import pandas as pd
import pytest

from kfops import approval, cli, errors, labels, registry, rollout
from kfops.store import local
from tests.kfops.serving import factories
from tests.kfops.serving import test_rollout_serving as live

RULE = rollout.RolloutRule(min_requests=300, min_labelled=300)
N = 400


@pytest.fixture
def store(tmp_path):
    store = local.LocalStore(tmp_path / "store")
    good, spec, df = factories.classifier()
    live._publish(store, tmp_path, live._bad(spec, df), good)
    approval.stage(registry.Registry(store), "churn", "2", {"run_id": "train-2"})
    rollout.start(registry.Registry(store), "churn", rollout.Plan("2"), "test")
    return store


def _log(store, champion_right, challenger_right):
    """N shadow events per side, written after the rollout started, and their labels."""
    now = pd.Timestamp(dt.datetime.now(dt.UTC))
    rows, sides = [], (("1", "champion", champion_right), ("2", "shadow", challenger_right))
    for i in range(N):
        for version, role, right in sides:
            pred = 1 if right(i) else 0
            rows.append({labels.REQUEST_ID: f"r{i}", labels.ROW: 0, rollout.CHAMPION: "1",
                         rollout.CHALLENGER: "2", rollout.VERSION: version, rollout.ROLE: role,
                         rollout.SECONDS: 0.001, rollout.ERROR: "", rollout.PREDICTION: str(pred),
                         rollout.VALUE: float(pred), rollout.TIMESTAMP: now})  # fmt: skip
    sink = io.BytesIO()
    pd.DataFrame(rows).to_parquet(sink, index=False)
    store.put_bytes(rollout.events_key("churn", now.to_pydatetime(), "test"), sink.getvalue())
    truth = pd.DataFrame({"request_id": [f"r{i}" for i in range(N)], "label": 1})
    labels.deliver(store, "churn", truth)


def test_decide_waits_on_a_staged_challenger_the_rule_would_promote(store):
    _log(store, lambda i: i % 10 < 7, lambda i: True)
    _, _, verdict, entry = rollout.decide(store, "churn", RULE, "cron")
    assert verdict.decision == "wait" and entry is None
    assert verdict.reasons[0].startswith("quality difference +0.3000")  # the rule said promote
    assert verdict.reasons[-1] == (
        "v2 is staged for human approval: it becomes champion through "
        "`kfops models approve churn 2 --by WHO --reason WHY`"
    )
    reg = registry.Registry(store)
    assert reg.champion("churn") == "1"
    assert rollout.pointer(reg, "churn")["state"] == "running"
    entry = reg.document("churn", registry.STAGED_FILE)["versions"]["2"]
    assert entry["state"] == "staged"


def test_once_approved_the_staging_no_longer_holds_the_verdict(store):
    _log(store, lambda i: i % 10 < 7, lambda i: True)
    reg = registry.Registry(store)
    approval.approve(reg, "churn", "2", "ana", "reviewed")  # approval itself moves the champion
    assert reg.champion("churn") == "2"
    assert rollout.evaluate(store, "churn", RULE)[2].decision == "promote"


def test_a_staged_challenger_that_is_worse_is_still_aborted(store):
    _log(store, lambda i: True, lambda i: i % 10 < 7)
    _, _, verdict, entry = rollout.decide(store, "churn", RULE, "cron")
    assert verdict.decision == "abort" and entry["outcome"] == "aborted"
    assert registry.Registry(store).champion("churn") == "1"


def test_promoting_a_staged_challenger_by_hand_is_refused_even_with_force(store, capsys):
    _log(store, lambda i: i % 10 < 7, lambda i: True)
    with pytest.raises(errors.ConfigError, match="staged for human approval"):
        rollout.finish(registry.Registry(store), "churn", rollout.PROMOTED, "ana", "why", {})
    code = cli.main(["rollout", "promote", "churn", "--by", "ana", "--reason", "x", "--force",
                     "--store", str(store.root)])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "kfops models approve churn 2" in err[0]
    reg = registry.Registry(store)
    assert reg.champion("churn") == "1" and rollout.pointer(reg, "churn")["state"] == "running"


def test_a_rejected_challenger_the_rule_would_promote_waits_and_cannot_be_forced(store, capsys):
    reg = registry.Registry(store)
    entry = approval.reject(reg, "churn", "2", "ana", "v3 overtook it")
    _log(store, lambda i: i % 10 < 7, lambda i: True)
    _, _, verdict, ended = rollout.decide(store, "churn", RULE, "cron")
    why = f"model 'churn' version 2 was rejected by ana at {entry['rejected_at']} (v3 overtook it)"
    assert verdict.decision == "wait" and ended is None
    assert verdict.reasons[-1] == f"{why}: it does not become champion"
    with pytest.raises(errors.ConfigError, match="it does not become champion"):
        rollout.finish(reg, "churn", rollout.PROMOTED, "bo", "by hand", {})
    assert reg.champion("churn") == "1" and rollout.pointer(reg, "churn")["state"] == "running"

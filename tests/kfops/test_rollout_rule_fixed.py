"""One rule per rollout: the first decide records it in rollout.json, every later look uses it.

The intervals are confidence sequences for one confidence and planned n (kfops.rollout.judged_by):
mixing `--min-requests 1000` at one look with 300 at the next is not one sequence. Real local
store, two registered versions (v1 champion, v2 in shadow), 400 logged requests per side with
labels (as tests/kfops/test_rollout_staged.py logs them): v2 right on every row, v1 on 70 %, so
min_requests 300 promotes and 1000 waits.
"""

import dataclasses
import json

import pytest

from kfops import cli, errors, registry, rollout
from kfops.store import local
from tests.kfops import test_rollout_staged as staged
from tests.kfops.serving import factories
from tests.kfops.serving import test_rollout_serving as live

N = staged.N
POINTER = "models/churn/rollout.json"


@pytest.fixture
def store(tmp_path):
    store = local.LocalStore(tmp_path / "store")
    good, spec, df = factories.classifier()
    live._publish(store, tmp_path, live._bad(spec, df), good)
    rollout.start(registry.Registry(store), "churn", rollout.Plan("2"), "test")
    staged._log(store, lambda i: i % 10 < 7, lambda i: True)  # v1 right on 70 %, v2 on all
    return store


def _run(store, capsys, command, *flags):
    capsys.readouterr()
    by = ["--by", "cron"] if command == "decide" else []
    code = cli.main(["rollout", command, "churn", *by, "--json", *flags, "--store",
                     str(store.root)])  # fmt: skip
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def _pointer(store):
    return store.get_bytes(POINTER)


def test_first_decide_records_the_rule(store, capsys):
    assert "rule" not in json.loads(_pointer(store))
    code, told, _ = _run(store, capsys, "decide", "--min-requests", "1000")
    assert code == 0 and told["decision"] == "wait"
    recorded = json.loads(_pointer(store))["rule"]
    assert recorded == dataclasses.asdict(rollout.RolloutRule(min_requests=1000))


def test_a_decide_with_other_values_is_refused_and_changes_nothing(store, capsys):
    _run(store, capsys, "decide", "--min-requests", "1000")
    before = _pointer(store)
    code, _, err = _run(store, capsys, "decide", "--min-requests", "300", "--min-labelled", "300")
    assert code == 2  # the CLI's exit code for a user mistake
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "min_requests=1000 (asked 300), min_labelled=100 (asked 300)" in err
    assert "start a new rollout to change the rule" in err
    assert _pointer(store) == before
    assert registry.Registry(store).champion("churn") == "1"
    # the scheduled step passes every field: the library call refuses the same way
    with pytest.raises(errors.ConfigError, match="min_requests=1000"):
        rollout.decide(store, "churn", rollout.RolloutRule(min_requests=300), "cron")
    assert _pointer(store) == before


def test_same_or_omitted_values_judge_with_the_recorded_rule(store, capsys):
    _run(store, capsys, "decide", "--min-requests", "1000")
    before = _pointer(store)
    same = ("--min-requests", "1000", "--confidence", "0.95")
    for flags in ((), ("--min-requests", "1000"), same):
        code, told, _ = _run(store, capsys, "decide", *flags)
        # with the defaults (200) it would promote; the recorded 1000 waits
        assert code == 0 and told["decision"] == "wait", flags
        assert told["reasons"] == [f"{N} of 1000 challenger requests"]
    _, _, verdict, entry = rollout.decide(
        store, "churn", rollout.RolloutRule(min_requests=1000), "cron"
    )
    assert verdict.decision == "wait" and entry is None
    assert _pointer(store) == before


def test_status_does_not_write_and_judges_with_the_recorded_rule(store, capsys):
    before = _pointer(store)
    code, told, _ = _run(store, capsys, "status", "--min-requests", "300", "--min-labelled", "300")
    assert code == 0 and told["decision"] == "promote"  # no rule recorded yet: its flags
    assert _pointer(store) == before  # and nothing recorded by a status
    _run(store, capsys, "decide", "--min-requests", "1000")
    recorded = _pointer(store)
    code, told, _ = _run(store, capsys, "status")
    assert code == 0 and told["decision"] == "wait"
    assert told["rollout"]["rule"]["min_requests"] == 1000
    code, _, err = _run(store, capsys, "status", "--min-requests", "300")
    assert code == 2 and "min_requests=1000 (asked 300)" in err
    assert _pointer(store) == recorded


def test_the_ended_rollouts_history_keeps_its_rule_and_a_new_rollout_has_none(store, capsys):
    code, told, _ = _run(store, capsys, "decide", "--min-requests", "300", "--min-labelled", "300")
    assert code == 0 and told["decision"] == "promote"
    doc = json.loads(_pointer(store))
    rule = dataclasses.asdict(rollout.RolloutRule(min_requests=300, min_labelled=300))
    assert doc["history"][-1]["rule"] == rule and told["ended"]["rule"] == rule
    reg = registry.Registry(store)
    rollout.start(reg, "churn", rollout.Plan("1"), "test")
    assert "rule" not in rollout.running(reg, "churn")
    code, told, _ = _run(store, capsys, "decide", "--min-requests", "5000")
    assert code == 0 and json.loads(_pointer(store))["rule"]["min_requests"] == 5000

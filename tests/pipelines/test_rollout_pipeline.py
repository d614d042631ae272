"""The rollout pipeline acts as `kfops rollout decide` does (kfp.local); compiled for a cluster.

Both judge a rollout by the one rule its first decide recorded and refuse another.

A real server logs shadow traffic into a local store and the test delivers the labels; the store
is then copied, and the pipeline judges one copy while `kfops rollout decide` judges the other:
same verdict, same champion, same rollout history (but for who ended it).
"""

import inspect
import json
import shutil

import pytest
import yaml
from kfops.pipelines import rollout as pipeline

from kfops import cli, cluster, parameters, registry, runs
from kfops import rollout as core
from kfops.store import local
from tests.kfops.serving import test_rollout_serving as live
from tests.kfops.test_submit import kfp_api  # noqa: F401 (the fake KFP API fixture)
from tests.pipelines.test_training_compiled import COMPILED


def _decide_cli(store, capsys, *flags):
    capsys.readouterr()
    argv = ["rollout", "decide", "churn", "--by", "cron", "--json", *flags]
    assert cli.main([*argv, "--store", str(store.root)]) == 0
    return json.loads(capsys.readouterr().out)


def _decide_pipeline(store, run_id, **rule):
    pipeline.rollout(store_uri=store.uri, model_name="churn", by="cron", run_id=run_id, **rule)
    steps = runs.RunIndex(store).show(run_id)["steps"]
    assert [(s["step"], s["status"]) for s in steps] == [("rollout", "succeeded")]
    return steps[0]


def _state(store):
    reg = registry.Registry(store)
    doc = core.pointer(reg, "churn")
    return reg.champion("churn"), doc["state"], doc.get("history", [])


def test_rollout_pipeline_waits_then_promotes_as_rollout_decide_does(kfp_local, tmp_path, capsys):
    a = local.LocalStore(tmp_path / "a")
    sent, df = live.shadowed_traffic(a, tmp_path, 160)
    b = local.LocalStore(tmp_path / "b")
    shutil.copytree(a.root, b.root)

    # no labels yet: both wait, change nothing but record the rule the rollout is judged by
    before = _state(a)
    waited = _decide_pipeline(a, "rollout-wait", min_requests=150)
    told = _decide_cli(b, capsys, "--min-requests", "150")
    assert told["decision"] == "wait" and told["ended"] is None
    assert _state(a) == _state(b) == before == ("1", "running", [])
    assert "0 of 100 labelled rows" in json.dumps(waited)
    recorded = core.pointer(registry.Registry(a), "churn")["rule"]
    assert recorded == core.pointer(registry.Registry(b), "churn")["rule"]
    assert recorded["min_requests"] == 150

    # another rule for the same rollout: both refuse in one line and change nothing
    pointers = [(s.root / "models/churn/rollout.json").read_bytes() for s in (a, b)]
    with pytest.raises(RuntimeError):
        pipeline.rollout(store_uri=a.uri, model_name="churn", by="cron", run_id="rollout-other",
                         min_requests=1000)  # fmt: skip
    [step] = runs.RunIndex(a).show("rollout-other")["steps"]
    assert step["status"] == "failed" and "min_requests=150 (asked 1000)" in json.dumps(step)
    capsys.readouterr()
    argv = ["rollout", "decide", "churn", "--by", "cron", "--min-requests", "1000"]
    assert cli.main([*argv, "--store", str(b.root)]) == 2
    assert "min_requests=150 (asked 1000)" in capsys.readouterr().err
    assert [(s.root / "models/churn/rollout.json").read_bytes() for s in (a, b)] == pointers

    # the labels arrive: both promote version 2 by the recorded rule, same reason and evidence
    for st in (a, b):
        live._deliver_truth(st, sent, df)
    _decide_pipeline(a, "rollout-promote", min_requests=150)
    told = _decide_cli(b, capsys, "--min-requests", "150")
    assert told["decision"] == "promote"
    (champion_a, state_a, [by_pipeline]), (champion_b, state_b, [by_cli]) = _state(a), _state(b)
    assert champion_a == champion_b == "2" and state_a == state_b == "promoted"
    assert by_pipeline["ended_by"] == "cron (pipeline run rollout-promote)"
    assert by_cli["ended_by"] == "cron"
    drop = ("ended_by", "ended_at")
    assert {k: v for k, v in by_pipeline.items() if k not in drop} == {
        k: v for k, v in by_cli.items() if k not in drop
    }
    assert by_pipeline["evidence"]["comparison"]["challenger"]["labelled"] == 160
    assert by_pipeline["rule"] == recorded  # the ended rollout's history keeps its rule

    # once it has ended, a scheduled run succeeds as idle, says why, and changes nothing
    pipeline.rollout(store_uri=a.uri, model_name="churn", by="cron", run_id="rollout-none")
    [step] = runs.RunIndex(a).show("rollout-none")["steps"]
    assert step["status"] == "succeeded"
    assert "no rollout of 'churn' is running (the last, of version 2, was promoted" in json.dumps(
        step
    )
    assert _state(a) == (champion_a, state_a, [by_pipeline])
    # a misspelt model still fails, in one line
    with pytest.raises(RuntimeError):
        pipeline.rollout(store_uri=a.uri, model_name="chrun", by="cron", run_id="rollout-typo")
    [step] = runs.RunIndex(a).show("rollout-typo")["steps"]
    assert step["status"] == "failed" and "model 'chrun' has no version" in json.dumps(step)


def test_rollout_pipeline_parameters_are_the_rules_fields_and_plumbing():
    rule = parameters.surface(core.RolloutRule)
    assert pipeline.RULE == list(rule)
    assert set(pipeline.PARAMETERS) == {*rule, "model_name", "by", "store_uri", "run_id"}
    for name, param in rule.items():
        assert (pipeline.PARAMETERS[name].type, pipeline.PARAMETERS[name].default) == (
            param.type,
            param.default,
        )
    assert pipeline.PARAMETERS["store_uri"].default == cluster.CLUSTER_STORE_URI
    assert list(inspect.signature(pipeline.rollout.pipeline_func).parameters) == list(
        pipeline.PARAMETERS
    )


def test_compiled_rollout_step_is_not_cached_and_reads_the_store_secret():
    spec, platform = [d for d in yaml.safe_load_all((COMPILED / "rollout.yaml").read_text()) if d]
    tasks = spec["components"]["comp-exit-handler-1"]["dag"]["tasks"]
    assert tasks["rollout"]["cachingOptions"] == {}  # KFP writes enableCache: true when cached
    fed = tasks["rollout"]["inputs"]["parameters"]
    for name in ("by", "model_name", "store_uri", *parameters.surface(core.RolloutRule)):
        assert fed[name]["componentInputParameter"] == f"pipelinechannel--{name}"
    executor = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-rollout"]
    [source] = executor["secretAsEnv"]
    assert source["secretName"] == cluster.STORE_SECRET and source["optional"] is False
    mapped = {pair["secretKey"]: pair["envVar"] for pair in source["keyToEnv"]}
    assert mapped == cluster.STORE_SECRET_ENV
    text = (COMPILED / "rollout.yaml").read_text()
    assert "MINIO_SECRET_KEY" not in spec["root"]["inputDefinitions"]["parameters"]
    assert "secretKey: MINIO_SECRET_KEY" in text  # the key's name only, never a value


def test_documented_submit_schedules_the_rollout_pipeline(kfp_api, capsys):  # noqa: F811
    """docs/CLUSTER.md's command, against the fake KFP API of tests/kfops/test_submit.py."""
    state, host = kfp_api
    argv = ["submit", "--host", host, "--package", str(COMPILED / "rollout.yaml"),
            "--schedule", "*/15 * * * *", "--run-name", "rollout churn",
            "--param", "model_name=churn", "--param", "by=cron",
            "--param", "min_requests=500"]  # fmt: skip
    assert cli.main(argv) == 0
    assert list(state.pipelines.values()) == [pipeline.NAME]
    [recurring] = state.recurring
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 */15 * * * *"
    assert int(recurring["max_concurrency"]) == 1 and recurring["no_catchup"] is True
    parameters_sent = recurring["runtime_config"]["parameters"]
    assert parameters_sent == {"model_name": "churn", "by": "cron", "min_requests": 500}
    assert "recurring run recurring-1" in capsys.readouterr().out

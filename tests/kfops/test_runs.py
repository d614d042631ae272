"""Run records on both stores: recording, listing, comparing, failures, crashes, concurrency."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kfops import errors, runs
from kfops.runs import records
from kfops.store import s3

# A child process that records runs through the public API, as a pipeline step would.
CHILD = r"""
import os, sys, time
from kfops import config, runs, store

uri, mode, run_id = sys.argv[1:4]
rec = runs.RunRecorder(store.open_store(uri, config.StoreSettings.from_env()), run_id)
if os.environ.get("GO_FILE"):  # start writing together with the other children
    print("ready", flush=True)
    while not os.path.exists(os.environ["GO_FILE"]):
        time.sleep(0.01)
if mode == "crash":
    rec.start("kfops-training", {"seed": 1})
    with rec.step("ingest") as step:
        step.output("data", sha256="ab" * 32, rows=10)
    with rec.step("train", {"estimator": "logistic"}):
        print("in-train", flush=True)
        time.sleep(120)
elif mode == "full":
    rec.start("kfops-training", {"seed": int(sys.argv[4])})
    for i in range(5):
        with rec.step(f"s{i}", {"i": i}) as step:
            step.metric("roc_auc", 0.5 + i / 10)
    rec.finish("succeeded", blessed=True, model={"name": "m", "version": sys.argv[4]})
elif mode == "step":
    rec.start("kfops-training", {"from": sys.argv[4]})
    for _ in range(5):
        with rec.step(sys.argv[4]) as step:
            step.metric("x", 1.0)
"""


def child_env(store, request) -> dict[str, str]:
    """The environment a child needs to open `store` by URI (S3 keys for the S3 server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
    if isinstance(store, s3.S3Store):
        settings = request.getfixturevalue("s3_server").settings
        env.update(
            MINIO_ENDPOINT=settings.endpoint,
            MINIO_ACCESS_KEY=settings.access_key,
            MINIO_SECRET_KEY=settings.secret_key,
            MINIO_SECURE="false",
        )
    return env


def spawn(store, request, *args: str, go_file=None) -> subprocess.Popen:
    env = child_env(store, request)
    if go_file:
        env["GO_FILE"] = str(go_file)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, store.uri, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def record_run(store, run_id, seed, auc, *, experiment=None, blessed=True, version="1"):
    """A complete two-step run, the way components record one."""
    rec = runs.RunRecorder(store, run_id)
    rec.start("kfops-training", {"seed": seed, "estimator": "logistic"}, experiment=experiment)
    with rec.step("ingest", {"source": "builtin:churn"}) as step:
        step.input("source", "builtin:churn", None)
        step.output("data", sha256=f"{seed:064x}", rows=100)
    with rec.step("evaluate") as step:
        step.input("data", "file:///x", f"{seed:064x}")
        step.metric("roc_auc", auc)
        step.metric("f1", auc - 0.1)
    model = {"name": "churn", "version": version} if blessed else None
    rec.finish("succeeded", blessed=blessed, reasons=() if blessed else ("too low",), model=model)


def test_run_index_lists_two_runs_with_different_parameters_newest_first(any_store):
    record_run(any_store, "run-a", seed=1, auc=0.81)
    record_run(any_store, "run-b", seed=2, auc=0.86, version="2")
    listed = runs.RunIndex(any_store).list()
    assert [i.run_id for i in listed] == ["run-b", "run-a"]
    assert [i.status for i in listed] == ["succeeded", "succeeded"]
    assert listed[0].metrics["roc_auc"] == pytest.approx(0.86)
    assert listed[0].model == {"name": "churn", "version": "2"}
    assert listed[0].blessed is True
    assert listed[0].started_at.endswith("+00:00")
    assert listed[0].duration_s is not None and listed[0].duration_s >= 0
    details = runs.RunIndex(any_store).details()
    assert [d["parameters"]["seed"] for d in details] == [2, 1]


def test_run_index_compare_marks_changed_parameter_and_metrics(any_store):
    record_run(any_store, "run-a", seed=1, auc=0.81)
    record_run(any_store, "run-b", seed=2, auc=0.86)
    comparison = runs.RunIndex(any_store).compare(["run-a", "run-b"])
    seed = comparison.row("parameter", "seed")
    assert seed.values == (1, 2) and seed.changed
    assert not comparison.row("parameter", "estimator").changed
    auc = comparison.row("metric", "evaluate.roc_auc")
    assert auc.values == pytest.approx((0.81, 0.86)) and auc.changed
    assert comparison.row("data", "ingest>data").changed
    assert {(r.section, r.name) for r in comparison.changed()} >= {
        ("parameter", "seed"),
        ("metric", "evaluate.roc_auc"),
        ("metric", "evaluate.f1"),
    }
    assert json.loads(json.dumps(comparison.to_dict()))["run_ids"] == ["run-a", "run-b"]


def test_run_index_compare_refuses_a_single_run(any_store):
    record_run(any_store, "run-a", seed=1, auc=0.81)
    with pytest.raises(errors.ConfigError, match="two or more"):
        runs.RunIndex(any_store).compare(["run-a", "run-a"])


def test_compare_shows_step_parameters_missing_from_the_header(any_store):
    rec = runs.RunRecorder(any_store, "cluster-1")
    rec.start("kfops-training")  # a step on a cluster knows only its own parameters
    with rec.step("split", {"test_fraction": 0.2, "seed": 0}):
        pass
    record_run(any_store, "local-1", seed=0, auc=0.8)
    comparison = runs.RunIndex(any_store).compare(["cluster-1", "local-1"])
    assert comparison.row("parameter", "split.test_fraction").values == (0.2, None)


def test_recorder_step_records_failure_with_step_and_error(any_store):
    rec = runs.RunRecorder(any_store, "bad-run")
    rec.start("kfops-training", {"seed": 0})
    with rec.step("ingest"):
        pass
    with pytest.raises(errors.DataError, match="empty file"):
        with rec.step("validate", {"label": "y"}) as step:
            step.metric("rows", 0)
            raise errors.DataError("empty file: data.csv")
    info = runs.RunIndex(any_store).list()[0]
    assert (info.status, info.failed_step) == ("failed", "validate")
    assert info.error == "DataError: empty file: data.csv"
    detail = runs.RunIndex(any_store).show("bad-run")
    failed = [s for s in detail["steps"] if s["step"] == "validate"][0]
    assert failed["status"] == "failed" and failed["ended_at"] and failed["metrics"] == {"rows": 0}


def test_run_index_failed_step_wins_over_a_succeeded_end_record(any_store):
    rec = runs.RunRecorder(any_store, "r")
    with pytest.raises(ValueError):
        with rec.step("train"):
            raise ValueError("boom")
    rec.finish("succeeded")
    assert runs.RunIndex(any_store).show("r")["status"] == "failed"


def test_recorder_finish_records_runner_error_without_failed_step(any_store):
    rec = runs.RunRecorder(any_store, "r")
    rec.start("kfops-training")
    rec.finish("failed", error="runner could not start")
    detail = runs.RunIndex(any_store).show("r")
    assert (detail["status"], detail["failed_step"], detail["error"]) == (
        "failed",
        None,
        "runner could not start",
    )


def test_recorder_start_keeps_the_first_header(any_store):
    rec = runs.RunRecorder(any_store, "r")
    assert rec.start("kfops-training", {"seed": 1}, experiment="exp", code_version="abc123")
    assert not runs.RunRecorder(any_store, "r").start("kfops-training", {"seed": 99})
    detail = runs.RunIndex(any_store).show("r")
    assert detail["parameters"] == {"seed": 1}
    assert (detail["experiment"], detail["code_version"]) == ("exp", "abc123")


def test_racing_header_writers_exactly_one_wins(stores):
    """A submitter and a retried first step may both write the header: one must win whole."""
    import threading  # noqa: PLC0415

    barrier, won = threading.Barrier(8), []

    def start(i):
        rec = runs.RunRecorder(stores(), "r")
        barrier.wait()
        if rec.start("kfops-training", {"writer": i}):
            won.append(i)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    assert runs.RunIndex(stores()).show("r")["parameters"] == {"writer": won[0]}


def test_run_index_filters_by_experiment_defaulting_to_pipeline(any_store):
    record_run(any_store, "a", seed=1, auc=0.8, experiment="churn-tuning")
    record_run(any_store, "b", seed=2, auc=0.8)
    index = runs.RunIndex(any_store)
    assert [i.run_id for i in index.list(experiment="churn-tuning")] == ["a"]
    assert [i.run_id for i in index.list(experiment="kfops-training")] == ["b"]


def test_recorder_redacts_secret_looking_parameters(any_store):
    rec = runs.RunRecorder(any_store, "r")
    rec.start("p", {"MINIO_SECRET_KEY": "s3cr3t-value", "api_token": "t0k", "seed": 3})
    raw = b"".join(any_store.get_bytes(k) for k in any_store.list("runs/"))
    assert b"s3cr3t-value" not in raw and b"t0k" not in raw
    assert runs.RunIndex(any_store).show("r")["parameters"]["seed"] == 3


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "has space", "-lead", "x" * 129])
def test_recorder_rejects_run_ids_unsafe_as_keys(tmp_path, bad):
    from kfops.store import local

    with pytest.raises(errors.ConfigError, match="invalid run id"):
        runs.RunRecorder(local.LocalStore(tmp_path), bad)


def test_step_handle_metric_keeps_non_finite_as_null_and_rejects_text(tmp_path):
    from kfops.store import local

    rec = runs.RunRecorder(local.LocalStore(tmp_path), "r")
    with rec.step("evaluate") as step:
        step.metric("auc", float("nan"))
        with pytest.raises(errors.ConfigError, match="'auc2' must be a number"):
            step.metric("auc2", "0.9")
    stored = json.loads(local.LocalStore(tmp_path).get_bytes("runs/r/steps/evaluate.json"))
    assert stored["metrics"] == {"auc": None}


def test_recorder_finish_rejects_unknown_status(tmp_path):
    from kfops.store import local

    with pytest.raises(errors.ConfigError, match="run status"):
        runs.RunRecorder(local.LocalStore(tmp_path), "r").finish("done")


def test_run_index_show_accepts_a_unique_prefix_and_refuses_an_ambiguous_one(any_store):
    record_run(any_store, "abc123", seed=1, auc=0.8)
    record_run(any_store, "abd456", seed=2, auc=0.8)
    index = runs.RunIndex(any_store)
    assert index.show("abc")["run_id"] == "abc123"
    with pytest.raises(errors.ConfigError, match="ambiguous"):
        index.show("ab")
    with pytest.raises(errors.NotFound, match="no run 'zz'"):
        index.show("zz")


def test_run_index_lists_around_an_unreadable_record(any_store):
    record_run(any_store, "good", seed=1, auc=0.8)
    rec = runs.RunRecorder(any_store, "odd")
    rec.start("p")
    any_store.put_bytes(records.step_key("odd", "train"), b"{not json")
    any_store.put_bytes("runs/stray-file", b"x")  # outside the layout: ignored
    listed = {i.run_id: i for i in runs.RunIndex(any_store).list()}
    assert set(listed) == {"good", "odd"}
    assert listed["odd"].status == "incomplete"
    problems = runs.RunIndex(any_store).show("odd")["problems"]
    assert problems == ["runs/odd/steps/train.json: not a JSON object"]


def test_run_index_shows_incomplete_when_process_killed_mid_run(any_store, request):
    record_run(any_store, "finished", seed=1, auc=0.8)
    child = spawn(any_store, request, "crash", "killed-run")
    try:
        line = child.stdout.readline()
        assert line.strip() == "in-train", child.stderr.read()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    listed = {i.run_id: i for i in runs.RunIndex(any_store).list()}
    assert listed["killed-run"].status == "incomplete"
    assert listed["finished"].status == "succeeded"
    detail = runs.RunIndex(any_store).show("killed-run")
    assert detail["running_step"] == "train"
    assert [(s["step"], s["status"]) for s in detail["steps"]] == [
        ("ingest", "succeeded"),
        ("train", "running"),
    ]


def test_run_records_survive_concurrent_writers(any_store, request, tmp_path):
    go = tmp_path / "go"
    children = [spawn(any_store, request, "full", f"par-{i}", str(i), go_file=go) for i in range(2)]
    children += [
        spawn(any_store, request, "step", "shared", name, go_file=go) for name in ("a", "b")
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()
    go.touch()  # every child is past its imports: the writes overlap
    index, listings = runs.RunIndex(any_store), 0
    while any(c.poll() is None for c in children):
        for info in index.list():  # reading while others write never fails
            assert info.status in ("succeeded", "failed", "incomplete")
        listings += 1
        time.sleep(0.05)
    for child in children:
        assert child.wait(timeout=60) == 0, child.stderr.read()
    assert listings >= 1
    listed = {i.run_id: i for i in index.list()}
    assert set(listed) == {"par-0", "par-1", "shared"}
    for i in range(2):
        detail = index.show(f"par-{i}")
        assert detail["status"] == "succeeded" and detail["parameters"] == {"seed": i}
        assert [s["step"] for s in detail["steps"]] == [f"s{k}" for k in range(5)]
        assert detail["model"] == {"name": "m", "version": str(i)}
    shared = index.show("shared")
    assert sorted(s["step"] for s in shared["steps"]) == ["a", "b"]
    assert all(s["status"] == "succeeded" for s in shared["steps"])
    assert shared["parameters"]["from"] in {"a", "b"}


def test_step_handle_output_refuses_a_fact_called_name(tmp_path):
    from kfops.store import local

    rec = runs.RunRecorder(local.LocalStore(tmp_path), "r")
    with rec.step("push") as step:
        with pytest.raises(errors.ConfigError, match="model_name"):
            step.output("registered", name="churn")
        step.output("registered", model_name="churn", version="3")
    outputs = runs.RunIndex(local.LocalStore(tmp_path)).show("r")["steps"][0]["outputs"]
    assert outputs == [{"name": "registered", "model_name": "churn", "version": "3"}]


def test_recorder_step_keeps_the_step_error_when_the_store_dies_mid_step(s3_server_factory):
    server = s3_server_factory()
    store = server.store(server.make_bucket(), tuning=s3.S3Tuning(retries=0))
    rec = runs.RunRecorder(store, "r")
    rec.start("p")
    with pytest.raises(ValueError, match="the step's own error"):
        with rec.step("train"):
            server.kill()
            raise ValueError("the step's own error")


def test_run_index_list_of_finished_run_reads_the_digest_not_each_step(any_store):
    record_run(any_store, "done", seed=1, auc=0.8)
    any_store.put_bytes(records.step_key("done", "evaluate"), b"garbage")  # rewritten after finish
    info = runs.RunIndex(any_store).list()[0]
    assert info.metrics["roc_auc"] == pytest.approx(0.8) and info.status == "succeeded"
    assert runs.RunIndex(any_store).show("done")["problems"] == [
        "runs/done/steps/evaluate.json: not a JSON object"
    ]


def test_run_index_list_sees_a_step_recorded_after_finish(any_store):
    record_run(any_store, "late", seed=1, auc=0.8)
    with pytest.raises(RuntimeError):
        with runs.RunRecorder(any_store, "late").step("deploy"):
            raise RuntimeError("cluster unreachable")
    info = runs.RunIndex(any_store).list()[0]
    assert (info.status, info.failed_step) == ("failed", "deploy")
    assert info.error == "RuntimeError: cluster unreachable"

"""Validate against the champion's schema, and change it only on purpose (issue 13, item 1).

Through `kfops run`, into one store: v1 trains on a batch and becomes champion with its schema;
a later batch with tenure in other units (x100) and renamed regions is blocked by default,
naming both columns; `kfops schema diff` shows the change and `kfops schema accept` records it
(who, why, when) in the registry; only then does the same batch validate and train.
"""

import io
import json
import sys

import pytest

from kfops import cli, datasets, errors, registry, store
from kfops.validate import contract

pytestmark = pytest.mark.slow

FAST = ["--param", "search_iterations=1", "--param", "cv_folds=2"]
RENAMED = {"north": "N", "south": "S", "east": "E", "west": "W"}


def _cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def _run(root, source) -> tuple[int, dict]:
    argv = ["run", "--source", str(source), "--label", "churned", "--name", "churn"]
    argv += ["--store", str(root / "store")]
    code, out, _ = _cli([*argv, "--runs-dir", str(root / "runs"), "--json", *FAST])
    return code, json.loads(out)


def _step(root, run_id, name) -> dict:
    return json.loads((root / "store" / "runs" / run_id / "steps" / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    root = tmp_path_factory.mktemp("schema-flow")
    first = root / "first.csv"
    datasets.load_builtin("builtin:churn?rows=1500&seed=1").to_csv(first, index=False)
    changed = datasets.load_builtin("builtin:churn?rows=1500&seed=2")
    changed["tenure_months"] = changed["tenure_months"] * 100  # now in another unit
    changed["region"] = changed["region"].map(RENAMED)  # every region recoded
    batch = root / "batch.csv"
    changed.to_csv(batch, index=False)
    steps = {"v1": _run(root, first), "blocked": _run(root, batch)}
    steps["versions_after_block"] = registry.Registry(
        store.open_store(str(root / "store"))
    ).versions("churn")
    where = ["--source", str(batch), "--store", str(root / "store")]
    steps["diff"] = _cli(["schema", "diff", "churn", *where, "--json"])
    steps["accept"] = _cli(
        ["schema", "accept", "churn", *where, "--by", "ana", "--reason", "tenure in days"]
    )
    steps["after"] = _run(root, batch)
    return root, steps


def test_first_run_infers_the_schema_and_registers_it_with_v1(flow):
    root, steps = flow
    code, summary = steps["v1"]
    assert code == 0 and summary["model_version"] == "1", summary
    validate = _step(root, summary["run_id"], "validate")
    assert {"name": "schema", "source": "inferred"}.items() <= validate["outputs"][0].items()
    reg = registry.Registry(store.open_store(str(root / "store")))
    assert registry.SCHEMA_FILE in reg.manifest("churn", "1")["files"]


def test_changed_batch_is_blocked_by_default_naming_both_columns(flow):
    root, steps = flow
    code, summary = steps["blocked"]
    assert code == errors.ValidationFailed.exit_code, summary
    assert summary["status"] == "failed" and summary["failed_step"] == "validate"
    assert "tenure_months" in summary["error"] and "out_of_range" in summary["error"]
    assert "region" in summary["error"] and "unseen_category" in summary["error"]
    validate = _step(root, summary["run_id"], "validate")
    assert validate["outputs"][0]["source"] == "champion v1"
    assert steps["versions_after_block"] == ["1"]  # nothing registered from the blocked batch


def test_diff_shows_the_reviewed_change_before_anything_is_recorded(flow):
    _, steps = flow
    code, out, err = steps["diff"]
    assert code == 0, err
    diff = json.loads(out)
    assert diff["against"] == "champion v1"
    changes = {(c["column"], c["change"]) for c in diff["changes"]}
    assert {("tenure_months", "range"), ("region", "domain")} <= changes
    region = next(c for c in diff["changes"] if c["column"] == "region")
    assert region["added"] == sorted(RENAMED.values())
    assert {(b["column"], b["rule"]) for b in diff["blocking"]} >= {
        ("tenure_months", "out_of_range"),
        ("region", "unseen_category"),
    }


def test_accept_records_who_why_when_in_the_registry(flow):
    root, steps = flow
    code, out, err = steps["accept"]
    assert code == 0, err
    assert "accepted #1" in out and "tenure_months" in out
    st = store.open_store(str(root / "store"))
    (record,) = contract.history(st, "churn")
    assert (record["by"], record["reason"], record["base_version"]) == (
        "ana",
        "tenure in days",
        "1",
    )
    pointer = json.loads(st.get_bytes("models/churn/schema/accepted.json"))
    assert pointer["file"] == "accepted-1.json" and pointer["at"] == record["at"]


def test_same_batch_validates_only_after_the_acceptance(flow):
    root, steps = flow
    code, summary = steps["after"]
    assert summary["status"] == "succeeded", summary
    validate = _step(root, summary["run_id"], "validate")
    assert validate["status"] == "succeeded"
    assert validate["outputs"][0]["source"] == "accepted #1"
    # v2 trained on the batch is registered with the accepted schema, which travels with it
    assert summary["model_version"] == "2", summary
    st = store.open_store(str(root / "store"))
    loaded = registry.Registry(st).load("churn", "2")
    assert loaded.schema.column("region").domain == (
        "E",
        "N",
        "S",
        "W",
        "east",
        "north",
        "south",
        "west",
    )
    assert contract.resolve(st, "churn").source == "champion v2"

"""Which schema a batch is held to (champion's, accepted, or none) and how a change is accepted."""

import datetime
import json

import numpy as np
import pandas as pd
import pytest

from kfops import cli, errors, registry, store
from kfops import validate as v
from kfops.validate import contract

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def _frame(n=200, seed=0, regions=("north", "south")):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(1, 72, n),
            "region": rng.choice(list(regions), n),
            "y": rng.integers(0, 2, n),
        }
    )


@pytest.fixture
def st(tmp_path):
    return store.open_store(str(tmp_path / "store"))


def _register(st, tmp_path, sch, promote=True):
    path = tmp_path / f"schema-{len(list(tmp_path.iterdir()))}.json"
    sch.save(path)
    reg = registry.Registry(st)
    version = reg.register("churn", {registry.SCHEMA_FILE: path}).version
    if promote:
        reg.promote("churn", version)
    return version


def test_a_model_without_champion_has_no_schema_to_hold_to(st):
    held = contract.resolve(st, "churn")
    assert (held.schema, held.source) == (None, "inferred")


def test_the_champion_schema_is_resolved_and_a_newer_champion_replaces_it(st, tmp_path):
    first = v.infer_schema(_frame(), "y")
    _register(st, tmp_path, first)
    held = contract.resolve(st, "churn")
    assert held.source == "champion v1" and held.schema == first
    second = v.infer_schema(_frame(seed=1, regions=("east", "west")), "y")
    _register(st, tmp_path, second, promote=False)
    assert contract.resolve(st, "churn").schema == first  # registered but not champion
    registry.Registry(st).promote("churn", "2")
    assert contract.resolve(st, "churn").schema == second


def test_a_scaled_column_and_renamed_categories_block_against_the_champion(st, tmp_path):
    _register(st, tmp_path, v.infer_schema(_frame(), "y"))
    batch = _frame(seed=3)
    batch["tenure"] *= 100
    batch["region"] = batch["region"].map({"north": "N", "south": "S"})
    report = v.validate(batch, contract.resolve(st, "churn").schema)
    blocking = {(a.column, a.rule) for a in report.blocking}
    assert blocking == {("tenure", "out_of_range"), ("region", "unseen_category")}
    with pytest.raises(errors.ValidationFailed, match=r"tenure.*region|region.*tenure"):
        v.raise_for_blocking(report)


def test_propose_widens_ranges_and_domains_and_keeps_roles():
    current = v.infer_schema(_frame(), "y", id_columns=())
    batch = _frame(seed=3, regions=("N", "S"))
    batch["tenure"] *= 100
    proposed = contract.propose(current, batch)
    tenure = proposed.column("tenure")
    assert tenure.min == min(current.column("tenure").min, batch["tenure"].min())
    assert tenure.max == batch["tenure"].max()
    assert proposed.column("region").domain == ("N", "S", "north", "south")
    assert proposed.label == "y" and proposed.column("y").role == "label"
    assert v.validate(batch, proposed).ok


def test_diff_names_every_change():
    current = v.infer_schema(_frame(), "y")
    batch = _frame(seed=3, regions=("north", "S")).drop(columns=["tenure"]).assign(extra=1.5)
    changes = contract.diff(current, contract.propose(current, batch))
    by_change = {(c["column"], c["change"]): c for c in changes}
    assert set(by_change) == {("tenure", "removed"), ("extra", "added"), ("region", "domain")}
    assert by_change[("region", "domain")]["added"] == ["S"]
    assert by_change[("region", "domain")]["removed"] == []
    assert contract.diff(current, current) == []


def test_accept_records_the_schema_with_who_why_when_and_it_then_applies(st, tmp_path):
    current = v.infer_schema(_frame(), "y")
    _register(st, tmp_path, current)
    proposed = contract.propose(current, _frame(seed=2, regions=("N",)))
    pointer = contract.accept(st, "churn", proposed, by="ana", reason="recoded", now=NOW)
    assert pointer["number"] == 1 and pointer["base_version"] == "1"
    assert (pointer["by"], pointer["reason"], pointer["at"]) == ("ana", "recoded", NOW.isoformat())
    stored = json.loads(st.get_bytes("models/churn/schema/accepted-1.json"))
    assert stored["accepted"]["by"] == "ana" and stored["schema"] == proposed.to_dict()
    held = contract.resolve(st, "churn")
    assert held.source == "accepted #1" and held.schema == proposed
    again = contract.accept(st, "churn", current, by="bo", reason="back", now=NOW)
    assert again["number"] == 2 and contract.resolve(st, "churn").schema == current
    assert [r["by"] for r in contract.history(st, "churn")] == ["ana", "bo"]


def test_a_champion_registered_after_the_acceptance_takes_over(st, tmp_path):
    current = v.infer_schema(_frame(), "y")
    _register(st, tmp_path, current)
    contract.accept(
        st, "churn", contract.propose(current, _frame(regions=("N",))), by="a", reason="r"
    )
    newer = v.infer_schema(_frame(seed=5, regions=("Z",)), "y")
    _register(st, tmp_path, newer)
    assert contract.resolve(st, "churn").source == "champion v2"


def test_a_tampered_accepted_schema_is_refused(st, tmp_path):
    current = v.infer_schema(_frame(), "y")
    contract.accept(st, "churn", current, by="a", reason="r")
    key = "models/churn/schema/accepted-1.json"
    st.put_bytes(key, st.get_bytes(key).replace(b'"north"', b'"NORTH"'))
    with pytest.raises(errors.IntegrityError, match="accepted-1.json"):
        contract.resolve(st, "churn")


@pytest.mark.parametrize(("by", "reason", "message"), [("a", " ", "--reason"), ("", "r", "--by")])
def test_accept_needs_who_and_why(st, by, reason, message):
    with pytest.raises(errors.ConfigError, match=message):
        contract.accept(st, "churn", v.infer_schema(_frame(), "y"), by=by, reason=reason)


def test_schema_cli_refuses_a_model_without_schema_in_one_line(tmp_path, capsys):

    batch = tmp_path / "b.csv"
    _frame().to_csv(batch, index=False)
    argv = ["schema", "diff", "churn", "--source", str(batch), "--store", str(tmp_path / "s")]
    assert cli.main(argv) == errors.NotFound.exit_code
    err = capsys.readouterr().err.strip()
    assert "has no champion or accepted schema" in err and len(err.splitlines()) == 1


def test_schema_show_names_what_the_next_run_validates_against(st, tmp_path, capsys):

    _register(st, tmp_path, v.infer_schema(_frame(), "y"))
    assert cli.main(["schema", "show", "churn", "--store", str(tmp_path / "store"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["validates_against"] == "champion v1" and shown["accepted"] == []

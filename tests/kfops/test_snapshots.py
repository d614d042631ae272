"""Dataset snapshots: written once by content, exported verified, pruned only when unused."""

import datetime as dt

import pytest

from kfops import cli, dataio, datasets, errors, registry, snapshots
from kfops.store import local


def test_a_frame_is_stored_once_under_the_sha256_of_its_parquet(stores, tmp_path):
    st = stores()  # a local directory, and SeaweedFS S3 with and without conditional writes
    frame = datasets.churn(50, seed=3)
    expected = dataio.write_frame(frame, tmp_path / "f.parquet")["sha256"]
    first = snapshots.put_frame(st, frame, {"source": "builtin:churn?rows=50&seed=3"})
    assert (first.sha256, first.rows, first.created) == (expected, 50, True)
    assert st.exists(f"data/{expected}/data.parquet")
    again = snapshots.put_frame(st, frame, {"source": "somewhere else"})
    assert again.created is False and again.metadata["source"] == "builtin:churn?rows=50&seed=3"
    out = tmp_path / "out" / "x.parquet"
    meta = snapshots.export(st, expected[:10], out)
    assert dataio.sha256_file(out) == expected and meta["rows"] == 50
    assert snapshots.read(st, expected).equals(frame)


def test_export_refuses_bytes_that_do_not_match_their_name(tmp_path):
    st = local.LocalStore(tmp_path / "st")
    snap = snapshots.put_frame(st, datasets.churn(20))
    st.put_bytes(snapshots.data_key(snap.sha256), b"not the data")
    with pytest.raises(errors.IntegrityError, match=snap.sha256):
        snapshots.export(st, snap.sha256, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_hash_prefixes(tmp_path):
    st = local.LocalStore(tmp_path)
    snap = snapshots.put_frame(st, datasets.churn(20))
    with pytest.raises(errors.ConfigError, match="too short"):
        snapshots.resolve(st, snap.sha256[:7])
    with pytest.raises(errors.NotFound):
        snapshots.resolve(st, "0" * 64 if not snap.sha256.startswith("0") else "1" * 64)
    assert snapshots.resolve(st, snap.sha256[:8].upper()) == snap.sha256


def _register(st, tmp_path, sha, parents=()):
    (tmp_path / "m").mkdir(exist_ok=True)
    (tmp_path / "m" / "model.joblib").write_bytes(b"x")
    lineage = {"data_sha256": sha, "data_parents": list(parents)}
    files = {"model.joblib": tmp_path / "m" / "model.joblib"}
    return registry.Registry(st).register("churn", files, {"lineage": lineage}).version


def test_prune_keeps_what_a_version_was_trained_on_and_what_is_young(tmp_path):
    st = local.LocalStore(tmp_path / "st")
    used = snapshots.put_frame(st, datasets.churn(20, seed=1)).sha256
    parent = snapshots.put_frame(st, datasets.churn(20, seed=2)).sha256
    unused = snapshots.put_frame(st, datasets.churn(20, seed=3)).sha256
    _register(st, tmp_path, used, parents=[parent])
    now = dt.datetime.now(dt.UTC)
    assert snapshots.prune(st, 1, now=now) == []  # all younger than a day
    later = now + dt.timedelta(days=2)
    assert snapshots.prune(st, 1, now=later, dry_run=True) == [unused]
    assert st.exists(snapshots.metadata_key(unused))
    assert snapshots.prune(st, 1, now=later) == [unused]
    assert {m["sha256"] for m in snapshots.listing(st)} == {used, parent}
    assert list(st.list(f"data/{unused}")) == []


def test_cli_exports_a_snapshot_and_refuses_unknown_ones(tmp_path, capsys):
    st = local.LocalStore(tmp_path / "st")
    snap = snapshots.put_frame(st, datasets.churn(30))
    out = tmp_path / "rows.parquet"
    argv = ["runs", "data", snap.sha256[:12], "--out", str(out), "--store", str(tmp_path / "st")]
    assert cli.main(argv) == 0
    assert f"wrote 30 rows of dataset {snap.sha256}" in capsys.readouterr().out
    assert dataio.sha256_file(out) == snap.sha256
    argv[2] = "f" * 12 if not snap.sha256.startswith("f") else "e" * 12
    assert cli.main(argv) == errors.NotFound.exit_code
    assert "no dataset snapshot" in capsys.readouterr().err
    prune = ["runs", "prune-data", "--older-than-days", "0", "--store", str(tmp_path / "st")]
    assert cli.main(prune) == 0
    assert "deleted 1 dataset snapshot(s)" in capsys.readouterr().out

"""`kfops models ...` on both stores, and its failures: one line, non-zero exit, no secret."""

import json
import logging
import os

import pytest

from kfops import cli, registry
from kfops.store import s3
from tests.fixtures import s3 as s3_fixtures

MINIO_VARS = ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_SECURE")


def _env_for(settings) -> dict[str, str]:
    return {
        "MINIO_ENDPOINT": settings.endpoint,
        "MINIO_ACCESS_KEY": settings.access_key,
        "MINIO_SECRET_KEY": settings.secret_key,
        "MINIO_SECURE": "false",
    }


@pytest.fixture
def reg(any_store, monkeypatch, request):
    """A registry with churn v1, v2 (champion 2 after 1), and MINIO_* set when it is on S3."""
    for var in MINIO_VARS:
        monkeypatch.delenv(var, raising=False)
    if isinstance(any_store, s3.S3Store):
        server = request.getfixturevalue("s3_server")
        for var, value in _env_for(server.settings).items():
            monkeypatch.setenv(var, value)
    return registry.Registry(any_store)


@pytest.fixture
def two_versions(reg, model_files):
    reg.register("churn", model_files, {"run": "r1"})
    reg.register("churn", model_files, {"run": "r2"})
    reg.promote("churn", "1")
    reg.promote("churn", "2")
    return reg


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_list_prints_table_with_champion_and_versions(two_versions, capsys):
    code, out, _ = _run(capsys, "models", "list", "--store", two_versions.store.uri)
    assert code == 0
    header, row = out.strip().splitlines()
    assert header.split() == ["NAME", "CHAMPION", "LATEST", "VERSIONS", "STAGED"]
    assert row.split() == ["churn", "2", "2", "2", "-"]


def test_models_list_json_lists_every_version(two_versions, capsys):
    code, out, _ = _run(capsys, "models", "list", "--store", two_versions.store.uri, "--json")
    assert code == 0
    assert json.loads(out) == [
        {"name": "churn", "champion": "2", "versions": ["1", "2"], "staged": []}
    ]


def test_models_show_defaults_to_champion_and_verifies(two_versions, capsys):
    code, out, _ = _run(
        capsys, "models", "show", "churn", "--store", two_versions.store.uri, "--json", "--verify"
    )
    detail = json.loads(out)
    assert code == 0
    assert (detail["version"], detail["champion"], detail["verified"]) == ("2", True, True)
    assert detail["metadata"] == {"run": "r2"}
    assert "model.joblib" in detail["files"]


def test_models_show_verify_fails_with_exit_5_on_tampered_file(two_versions, capsys):
    two_versions.store.put_bytes("models/churn/1/model_card.md", b"# edited\n")
    code, out, err = _run(
        capsys, "models", "show", "churn", "1", "--store", two_versions.store.uri, "--verify"
    )
    assert code == 5
    assert "model_card.md" in err and len(err.strip().splitlines()) == 1


def test_models_promote_and_rollback_move_the_champion(two_versions, capsys):
    uri = two_versions.store.uri
    code, out, _ = _run(capsys, "models", "rollback", "churn", "--store", uri)
    assert (code, out.strip()) == (0, "churn: rolled back to 1 (was 2)")
    code, out, _ = _run(capsys, "models", "promote", "churn", "2", "--store", uri)
    assert (code, out.strip()) == (0, "churn: champion is now 2 (was 1)")
    assert two_versions.champion("churn") == "2"


def test_models_promote_unknown_version_exits_4_naming_known_versions(two_versions, capsys):
    code, _, err = _run(
        capsys, "models", "promote", "churn", "9", "--store", two_versions.store.uri
    )
    assert code == 4
    assert "no version 9" in err and "(versions: 1, 2)" in err


def test_models_list_on_s3_without_endpoint_exits_2_naming_env_vars(monkeypatch, capsys):
    for var in MINIO_VARS:
        monkeypatch.delenv(var, raising=False)
    code, _, err = _run(capsys, "models", "list", "--store", "s3://some-bucket/p")
    assert code == 2
    assert "MINIO_ENDPOINT" in err and "MINIO_SECRET_KEY" in err


def test_models_list_missing_bucket_exits_4_in_one_line(s3_server, monkeypatch, capsys):
    for var, value in _env_for(s3_server.settings).items():
        monkeypatch.setenv(var, value)
    code, out, err = _run(capsys, "models", "list", "--store", "s3://kfops-no-such-bucket/p")
    assert code == 4
    assert err.count("\n") == 1 and "bucket 'kfops-no-such-bucket' does not exist" in err
    assert s3_server.secret_key not in out + err


def test_models_list_unreachable_endpoint_exits_4_in_one_line(s3_server, monkeypatch, capsys):
    port = s3_fixtures.free_ports(1)[0]
    env = {**_env_for(s3_server.settings), "MINIO_ENDPOINT": f"127.0.0.1:{port}"}
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    code, out, err = _run(capsys, "models", "list", "--store", "s3://some-bucket/p")
    assert code == 4
    assert err.count("\n") == 1 and "connection refused" in err and f"127.0.0.1:{port}" in err
    assert s3_server.secret_key not in out + err


def test_models_list_with_wrong_secret_exits_4_without_printing_it(
    s3_server, monkeypatch, capsys, caplog
):
    wrong_secret = "wrong-" + os.urandom(8).hex()
    env = {**_env_for(s3_server.settings), "MINIO_SECRET_KEY": wrong_secret}
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    bucket = s3_server.make_bucket()
    with caplog.at_level(logging.DEBUG):
        code, out, err = _run(capsys, "models", "list", "--store", f"s3://{bucket}/reg")
    assert code == 4
    assert err.startswith("kfops: error: S3 check")
    assert err.count("\n") == 1 and "SignatureDoesNotMatch" in err
    assert bucket in err and s3_server.endpoint in err
    for secret in (wrong_secret, s3_server.secret_key):
        assert secret not in out + err + caplog.text

"""Every kind of bad input, through `kfops run`: a clear error naming the problem, a non-zero exit
code, and nothing registered."""

import json

import pytest

from kfops import cli, errors, registry, store
from tests.fixtures import data

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", data.BAD_INPUTS, ids=[c.id for c in data.BAD_INPUTS])
def test_run_refuses_bad_input(case, tmp_path, capsys):
    path = case.write(tmp_path)
    params = [f"{k}={json.dumps(v)}" for k, v in data.validate_params(case.id, path).items()]
    argv = [
        "run",
        "--source",
        str(path),
        "--label",
        data.LABEL,
        "--store",
        str(tmp_path / "store"),
        "--runs-dir",
        str(tmp_path / "runs"),
        "--json",
    ]
    for p in params:
        argv += ["--param", p]
    code = cli.main(argv)
    summary = json.loads(capsys.readouterr().out)
    assert code == errors.DataError.exit_code  # README: exit 3 = bad data
    assert summary["status"] == "failed"
    assert summary["failed_step"] in ("ingest", "validate")
    assert case.fragment in summary["error"], summary["error"]
    assert registry.Registry(store.open_store(str(tmp_path / "store"))).models() == []

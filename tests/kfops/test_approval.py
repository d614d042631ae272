"""Staging and human approval (`--promote manual`, `kfops models approve`): a staged version is not
served until approved, the approval is recorded (who, why, when), and bad approvals are one line
with an exit code."""

import time

import httpx
import pytest

from kfops import approval, cli, errors, modelio, push, registry
from kfops.serving import app, model, server, settings
from kfops.store import local
from tests.kfops.serving import factories

EVALUATION = {"task": "classification", "metrics": {"roc_auc": 0.9}, "baseline_metrics": {}}
BLESSED = {"blessed": True, "reasons": [], "checks": [], "notes": []}


def _push(reg, pipeline, spec, df, tmp_path, promote: str) -> push.PushResult:
    path = tmp_path / f"model-{promote}-{time.monotonic_ns()}.joblib"
    modelio.save_model(pipeline, path)
    return push.push(
        reg, "churn", model_path=path, data_schema=spec, evaluation=EVALUATION,
        blessing=BLESSED, reference=df.head(50), lineage={"run_id": f"run-{promote}"},
        config=push.PushConfig(promote=promote),
    )  # fmt: skip


@pytest.fixture
def staged(tmp_path):
    """churn v1 champion (auto), v2 staged (manual): (registry, v2 pipeline, spec, frame)."""
    reg = registry.Registry(local.LocalStore(tmp_path / "store"))
    first, spec, df = factories.classifier()
    second = factories.classifier(c=0.01)[0]
    assert _push(reg, first, spec, df, tmp_path, push.AUTO).version == "1"
    result = _push(reg, second, spec, df, tmp_path, push.MANUAL)
    assert (result.version, result.staged) == ("2", True)
    return reg, second, spec, df


def _cli(capsys, reg, *argv):
    code = cli.main([*argv, "--store", str(reg.store.uri)])
    out, err = capsys.readouterr()
    return code, out, err


def test_manual_push_stages_the_version_and_leaves_the_champion(staged):
    reg = staged[0]
    assert reg.champion("churn") == "1" and reg.versions("churn") == ["1", "2"]
    assert approval.pending(reg, "churn") == ["2"]
    entry = approval.entries(reg, "churn")["2"]
    assert entry["state"] == "staged" and entry["run_id"] == "run-manual" and entry["staged_at"]


def test_push_config_refuses_an_unknown_promote_mode():
    with pytest.raises(errors.ConfigError, match="promote must be 'auto' or 'manual'"):
        push.PushConfig(promote="later")


def test_server_following_the_champion_serves_a_staged_model_only_once_approved(staged, capsys):
    reg, _, _, df = staged
    cfg = settings.ServeConfig(name="churn", poll_seconds=0.05, log_sample_rate=0)
    application = app.build_app(cfg, model.RegistrySource(reg), reg.store)
    body = {"inputs": factories.v2_inputs(factories.instances(df, 3))}
    with server.running(application) as url, httpx.Client(base_url=url, timeout=30) as client:

        def served() -> str:
            answer = client.post("/v2/models/churn/infer", json=body)
            assert answer.status_code == 200
            return answer.json()["model_version"]

        time.sleep(0.5)  # ten polls: the staged version 2 is registered, not the champion
        assert served() == "1"
        code, out, _ = _cli(capsys, reg, "models", "approve", "churn", "2",
                            "--by", "ana", "--reason", "shadow review ok")  # fmt: skip
        assert code == 0 and "approved by ana" in out and "champion is now 2 (was 1)" in out
        deadline = time.monotonic() + 10
        while served() != "2":
            assert time.monotonic() < deadline, "the approved champion was never served"
            time.sleep(0.05)


def test_approval_is_recorded_and_shown(staged, capsys):
    reg = staged[0]
    code, out, _ = _cli(capsys, reg, "models", "list")
    assert code == 0 and out.split("\n")[1].split() == ["churn", "1", "2", "2", "2"]
    code, out, _ = _cli(capsys, reg, "models", "show", "churn", "2")
    assert code == 0 and "churn version 2 (staged)" in out and "waiting for" in out
    approval.approve(reg, "churn", "2", "ana", "reviewed the evaluation report")
    code, out, _ = _cli(capsys, reg, "models", "show", "churn", "2", "--json")
    entry = __import__("json").loads(out)["approval"]
    assert (entry["state"], entry["approved_by"], entry["reason"]) == (
        "approved", "ana", "reviewed the evaluation report",
    )  # fmt: skip
    assert entry["approved_at"] >= entry["staged_at"]
    code, out, _ = _cli(capsys, reg, "models", "list")
    assert out.split("\n")[1].split() == ["churn", "2", "2", "2", "-"]
    code, out, _ = _cli(capsys, reg, "models", "show", "churn")
    assert "(approved, champion)" in out and "approved by ana at " in out


@pytest.mark.parametrize(
    ("version", "extra", "exit_code", "message"),
    [
        ("7", [], errors.NotFound.exit_code, "has no version 7"),
        ("1", [], errors.ConfigError.exit_code, "version 1 is not staged for approval"),
        ("2", ["--reason", " "], errors.ConfigError.exit_code, "why (--reason)"),
    ],
)
def test_bad_approvals_are_one_line_with_an_exit_code(
    staged, capsys, version, extra, exit_code, message
):
    reg = staged[0]
    argv = ["models", "approve", "churn", version, "--by", "ana", "--reason", "ok", *extra]
    code, out, err = _cli(capsys, reg, *argv)
    assert code == exit_code and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert reg.champion("churn") == "1" and approval.pending(reg, "churn") == ["2"]


def test_approving_twice_names_who_approved(staged, capsys):
    reg = staged[0]
    approval.approve(reg, "churn", "2", "ana", "ok")
    code, _, err = _cli(capsys, reg, "models", "approve", "churn", "2", "--by", "bo",
                        "--reason", "again")  # fmt: skip
    assert code == errors.ConfigError.exit_code
    assert "already approved by ana at" in err and len(err.strip().splitlines()) == 1
    assert approval.entries(reg, "churn")["2"]["approved_by"] == "ana"

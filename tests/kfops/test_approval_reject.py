"""`kfops models reject`: a staged version nobody will approve (a newer champion overtook it) stops
waiting, with who rejected it, why and when recorded in staged.json; it can no longer be approved.
Refusals are one line with an exit code and change nothing."""

import json

import pytest

from kfops import approval, errors, registry
from tests.kfops.test_approval import _cli, staged  # noqa: F401 (the fixture)


def _staged_json(reg) -> bytes:
    return reg.store.get_bytes(f"models/churn/{registry.STAGED_FILE}")


def test_reject_records_who_why_when_and_leaves_the_waiting_list(staged, capsys):  # noqa: F811
    reg = staged[0]
    code, out, err = _cli(capsys, reg, "models", "reject", "churn", "2",
                          "--by", "ana", "--reason", "v3 overtook it")  # fmt: skip
    assert (code, err) == (0, "")
    assert (
        out
        == "churn: version 2 rejected by ana (v3 overtook it); it no longer waits for approval\n"
    )
    entry = approval.entries(reg, "churn")["2"]
    assert entry["state"] == "rejected" and entry["rejected_by"] == "ana"
    assert entry["reason"] == "v3 overtook it" and entry["rejected_at"] and entry["staged_at"]
    assert approval.pending(reg, "churn") == [] and reg.champion("churn") == "1"
    code, out, _ = _cli(capsys, reg, "models", "list", "--json")
    assert json.loads(out)[0]["staged"] == []
    code, out, _ = _cli(capsys, reg, "models", "show", "churn", "2")
    assert out.startswith("churn version 2 (rejected)\nrejected by ana at ")
    assert out.splitlines()[1].endswith(": v3 overtook it")


def test_a_rejected_version_cannot_be_approved(staged, capsys):  # noqa: F811
    reg = staged[0]
    entry = approval.reject(reg, "churn", "2", "ana", "v3 overtook it")
    before = _staged_json(reg)
    code, out, err = _cli(capsys, reg, "models", "approve", "churn", "2",
                          "--by", "bo", "--reason", "looks fine")  # fmt: skip
    assert code == errors.ConfigError.exit_code and out == ""
    assert err == (
        f"kfops: error: model 'churn' version 2 was rejected by ana at {entry['rejected_at']} "
        "(v3 overtook it): it cannot be approved\n"
    )
    assert _staged_json(reg) == before and reg.champion("churn") == "1"


@pytest.mark.parametrize(
    ("version", "setup", "message"),
    [
        ("1", None, "model 'churn' version 1 is not staged for approval (staged versions: 2)"),
        ("2", "approve", "model 'churn' version 2 was already approved by ana at "),
        ("2", "reject", "model 'churn' version 2 was rejected by ana at "),
    ],
)
def test_rejecting_a_version_not_waiting_is_one_line_and_changes_nothing(
    staged,  # noqa: F811
    capsys,
    version,
    setup,
    message,
):
    reg = staged[0]
    if setup:
        getattr(approval, setup)(reg, "churn", "2", "ana", "first")
    before, champion = _staged_json(reg), reg.champion("churn")
    code, out, err = _cli(capsys, reg, "models", "reject", "churn", version,
                          "--by", "bo", "--reason", "late")  # fmt: skip
    assert code == errors.ConfigError.exit_code and out == ""
    assert err.startswith(f"kfops: error: {message}") and err.count("\n") == 1
    assert _staged_json(reg) == before and reg.champion("churn") == champion


def test_reject_needs_who_and_why_and_a_known_version(staged, capsys):  # noqa: F811
    reg = staged[0]
    before = _staged_json(reg)
    code, _, err = _cli(capsys, reg, "models", "reject", "churn", "2", "--by", " ", "--reason", "x")
    assert code == errors.ConfigError.exit_code
    assert err == "kfops: error: a rejection needs who rejects (--by) and why (--reason)\n"
    code, _, err = _cli(capsys, reg, "models", "reject", "churn", "9", "--by", "a", "--reason", "x")
    assert code == errors.NotFound.exit_code and err.count("\n") == 1
    assert _staged_json(reg) == before and approval.pending(reg, "churn") == ["2"]


def test_a_rejected_version_cannot_be_promoted_by_hand(staged, capsys):  # noqa: F811
    reg = staged[0]
    entry = approval.reject(reg, "churn", "2", "ana", "v3 overtook it")
    code, out, err = _cli(capsys, reg, "models", "promote", "churn", "2")
    assert code == errors.ConfigError.exit_code and out == ""
    assert err == (
        f"kfops: error: model 'churn' version 2 was rejected by ana at {entry['rejected_at']} "
        "(v3 overtook it): it is not promoted (stage a new version instead)\n"
    )
    assert reg.champion("churn") == "1"

"""`kfops models promote` cannot serve a version that waits for approval (issue #19): it would make
a staged model the champion with no one's name or reason recorded, and leave it listed as
waiting. Approval is the way; a version never staged, or already approved, promotes as before."""

from kfops import approval, errors
from tests.kfops.test_approval import _cli, staged  # noqa: F401 (the fixture)


def test_promote_refuses_a_staged_version_in_one_line(staged, capsys):  # noqa: F811
    reg = staged[0]
    code, out, err = _cli(capsys, reg, "models", "promote", "churn", "2")
    assert code == errors.ConfigError.exit_code and out == ""
    assert err.strip() == (
        "kfops: error: model 'churn' version 2 is staged for approval: "
        "`kfops models approve churn 2 --by WHO --reason WHY` promotes it"
    )
    assert reg.champion("churn") == "1" and approval.pending(reg, "churn") == ["2"]


def test_promote_moves_to_an_approved_or_never_staged_version(staged, capsys):  # noqa: F811
    reg = staged[0]
    approval.approve(reg, "churn", "2", "ana", "reviewed")
    code, out, _ = _cli(capsys, reg, "models", "promote", "churn", "1")  # never staged
    assert code == 0 and out.strip() == "churn: champion is now 1 (was 2)"
    code, out, _ = _cli(capsys, reg, "models", "promote", "churn", "2")  # approved
    assert code == 0 and reg.champion("churn") == "2"

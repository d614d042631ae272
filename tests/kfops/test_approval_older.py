"""`kfops models approve` of a version older than the champion (staged v2, then v3 became champion
by an automatic push) would move the champion back: refused in one line naming both versions and
--allow-older, nothing written; with the flag it goes back and records the champion it replaced.
"Older" is the registry's version number (kfops.approval.approve)."""

import json

import pytest

from kfops import approval, errors, push, registry
from tests.kfops.test_approval import _cli, _push, staged  # noqa: F401 (the fixture)


@pytest.fixture
def newer_champion(staged, tmp_path):  # noqa: F811
    """The `staged` store plus churn v3 pushed with promote=auto: v3 champion, v2 still staged."""
    reg, pipeline, spec, df = staged
    assert _push(reg, pipeline, spec, df, tmp_path, push.AUTO).version == "3"
    assert reg.champion("churn") == "3" and approval.pending(reg, "churn") == ["2"]
    return reg


def _documents(reg) -> tuple[bytes, bytes]:
    return tuple(
        reg.store.get_bytes(f"{registry.ROOT}/churn/{name}")
        for name in (registry.CHAMPION_FILE, registry.STAGED_FILE)
    )


def test_approving_a_version_older_than_the_champion_is_refused_in_one_line(newer_champion, capsys):
    reg = newer_champion
    before = _documents(reg)
    code, out, err = _cli(capsys, reg, "models", "approve", "churn", "2", "--by", "ana",
                          "--reason", "reviewed")  # fmt: skip
    assert code == errors.ConfigError.exit_code and out == ""
    assert err.strip() == (
        "kfops: error: model 'churn' version 2 is older than the champion 3: approving it would "
        "move the champion back; add --allow-older to do that"
    )
    assert _documents(reg) == before  # champion.json and staged.json byte for byte
    assert reg.champion("churn") == "3" and approval.pending(reg, "churn") == ["2"]


def test_allow_older_moves_the_champion_back_and_records_it(newer_champion, capsys):
    reg = newer_champion
    code, out, err = _cli(capsys, reg, "models", "approve", "churn", "2", "--by", "ana",
                          "--reason", "v3 regressed", "--allow-older")  # fmt: skip
    assert code == 0 and err == ""
    assert out.strip() == (
        "churn: version 2 approved by ana (v3 regressed); champion is now 2 (was 3)"
    )
    assert reg.champion("churn") == "2" and approval.pending(reg, "churn") == []
    assert reg.champion_pointer("churn")["previous"][-1] == "3"
    entry = approval.entries(reg, "churn")["2"]
    assert (entry["state"], entry["approved_by"], entry["moved_back_from"]) == (
        "approved", "ana", "3",
    )  # fmt: skip
    code, out, _ = _cli(capsys, reg, "models", "show", "churn", "2", "--json")
    assert json.loads(out)["approval"]["moved_back_from"] == "3"


def test_a_newer_version_is_approved_without_the_flag_and_records_no_move_back(staged):  # noqa: F811
    reg = staged[0]
    entry = approval.approve(reg, "churn", "2", "ana", "ok")
    assert reg.champion("churn") == "2" and "moved_back_from" not in entry


def test_older_is_by_version_number_not_by_its_spelling(staged, tmp_path):  # noqa: F811
    """Champion 10 (an explicit version number) is newer than staged 2, though "10" < "2"."""
    reg = staged[0]
    copy = tmp_path / "v1"
    reg.fetch("churn", "1", copy)
    files = {f: copy / f for f in reg.manifest("churn", "1")["files"]}
    reg.register("churn", files, version="10")
    reg.promote("churn", "10")
    with pytest.raises(errors.ConfigError, match="older than the champion 10"):
        approval.approve(reg, "churn", "2", "ana", "ok")
    assert reg.champion("churn") == "10" and approval.pending(reg, "churn") == ["2"]

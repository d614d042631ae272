"""`kfops deploy --version N` refuses a version still staged for approval (`--promote manual`): it
would serve a model nobody approved. One line naming `kfops models approve` and `--allow-staged`,
exit 2, nothing rendered to stdout and no cluster contacted; `--allow-staged` deploys it (a
reviewer's test deployment); an approved or never-staged version deploys as before."""

import pytest

from kfops import approval, cli, deploy, errors
from tests.kfops.test_approval import staged  # noqa: F401 (the fixture)
from tests.kfops.test_deploy import KUBECTL, FakeClock, FakeKube, manifests  # noqa: F401


@pytest.fixture
def cluster(monkeypatch):
    """deploy.connect -> a FakeKube; every connect recorded; rollout on a fake clock."""
    api, clock, connects = FakeKube(), FakeClock(), []
    rollout = deploy.rollout

    def connect(kubeconfig=None):
        connects.append(kubeconfig)
        return api

    monkeypatch.setattr(deploy, "connect", connect)
    monkeypatch.setattr(
        deploy, "rollout", lambda a, objs, timeout: rollout(a, objs, timeout, clock, clock.sleep)
    )
    return api, connects


def _deploy(capsys, reg, manifests, version, *extra):  # noqa: F811
    argv = ["deploy", "--version", version, "--overlay", "kind", "--manifests", str(manifests)]
    code = cli.main([*argv, "--kubectl", KUBECTL, "--store", str(reg.store.uri), *extra])
    out, err = capsys.readouterr()
    return code, out, err


STAGED_LINE = (
    "kfops: error: model 'churn' version 2 is staged for approval in {uri}: "
    "`kfops models approve churn 2 --by WHO --reason WHY` approves it, "
    "--allow-staged deploys it anyway (a reviewer's test deployment)\n"
)


@pytest.mark.parametrize("extra", [(), ("--dry-run",)])
def test_deploy_refuses_a_staged_version_in_one_line(staged, manifests, cluster, capsys, extra):  # noqa: F811
    reg = staged[0]
    code, out, err = _deploy(capsys, reg, manifests, "2", *extra)
    assert code == errors.ConfigError.exit_code and out == ""
    assert err == STAGED_LINE.format(uri=reg.store.uri)
    api, connects = cluster
    assert connects == [] and api.applied == []
    assert approval.pending(reg, "churn") == ["2"] and reg.champion("churn") == "1"


def test_allow_staged_deploys_it_for_a_test(staged, manifests, cluster, capsys):  # noqa: F811
    reg = staged[0]
    code, out, err = _deploy(capsys, reg, manifests, "2", "--allow-staged")
    assert (code, err) == (0, "")
    assert out.startswith("deployed Deployment/kfops-server: model version 2 ready in ")
    assert cluster[1] == [None] and cluster[0].applied
    assert approval.pending(reg, "churn") == ["2"] and reg.champion("churn") == "1"


def test_approved_and_never_staged_versions_deploy(staged, manifests, cluster, capsys):  # noqa: F811
    reg = staged[0]
    code, out, _ = _deploy(capsys, reg, manifests, "1")  # never staged
    assert code == 0 and "model version 1 ready" in out
    approval.approve(reg, "churn", "2", "ana", "reviewed")
    code, out, _ = _deploy(capsys, reg, manifests, "2")
    assert code == 0 and "model version 2 ready" in out


def test_a_missing_store_named_with_store_is_one_line(manifests, cluster, tmp_path, capsys):  # noqa: F811
    argv = ["deploy", "--version", "2", "--manifests", str(manifests), "--kubectl", KUBECTL]
    code = cli.main([*argv, "--store", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code == errors.NotFound.exit_code and err.count("\n") == 1 and "no store at" in err
    assert cluster[1] == []


def test_without_store_and_no_local_store_the_unchecked_deploy_says_so(
    manifests,  # noqa: F811
    cluster,
    tmp_path,
    monkeypatch,
    capsys,
):
    monkeypatch.chdir(tmp_path)  # no .kfops/store here
    argv = ["deploy", "--version", "2", "--manifests", str(manifests), "--kubectl", KUBECTL]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0 and "model version 2 ready" in out
    assert err == (
        "kfops: note: not checked whether version 2 waits for approval: "
        "no store at .kfops/store (--store URI checks it)\n"
    )


def test_deploy_refuses_a_rejected_version_in_one_line(staged, manifests, cluster, capsys):  # noqa: F811
    reg = staged[0]
    entry = approval.reject(reg, "churn", "2", "ana", "v3 overtook it")
    code, out, err = _deploy(capsys, reg, manifests, "2")
    assert code == errors.ConfigError.exit_code and out == ""
    assert err == (
        f"kfops: error: model 'churn' version 2 was rejected by ana at {entry['rejected_at']} "
        f"(v3 overtook it) in {reg.store.uri}: --allow-staged deploys it anyway (a reviewer's "
        "test deployment)\n"
    )
    assert cluster[1] == [] and cluster[0].applied == []

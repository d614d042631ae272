"""kfops.submit: the real kfp.Client against a fake KFP v2beta1 REST API on 127.0.0.1.

A KFP API server cannot run here; `FakeKfp` answers the handful of endpoints `kfops submit` uses
and records what it was sent, so the tests check the requests kfp.Client really makes.
"""

import json
import socket

import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kfops import cli, errors, submit
from kfops.commands import submit as submit_command
from kfops.serving import server

PACKAGE = submit_command.default_package()


class FakeKfp:
    """State of a fake KFP API server: pipelines, versions, experiments, runs."""

    def __init__(self):
        self.pipelines: dict[str, str] = {}  # id -> name
        self.versions: dict[str, list[dict]] = {}  # pipeline id -> versions
        self.experiments: dict[str, str] = {}  # id -> name
        self.runs: list[dict] = []
        self.recurring: list[dict] = []
        self.uploads = 0
        self.ids = 0
        self.final_state = "SUCCEEDED"

    def _new_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}-{self.ids}"

    async def healthz(self, request: Request):
        return JSONResponse({"multi_user": False})

    async def list_pipelines(self, request: Request):
        wanted = json.loads(request.query_params["filter"])["predicates"][0]["stringValue"]
        found = [
            {"pipeline_id": i, "display_name": n} for i, n in self.pipelines.items() if n == wanted
        ]
        return JSONResponse({"pipelines": found, "total_size": len(found)})

    async def upload(self, request: Request):
        await request.body()
        pid = self._new_id("pipeline")
        self.pipelines[pid] = request.query_params["name"]
        self.versions[pid] = [
            {"pipeline_version_id": f"{pid}-v0", "display_name": request.query_params["name"]}
        ]
        self.uploads += 1
        return JSONResponse({"pipeline_id": pid, "display_name": self.pipelines[pid]})

    async def list_versions(self, request: Request):
        return JSONResponse({"pipeline_versions": self.versions[request.path_params["pid"]]})

    async def upload_version(self, request: Request):
        await request.body()
        pid = request.query_params["pipelineid"]
        version = {
            "pipeline_version_id": self._new_id("version"),
            "display_name": request.query_params["name"],
        }
        self.versions[pid].append(version)
        self.uploads += 1
        return JSONResponse({**version, "pipeline_id": pid})

    async def experiments_endpoint(self, request: Request):
        if request.method == "POST":
            eid = self._new_id("experiment")
            self.experiments[eid] = (await request.json())["display_name"]
            return JSONResponse({"experiment_id": eid, "display_name": self.experiments[eid]})
        wanted = json.loads(request.query_params["filter"])["predicates"][0]["stringValue"]
        found = [
            {"experiment_id": i, "display_name": n}
            for i, n in self.experiments.items()
            if n == wanted
        ]
        return JSONResponse({"experiments": found, "total_size": len(found)})

    async def create_run(self, request: Request):
        body = await request.json()
        self.runs.append(body)
        return JSONResponse({**body, "run_id": f"run-{len(self.runs)}"})

    async def get_run(self, request: Request):
        run_id = request.path_params["rid"]
        return JSONResponse({"run_id": run_id, "state": self.final_state})

    async def create_recurring(self, request: Request):
        body = await request.json()
        self.recurring.append(body)
        return JSONResponse({**body, "recurring_run_id": f"recurring-{len(self.recurring)}"})

    def app(self) -> Starlette:
        base = "/apis/v2beta1"
        return Starlette(
            routes=[
                Route(f"{base}/healthz", self.healthz),
                Route(f"{base}/pipelines", self.list_pipelines),
                Route(f"{base}/pipelines/upload", self.upload, methods=["POST"]),
                Route(f"{base}/pipelines/upload_version", self.upload_version, methods=["POST"]),
                Route(f"{base}/pipelines/{{pid}}/versions", self.list_versions),
                Route(f"{base}/experiments", self.experiments_endpoint, methods=["GET", "POST"]),
                Route(f"{base}/runs", self.create_run, methods=["POST"]),
                Route(f"{base}/runs/{{rid}}", self.get_run),
                Route(f"{base}/recurringruns", self.create_recurring, methods=["POST"]),
            ]
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def kfp_api():
    """A FakeKfp served by uvicorn on a free 127.0.0.1 port; yields (state, host URL)."""
    state = FakeKfp()
    with server.running(state.app()) as url:
        yield state, url


def _config(host, **kwargs):
    return submit.SubmitConfig(host=host, package=PACKAGE, **kwargs)


def test_submit_uploads_pipeline_and_starts_run(kfp_api):
    state, host = kfp_api
    result = submit.submit(_config(host, params={"seed": 3}, service_account="kfops-deployer"))
    name, _, version_name = submit.read_package(PACKAGE)
    assert list(state.pipelines.values()) == [name]
    assert result.run_id == "run-1" and result.recurring_run_id is None
    run = state.runs[0]
    assert run["pipeline_version_reference"] == {
        "pipeline_id": result.pipeline_id,
        "pipeline_version_id": result.version_id,
    }
    assert run["runtime_config"]["parameters"] == {"seed": 3}
    assert run["service_account"] == "kfops-deployer"
    assert run["experiment_id"] == result.experiment_id
    assert result.version_name == version_name
    assert result.url == f"{host}/#/runs/details/run-1"


def test_submit_adds_version_when_pipeline_exists_and_reuses_identical_one(kfp_api):
    state, host = kfp_api
    first = submit.submit(_config(host))
    second = submit.submit(_config(host))
    assert first.pipeline_id == second.pipeline_id
    assert first.version_id == second.version_id, "same content must not upload a new version"
    assert state.uploads == 2  # the pipeline, then its content-named version
    assert len(state.experiments) == 1 and len(state.runs) == 2


def test_submit_schedules_recurring_run_with_six_field_cron(kfp_api):
    state, host = kfp_api
    result = submit.submit(_config(host, schedule="0 3 * * *", experiment="nightly"))
    assert result.recurring_run_id == "recurring-1" and result.run_id is None
    trigger = state.recurring[0]["trigger"]["cron_schedule"]
    assert trigger["cron"] == "0 0 3 * * *"
    assert int(state.recurring[0]["max_concurrency"]) == 1
    assert list(state.experiments.values()) == ["nightly"]


def test_submit_fails_with_one_line_when_host_unreachable(capsys):
    port = _free_port()  # bound then released: nothing listens there
    code = cli.main(["submit", "--host", f"http://127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == errors.ConfigError.exit_code
    assert err.count("\n") == 1
    assert f"cannot reach Kubeflow Pipelines at http://127.0.0.1:{port}" in err
    assert "refused" in err.lower()


def test_submit_rejects_unknown_parameter_before_calling_host():
    with pytest.raises(errors.ConfigError, match=r"no parameter\(s\) \['not_a_param'\]"):
        submit.submit(_config("http://127.0.0.1:9", params={"not_a_param": 1}))


def test_submit_command_prints_run_and_url(kfp_api, capsys):
    _, host = kfp_api
    assert cli.main(["submit", "--host", host, "--param", "seed=4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith(": run run-1")
    assert out[-1] == f"{host}/#/runs/details/run-1"


def test_parse_params_keeps_the_text_for_the_pipeline_types():
    items = ["seed=3", "model_name=2024", "flags=[1, 2]", "empty=", "eq=a=b"]
    assert submit.parse_params(items) == {
        "seed": "3", "model_name": "2024", "flags": "[1, 2]", "empty": "", "eq": "a=b"
    }  # fmt: skip


def test_submit_sends_each_param_as_the_type_the_pipeline_declares(kfp_api, capsys):
    state, host = kfp_api
    params = [
        "seed=4", "model_name=2024", "deploy=true", "test_fraction=0.25", "cv_folds=-3",
        'drop_columns=["a", "b"]', 'gate_thresholds={"roc_auc": 0.7}', "label=",
    ]  # fmt: skip
    assert cli.main(["submit", "--host", host, *[a for p in params for a in ("--param", p)]]) == 0
    assert state.runs[0]["runtime_config"]["parameters"] == {
        "seed": 4, "model_name": "2024", "deploy": True, "test_fraction": 0.25, "cv_folds": -3,
        "drop_columns": ["a", "b"], "gate_thresholds": {"roc_auc": 0.7}, "label": "",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("param", "said"),
    [
        ("seed=abc", "takes seed as an integer (NUMBER_INTEGER), got 'abc'"),
        ("seed=3.5", "takes seed as an integer (NUMBER_INTEGER), got '3.5'"),
        ("test_fraction=nan", "takes test_fraction as a finite number (NUMBER_DOUBLE), got 'nan'"),
        ("deploy=yes", "takes deploy as true or false (BOOLEAN), got 'yes'"),
        ('drop_columns={"a": 1}', "takes drop_columns as a JSON list (LIST), got"),
        ("gate_thresholds=[1]", "takes gate_thresholds as a JSON object (STRUCT), got '[1]'"),
    ],
)
def test_submit_refuses_a_param_of_the_wrong_type_in_one_line_before_uploading(
    kfp_api, capsys, param, said
):
    state, host = kfp_api
    assert cli.main(["submit", "--host", host, "--param", param]) == errors.ConfigError.exit_code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err
    assert state.uploads == 0 and not state.runs


def test_submit_refuses_a_python_value_of_the_wrong_type():
    with pytest.raises(errors.ConfigError, match=r"takes seed as an integer .*got True"):
        submit.submit(_config("http://127.0.0.1:9", params={"seed": True}))
    with pytest.raises(errors.ConfigError, match=r"takes model_name as text .*got 2024"):
        submit.submit(_config("http://127.0.0.1:9", params={"model_name": 2024}))


def test_parse_params_rejects_item_without_equals():
    with pytest.raises(errors.ConfigError, match="name=value"):
        submit.parse_params(["seed"])


@pytest.mark.parametrize(
    ("cron", "expected"), [("0 3 * * *", "0 0 3 * * *"), ("5 0 3 * * *", "5 0 3 * * *")]
)
def test_kfp_cron_adds_seconds_field(cron, expected):
    assert submit.kfp_cron(cron) == expected


def test_kfp_cron_rejects_wrong_field_count():
    with pytest.raises(errors.ConfigError, match="5 or 6 cron fields"):
        submit.kfp_cron("* * *")


def test_submit_config_rejects_host_without_scheme():
    with pytest.raises(errors.ConfigError, match="http://"):
        _config("localhost:8080")


def test_read_package_version_name_follows_content(tmp_path):
    copy, same = tmp_path / "p.yaml", tmp_path / "same.yaml"
    copy.write_bytes(PACKAGE.read_bytes() + b"\n# changed\n")
    same.write_bytes(PACKAGE.read_bytes())
    assert submit.read_package(PACKAGE)[2] != submit.read_package(copy)[2]
    assert submit.read_package(PACKAGE)[2] == submit.read_package(same)[2]


def test_submit_wait_returns_when_run_succeeds(kfp_api):
    _, host = kfp_api
    assert submit.submit(_config(host, wait_seconds=30)).run_id == "run-1"


def test_submit_wait_fails_when_run_fails(kfp_api):
    state, host = kfp_api
    state.final_state = "FAILED"
    with pytest.raises(errors.PipelineFailed, match="run run-1 ended FAILED"):
        submit.submit(_config(host, wait_seconds=30))


def test_submit_config_rejects_wait_with_schedule():
    with pytest.raises(errors.ConfigError, match="one-off run"):
        _config("http://127.0.0.1:9", schedule="0 3 * * *", wait_seconds=10)


def test_submit_refuses_a_local_store_before_calling_host(capsys):
    argv = ["submit", "--host", "http://127.0.0.1:9", "--param", "store_uri=.kfops/store"]
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == errors.ConfigError.exit_code
    assert err.count("\n") == 1
    assert "store_uri '.kfops/store' is not object storage" in err


def test_submit_refuses_a_package_whose_default_store_is_local(tmp_path):
    """The issue-12 case: `kfops submit --param model_name=churn` of a pod-local default."""
    docs = list(yaml.safe_load_all(PACKAGE.read_text()))
    docs[0]["root"]["inputDefinitions"]["parameters"]["store_uri"]["defaultValue"] = ".kfops/store"
    package = tmp_path / "training.yaml"
    package.write_text(yaml.safe_dump_all(docs))
    config = submit.SubmitConfig(
        host="http://127.0.0.1:9", package=package, params={"model_name": "churn"}
    )
    with pytest.raises(errors.ConfigError, match="not object storage"):
        submit.submit(config)


def test_submit_sends_the_packaged_object_store_default(kfp_api):
    state, host = kfp_api
    assert submit.package_defaults(PACKAGE)["store_uri"].startswith("s3://")
    submit.submit(_config(host, params={"model_name": "churn"}))
    assert state.runs[0]["runtime_config"]["parameters"] == {"model_name": "churn"}


def test_submit_allows_a_local_store_when_told(kfp_api):
    state, host = kfp_api
    argv = ["submit", "--host", host, "--param", "store_uri=/mnt/shared/store"]
    assert cli.main([*argv, "--allow-local-store"]) == 0
    assert state.runs[0]["runtime_config"]["parameters"] == {"store_uri": "/mnt/shared/store"}

"""Column control (issue 14): `--drop`, `--ignore`, `--id`, `--type`, `--task` against a schema,
`--runner docker` without an engine, and what the run summary shows. The flags' mistakes are one
line with exit 2 and write nothing; the pipeline behaviour is in tests/pipelines/test_own_data.py.
"""

import json

import numpy as np
import pandas as pd
import pytest

from kfops import errors, gate, parameters, schema, validate
from kfops.validate import infer
from tests.kfops.test_cli_mistakes import assert_one_line, kfops

CONFIG = errors.ConfigError.exit_code


def columns(**values) -> schema.ColumnConfig:
    return parameters.build(schema.ColumnConfig, **values)


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (x + rng.normal(scale=0.8, size=n) > 0).astype(int)
    return pd.DataFrame(
        {
            "row_id": np.arange(n),
            "x": x,
            "zip": rng.choice([10115, 20095, 80331], n),
            "when": pd.date_range("2026-01-01", periods=n, freq="h").astype(str),
            "const": 7,
            "leak": y * 3.0 + rng.normal(scale=0.01, size=n),
            "y": y,
        }
    )


# ---- the stage logic: ingest applies --drop and --type, validate --ignore and --id ----


def test_drop_removes_the_columns_before_validation_so_they_no_longer_block():
    df = frame()
    blocked = validate.validate(df, infer.infer_schema(df, "y"))
    assert {(a.column, a.rule) for a in blocked.blocking} >= {("const", "constant"),
                                                              ("leak", "leakage")}  # fmt: skip
    kept = columns(drop_columns=["const", "leak"]).drop(df)
    assert list(kept.columns) == ["row_id", "x", "zip", "when", "y"]
    assert validate.validate(kept, infer.infer_schema(kept, "y")).blocking == ()


def test_the_blocking_hints_name_the_flags_to_type():
    df = frame()
    found = {a.rule: a.detail for a in validate.validate(df, infer.infer_schema(df, "y")).blocking}
    assert "--drop leak" in found["leakage"]
    assert "--drop const" in found["constant"] and "--ignore const" in found["constant"]


def test_ignore_and_id_keep_the_columns_in_the_data_but_out_of_the_features():
    df = frame()
    sch = infer.infer_schema(df, "y", ignore_columns=["const", "leak"], id_columns=["row_id"])
    assert sch.column("const").role == "ignore" and sch.column("leak").role == "ignore"
    assert sch.column("row_id").role == "id"
    assert sch.feature_names == ["x", "zip"]  # `when` is a string feature only if not ignored
    # an ignored column is never judged as a feature: not constant, not leaky
    assert validate.validate(df, sch).blocking == ()


def test_a_snapshot_of_cast_data_casts_to_itself():
    # a retraining run reads the version's snapshot (already cast) with the same flags
    cfg = columns(column_types={"zip": "categorical", "when": "datetime", "x": "numeric"})
    once = cfg.cast(frame())
    pd.testing.assert_frame_equal(cfg.cast(once), once)


def test_type_overrides_what_inference_would_say():
    df = frame()
    assert infer.infer_schema(df, "y").column("zip").dtype == "int"
    typed = columns(column_types={"zip": "categorical", "when": "datetime",
                                  "x": "numeric"}).cast(df)  # fmt: skip
    sch = infer.infer_schema(typed, "y")
    assert sch.column("zip").dtype == "string"
    assert sch.column("zip").domain == ("10115", "20095", "80331")
    assert sch.column("when").dtype == "datetime"
    assert sch.column("x").dtype == "float"


def test_categorical_keeps_integers_read_as_floats_as_their_text():
    # a CSV integer column with a gap reads as floats; its categories are "3" and "12", not "3.0"
    s = pd.Series([3.0, None, 12.0], name="code")
    out = columns(column_types={"code": "categorical"}).cast(s.to_frame())["code"]
    assert out[0] == "3" and pd.isna(out[1]) and out[2] == "12"


def test_a_type_the_data_cannot_hold_names_the_column_and_the_first_bad_values():
    df = pd.DataFrame({"amount": ["12", "7.5", "n/a", "", "lots"] * 3, "y": [0, 1, 0] * 5})
    with pytest.raises(errors.ConfigError) as caught:
        columns(column_types={"amount": "numeric"}).cast(df)
    message = str(caught.value)
    assert message.startswith("--type amount=numeric: 9 of 15 values are not numbers")
    assert "'n/a'" in message and "'lots'" in message and "\n" not in message
    with pytest.raises(errors.ConfigError, match=r"--type y=datetime: .* not dates"):
        columns(column_types={"y": "datetime"}).cast(pd.DataFrame({"y": ["2026-01-01", "x"]}))


def test_an_unknown_column_is_named_with_the_close_names():
    df = frame()
    with pytest.raises(errors.ConfigError) as caught:
        columns(drop_columns=["lek"]).drop(df)
    assert str(caught.value).startswith("--drop 'lek': no such column; did you mean 'leak'?")
    with pytest.raises(errors.ConfigError, match=r"^--type 'zipcode': no such column; did you"):
        columns(column_types={"zipcode": "categorical"}).cast(df)
    with pytest.raises(errors.ConfigError, match=r"^--ignore 'nothing': no such column; the data"):
        columns(ignore_columns=["nothing"]).check_known(df.columns, ("ignore_columns",))


def test_flags_that_restate_a_held_schema_pass_and_flags_that_change_it_are_refused():
    df = frame()
    held = infer.infer_schema(df, "y", id_columns=["row_id"])
    columns(id_columns=["row_id"], column_types={"x": "numeric"}).check_held(held, "s", "")
    columns().check_held(held, "s", "classification")
    with pytest.raises(errors.ConfigError, match=r"^--task regression conflicts with the schema"):
        columns().check_held(held, "schema.json", "regression")
    with pytest.raises(errors.ConfigError, match=r"^--ignore x: the schema from s has it as role"):
        columns(ignore_columns=["x"]).check_held(held, "s", "")
    with pytest.raises(errors.ConfigError, match=r"^--type zip=categorical: the schema from s"):
        columns(column_types={"zip": "categorical"}).check_held(held, "s", "")


# ---- the CLI: mistakes in the flags are one line, exit 2, before anything runs ----


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frame().to_csv(tmp_path / "data.csv", index=False)
    return tmp_path


RUN = ("run", "--source", "data.csv", "--label", "y", "--store", "store", "--runs-dir", "runs")


@pytest.mark.parametrize(
    ("flags", "fragments"),
    [
        (("--drop", "y"), ["column 'y' is dropped (--drop) but also used as --label"]),
        (("--drop", "x", "--slice", "x"), ["'x' is dropped (--drop) but also used as --slice"]),
        (("--drop", "zip", "--sensitive", "zip"), ["also used as --sensitive", "--ignore zip"]),
        (("--param", 'drop_columns=["zip"]', "--param", "time_column=zip"), ["as time_column"]),
        (("--ignore", "y"), ["column 'y' is the label and also given to --ignore"]),
        (("--id", "y"), ["column 'y' is the label and also given to --id"]),
        (("--drop", "x", "--ignore", "x"), ["'x' is given to both --drop and --ignore"]),
        (("--drop", "x", "--type", "x=numeric"), ["'x' is given to both --drop and --type"]),
        (("--type", "zip"), ["--type expects COL=KIND", "categorical, numeric, datetime"]),
        (("--type", "zip=text"), ["--type zip must be one of", "'text'"]),
        (("--param", 'column_types={"zip": "number"}'), ["--type zip must be one of"]),
        (("--param", 'drop_columns="x"'), ["drop_columns must be list"]),
    ],
)
def test_column_flag_mistakes_are_one_line_exit_2_and_run_nothing(capsys, cwd, flags, fragments):
    code, _, err = kfops(capsys, *RUN, *flags)
    assert code == CONFIG
    assert_one_line(err, *fragments)
    assert not (cwd / "runs").exists()
    assert not (cwd / "store" / "models").exists() and not (cwd / "store" / "runs").exists()


def test_task_against_the_given_schema_is_one_line_exit_2(capsys, cwd):
    infer.infer_schema(frame(), "y").save(cwd / "schema.json")  # says classification
    code, _, err = kfops(capsys, *RUN, "--task", "regression", "--param", "schema_uri=schema.json")
    assert code == CONFIG
    assert_one_line(err, "--task regression conflicts with the schema from schema.json",
                    "which says classification")  # fmt: skip
    assert not (cwd / "runs").exists()
    code, _, err = kfops(capsys, *RUN, "--ignore", "x", "--param", "schema_uri=schema.json")
    assert code == CONFIG
    assert_one_line(err, "--ignore x: the schema from schema.json has it as role 'feature'")


def test_runner_docker_without_an_engine_names_where_it_looked_and_the_fix(
    capsys, cwd, monkeypatch
):
    # a real Docker client against a socket path that does not exist: no engine answers there
    monkeypatch.setenv("DOCKER_HOST", f"unix://{cwd}/no-engine/docker.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(cwd / "xdg"))  # no Podman socket found either
    code, _, err = kfops(capsys, *RUN, "--runner", "docker")
    assert code == CONFIG
    assert_one_line(
        err,
        f"--runner docker: no container engine answers at unix://{cwd}/no-engine/docker.sock",
        "No such file or directory",
        "export DOCKER_HOST=unix://",
        "--runner subprocess",
    )
    assert not (cwd / "runs").exists()


def test_runner_docker_points_at_a_podman_socket_it_finds(capsys, cwd, monkeypatch):
    import socket  # noqa: PLC0415

    monkeypatch.setenv("DOCKER_HOST", f"unix://{cwd}/no-engine/docker.sock")
    (cwd / "xdg" / "podman").mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(cwd / "xdg"))
    with socket.socket(socket.AF_UNIX) as listening:  # a socket file, as Podman's service makes
        listening.bind(str(cwd / "xdg" / "podman" / "podman.sock"))
        code, _, err = kfops(capsys, *RUN, "--runner", "docker")
    assert code == CONFIG
    assert_one_line(err, f"export DOCKER_HOST=unix://{cwd}/xdg/podman/podman.sock")


# ---- the run summary: validation warnings and the champion comparison ----


def test_summary_shows_validation_warnings_and_the_champion_comparison(tmp_path):
    from kfops import localrun  # noqa: PLC0415 (kfp only for this test)
    from kfops.commands import run as run_cmd  # noqa: PLC0415

    df = frame(200)
    df = pd.concat([df, df.iloc[:30]], ignore_index=True)  # 30 of 230 rows repeat others
    report = validate.validate(df, infer.infer_schema(df, "y", ignore_columns=["const", "leak"]))
    outputs = tmp_path / "outputs"
    (outputs / "validate").mkdir(parents=True)
    (outputs / "gate").mkdir()
    (outputs / "validate" / "anomalies").write_text(json.dumps(report.to_dict()))
    check = gate.Check("not worse than champion", True, "roc_auc 0.9100 vs champion 0.8900")
    blessing = gate.Blessing(True, (), (gate.Check("min roc_auc", True, "ok"), check))
    (outputs / "gate" / "blessing").write_text(json.dumps(blessing.to_dict()))
    summary = localrun.RunSummary(
        run_id="r1", pipeline="kfops-training", status="succeeded", run_dir=str(tmp_path / "r1"),
        log="/x/run.log", duration_s=1.0, parameters={}, blessed=True, model_name="m",
        model_version="2", model_uri="/s/models/m/2",
    )  # fmt: skip
    summary = localrun.read_training_outputs(summary, outputs)
    assert summary.champion == "roc_auc 0.9100 vs champion 0.8900"
    assert len(summary.warnings) == 1 and summary.warnings[0].startswith("*: duplicate_rows: ")
    assert "13.0%" in summary.warnings[0]
    lines = run_cmd.render(summary).splitlines()
    assert f"  warning: {summary.warnings[0]}" in lines
    assert "  champion: roc_auc 0.9100 vs champion 0.8900" in lines
    as_json = json.loads(json.dumps(summary.to_dict()))
    assert as_json["warnings"] == summary.warnings and as_json["champion"] == summary.champion
    # a failed run shows its warnings too
    summary.status, summary.failed_step, summary.error = "failed", "train", "boom"
    assert f"  warning: {summary.warnings[0]}" in run_cmd.render(summary).splitlines()

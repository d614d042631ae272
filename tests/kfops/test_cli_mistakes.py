"""Ordinary CLI mistakes (issue 14, items 2, 5 and 6): one line on stderr, a documented exit code,
nothing written. Each case runs the real `kfops` entry point."""

import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from kfops import cli, config, errors, ingest, registry, runs, split, validate
from kfops.store import local

CONFIG, DATA, STORAGE = errors.ConfigError.exit_code, errors.DataError.exit_code, 4


def kfops(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(err: str, *fragments: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kfops: error: "), err[:2000]
    assert len(lines[0]) < 400, len(lines[0])
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("MINIO_ENDPOINT", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "MINIO_SECURE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def one_model(tmp_path, model_files):
    store = local.LocalStore(tmp_path / "store")
    reg = registry.Registry(store)
    reg.register("churn", model_files)
    reg.promote("churn", "1")
    return store


@pytest.mark.parametrize("uri", ["s3:/kfops/store", "gs://bucket/store", "http://host/store"])
def test_run_with_a_store_uri_of_another_scheme_exits_2_and_writes_nothing(capsys, cwd, uri):
    code, _, err = kfops(capsys, "run", "--store", uri)
    assert code == CONFIG
    assert_one_line(err, repr(uri), "s3://bucket/prefix", "local directory")
    assert list(cwd.iterdir()) == []


@pytest.mark.parametrize("command", [("models", "list"), ("runs", "list"), ("models", "show", "x")])
def test_reading_commands_refuse_a_mistyped_uri(capsys, cwd, command):
    code, _, err = kfops(capsys, *command, "--store", "s3:/kfops/store")
    assert code == CONFIG
    assert_one_line(err, "unsupported store URI")


@pytest.mark.parametrize(
    "command",
    [("models", "list"), ("runs", "list"), ("models", "show", "churn"), ("runs", "show", "r1")],
)
def test_reading_commands_on_a_store_that_does_not_exist_say_so(capsys, cwd, command):
    code, _, err = kfops(capsys, *command, "--store", str(cwd / "nowhere"))
    assert code == STORAGE
    assert_one_line(err, "no store at", "nowhere")
    assert not (cwd / "nowhere").exists()


def test_ui_on_a_store_that_does_not_exist_says_so(capsys, cwd):
    code, _, err = kfops(capsys, "ui", "--store", str(cwd / "nowhere"), "--port", "0")
    assert code == STORAGE
    assert_one_line(err, "no store at")


def test_models_show_names_an_unknown_model_as_unknown(capsys, one_model):
    code, _, err = kfops(capsys, "models", "show", "churm", "--store", one_model.uri)
    assert code == STORAGE
    assert_one_line(err, "unknown model 'churm'", "registered: churn")


def test_serve_names_an_unknown_model_as_unknown_before_starting(capsys, one_model):
    code, _, err = kfops(capsys, "serve", "--name", "churm", "--store", one_model.uri)
    assert code == STORAGE
    assert_one_line(err, "unknown model 'churm'")


def test_serve_on_a_port_in_use_is_one_line_exit_2_before_startup(capsys, one_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        code, out, err = kfops(capsys, "serve", "--name", "churn", "--store", one_model.uri,
                               "--port", port)  # fmt: skip
    assert code == CONFIG
    assert_one_line(err, f"port {port}", "already in use", "--port")
    assert "startup complete" not in out + err


def test_run_with_a_store_that_is_a_file_exits_2(capsys, cwd):
    (cwd / "store").write_text("not a directory")
    code, _, err = kfops(capsys, "run", "--store", "store", "--source", "x.csv", "--label", "y")
    assert code == CONFIG
    assert_one_line(err, "is a file, not a directory")
    code, _, err = kfops(capsys, "run", "--store", "store/inner", "--source", "x.csv")
    assert code == CONFIG
    assert_one_line(err, "is a file, not a directory")
    code, _, err = kfops(capsys, "models", "list", "--store", "store")
    assert code == CONFIG
    assert_one_line(err, "is a file, not a directory")


def test_run_with_an_unwritable_store_exits_2(capsys, cwd):
    # Root may write to any directory, so as root the store goes under /sys (no mkdir there).
    if os.geteuid() == 0:
        target = "/sys/kfops-store"
    else:
        (cwd / "ro").mkdir(mode=0o555)
        target = str(cwd / "ro" / "store")
    code, _, err = kfops(capsys, "run", "--store", target, "--source", "x.csv", "--label", "y")
    assert code == CONFIG
    assert_one_line(err, "is not writable")
    assert not os.path.exists(target)


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ('delimiter=";"', "unknown parameter 'delimiter'; did you mean source_delimiter?"),
        ("delimiter=;", "unknown parameter 'delimiter'; did you mean source_delimiter?"),
        ("cv_folds=three", "cv_folds must be int, got 'three'"),
        ("no_such_thing=1", "unknown parameter 'no_such_thing'; known: ["),
    ],
)
def test_run_param_mistakes_are_one_line_and_create_nothing(capsys, cwd, item, fragment):
    code, _, err = kfops(capsys, "run", "--source", "x.csv", "--label", "y", "--param", item)
    assert code == CONFIG
    assert_one_line(err, fragment)
    assert list(cwd.iterdir()) == []


def test_task_classification_on_a_continuous_label_is_one_short_line(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=5000), "y": rng.normal(size=5000)})
    with pytest.raises(errors.ConfigError) as caught:
        validate.infer_schema(frame, "y", task="classification")
    message = str(caught.value)
    assert len(message) < 300 and "5000 distinct non-integer values" in message
    assert "--task regression" in message


def test_split_lists_at_most_five_rare_classes_and_counts_them():
    frame = pd.DataFrame({"x": range(42), "y": [0.5 + i for i in range(20)] * 2 + [7.0, 9.0]})
    with pytest.raises(errors.SchemaViolation) as caught:
        split.split(frame, split.SplitConfig(label="y", task="classification"))
    assert "2 classes ['7.0', '9.0'] have" in str(caught.value)
    rare = pd.DataFrame({"x": range(300), "y": [float(i) for i in range(300)]})
    with pytest.raises(errors.SchemaViolation) as caught:
        split.split(rare, split.SplitConfig(label="y", task="classification"))
    assert "300 classes [" in str(caught.value) and "+295 more]" in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"), (b"PK\x03\x04\x14\x00", "ZIP")],
)
def test_a_binary_file_passed_as_csv_is_named_not_a_csv(tmp_path, head, kind):
    path = tmp_path / "data.csv"
    path.write_bytes(head + bytes(range(256)) * 4)
    with pytest.raises(errors.DataError) as caught:
        ingest.ingest(str(path), settings=config.StoreSettings())
    assert "is not a CSV/text file" in str(caught.value) and kind in str(caught.value)
    assert "UTF-8" not in str(caught.value)


def test_a_semicolon_file_hint_names_the_flag_to_type(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("a;b;y\n1;2;0\n3;4;1\n")
    with pytest.raises(errors.DataError) as caught:
        ingest.ingest(str(path), settings=config.StoreSettings())
    assert str(caught.value).endswith("pass --delimiter ';' (or --format tsv)")
    read = ingest.ingest(str(path), settings=config.StoreSettings(), delimiter=";").frame
    assert list(read.columns) == ["a", "b", "y"]


def _long_run(store, run_id: str, seed: int, n_params: int = 4000) -> None:
    rec = runs.RunRecorder(store, run_id)
    gate_repr = "GateConfig(" + ", ".join(f"rule_{i}={i / 7:.6f}" for i in range(20)) + ")"
    params = {"seed": seed, "gate": gate_repr, **{f"p{i:04d}": i for i in range(n_params)}}
    rec.start("kfops-training", params)
    with rec.step("ingest", {"source": "x.csv"}) as step:
        step.output("data", sha256=f"{seed:064x}", rows=5000)
        step.metric("rows_read", 5000.0)
        step.metric("null_share", 0.25)
    rec.finish("succeeded", blessed=False, reasons=("too low",), model=None)


def test_runs_show_piped_into_head_exits_quietly(tmp_path):
    store = local.LocalStore(tmp_path / "store")
    # Far more than a pipe buffer (64 KiB), so the writer surely meets the closed pipe.
    _long_run(store, "long", 1, n_params=40000)
    shell = f"{sys.executable} -m kfops.cli runs show long --store {store.uri} | head -n 2"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120
    )
    assert len(done.stdout.splitlines()) == 2
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 141


def test_runs_compare_is_compact_and_counts_read_as_counts(capsys, tmp_path):
    store = local.LocalStore(tmp_path / "store")
    for seed in (1, 2, 3):
        _long_run(store, f"run-{seed}", seed)
    code, out, _ = kfops(capsys, "runs", "compare", "run-1", "run-2", "run-3", "--store", store.uri)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) < 140
    assert "GateConfig(rule_0=0.000…" in out and "rule_19" not in out
    code, out, _ = kfops(capsys, "runs", "show", "run-1", "--store", store.uri)
    assert "rows_read=5000\n" in out and "5000.0000" not in out and "null_share=0.2500" in out


def test_a_failed_run_summary_still_prints_its_report_paths():
    from kfops import localrun  # noqa: PLC0415 (kfp only for this test)
    from kfops.commands import run as run_cmd  # noqa: PLC0415

    summary = localrun.RunSummary(
        run_id="r1", pipeline="kfops-training", status="failed", run_dir="/x", log="/x/run.log",
        duration_s=1.0, parameters={}, failed_step="validate", error="1 blocking anomaly: ...",
        exit_code=3, reports={"validation": "/x/reports/validation.html"},
    )  # fmt: skip
    text = run_cmd.render(summary)
    assert "  validation report: /x/reports/validation.html" in text.splitlines()
    assert "step 'validate' failed" in text


def test_run_threshold_objective_outside_its_choices_is_argparse_exit_2(capsys, cwd):
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "--source", "x.csv", "--threshold-objective", "best"])
    assert caught.value.code == CONFIG
    assert "invalid choice: 'best'" in capsys.readouterr().err
    assert list(cwd.iterdir()) == []


@pytest.mark.slow
def test_run_with_a_positive_class_the_label_lacks_names_its_values_and_registers_nothing(
    capsys, cwd
):
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    frame = pd.DataFrame({"x": x, "y": np.where(x + rng.normal(size=400) > 0, "yes", "no")})
    frame.to_csv(cwd / "d.csv", index=False)
    code, out, _ = kfops(capsys, "run", "--source", "d.csv", "--label", "y", "--estimator",
                         "linear", "--param", "search_iterations=1", "--param", "cv_folds=2",
                         "--positive-class", "maybe")  # fmt: skip
    assert code == CONFIG
    assert "positive_class 'maybe' is not a value of label 'y'; its values are ['no', 'yes']" in out
    assert not (cwd / ".kfops" / "store" / "models").exists()


def test_replay_id_column_the_source_lacks_is_one_line_exit_2(capsys, tmp_path):
    from kfops import datasets
    from tests.fixtures import monitoring

    for url, _ in monitoring._serve_churn(tmp_path):  # a real server, stopped after the loop
        path = tmp_path / "d.csv"
        datasets.churn(10, seed=1).to_csv(path, index=False)
        argv = ["replay", "--url", url, "--name", "churn", "--source", str(path)]
        code, _, err = kfops(capsys, *argv, "--id-column", "order_no")
        assert code == CONFIG
        assert_one_line(err, "--id-column 'order_no' is not a column of", "customer_id")

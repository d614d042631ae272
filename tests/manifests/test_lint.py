"""yamllint on the hand-written YAML and shellcheck on the scripts (both from PyPI, in .venv)."""

import pathlib
import subprocess
import sys

import pytest

from tests.manifests import conftest

BIN = pathlib.Path(sys.executable).parent
YAML_PATHS = ["manifests", ".github/workflows", "checkov-skips.yaml", ".yamllint"]


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=conftest.ROOT, capture_output=True, text=True, check=False)


def test_lint_yaml_is_yamllint_clean():
    present = [p for p in YAML_PATHS if (conftest.ROOT / p).exists()]
    proc = _run([str(BIN / "yamllint"), "--strict", "-f", "parsable", *present])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lint_yamllint_catches_a_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\na: 2\n")
    proc = _run([str(BIN / "yamllint"), "-c", str(conftest.ROOT / ".yamllint"), str(bad)])
    assert proc.returncode != 0 and "duplication" in proc.stdout


def _scripts() -> list[str]:
    return sorted(
        str(p.relative_to(conftest.ROOT)) for p in (conftest.ROOT / "scripts").glob("*.sh")
    )


@pytest.mark.parametrize("script", _scripts())
def test_lint_script_is_shellcheck_clean(script):
    proc = _run([str(BIN / "shellcheck"), "-x", "-S", "style", script])
    assert proc.returncode == 0, proc.stdout

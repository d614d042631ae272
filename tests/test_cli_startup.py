"""`kfops --help`, `kfops runs list` and `kfops models list` load no heavy library.

Asserted on `sys.modules` in a fresh interpreter rather than on time, which varies with load.
"""

import json
import subprocess
import sys

import pytest

from kfops import cli

HEAVY = ("sklearn", "evidently", "kfp", "scipy", "grpc", "uvicorn")
PROBE = f"""
HEAVY = {HEAVY!r}
import contextlib, io, json, sys
from kfops import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = cli.main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
print(json.dumps({{"code": code, "loaded": sorted(m for m in HEAVY if m in sys.modules)}}))
"""


def _loaded(*argv) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [["--help"], [], ["no-such-command"], ["runs", "list"], ["models", "list"]],
    ids=["help", "no-command", "typo", "runs-list", "models-list"],
)
def test_light_commands_import_no_heavy_library(tmp_path, argv):
    if argv[:1] in (["runs"], ["models"]):
        argv = [*argv, "--store", str(tmp_path)]
    answer = _loaded(*argv)
    assert answer["loaded"] == [], answer
    assert answer["code"] == (0 if argv[:1] in (["--help"], ["runs"], ["models"]) else 2)


def test_the_overview_lists_every_command_with_the_help_its_module_registers():
    full = {
        a.dest: a.help for a in cli.build_parser()._subparsers._group_actions[0]._choices_actions
    }
    overview = cli.overview_parser()._subparsers._group_actions[0]._choices_actions
    assert {a.dest: a.help for a in overview} == full
    assert set(cli.SUMMARIES) <= set(cli.COMMANDS)

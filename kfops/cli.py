"""`kfops` command line. Errors become exit codes here, in one place.

Each command group lives in `kfops.commands.<name>` and exposes `register(subparsers)`, which adds
its parser and sets `func(args) -> int` as the handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kfops import __version__, errors

# command name -> module in kfops.commands. Only the module of the command being run is imported,
# so `kfops models list` does not pay for Evidently's import (about 10 s) that `monitor` needs.
COMMANDS = {
    "run": "run",
    "compile": "compile",
    "serve": "serve",
    "runs": "runs",
    "models": "models",
    "deploy": "deploy",
    "submit": "submit",
    "monitor": "monitor",
    "simulate-traffic": "traffic",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `command`, only that command's group is registered.

    Without one (e.g. `kfops --help`), every group is registered.
    """
    parser = argparse.ArgumentParser(prog="kfops", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kfops {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(f"kfops.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; a KfopsError prints one line and exits with its class's code."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except errors.KfopsError as e:
        print(f"kfops: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("kfops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""`kfops` command line. Errors become exit codes here, in one place.

Each command group lives in `kfops.commands.<name>` and exposes `register(subparsers)`, which adds
its parser and sets `func(args) -> int` as the handler.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kfops import __version__, errors

COMMAND_MODULES = (
    "run",
    "compile",
    "serve",
    "runs",
    "deploy",
    "submit",
    "monitor",
    "traffic",
    "models",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    parser = argparse.ArgumentParser(prog="kfops", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kfops {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"kfops.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs one command; a KfopsError prints one line and exits with its class's code."""
    args = build_parser().parse_args(argv)
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

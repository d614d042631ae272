"""`kfops` command line. Errors become exit codes here, in one place.

Each command group lives in `kfops.commands.<name>` and exposes `register(subparsers)`, which adds
its parser and sets `func(args) -> int` as the handler.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    "replay": "replay",
    "ui": "ui",
    "labels": "labels",
    "schema": "schema",
    "rollout": "rollout",
    "score": "score",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))
# What `kfops --help` lists, so that it imports no command module (some pull in scikit-learn,
# kfp or Evidently, seconds of imports). Each must equal the help its module registers (a test
# checks); a command without an entry here is listed by importing its module.
SUMMARIES = {
    "run": "run the training pipeline locally (kfp.local)",
    "compile": "compile pipelines and components to KFP YAML",
    "serve": "serve a model (champion or pinned version) over HTTP",
    "runs": "list, show and compare recorded pipeline runs",
    "models": "registered models: list, show, promote, approve, reject, rollback",
    "deploy": "deploy a model version with the serving manifests",
    "submit": "submit the compiled pipeline to a KFP cluster",
    "monitor": "drift/quality of a model's logged traffic; retrain when it matters",
    "simulate-traffic": "send builtin:churn requests (optionally drifted) to a running server",
    "replay": "send any dataset as traffic (with request ids) to a running server",
    "labels": "deliver delayed labels for logged requests (by request id)",
    "schema": "a model's data schema: show, diff, accept a change",
    "rollout": "shadow/canary a challenger beside the champion; promote or abort on the evidence",
    "score": "score a dataset with a registered model, sharded, into Parquet (kfp.local)",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `command`, only that command's group is registered.

    Without one, every group is registered (importing every command module).
    """
    parser, subparsers = _top()
    modules = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        importlib.import_module(f"kfops.commands.{name}").register(subparsers)
    return parser


def overview_parser() -> argparse.ArgumentParser:
    """The parser for no command, `--help` or a mistyped command: names and summaries only."""
    parser, subparsers = _top()
    for name, module in COMMANDS.items():
        if name in SUMMARIES:
            subparsers.add_parser(name, help=SUMMARIES[name], add_help=False)
        else:
            importlib.import_module(f"kfops.commands.{module}").register(subparsers)
    return parser


def _top() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="kfops", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kfops {__version__}")
    return parser, parser.add_subparsers(dest="command", required=True, metavar="COMMAND")


def main(argv: list[str] | None = None) -> int:
    """Runs one command; a KfopsError prints one line and exits with its class's code."""
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    # The warm-step zygote imports while this process does (kfops.warm_steps). Not when an option
    # comes before `run`: `kfops` takes only --help and --version there (or stops at a mistake).
    if command == "run" and argv[0] == command:
        from kfops import warm_steps  # noqa: PLC0415

        warm_steps.start_early(argv[1:])
    parser = build_parser(command) if command in COMMANDS else overview_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except errors.KfopsError as e:
        print(f"kfops: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("kfops: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `kfops runs show X | head`: the reader left. Python would print a traceback while
        # flushing stdout at exit; point stdout at /dev/null and exit as `head`'s writers do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

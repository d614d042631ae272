"""Mutation testing of the modules where a wrong answer costs most (`make mutation`, not in CI).

Each module is mutated by mutmut in its own work folder (.kfops/mutation/<module>/) with only the
tests that cover it, so a run stays minutes, not hours, on two cores. Prints killed / survived /
timed out per module and writes each module's surviving mutants (with --diffs, as diffs) to
survivors.txt there. Survivors are killed by a new test or listed with the reason they are
equivalent in bench/RESULTS.md.

Run: nice -n 10 .venv/bin/python scripts/mutation.py [MODULE ...] [--minutes 20] [--diffs]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")

# module -> the tests that exercise it (fast ones: slow and container tests are deselected).
MODULES = {
    "kfops/gate.py": ["tests/kfops/test_gate.py", "tests/kfops/test_gate_identity.py"],
    "kfops/registry.py": ["tests/kfops/test_registry.py"],
    "kfops/monitor/core.py": [
        "tests/kfops/test_monitor.py",
        "tests/kfops/test_monitor_boundary.py",
        "tests/kfops/test_monitor_exact.py",
    ],
    "kfops/validate/checks.py": ["tests/kfops/test_validate.py"],
    "kfops/split.py": ["tests/kfops/test_split.py", "tests/kfops/test_split_exact.py"],
    "kfops/evaluate/measures.py": [
        "tests/kfops/test_evaluate.py",
        "tests/kfops/test_metrics_oracle.py",
    ],
    "kfops/deploy.py": ["tests/kfops/test_deploy.py"],
    "kfops/serving/validation.py": [
        "tests/kfops/serving/test_validation.py",
        "tests/kfops/serving/test_validation_exact.py",
    ],
}


def _workdir(module: str, tests: list[str]) -> Path:
    """A folder where mutmut sees only this module to mutate and these tests to run."""
    work = ROOT / ".kfops" / "mutation" / module.replace("/", "_").removesuffix(".py")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("kfops", "tests"):
        (work / name).symlink_to(ROOT / name)
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    (work / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n"
        f"markers = {json.dumps(ini['markers'])}\n"
        f"filterwarnings = {json.dumps(ini['filterwarnings'])}\n\n"
        "[tool.mutmut]\n"
        'source_paths = ["kfops"]\n'
        f"only_mutate = {json.dumps([module])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-m", "not slow and not container", "-p", "no:cacheprovider"]\n'
    )
    return work


def run(module: str, minutes: float, children: int, diffs: bool = False) -> dict[str, int]:
    """Mutates one module; returns the count of mutants per mutmut status."""
    work = _workdir(module, MODULES[module])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = ["nice", "-n", "10", str(MUTMUT), "run", "--max-children", str(children)]
    log = work / "run.log"
    with log.open("w") as out:
        try:
            subprocess.run(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                           timeout=minutes * 60, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            print(f"{module}: stopped after {minutes:g} min; counts cover the mutants run")
    listed = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=work, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    counts: collections.Counter[str] = collections.Counter()
    survivors = []
    for line in listed.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if not sep:
            continue
        counts[status] += 1
        if status == "survived":
            survivors.append(name)
    print(_row(module, counts), flush=True)
    with (work / "survivors.txt").open("w") as out:
        for name in survivors:  # `mutmut show NAME` in the work folder prints the diff
            out.write(f"{name}\n")
            if diffs:
                shown = subprocess.run(
                    [str(MUTMUT), "show", name], cwd=work, env=env,
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                out.write(f"{shown.stdout}\n")
    return dict(counts)


def main() -> int:
    """Runs the chosen modules one after the other and prints the per-module table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {list(MODULES)}")
    parser.add_argument("--minutes", type=float, default=20, help="time bound per module")
    parser.add_argument("--children", type=int, default=1, help="mutants run in parallel")
    parser.add_argument("--diffs", action="store_true", help="write each survivor's diff too")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"unknown modules {unknown}; choose from {list(MODULES)}", file=sys.stderr)
        return 2
    rows = []
    for module in args.modules or list(MODULES):
        rows.append((module, run(module, args.minutes, args.children, args.diffs)))
    head = ("module", "killed", "survived", "timeout", "other", "killed %")
    print("\n" + "{:<30} {:>7} {:>9} {:>8} {:>6} {:>9}".format(*head))
    for module, counts in rows:
        print(_row(module, counts))
    print("\nsurvivors: .kfops/mutation/<module>/survivors.txt")
    return 0


def _row(module: str, counts: dict[str, int]) -> str:
    killed, survived = counts.get("killed", 0), counts.get("survived", 0)
    timeout = counts.get("timeout", 0)
    other = sum(counts.values()) - killed - survived - timeout
    judged = killed + survived + timeout
    share = f"{100 * (killed + timeout) / judged:.1f}" if judged else "-"
    return f"{module:<30} {killed:>7} {survived:>9} {timeout:>8} {other:>6} {share:>9}"


if __name__ == "__main__":
    sys.exit(main())

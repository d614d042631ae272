"""Mutation testing of the modules where a wrong answer costs most (`make mutation`, not in CI).

Each module is mutated by mutmut in its own work folder (.kfops/mutation/<module>/) with only the
tests that cover it, so a run stays minutes, not hours, on two cores. Prints killed / survived /
timed out per module and writes each module's surviving mutants (with --diffs, as diffs) to
survivors.txt there. Survivors are killed by a new test or listed with the reason they are
equivalent in bench/RESULTS.md.

Run: nice -n 10 .venv/bin/python scripts/mutation.py [MODULE ...] [--minutes 20] [--diffs]
     [--resume] [--survivors]
--resume keeps the work folder: mutmut then tries only the mutants without a result (a run
stopped by --minutes goes on where it stopped) and functions whose code changed; --survivors
also re-tries the mutants listed in survivors.txt, e.g. after adding a test that should kill
them (a new test file must be in MODULES, mutmut then collects its coverage first).
Mutants in EQUIVALENT (no test can tell them from the original) leave the denominator.
"""

from __future__ import annotations

import argparse
import ast
import collections
import difflib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")

# module -> the tests that exercise it (fast ones: slow and container tests are deselected), plus
# pytest options. Registry: the S3 run of each test starts SeaweedFS in every mutant's process
# (3 s) and the SIGKILL-mid-push test takes 9 s; the same code paths run on the local store. The
# file-name scan reads the whole tree, not the registry's behaviour.
MODULES = {
    "kfops/gate.py": [
        "tests/kfops/test_gate.py",
        "tests/kfops/test_gate_identity.py",
        "tests/kfops/test_gate_exact.py",
    ],
    "kfops/registry.py": [
        "tests/kfops/test_registry.py",
        "tests/kfops/test_registry_exact.py",
        "-k",
        "not s3 and not crash_mid_push and not spelled_only",
    ],
    "kfops/monitor/core.py": [
        "tests/kfops/test_monitor.py",
        "tests/kfops/test_monitor_boundary.py",
        "tests/kfops/test_monitor_exact.py",
    ],
    "kfops/validate/checks.py": [
        "tests/kfops/test_validate.py",
        "tests/kfops/test_validate_exact.py",
    ],
    "kfops/split.py": [
        "tests/kfops/test_split.py",
        "tests/kfops/test_split_exact.py",
        "tests/kfops/test_leak_free_folds.py",  # the cross-split duplicate rule
        "tests/kfops/test_split_cross_duplicates_fast.py",  # the typed-column prefilter
    ],
    # test_evaluate.py trains models (20 s per mutant); the exact tests measure small arrays.
    "kfops/evaluate/measures.py": [
        "tests/kfops/test_metrics_oracle.py",
        "tests/kfops/test_measures_exact.py",
    ],
    "kfops/deploy.py": ["tests/kfops/test_deploy.py", "tests/kfops/test_deploy_exact.py"],
    "kfops/serving/validation.py": [
        "tests/kfops/serving/test_validation.py",
        "tests/kfops/serving/test_validation_exact.py",
    ],
}

# mutant -> why no test can tell it from the original (grouped in bench/RESULTS.md). Names carry
# the function and the mutation's index, so a changed function needs its entries checked again.
_CHAMPION_DEFAULT = "decide()'s champion defaults to None: passing None or nothing is the same"
EQUIVALENT: dict[str, str] = {
    "kfops.gate.x__slice_checks__mutmut_33": "every bounded score is higher-is-better, as an "
    "unknown metric (None) counts",
    "kfops.gate.x_decide_against_record__mutmut_9": _CHAMPION_DEFAULT,
    "kfops.gate.x_decide_against_record__mutmut_41": _CHAMPION_DEFAULT,
    "kfops.gate.x_decide_against_record__mutmut_75": _CHAMPION_DEFAULT,
    "kfops.gate.x_decide_against_record__mutmut_64": "Blessing's notes default to (): passing "
    "() or nothing is the same",
    **{
        f"kfops.gate.x_decide_against_record__mutmut_{n}": "the champion's 'version' key is "
        "never read: decide() reads only the champion's metrics"
        for n in (97, 98, 99, 100, 101)
    },
    **{
        f"kfops.evaluate.measures.x_regression__mutmut_{n}": "y_pred keeps its own dtype: "
        "y_pred - y_true is float64 anyway, since y_true is, for any numeric prediction"
        for n in (9, 11)
    },
    "kfops.evaluate.measures.x_regression__mutmut_52": "math.sqrt of inf or nan is inf or nan, "
    "what the guard returns",
    "kfops.evaluate.measures.x__macro_counts__mutmut_13": "zero_division's default 'warn' also "
    "gives 0, and the warning is silenced right there",
    "kfops.evaluate.measures.x__binary_counts__mutmut_25": "with only one side non-empty tp "
    "is 0, so the formula gives the same 0 as the guard",
    **{
        f"kfops.evaluate.measures.x__multiclass_proba__mutmut_{n}": "ROC AUC is computed only "
        "when the labels are exactly the classes; scikit-learn's default labels are then the "
        "same sorted classes, and its default average is 'macro'"
        for n in (26, 30, 31)
    },
    "kfops.registry.xǁRegistryǁload__mutmut_1": "'' and None both mean no manifest sha to "
    "check (only truthiness is read)",
    **{
        f"kfops.registry.xǁRegistryǁload__mutmut_{n}": "the temporary folder's prefix is never "
        "shown or kept"
        for n in (48, 49, 50)
    },
    **{
        f"kfops.registry.xǁRegistryǁload__mutmut_{n}": "the model file was verified against the "
        "same manifest sha256 by _fetch just before; the second check can only agree"
        for n in (69, 71)
    },
    **{
        f"kfops.registry.xǁRegistryǁ_present__mutmut_{n}": "_claim re-checks the manifest, so a "
        "complete version taken for incomplete is never reused nor cleared"
        for n in range(6, 12)
    },
    "kfops.deploy.x_split_image__mutmut_18": "a registry port's colon comes before the first "
    "slash and a tag's after the last, so the first and the last slash decide alike",
    "kfops.registry.x__verify__mutmut_10": "the kind is named only when the sizes differ, so "
    "'<' and '<=' agree",
    **{
        f"kfops.registry.x__verify__mutmut_{n}": "the file was just stat'ed, so it exists and "
        "missing_ok is never consulted"
        for n in (25, 26)
    },
    **{
        f"kfops.split.x__time__mutmut_{n}": "the boundary is the cut-th smallest time whatever "
        "the sort, and rows are chosen by comparing values, not by order"
        for n in (4, 6, 8)
    },
    **{
        f"kfops.split.x_infer_task__mutmut_{n}": "a bool label is numeric with 2 values, so the "
        "result is classification either way"
        for n in (1, 2)
    },
    "kfops.split.x_cross_duplicates__mutmut_1": "with one side empty nothing can match: the "
    "hash lookup gives the same empty int positions",
    **{
        name: "index=None is falsy: pandas hashes without the index, as index=False"
        for name in (
            "kfops.split.x_cross_duplicates__mutmut_19",
            "kfops.split.x__equal_on_typed_columns__mutmut_9",
        )
    },
    **{
        f"kfops.split.x_cross_duplicates__mutmut_{n}": "differs only on a 64-bit hash collision, "
        "which no test can construct: every hash hit is a value match"
        for n in (32, 40)
    },
    **{
        f"kfops.split.x__group__mutmut_{n}": "GroupShuffleSplit's first split is the same for "
        "any n_splits with one random_state, and it reads only the groups, not X"
        for n in (11, 14, 17)
    },
    **{
        f"kfops.deploy.xǁClusterApiǁapply__mutmut_{n}": "without a namespace argument the "
        "kubernetes dynamic client takes the body's metadata.namespace (client.py "
        "ensure_namespace)"
        for n in (13, 17, 20, 23, 24)
    },
    "kfops.deploy.x_rollout__mutmut_19": "the workload is always among the objects (_workload "
    "checked), so the loop assigns `applied` before it is read",
    **{
        f"kfops.serving.validation.xǁValidatorǁ_datetime__mutmut_{n}": "the values are only str "
        "and None here (types checked before), for which pandas infers object dtype anyway"
        for n in (11, 13)
    },
    "kfops.serving.validation.x__null_mask__mutmut_11": "fromiter's count only preallocates; "
    "the generator yields exactly len(values) items",
    **{
        f"kfops.serving.validation.xǁValidatorǁ_check_range__mutmut_{n}": "the Python scan of a "
        "short column only skips the numpy check: a column it lets through (16 values, a value "
        "at a bound) gets the same exact answer from numpy"
        for n in (22, 26, 27)
    },
    "kfops.serving.validation.x__integral__mutmut_1": "the array holds finite numbers and NaN "
    "(nulls) only; numpy's trunc, abs and comparisons of NaN raise no 'invalid' flag",
    **{
        f"kfops.validate.checks.x__duplicate_rows__mutmut_{n}": "the id columns only order "
        "duplicate_mask's grouping (a unique id settles it in one pass); the mask is the same "
        "in any order"
        for n in (5, 6, 7, 12)
    },
    "kfops.validate.checks.x_column_checks__mutmut_3": "dropna() of a series without nulls "
    "gives the same values; hasnans only saves the copy",
    "kfops.validate.checks.x__nulls__mutmut_12": "an all-null column stops before _nulls, so the "
    "null fraction is below 1: a limit of 1 or more never fires, whatever its value",
    **{
        name: "the values are non-null numbers: np.isinf / np.isfinite read their own dtype's "
        "array as they read the float one"
        for name in (
            "kfops.validate.checks.x__inf__mutmut_4",
            "kfops.validate.checks.x__out_of_range__mutmut_11",
        )
    },
    **{
        f"kfops.validate.checks.x__{f}__mutmut_{n}": "the values hold no nulls, so skipna "
        "changes nothing (and True is infer_dtype's default)"
        for f in ("mixed_types", "unseen_categories")
        for n in ((9, 11, 12) if f == "mixed_types" else (6, 8, 9))
    },
    "kfops.validate.checks.x__mixed_types__mutmut_22": "groupby sorts its keys by default",
    "kfops.validate.checks.x__out_of_range__mutmut_73": "extreme_values reads `largest` only "
    "for truth: None means smallest, as False does",
    **{
        f"kfops.validate.checks.x__unseen_categories__mutmut_{n}": "astype(str) of text values "
        "is the same text; the dtype test only saves the copy"
        for n in (3, 11, 12)
    },
    "kfops.monitor.core.x__judge__mutmut_53": "_base already sets status JUDGED; _judge's "
    "replace only restates it",
    **{
        f"kfops.monitor.core.x__unjudged__mutmut_{n}": "monitoring.render reads the embedded "
        "Evidently reports only for truth: None and '' both mean none"
        for n in (13, 14)
    },
    **{
        f"kfops.monitor.core.x_join_labels__mutmut_{n}": "the label is dropped from the window "
        "first, so the only shared columns are the keys; inner is merge's default"
        for n in (55, 58, 59)
    },
    **{
        f"kfops.monitor.core.x__judge__mutmut_{n}": "unreachable: with no feature columns "
        "Evidently's drift preset divides by zero before this line"
        for n in (71, 73)
    },
    **{
        f"kfops.monitor.core.x__quality__mutmut_{n}": "run_quality treats every task but "
        "'regression' as classification"
        for n in (22, 23)
    },
    **{
        f"kfops.monitor.core.x__base__mutmut_{n}": "every caller replaces the base's status and "
        "notes (_judge and _unjudged)"
        for n in (1, 4)
    },
    "kfops.monitor.core.x__sample__mutmut_1": "sampling all n rows of an n-row window gives the "
    "same rows in another order; drift and quality do not depend on row order",
}
NOT_KILLED = ("survived", "no tests")  # "no tests": no selected test runs the mutated function


def _workdir(module: str, tests: list[str], resume: bool = False) -> Path:
    """A folder where mutmut sees only this module to mutate and these tests to run."""
    work = ROOT / ".kfops" / "mutation" / module.replace("/", "_").removesuffix(".py")
    if not (resume and work.is_dir()):
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for name in ("kfops", "tests", "manifests"):  # the deploy tests render manifests/
            (work / name).symlink_to(ROOT / name)
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    (work / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n"
        f"markers = {json.dumps(ini['markers'])}\n"
        f"filterwarnings = {json.dumps(ini['filterwarnings'])}\n\n"
        "[tool.mutmut]\n"
        'source_paths = ["kfops"]\n'
        'also_copy = ["manifests"]\n'
        f"only_mutate = {json.dumps([module])}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-m", "not slow and not container", "-p", "no:cacheprovider"]\n'
    )
    return work


def run(
    module: str, minutes: float, children: int, diffs: bool = False,
    resume: bool = False, survivors_again: bool = False,
) -> dict[str, int]:  # fmt: skip
    """Mutates one module; returns the count of mutants per mutmut status."""
    work = _workdir(module, MODULES[module], resume)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = ["nice", "-n", "10", str(MUTMUT), "run", "--max-children", str(children)]
    if survivors_again:  # mutmut then re-tries only the named ones: no unrun mutant this pass
        cmd += [name for name, status in _statuses(work, env) if status in NOT_KILLED]
    log = work / "run.log"
    with log.open("w") as out:
        try:
            subprocess.run(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT,
                           timeout=minutes * 60, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            print(f"{module}: stopped after {minutes:g} min; counts cover the mutants run")
    counts: collections.Counter[str] = collections.Counter()
    survivors = []
    for name, status in _statuses(work, env):
        if name in EQUIVALENT and status in NOT_KILLED:
            status = "equivalent"
        counts[status] += 1
        if status in NOT_KILLED:
            survivors.append(name)
    print(_row(module, counts), flush=True)
    shown = _diffs(work / "mutants" / module, survivors) if diffs else {}
    with (work / "survivors.txt").open("w") as out:
        for name in survivors:  # `mutmut show NAME` in the work folder prints the diff too
            out.write(f"{name}\n{shown.get(name, '')}")
    return dict(counts)


def _statuses(work: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    """(mutant, status) for every mutant mutmut generated in this work folder."""
    if not (work / "mutants").is_dir():
        return []
    listed = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], cwd=work, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows = (line.strip().rpartition(": ") for line in listed.stdout.splitlines())
    return [(name, status) for name, sep, status in rows if sep]


def _diffs(mutated: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's changed lines, read from mutmut's mutated copy of the module.

    mutmut keeps every mutant as a function `<f>__mutmut_<n>` next to `<f>__mutmut_orig`;
    diffing the two here takes a second where `mutmut show` takes seconds per mutant.
    """
    source = mutated.read_text()
    lines = source.splitlines()
    functions = {
        node.name: "\n".join(lines[node.lineno - 1 : node.end_lineno])
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    shown = {}
    for name in names:
        local = name.rpartition(".")[2]
        orig = functions.get(local.rpartition("__mutmut_")[0] + "__mutmut_orig", "")
        lines = difflib.unified_diff(
            orig.splitlines(), functions.get(local, "").splitlines(), lineterm="", n=0
        )
        changed = (ln for ln in lines if ln[:1] in "+-" and ln[:3] not in ("+++", "---"))
        shown[name] = "".join(f"{ln}\n" for ln in changed if "__mutmut_" not in ln)
    return shown


def main() -> int:
    """Runs the chosen modules one after the other and prints the per-module table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {list(MODULES)}")
    parser.add_argument("--minutes", type=float, default=20, help="time bound per module")
    parser.add_argument("--children", type=int, default=1, help="mutants run in parallel")
    parser.add_argument("--diffs", action="store_true", help="write each survivor's diff too")
    parser.add_argument("--resume", action="store_true", help="keep results, try unrun mutants")
    parser.add_argument("--survivors", action="store_true", help="re-try survivors.txt's mutants")
    args = parser.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        print(f"unknown modules {unknown}; choose from {list(MODULES)}", file=sys.stderr)
        return 2
    rows = []
    for module in args.modules or list(MODULES):
        counts = run(
            module, args.minutes, args.children, args.diffs,
            args.resume or args.survivors, args.survivors,
        )  # fmt: skip
        rows.append((module, counts))
    head = ("module", "killed", "survived", "timeout", "equiv", "other", "killed %")
    print("\n" + "{:<30} {:>7} {:>9} {:>8} {:>6} {:>6} {:>9}".format(*head))
    for module, counts in rows:
        print(_row(module, counts))
    print("\nsurvivors: .kfops/mutation/<module>/survivors.txt")
    return 0


def _row(module: str, counts: dict[str, int]) -> str:
    """One table row: killed % = (killed + timed out) / (tried - equivalent).

    A mutant no selected test runs counts as survived; unrun mutants are left out.
    """
    killed = counts.get("killed", 0)
    survived = counts.get("survived", 0) + counts.get("no tests", 0)
    timeout, equivalent = counts.get("timeout", 0), counts.get("equivalent", 0)
    other = sum(counts.values()) - killed - survived - timeout - equivalent
    judged = killed + survived + timeout
    share = f"{100 * (killed + timeout) / judged:.1f}" if judged else "-"
    return (
        f"{module:<30} {killed:>7} {survived:>9} {timeout:>8} {equivalent:>6} {other:>6} {share:>9}"
    )


if __name__ == "__main__":
    sys.exit(main())

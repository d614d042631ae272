"""Where `make run`'s time goes: each step's wall, import time and CPU, as kfp.local ran it.

Runs `kfops run` on the default data (builtin:churn, 5,000 rows) `--runs` times into a fresh store
and prints, per step: its wall from kfp.local's log (the "Executing task" and "finished" lines,
so the interpreter's start, kfp's executor and our imports are included), the time its process
spent importing (Python's own `-X importtime` accounting, PYTHONPROFILEIMPORTTIME=1, summed over
top-level imports, lazy ones included), the rest as work, and the CPU seconds of the step's
processes (each appends its rusage at exit through a `sitecustomize` put on PYTHONPATH for the
run only; a step counts its own CPU and its reaped children's, so the search's forked workers
count under train). Each run's first line has its pipeline time as `kfops run` reports it;
its last line the `kfops run` command's wall time and its own process's CPU (what the
orchestrator costs beside the steps). Import and CPU accounting costs a few percent: compare
the pipeline time with a plain `make run` as well.

Steps run cold (`KFOPS_COLD_STEPS=1`, each in a fresh interpreter, as kfp.local itself starts
them and as a cluster does): this script shows what each step's start-up costs, which warm steps
(the local default) avoid.

Usage: python bench/run_steps.py [--runs 3] [--store DIR]
The load average is printed before and after each run: a run on a loaded machine says where the
time goes, not whether the target (<= 15 s of pipeline time, issue 16) is met.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HOOK = textwrap.dedent(
    """
    import atexit, json, os, resource

    def _rusage():
        use = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open(os.environ["KFOPS_BENCH_RUSAGE"], "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "ppid": os.getppid(),
                                "cpu_s": use.ru_utime + use.ru_stime,
                                "children_cpu_s": kids.ru_utime + kids.ru_stime}) + "\\n")

    atexit.register(_rusage)
    """
)
TASK = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task|Task) \S*?'([\w-]+)'\S*( finished)?"
)
IMPORT = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")  # top level: no indent
PID = re.compile(r"KFOPS_BENCH_PID (\d+)")


def steps(log: Path, pids: dict[int, float]) -> list[dict]:
    """Per task, in the order kfp.local ran them: wall, import and CPU seconds."""
    rows: dict[str, dict] = collections.OrderedDict()
    current = None
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = TASK.match(line)
        if m:
            at = datetime.datetime.strptime(m.group(1), "%H:%M:%S.%f")
            if m.group(2) == "Executing task":
                current = m.group(3)
                rows[current] = {"start": at, "imports": 0.0, "pids": set()}
            elif m.group(4):  # "Task 'x' finished with status ..."
                rows[m.group(3)]["wall"] = (at - rows[m.group(3)]["start"]).total_seconds()
                current = None
            continue
        if current is None:
            continue
        i = IMPORT.search(line.strip())
        if i and not line.strip().startswith("import time: self"):
            rows[current]["imports"] += int(i.group(1)) / 1e6
        p = PID.search(line)
        if p:
            rows[current]["pids"].add(int(p.group(1)))
    out = []
    for name, r in rows.items():
        cpu = sum(pids.get(p, 0.0) for p in r["pids"])
        out.append({"step": name, "wall": r.get("wall", 0.0), "imports": r["imports"], "cpu": cpu})
    return out


def cpu_of(row: dict, orchestrator: int) -> float:
    """A process's CPU seconds from its rusage line.

    A step's own and that of the children it waited for: its search workers, which are forked
    and leave by os._exit (no atexit, so no line of their own). For the `kfops run` process
    (`orchestrator`), only its own: its children are the steps.
    """
    if row["pid"] == orchestrator:
        return row["cpu_s"]
    return row["cpu_s"] + row["children_cpu_s"]


def run_once(store: Path, runs_dir: Path, workdir: Path) -> dict:
    """One `kfops run` with the accounting on; its summary and per-step rows."""
    rusage = workdir / "rusage.jsonl"
    rusage.unlink(missing_ok=True)
    hook = workdir / "hook"
    hook.mkdir(exist_ok=True)
    # each step process says its pid in its own log lines, so rusage rows map to steps
    (hook / "sitecustomize.py").write_text(
        HOOK + "\nimport sys\nif '--function_to_execute' in sys.argv:\n"
        "    print('KFOPS_BENCH_PID', os.getpid(), flush=True)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH")) if p),
        "PYTHONPROFILEIMPORTTIME": "1",
        "KFOPS_BENCH_RUSAGE": str(rusage),
        # each step in a fresh interpreter (kfops/warm_steps.py off): the hook and the import
        # accounting run at interpreter start, which a forked warm step does not have
        "KFOPS_COLD_STEPS": "1",
    }
    kfops = Path(sys.executable).with_name("kfops")
    cmd = [str(kfops), "run", "--store", str(store), "--runs-dir", str(runs_dir), "--json"]
    start = time.monotonic()
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        out, err = proc.communicate()  # stderr: its own import-time lines, and any error
    if proc.returncode:
        tail = [line for line in err.splitlines() if not line.startswith("import time:")]
        raise SystemExit(f"kfops run failed ({proc.returncode}): " + "\n".join(tail[-5:]))
    wall = time.monotonic() - start
    summary = json.loads(out[out.index("{") :])
    rows = [json.loads(line) for line in rusage.read_text().splitlines()]
    pids = {row["pid"]: cpu_of(row, proc.pid) for row in rows}
    return {
        "summary": summary,
        "steps": steps(Path(summary["log"]), pids),
        "command_wall": wall,
        "orchestrator_cpu": pids.get(proc.pid, 0.0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    parser.add_argument("--store", help="registry store (default: a fresh temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kfops-run-steps-") as tmp:
        work = Path(tmp)
        store = Path(args.store) if args.store else work / "store"
        for n in range(1, args.runs + 1):
            before = os.getloadavg()[0]
            result = run_once(store, work / "runs", work)
            after = os.getloadavg()[0]
            s = result["summary"]
            print(f"\nrun {n}: {s['status']}, pipeline {s['duration_s']:.1f} s, "
                  f"load {before:.1f} -> {after:.1f}")  # fmt: skip
            print(f"  {'step':16s} {'wall s':>7s} {'import s':>8s} {'work s':>7s} {'CPU s':>6s}")
            total = collections.Counter()
            for r in result["steps"]:
                work_s = max(0.0, r["wall"] - r["imports"])
                total.update(wall=r["wall"], imports=r["imports"], work=work_s, cpu=r["cpu"])
                print(f"  {r['step']:16s} {r['wall']:7.2f} {r['imports']:8.2f} {work_s:7.2f} "
                      f"{r['cpu']:6.2f}")  # fmt: skip
            print(f"  {'sum':16s} {total['wall']:7.2f} {total['imports']:8.2f} "
                  f"{total['work']:7.2f} {total['cpu']:6.2f}")  # fmt: skip
            print(f"  `kfops run` command: {result['command_wall']:.1f} s wall; its own process "
                  f"{result['orchestrator_cpu']:.2f} CPU s (imports, flags, kfp.local, "
                  "progress polling, reports)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

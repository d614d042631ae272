"""How many CPUs a step may use, and the thread count that follows from it.

On a cluster the pod's CPU limit is a CFS quota on its cgroup: Kubernetes writes a limit of
`L` CPUs as `L * period` microseconds per `period` (100 000 us), in `cpu.max` ("$MAX $PERIOD",
"max" = no limit; Linux Documentation/admin-guide/cgroup-v2.rst) under cgroup v2, or in
`cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 = no limit) under cgroup v1. The node's cores stay
visible to `os.sched_getaffinity`, so counting cores alone would start 8 threads in a 2-CPU pod,
and the quota then stalls them all. The count is the smaller of the quota (rounded up, as the
JVM does: a 1.5-CPU limit gets 2 threads) and the cores the process may run on.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"


def quota(
    root: str | os.PathLike = CGROUP_ROOT, proc: str | os.PathLike = PROC_CGROUP
) -> float | None:
    """The CPU limit of this process's cgroup and its ancestors (the tightest), or None.

    Reads cgroup v2's cpu.max along the process's cgroup path (from `proc`, the
    /proc/self/cgroup lines), else cgroup v1's cfs quota under the cpu controller's mount.
    Unreadable or malformed files count as no limit: a wrong guess must not stop a step.
    """
    root = Path(root)
    limits = [_v2(d / "cpu.max") for d in _dirs(root, _relative(proc, v2=True))]
    for base in (root / "cpu,cpuacct", root / "cpu"):
        rel = _relative(proc, v2=False)
        limits += [_v1(d) for d in _dirs(base, rel)] if base.is_dir() else []
    found = [x for x in limits if x is not None]
    return min(found) if found else None


def available(root: str | os.PathLike = CGROUP_ROOT, proc: str | os.PathLike = PROC_CGROUP) -> int:
    """The CPUs this process may use: its affinity mask, capped by the cgroup quota; >= 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    limit = quota(root, proc)
    if limit is not None:
        cores = min(cores or 1, math.ceil(limit))
    return max(1, cores or 1)


def resolve(n_threads: int) -> int:
    """`n_threads`, or when it is 0 (auto) the CPUs this process may use."""
    return n_threads if n_threads > 0 else available()


def _relative(proc: str | os.PathLike, v2: bool) -> str:
    """This process's cgroup path: the "0::" line for v2, the cpu controller's line for v1."""
    try:
        lines = Path(proc).read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if v2 and parts[0] == "0" and parts[1] == "":
            return parts[2] or "/"
        if not v2 and "cpu" in parts[1].split(","):
            return parts[2] or "/"
    return "/"


def _dirs(base: Path, relative: str) -> list[Path]:
    """`base/relative` and each ancestor up to `base`: a parent's quota caps its children too.

    Inside a container with its own cgroup namespace, the path may not exist under the mount
    (the mount is the container's own cgroup): then `base` itself is the process's cgroup.
    """
    parts = [p for p in relative.strip("/").split("/") if p and p != ".."]
    out = [base.joinpath(*parts[:i]) for i in range(len(parts), -1, -1)]
    return [d for d in out if d.is_dir()] or [base]


def _v2(path: Path) -> float | None:
    try:
        fields = path.read_text().split()
        if len(fields) != 2 or fields[0] == "max":
            return None
        limit, period = int(fields[0]), int(fields[1])
    except (OSError, ValueError):
        return None
    return limit / period if limit > 0 and period > 0 else None


def _v1(directory: Path) -> float | None:
    try:
        limit = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return limit / period if limit > 0 and period > 0 else None


def share(n_threads: int, tasks: int) -> tuple[int, int]:
    """(processes, threads each) for `tasks` independent jobs on `n_threads` CPUs.

    As many processes as there are jobs to fill them, the CPUs left over as threads inside each,
    so processes x threads never exceeds `n_threads` (a 2-CPU step with 24 fits: 2 x 1).
    """
    processes = max(1, min(n_threads, tasks))
    return processes, max(1, n_threads // processes)


@contextlib.contextmanager
def processes(threads_each: int) -> Iterator[None]:
    """Runs joblib `n_jobs` in loky worker processes of at most `threads_each` OpenMP threads.

    Pass the process count as the caller's `n_jobs` (from `share`). loky starts its workers with
    OMP_NUM_THREADS and friends set to `threads_each` (joblib `parallel_config`,
    `inner_max_num_threads`); the workers inherit OMP_WAIT_POLICY from this process (kfops sets
    it on import when the machine is oversubscribed). Results must not depend on which process
    ran a job: each job is seeded.
    """
    import joblib  # only the steps that fan out pay for it

    with joblib.parallel_config(backend="loky", inner_max_num_threads=threads_each):
        yield


def background() -> str:
    """Lowers this process to the CPU left over by everything else; returns the policy it got.

    For a server's best-effort helper (the shadow challenger, whose work may be dropped): under
    saturation it must not take a core from the event loop. `nice 10` still gets ~10 % of a
    busy core's time slices (CFS weight 110 against 1024), enough to stretch a request by a
    slice now and then; SCHED_IDLE runs only when a CPU would otherwise idle (sched(7): "for
    running very low priority background jobs"), and an unprivileged process may switch itself
    to it (no CAP_SYS_NICE needed, so also in a pod). Where it is not available: nice 19.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "idle"
    except (AttributeError, OSError):
        os.nice(19 - os.nice(0))
        return "nice"

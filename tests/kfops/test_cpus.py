"""CPU counting from cgroup files the tests write (v2 cpu.max, v1 cfs quota) and affinity."""

import os
from pathlib import Path

import pytest
import yaml

from kfops import cpus

CORES = len(os.sched_getaffinity(0))
COMPILED = Path(__file__).parents[2] / "pipelines/compiled/training.yaml"


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v2_quota_of_the_process_cgroup(tmp_path):
    _write(tmp_path / "proc", "0::/kubepods/pod1/ctr\n")
    _write(tmp_path / "cg/kubepods/pod1/ctr/cpu.max", "150000 100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") == 1.5
    assert cpus.available(tmp_path / "cg", tmp_path / "proc") == min(CORES, 2)


def test_v2_tightest_ancestor_wins(tmp_path):
    _write(tmp_path / "proc", "0::/pod/ctr\n")
    _write(tmp_path / "cg/pod/cpu.max", "100000 100000\n")
    _write(tmp_path / "cg/pod/ctr/cpu.max", "200000 100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") == 1.0
    assert cpus.available(tmp_path / "cg", tmp_path / "proc") == 1


def test_v2_namespaced_mount_is_the_process_cgroup(tmp_path):
    # A private cgroup namespace shows "/" and mounts the container's own cgroup at the root.
    _write(tmp_path / "proc", "0::/\n")
    _write(tmp_path / "cg/cpu.max", "50000 100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") == 0.5
    assert cpus.available(tmp_path / "cg", tmp_path / "proc") == 1


def test_v2_no_limit(tmp_path):
    _write(tmp_path / "proc", "0::/\n")
    _write(tmp_path / "cg/cpu.max", "max 100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") is None
    assert cpus.available(tmp_path / "cg", tmp_path / "proc") == CORES


def test_v1_cfs_quota(tmp_path):
    _write(tmp_path / "proc", "4:memory:/x\n3:cpu,cpuacct:/kubepods/pod2\n0::/\n")
    _write(tmp_path / "cg/cpu,cpuacct/kubepods/pod2/cpu.cfs_quota_us", "300000\n")
    _write(tmp_path / "cg/cpu,cpuacct/kubepods/pod2/cpu.cfs_period_us", "100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") == 3.0


def test_v1_unlimited_is_minus_one(tmp_path):
    _write(tmp_path / "proc", "1:cpu:/\n")
    _write(tmp_path / "cg/cpu/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path / "cg/cpu/cpu.cfs_period_us", "100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") is None


@pytest.mark.parametrize("text", ["", "garbage", "0 100000", "100000 0", "1 2 3"])
def test_malformed_is_no_limit(tmp_path, text):
    _write(tmp_path / "proc", "0::/\n")
    _write(tmp_path / "cg/cpu.max", text)
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") is None


def test_missing_files_fall_back_to_affinity(tmp_path):
    assert cpus.available(tmp_path / "none", tmp_path / "none") == CORES


def test_resolve_zero_is_auto():
    assert cpus.resolve(3) == 3
    assert cpus.resolve(0) == cpus.available()


@pytest.mark.parametrize(("executor", "threads"), [("exec-train", 2), ("exec-evaluate", 1)])
def test_auto_threads_follow_the_compiled_pipelines_cpu_limit(tmp_path, executor, threads):
    # The kubelet writes a CPU limit of L as quota = L * 1000 milli * period / 1000 over the
    # 100 ms period (kubernetes pkg/kubelet/cm/helpers_linux.go, MilliCPUToQuota).
    spec = next(yaml.safe_load_all(open(COMPILED, encoding="utf-8")))
    limit = spec["deploymentSpec"]["executors"][executor]["container"]["resources"]["cpuLimit"]
    _write(tmp_path / "proc", "0::/\n")
    _write(tmp_path / "cg/cpu.max", f"{int(limit * 100_000)} 100000\n")
    assert cpus.quota(tmp_path / "cg", tmp_path / "proc") == limit
    assert cpus.available(tmp_path / "cg", tmp_path / "proc") == min(threads, CORES)
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["n_threads"]["defaultValue"] == 0  # auto by default


@pytest.mark.parametrize(
    ("cpus_", "tasks", "expected"),
    [(2, 24, (2, 1)), (8, 3, (3, 2)), (4, 1, (1, 4)), (1, 24, (1, 1)), (3, 2, (2, 1))],
)
def test_share_never_oversubscribes(cpus_, tasks, expected):
    processes, threads = cpus.share(cpus_, tasks)
    assert (processes, threads) == expected
    assert processes * threads <= cpus_


def test_background_puts_the_process_on_idle_cpu_only():
    import subprocess
    import sys

    code = "import os; from kfops import cpus; print(cpus.background(), os.sched_getscheduler(0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["idle", str(os.SCHED_IDLE)]
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # only the process that asked

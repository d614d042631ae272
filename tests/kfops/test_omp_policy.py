"""Importing kfops makes OpenMP threads wait passively only on an oversubscribed machine."""

import os
import subprocess
import sys

import pytest

import kfops

SHOW = (
    "import os; before = os.getloadavg()[0]; import kfops; "
    "print(os.environ.get('OMP_WAIT_POLICY', 'unset'), before, os.getloadavg()[0], os.cpu_count())"
)


def _import(env) -> list[str]:
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True)
    return out.stdout.split()


def test_passive_only_when_the_run_queue_fills_the_cpus():
    assert kfops.passive_wait(2.0, 2) and kfops.passive_wait(17.5, 2)
    assert not kfops.passive_wait(1.99, 2) and not kfops.passive_wait(0.0, 8)


def test_import_decides_from_the_machine_s_load_and_cpus():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    policy, before, after, cpus = _import(env)
    passive = {
        kfops.passive_wait(float(before), int(cpus)),
        kfops.passive_wait(float(after), int(cpus)),
    }
    if passive == {True}:
        assert policy == "PASSIVE"
    elif passive == {False}:
        assert policy == "unset"
    else:  # the load crossed the CPU count during the import: either answer is right
        assert policy in ("PASSIVE", "unset")


@pytest.mark.parametrize("given", ["ACTIVE", "passive"])
def test_a_policy_set_by_the_user_wins(given):
    assert _import({**os.environ, "OMP_WAIT_POLICY": given})[0] == given

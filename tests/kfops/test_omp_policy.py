"""Importing kfops makes OpenMP threads wait passively, unless the environment says otherwise."""

import os
import subprocess
import sys

import pytest

SHOW = "import kfops, os; print(os.environ['OMP_WAIT_POLICY'])"


def _policy(env):
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True)
    return out.stdout.strip()


def test_kfops_sets_a_passive_wait_policy():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"


@pytest.mark.parametrize("given", ["ACTIVE", "passive"])
def test_a_policy_set_by_the_user_wins(given):
    assert _policy({**os.environ, "OMP_WAIT_POLICY": given}) == given

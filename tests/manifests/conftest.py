"""Fixtures for the manifest tests: every kustomization rendered once per session, offline.

The overlays read local env files that are never committed (minio.env); the fixture renders a
copy of manifests/ with the env files `make cluster-env` writes (fresh random keys).
"""

import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
TARGETS = {
    "base": "base",
    "kind": "overlays/kind",
    "kserve": "overlays/kserve",
    "production": "overlays/production",
    "deployer": "deployer",
    "kind-minio": "overlays/kind/minio",
    "monitoring": "monitoring",
}


def write_env_files(manifests: pathlib.Path) -> None:
    """Writes the overlays' env files exactly as `make cluster-env` does (its own command)."""
    subprocess.run(
        [sys.executable, "-m", "kfops.cluster", "env-files", "--manifests", str(manifests)],
        check=True,
        capture_output=True,
    )


def render(kustomization: pathlib.Path) -> str:
    """`kubectl kustomize` of one directory; fails the test with kustomize's own message."""
    proc = subprocess.run(
        [str(KUBECTL), "kustomize", str(kustomization)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def manifests_copy(tmp_path_factory) -> pathlib.Path:
    """A copy of manifests/ with fresh env files in place of the local, git-ignored ones."""
    dest = tmp_path_factory.mktemp("manifests") / "manifests"
    shutil.copytree(ROOT / "manifests", dest, ignore=shutil.ignore_patterns("*.env"))
    write_env_files(dest)
    return dest


@pytest.fixture(scope="session")
def rendered(manifests_copy, tmp_path_factory) -> dict[str, pathlib.Path]:
    """Target name -> path of its rendered multi-document YAML."""
    out = tmp_path_factory.mktemp("rendered")
    paths = {}
    for name, rel in TARGETS.items():
        paths[name] = out / f"{name}.yaml"
        paths[name].write_text(render(manifests_copy / rel))
    return paths


@pytest.fixture(scope="session")
def objects(rendered) -> dict[str, list[dict]]:
    """Target name -> its rendered objects."""
    return {
        name: [d for d in yaml.safe_load_all(p.read_text()) if d] for name, p in rendered.items()
    }


def find(objs: list[dict], kind: str, name: str) -> dict:
    """The one object of that kind and name (fails the test when absent)."""
    hits = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, got {len(hits)}"
    return hits[0]

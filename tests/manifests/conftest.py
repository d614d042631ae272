"""Fixtures for the manifest tests: every kustomization rendered once per session, offline.

The overlays read local env files that are never committed (minio.env, s3.env); the fixture renders
a copy of manifests/ with throwaway values in them, as `scripts/kind-up.sh` would write.
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
}
TEST_ENV_FILES = {
    "overlays/kind/minio/minio.env": (
        "MINIO_ENDPOINT=minio.kfops.svc.cluster.local:9000\nMINIO_SECURE=false\n"
        "MINIO_ACCESS_KEY=test-access\nMINIO_SECRET_KEY=test-secret-value\n"
    ),
    "overlays/kserve/s3.env": (
        "AWS_ACCESS_KEY_ID=test-access\nAWS_SECRET_ACCESS_KEY=test-secret-value\n"
    ),
}


def render(kustomization: pathlib.Path) -> str:
    """`kubectl kustomize` of one directory; fails the test with kustomize's own message."""
    proc = subprocess.run(
        [str(KUBECTL), "kustomize", str(kustomization)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def manifests_copy(tmp_path_factory) -> pathlib.Path:
    """A copy of manifests/ with test env files in place of the local, git-ignored ones."""
    dest = tmp_path_factory.mktemp("manifests") / "manifests"
    shutil.copytree(ROOT / "manifests", dest)
    for rel, text in TEST_ENV_FILES.items():
        (dest / rel).write_text(text)
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

"""checkov on every rendered kustomization (and the Dockerfile): no failure outside the skip file.

checkov pins dependencies that clash with kfp, so it lives in its own venv (`make checkov`).
"""

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.manifests import conftest

SKIPS = yaml.safe_load((conftest.ROOT / "checkov-skips.yaml").read_text())["skips"]


def _run_checkov(directory, framework: str) -> list[dict]:
    assert conftest.CHECKOV.exists(), "checkov is missing: run `make checkov`"
    proc = subprocess.run(
        [
            str(conftest.CHECKOV),
            "--framework",
            framework,
            "-d",
            str(directory),
            "-o",
            "json",
            "--quiet",
            "--skip-download",
            "--compact",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    # checkov prints {} summaries when a directory has nothing of that framework.
    reports = report if isinstance(report, list) else [report]
    return [f for r in reports for f in r.get("results", {}).get("failed_checks", [])]


def _target(failure: dict) -> str:
    name = failure["file_path"].rsplit("/", 1)[-1]
    return "Dockerfile" if name == "Dockerfile" else name.removesuffix(".yaml")


def _skipped(failure: dict) -> bool:
    return any(
        s["check"] == failure["check_id"]
        and _target(failure) in s["targets"]
        and failure["resource"] in s.get("resources", [failure["resource"]])
        for s in SKIPS
    )


@pytest.fixture(scope="session")
def checkov_failures(rendered, tmp_path_factory) -> list[dict]:
    """Every failed check on the rendered targets, from one checkov run."""
    scan = tmp_path_factory.mktemp("checkov")
    for name, path in rendered.items():
        shutil.copy(path, scan / f"{name}.yaml")
    return _run_checkov(scan, "kubernetes")


def test_checkov_skips_each_carry_a_reason():
    for skip in SKIPS:
        assert skip["check"].startswith(("CKV_", "CKV2_")), skip
        assert len(skip.get("reason", "").split()) >= 8, f"{skip['check']} needs a real reason"
        assert skip["targets"], skip


@pytest.mark.parametrize("target", sorted(conftest.TARGETS))
def test_checkov_kubernetes_has_no_unskipped_failure(checkov_failures, target):
    unexpected = [
        f"{f['check_id']} {f['resource']}: {f['check_name']}"
        for f in checkov_failures
        if _target(f) == target and not _skipped(f)
    ]
    assert unexpected == []


@pytest.fixture(scope="session")
def dockerfile_failures(tmp_path_factory) -> list[dict]:
    """Every failed check on the Dockerfile."""
    scan = tmp_path_factory.mktemp("checkov-dockerfile")
    shutil.copy(conftest.ROOT / "Dockerfile", scan / "Dockerfile")
    return _run_checkov(scan, "dockerfile")


def test_checkov_dockerfile_has_no_unskipped_failure(dockerfile_failures):
    unexpected = [
        f"{f['check_id']}: {f['check_name']}" for f in dockerfile_failures if not _skipped(f)
    ]
    assert unexpected == []


def test_checkov_dockerfile_skips_are_all_still_needed(dockerfile_failures):
    failed = {f["check_id"] for f in dockerfile_failures}
    stale = [s["check"] for s in SKIPS if "Dockerfile" in s["targets"] and s["check"] not in failed]
    assert stale == []


def test_dockerfile_base_image_default_is_pinned_to_a_version():
    text = (conftest.ROOT / "Dockerfile").read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE).group(1)
    assert re.search(r":\d+\.\d+\.\d+-", default), default
    stages, bases = set(), []
    for line in re.findall(r"^FROM .*$", text, re.MULTILINE):
        parts = line.split()
        bases.append(parts[1])
        stages.update(parts[3:4])
    assert {b for b in bases if b not in stages} == {"${BASE_IMAGE}"}, "every stage uses BASE_IMAGE"


def test_checkov_kubernetes_skips_are_all_still_needed(checkov_failures):
    stale = []
    for skip in (s for s in SKIPS if "Dockerfile" not in s["targets"]):
        for target in skip["targets"]:
            for resource in skip.get("resources", [None]):
                if not any(
                    f["check_id"] == skip["check"]
                    and _target(f) == target
                    and resource in (None, f["resource"])
                    for f in checkov_failures
                ):
                    stale.append((skip["check"], target, resource))
    assert stale == []

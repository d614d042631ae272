"""Lineage both ways: from a model version to its run, data and parents; from data to models.

The facts come from two places written independently: the lineage block push stores in each
version's manifest (`metadata.lineage`: run_id, source, data_sha256, data_snapshot (the
training rows, kfops.snapshots), data_parents, rows, seed, n_threads, code_version,
package_version, library_versions, image, parent_champion) and the run records under `runs/`.
The manifest is authoritative for the model; the run adds parameters, status and step metrics when
it was recorded (a cluster run without records still has its manifest lineage).
"""

from __future__ import annotations

from typing import Any

from kfops import errors
from kfops import registry as registry_mod
from kfops import runs as runs_mod

MAX_PARENTS = 100  # the champion chain is walked at most this far (guards against cycles too)
MIN_HASH_PREFIX = 8


def model_lineage(
    registry: registry_mod.Registry,
    run_index: runs_mod.RunIndex,
    name: str,
    version: str | None = None,
) -> dict[str, Any]:
    """Where a model version came from: run, data, parameters, code and the parent champions.

    Args:
        registry: the registry holding the model.
        run_index: the run records (same store).
        name: model name.
        version: a registered version; None means the current champion.

    Returns:
        {"model", "run_id", "run", "data", "parameters", "n_threads", "code_version",
        "package_version", "image", "library_versions", "parents"}; "n_threads" is what the
        training fits ran with (None for versions pushed before it was recorded); "run" is None
        when the run was not recorded and "parents" lists the previous champions, nearest first.

    Raises:
        NotFound: no such model or version, or no champion when version is None.
    """
    version = version or _champion(registry, name)
    manifest = registry.manifest(name, version)
    lineage = dict((manifest.get("metadata") or {}).get("lineage") or {})
    run = _run(run_index, lineage.get("run_id"))
    return {
        "model": {
            "name": name,
            "version": version,
            "created_at": manifest.get("created_at"),
            "champion": registry.champion(name) == version,
            "files": {f: e.get("sha256") for f, e in (manifest.get("files") or {}).items()},
        },
        "run_id": lineage.get("run_id"),
        "run": run,
        "data": {
            **{k: lineage.get(k) for k in ("source", "data_sha256", "rows", "data_snapshot")},
            # the datasets this one was built from (a retraining snapshot: the champion's)
            "parents": list(lineage.get("data_parents") or []),
        },
        "parameters": run["parameters"] if run else _manifest_parameters(lineage),
        "n_threads": lineage.get("n_threads"),
        "code_version": lineage.get("code_version"),
        "package_version": lineage.get("package_version"),
        "image": lineage.get("image"),
        "library_versions": lineage.get("library_versions") or {},
        "parents": _parents(registry, name, lineage.get("parent_champion"), {version}),
    }


def models_for_data(registry: registry_mod.Registry, data_sha256: str) -> list[tuple[str, str]]:
    """Every (name, version) trained on this data, oldest version first per model.

    Scans every manifest's `metadata.lineage.data_sha256`; a prefix of at least 8 hex characters
    matches too, so a hash copied from a table works.

    Raises:
        ConfigError: the hash is shorter than 8 characters.
    """
    wanted = _hash_prefix(data_sha256)
    found = []
    for name in registry.models():
        for version in registry.versions(name):
            lineage = (registry.manifest(name, version).get("metadata") or {}).get("lineage") or {}
            if str(lineage.get("data_sha256") or "").lower().startswith(wanted):
                found.append((name, version))
    return found


def runs_for_data(run_index: runs_mod.RunIndex, sha256: str) -> list[runs_mod.RunInfo]:
    """Runs that read or wrote data with this sha256 (or prefix), newest first.

    Raises:
        ConfigError: the hash is shorter than 8 characters.
    """
    wanted = _hash_prefix(sha256)
    ids = {d["run_id"] for d in run_index.details() if _touches(d, wanted)}
    return [info for info in run_index.list() if info.run_id in ids]


def _touches(detail: dict[str, Any], wanted: str) -> bool:
    for step in detail.get("steps") or []:
        for item in (step.get("inputs") or []) + (step.get("outputs") or []):
            if str(item.get("sha256") or "").lower().startswith(wanted):
                return True
    return False


def _hash_prefix(sha256: str) -> str:
    value = (sha256 or "").strip().lower()
    if len(value) < MIN_HASH_PREFIX:
        raise errors.ConfigError(
            f"data hash {sha256!r} is too short: give at least {MIN_HASH_PREFIX} hex characters"
        )
    return value


def _champion(registry: registry_mod.Registry, name: str) -> str:
    champion = registry.champion(name)
    if champion is None:
        raise errors.NotFound(f"model {name!r} has no champion; name a version")
    return champion


def _run(run_index: runs_mod.RunIndex, run_id: Any) -> dict[str, Any] | None:
    """The recorded run with exactly this id, or None (never a run that merely shares a prefix)."""
    if not run_id:
        return None
    try:
        detail = run_index.show(str(run_id))
    except (errors.NotFound, errors.ConfigError):
        return None
    return detail if detail["run_id"] == run_id else None


def _manifest_parameters(lineage: dict[str, Any]) -> dict[str, Any]:
    keys = ("seed", "estimator", "model_params", "pipeline")
    return {k: lineage[k] for k in keys if lineage.get(k) is not None}


def _parents(
    registry: registry_mod.Registry, name: str, parent: Any, seen: set[str]
) -> list[dict[str, Any]]:
    chain: list[dict[str, Any]] = []
    while parent and str(parent) not in seen and len(chain) < MAX_PARENTS:
        parent = str(parent)
        seen.add(parent)
        try:
            manifest = registry.manifest(name, parent)
        except errors.NotFound:
            chain.append({"version": parent, "missing": True})
            break
        lineage = (manifest.get("metadata") or {}).get("lineage") or {}
        chain.append(
            {
                "version": parent,
                "created_at": manifest.get("created_at"),
                "run_id": lineage.get("run_id"),
                "source": lineage.get("source"),
                "data_sha256": lineage.get("data_sha256"),
                "code_version": lineage.get("code_version"),
            }
        )
        parent = lineage.get("parent_champion")
    return chain

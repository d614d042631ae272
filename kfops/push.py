"""Push: register a blessed model as a new immutable version, then move the champion pointer.

With `promote="manual"` (PushConfig) the version is staged instead: the champion pointer, which
the server follows, waits for `kfops models approve` (kfops.approval).

Everything the version needs is staged in a temp directory first, so a failure before
`Registry.register` leaves nothing behind, and the registry writes the manifest last and the
champion pointer after that: a reader sees the old champion or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from kfops import approval, dataio, errors, parameters, schema
from kfops import registry as registry_mod
from kfops.reports import model_card
from kfops.runs import context

REFERENCE_ROWS = 5000
AUTO, MANUAL = "auto", "manual"


@dataclasses.dataclass(frozen=True)
class PushConfig:
    """How a blessed model reaches the champion pointer."""

    promote: str = parameters.field(
        AUTO,
        "auto: a blessed model becomes the champion at once; manual: it is registered as staged "
        "and served only once `kfops models approve` promotes it",
        choices=(AUTO, MANUAL),
    )

    def __post_init__(self):
        if self.promote not in (AUTO, MANUAL):
            raise errors.ConfigError(
                f"promote must be {AUTO!r} or {MANUAL!r}, got {self.promote!r}"
            )


@dataclasses.dataclass(frozen=True)
class PushResult:
    """Where the model went."""

    name: str
    version: str
    uri: str
    files: dict[str, str]  # file name -> sha256
    model_card: str
    staged: bool = False  # registered, waiting for approval (promote="manual")


def reference_sample(
    df: pd.DataFrame, max_rows: int = REFERENCE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """A deterministic, capped sample of training rows: the drift reference kept with the model."""
    if len(df) <= max_rows:
        return df.reset_index(drop=True)
    return df.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def reference_from_file(
    path: str | Path, max_rows: int = REFERENCE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """`reference_sample` of a frame written by `dataio.write_frame`, converting only its rows.

    The same rows as `reference_sample(dataio.read_frame(path))`: pandas' `sample` draws
    `RandomState(seed).choice(n, max_rows, replace=False)` (pandas/core/sample.py) and the file
    has no index, so `sort_index` is position order. Only those rows become Python objects;
    reading all 800k training rows of a 1M run to keep 5,000 took ~1 CPU s.

    Raises:
        DataError: the file is missing or not Parquet.
    """
    import numpy as np
    import pyarrow.parquet as pq

    with dataio.parquet_errors(path):
        table = pq.read_table(path)
    if table.num_rows > max_rows:
        chosen = np.random.RandomState(seed).choice(table.num_rows, max_rows, replace=False)
        table = table.take(np.sort(chosen))
    return table.to_pandas()


def push(
    registry: registry_mod.Registry,
    name: str,
    *,
    model_path: str | Path,
    data_schema: schema.Schema,
    evaluation: Mapping[str, Any],
    blessing: Mapping[str, Any],
    reference: pd.DataFrame,
    lineage: Mapping[str, Any],
    promote: bool = True,
    config: PushConfig = PushConfig(),  # noqa: B008 (frozen)
) -> PushResult:
    """Registers a blessed model and (by default) makes it the champion.

    Args:
        registry: the model registry (local or S3 store).
        name: registered model name.
        model_path: the fitted sklearn Pipeline file written by the train step.
        data_schema: the schema the model was trained under.
        evaluation: `Evaluation.to_dict()` of the candidate.
        blessing: `Blessing.to_dict()`; must say blessed.
        reference: capped sample of training rows for drift monitoring.
        lineage: run id, source URI, data sha256, seed, code and library versions, params.
        promote: move the champion pointer to the new version (auto mode).
        config: `promote="manual"` stages the version for approval instead of promoting it.

    Returns:
        The new version and the sha256 of every file.

    Raises:
        ConfigError: the blessing does not say blessed, or the name is invalid.
        StorageError: the store failed; nothing is promoted in that case.
    """
    if not blessing.get("blessed"):
        reasons = "; ".join(blessing.get("reasons", ())) or "no reason recorded"
        raise errors.ConfigError(f"refusing to push model {name!r}: not blessed ({reasons})")
    parent = registry.champion(name)
    full_lineage = {**lineage, "parent_champion": parent}
    card = model_card.render(name, data_schema, evaluation, blessing, full_lineage)
    documents = {
        registry_mod.METRICS_FILE: evaluation,
        registry_mod.BLESSING_FILE: blessing,
        registry_mod.LINEAGE_FILE: full_lineage,
    }
    with tempfile.TemporaryDirectory(prefix="kfops-push-") as tmp:
        staged = _stage(Path(tmp), model_path, data_schema, reference, documents, card)
        metadata = {
            "lineage": full_lineage,
            "task": evaluation.get("task"),
            "metrics": dict(evaluation.get("metrics", {})),
        }
        version = registry.register(name, staged, metadata)
    staged = config.promote == MANUAL
    if staged:
        approval.stage(registry, name, version.version, {"run_id": lineage.get("run_id")})
    elif promote:
        registry.promote(name, version.version)
    files = {f: info["sha256"] for f, info in version.manifest["files"].items()}
    return PushResult(name, version.version, version.uri, files, card, staged)


def _stage(
    tmp: Path,
    model_path: str | Path,
    data_schema: schema.Schema,
    reference: pd.DataFrame,
    documents: Mapping[str, Mapping[str, Any]],
    card: str,
) -> dict[str, Path]:
    """Writes every file of the version into tmp and returns name -> path.

    `documents` maps a JSON file name (metrics, blessing, lineage) to its content.
    """
    r = registry_mod
    files = {n: tmp / n for n in (r.MODEL_FILE, r.SCHEMA_FILE, r.REFERENCE_FILE, r.MODEL_CARD_FILE)}
    shutil.copyfile(model_path, files[r.MODEL_FILE])
    data_schema.save(files[r.SCHEMA_FILE])
    dataio.write_frame(reference, files[r.REFERENCE_FILE])
    dataio.write_text(files[r.MODEL_CARD_FILE], card)
    for file_name, content in documents.items():
        files[file_name] = tmp / file_name
        dataio.write_json(dict(content), files[file_name])
    return files


def build_lineage(**facts: Any) -> dict[str, Any]:
    """Reproducibility facts for the model card and the registry manifest.

    Adds the kfops, Python and library versions and a UTC timestamp to the caller's facts (run id,
    source, data sha256, rows, seed, code version, params, image). An empty code version is the
    image's revision (kfops.runs.context), as in the run header.
    """
    import datetime  # noqa: PLC0415
    import importlib.metadata  # noqa: PLC0415
    import platform  # noqa: PLC0415

    import kfops  # noqa: PLC0415

    libs = {}
    for dist in ("scikit-learn", "pandas", "numpy", "pyarrow", "joblib"):
        try:
            libs[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            libs[dist] = "absent"
    libs["python"] = platform.python_version()
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    if "code_version" in facts:
        facts["code_version"] = context.code_version(facts["code_version"] or "")
    return {
        **facts,
        "package_version": kfops.__version__,
        "library_versions": libs,
        "created_at": now,
        "host": platform.node(),  # the machine or container that ran the push
    }

"""Who and what a report is about: run id, data source and hashes, model sha256 and version.

Read from the run's own records (kfops.runs), which every step writes to the registry's store,
so a step late in the pipeline (evaluate, gate) can name the data ingest read without taking it
as an input. Never fails: a report with fewer facts beats a failed step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kfops import errors, runs
from kfops.store import base

_LOG = logging.getLogger(__name__)


def from_run(
    store: base.Store, run_id: str, model_metadata: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Identity facts for `evaluation_html(identity=...)`.

    Args:
        store: the store the run is recorded in.
        run_id: the run.
        model_metadata: the candidate Model artifact's metadata (its sha256).
    """
    facts: dict[str, Any] = {"run_id": run_id}
    if model_metadata and model_metadata.get("sha256"):
        facts["model_sha256"] = model_metadata["sha256"]
    try:
        detail = runs.RunIndex(store).show(run_id)
    except errors.KfopsError as e:
        _LOG.warning("report identity: run %s not readable: %s", run_id, e)
        return facts
    parameters = detail.get("parameters") or {}
    if parameters.get("source"):
        facts["data_source"] = parameters["source"]
    if parameters.get("model_name"):
        facts["model_name"] = parameters["model_name"]
    for step in detail.get("steps") or []:
        for output in step.get("outputs") or []:
            where = (step.get("step"), output.get("name"))
            if where == ("ingest", "data") and output.get("sha256"):
                facts["data_sha256"] = output["sha256"]
            elif where == ("split", "test") and output.get("sha256"):
                facts["test_sha256"] = output["sha256"]
            elif where == ("train", "model") and output.get("sha256"):
                facts.setdefault("model_sha256", output["sha256"])
    model = detail.get("model") or {}
    if model.get("version"):
        facts["model_name"], facts["model_version"] = model.get("name"), model["version"]
    return facts

"""Run records from inside a component body: one call opens the store and the step record.

Component bodies are the edge where a step meets its environment, so this module reads the S3
settings from the environment (as the MinIO Secret provides them on a cluster).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from kfops import cluster, config, runs, store


def recorder(store_uri: str, run_id: str) -> runs.RunRecorder:
    """The run recorder for this run, in the registry's store (never a pod-local one in KFP)."""
    cluster.refuse_pod_local_store(store_uri)
    return runs.RunRecorder(store.open_store(store_uri, config.StoreSettings.from_env()), run_id)


@contextlib.contextmanager
def recorded(
    step: str, store_uri: str, run_id: str, parameters: Mapping[str, Any] | None = None
) -> Iterator[runs.StepHandle]:
    """Records the step as running, then succeeded or failed with the error (re-raised).

    Example:
        with recording.recorded("split", store_uri, run_id, {"seed": seed}) as step:
            step.input("data", data.uri, data.metadata.get("sha256"))
    """
    with recorder(store_uri, run_id).step(step, parameters) as handle:
        yield handle

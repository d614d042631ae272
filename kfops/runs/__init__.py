"""Run records: what each pipeline run did, written by its steps, read back by `kfops runs`.

Write with `RunRecorder(store, run_id)` (`start`, `step`, `finish`); read with `RunIndex(store)`
(`list`, `show`, `compare`). Records live in the registry's store under `runs/<run_id>/`, one object
per fact, so the same code serves local runs and cluster runs. Layout: `kfops.runs.records`.
"""

from kfops.runs.compare import Comparison, Row
from kfops.runs.index import RunIndex, RunInfo
from kfops.runs.recorder import RunRecorder, StepHandle

__all__ = ["Comparison", "Row", "RunIndex", "RunInfo", "RunRecorder", "StepHandle"]

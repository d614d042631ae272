"""What a pipeline step learns about its run from where it runs, the same locally and on a cluster.

- `task_parameters`: every input parameter of the running KFP task, as typed values. A Python
  component is started as `... --executor_input <ExecutorInput JSON> --function_to_execute <f>`
  by kfp.local and by the KFP backend alike (the launcher puts the JSON in place of `{{$}}`:
  kubeflow/pipelines backend/src/v2/component/launcher_v2.go, `compileCmdAndArgs`); its
  `inputs.parameterValues` holds every input the component declares, not only the function's.
- `code_version`: the git commit given, else the one the image was built from (Dockerfile
  `ARG REVISION` -> `ENV KFOPS_REVISION`), since a pod has no git checkout.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

EXECUTOR_INPUT_FLAG = "--executor_input"
REVISION_ENV = "KFOPS_REVISION"
_UNKNOWN = ("", "unknown")  # the Dockerfile's default when the build passed no REVISION


def task_parameters(
    argv: Sequence[str] | None = None, exclude: Sequence[str] = ()
) -> dict[str, Any]:
    """The running task's input parameter values by name ({} outside a KFP task)."""
    argv = sys.argv if argv is None else argv
    try:
        raw = argv[list(argv).index(EXECUTOR_INPUT_FLAG) + 1]
        values = json.loads(raw)["inputs"]["parameterValues"]
    except (ValueError, IndexError, KeyError, TypeError):
        return {}
    return {k: v for k, v in values.items() if k not in exclude}


def code_version(given: str = "", environ: Mapping[str, str] | None = None) -> str:
    """`given` (a git commit), else the image's revision, else ""."""
    env = os.environ if environ is None else environ
    revision = env.get(REVISION_ENV, "").strip()
    return given or ("" if revision in _UNKNOWN else revision)

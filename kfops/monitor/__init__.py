"""Monitoring: drift and quality of logged inferences, and the decision to retrain.

Public surface: `MonitorConfig`, `Window`, `QualityFloor`, `MonitorResult`, `read_window`,
`monitor`, and `monitor_model` (the store-level entry point the CLI and component call).

The names load on first use (PEP 562): `kfops.monitor.core` imports Evidently, which costs
seconds, and the fresh-data step, replay and traffic import only `fresh` or `window` from here.
"""

import importlib
from typing import Any

_HOMES = {
    "MonitorConfig": "rules",
    "MonitorResult": "core",
    "QualityFloor": "rules",
    "Window": "rules",
    "monitor": "core",
    "monitor_model": "service",
    "read_window": "window",
    "sample_error_bound": "rules",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
    globals()[name] = value
    return value

"""Monitoring: drift and quality of logged inferences, and the decision to retrain.

Public surface: `MonitorConfig`, `Window`, `QualityFloor`, `MonitorResult`, `read_window`,
`monitor`, and `monitor_model` (the store-level entry point the CLI and component call).
"""

from kfops.monitor.core import MonitorResult, monitor
from kfops.monitor.rules import MonitorConfig, QualityFloor, Window, sample_error_bound
from kfops.monitor.service import monitor_model
from kfops.monitor.window import read_window

__all__ = [
    "MonitorConfig",
    "MonitorResult",
    "QualityFloor",
    "Window",
    "monitor",
    "monitor_model",
    "read_window",
    "sample_error_bound",
]

"""Pipelines: composition of kfops components only. Compiled YAML lives in `compiled/`."""

"""Side-by-side comparison of runs: parameters, data hashes and metrics, differences marked."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

SECTIONS = ("run", "parameter", "data", "metric")
_RUN_FACTS = ("status", "experiment", "code_version", "package_version", "image", "blessed")


@dataclasses.dataclass(frozen=True)
class Row:
    """One compared fact: its value in each run, in the order of `Comparison.run_ids`."""

    section: str  # one of SECTIONS
    name: str
    values: tuple[Any, ...]
    changed: bool


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Runs side by side."""

    run_ids: tuple[str, ...]
    rows: tuple[Row, ...]

    def changed(self) -> list[Row]:
        """Only the rows whose value differs between runs."""
        return [r for r in self.rows if r.changed]

    def row(self, section: str, name: str) -> Row | None:
        """The row for one fact, if any run has it."""
        return next((r for r in self.rows if r.section == section and r.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (`--json`)."""
        return {
            "run_ids": list(self.run_ids),
            "rows": [dict(dataclasses.asdict(r), values=list(r.values)) for r in self.rows],
        }


def compare(details: Sequence[Mapping[str, Any]]) -> Comparison:
    """Builds the comparison from `RunIndex.show` results.

    Step parameters appear as `<step>.<name>` unless they only repeat the run's pipeline
    parameter of the same name (so a local run with full pipeline parameters is not listed twice,
    while a cluster run whose header lacks them still shows what each step got).
    """
    facts = [_facts(d) for d in details]
    rows = []
    for section in SECTIONS:
        names = sorted({name for f in facts for name in f[section]}, key=_order(section))
        for name in names:
            values = tuple(f[section].get(name) for f in facts)
            rows.append(Row(section, name, values, _differ(values)))
    return Comparison(tuple(str(d["run_id"]) for d in details), tuple(rows))


def _facts(detail: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    run = {k: detail.get(k) for k in _RUN_FACTS}
    model = detail.get("model")
    run["model"] = f"{model['name']} v{model['version']}" if model else None
    params = dict(detail.get("parameters") or {})
    data: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    step_params: dict[str, Any] = {}
    for step in detail.get("steps") or []:
        name = step.get("step")
        for k, v in (step.get("parameters") or {}).items():
            step_params[f"{name}.{k}"] = (k, v)
        for item in step.get("inputs") or []:
            if item.get("sha256"):
                data[f"{name}<{item['name']}"] = item["sha256"]
        for item in step.get("outputs") or []:
            if item.get("sha256"):
                data[f"{name}>{item['name']}"] = item["sha256"]
        for k, v in (step.get("metrics") or {}).items():
            metrics[f"{name}.{k}"] = v
    for qualified, (k, v) in step_params.items():
        if k not in params or params[k] != v:
            params[qualified] = v
    return {"run": run, "parameter": params, "data": data, "metric": metrics}


def _order(section: str):
    if section == "run":
        return lambda name: (_RUN_FACTS + ("model",)).index(name)
    return lambda name: ("." in name, name)  # pipeline parameters before step ones


def _differ(values: tuple[Any, ...]) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) > 1

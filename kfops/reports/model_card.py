"""The model card: a Markdown page stored with every registered version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kfops import reports, schema
from kfops.reports import evaluation as evaluation_report


def render(
    name: str,
    data_schema: schema.Schema,
    evaluation: Mapping[str, Any],
    blessing: Mapping[str, Any],
    lineage: Mapping[str, Any],
) -> str:
    """Renders the card: model, data, metrics, slices, fairness, gate decision and lineage."""
    parts = [f"# Model card: {name}\n", _model(data_schema, lineage), _data(data_schema, lineage)]
    parts += [_metrics(evaluation), _slices(evaluation), _fairness(evaluation)]
    parts += [_explanations(evaluation)]
    parts += [_gate(blessing), _lineage(lineage), _use()]
    return "\n".join(p for p in parts if p)


def _model(data_schema: schema.Schema, lineage: Mapping[str, Any]) -> str:
    params = lineage.get("model_params") or {}
    rows = [
        ("task", data_schema.task),
        ("label", data_schema.label),
        ("estimator", lineage.get("estimator", "")),
        ("label classes", data_schema.label_classes),
    ]
    rows += _decision(lineage.get("decision") or {})
    rows += [(f"param {k}", v) for k, v in sorted(params.items())]
    return "## Model\n\n" + reports.md_table(["field", "value"], rows)


def _decision(rule: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The positive class and the decision threshold, with how each was chosen."""
    if not rule:
        return []
    rows = [("positive class", f"{rule.get('positive_class')!r} ({rule.get('positive_rule')})")]
    if rule.get("threshold") is not None:
        how = f"objective {rule.get('objective')}, {rule.get('validation', 'default')}"
        rows.append(("decision threshold", f"{rule['threshold']:.4g} ({how})"))
    return rows


def _data(data_schema: schema.Schema, lineage: Mapping[str, Any]) -> str:
    head = (
        f"Source `{lineage.get('source', '?')}`, sha256 `{lineage.get('data_sha256', '?')}`, "
        f"{lineage.get('rows', '?')} rows.\n\n"
    )
    rows = [(c.name, c.dtype, c.nullable, _range(c)) for c in data_schema.features]
    return (
        "## Data\n\n"
        + head
        + reports.md_table(["feature", "type", "nullable", "range / domain"], rows)
    )


def _range(c: schema.ColumnSpec) -> str:
    if c.domain is not None:
        shown = ", ".join(map(str, c.domain[:8]))
        return shown + (f", … ({len(c.domain)} values)" if len(c.domain) > 8 else "")
    if c.min is not None:
        return f"{c.min:g} to {c.max:g}"
    return ""


def _metrics(evaluation: Mapping[str, Any]) -> str:
    base = evaluation.get("baseline_metrics") or {}
    rows = [(k, v, base.get(k, "")) for k, v in sorted((evaluation.get("metrics") or {}).items())]
    n = evaluation.get("n_rows", "?")
    return f"## Metrics (test split, {n} rows)\n\n" + reports.md_table(
        ["metric", "model", "baseline"], rows
    )


def _slices(evaluation: Mapping[str, Any]) -> str:
    slices = evaluation.get("slices") or {}
    if not slices:
        return ""
    names = sorted({k for v in slices.values() for k, x in v.items() if isinstance(x, float)})
    rows = [
        (s, v.get("rows", ""), *(v.get(m, "") for m in names)) for s, v in sorted(slices.items())
    ]
    return "## Slices\n\n" + reports.md_table(["slice", "rows", *names], rows)


def _fairness(evaluation: Mapping[str, Any]) -> str:
    fairness = evaluation.get("fairness") or {}
    if not fairness:
        return ""
    rows = [(k, v) for k, v in sorted(fairness.items()) if not isinstance(v, dict | list)]
    return "## Fairness\n\n" + reports.md_table(["measure", "value"], rows)


def _explanations(evaluation: Mapping[str, Any]) -> str:
    """Importance, per-class metrics, worst slices and confidently wrong rows (kfops.evaluate)."""
    body = evaluation_report.explanations_markdown(evaluation).replace("\n### ", "\n## ")
    return "## Explanations and error analysis\n" + body if body else ""


def _gate(blessing: Mapping[str, Any]) -> str:
    rows = [
        (c["rule"], "pass" if c["passed"] else "FAIL", c["detail"])
        for c in blessing.get("checks", ())
    ]
    notes = "".join(f"- {n}\n" for n in blessing.get("notes", ()))
    verdict = "blessed" if blessing.get("blessed") else "not blessed"
    return f"## Gate: {verdict}\n\n{notes}\n" + reports.md_table(["rule", "result", "detail"], rows)


def _lineage(lineage: Mapping[str, Any]) -> str:
    keys = (
        "run_id",
        "pipeline",
        "source",
        "data_sha256",
        "seed",
        "code_version",
        "package_version",
        "image",
        "parent_champion",
        "created_at",
    )
    rows = [(k, lineage.get(k, "")) for k in keys]
    rows += [
        (f"library {k}", v) for k, v in sorted((lineage.get("library_versions") or {}).items())
    ]
    return "## Lineage\n\n" + reports.md_table(["field", "value"], rows)


def _use() -> str:
    return (
        "## Intended use and limits\n\n"
        "Trained and gated automatically by kfops. The metrics above hold for data like the "
        "training source; the server validates every request against the schema, and the "
        "monitoring pipeline "
        "watches for drift away from the reference sample stored with this version.\n"
    )

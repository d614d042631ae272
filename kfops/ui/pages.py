"""HTML pages of `kfops ui`, rendered on the server from run records and the registry.

Plain functions from data (what kfops.runs and kfops.registry return) to HTML text: no template
engine, no JavaScript, no external assets, so the UI works offline and every page is a document a
test can read. Every value is escaped.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kfops import reports

KEY_METRICS = ("roc_auc", "pr_auc", "f1", "accuracy", "r2", "rmse", "mae", "drift_share")
_CSS = """
nav{background:#24292f;margin:-2rem -2rem 1.5rem;padding:.6rem 2rem}
nav a{color:#fff;margin-right:1.5rem;text-decoration:none;font-weight:600}
nav .store{color:#aab;float:right;font-weight:400;font-size:.85rem}
a{color:#0b5cad}.muted{color:#666}.mono{font-family:ui-monospace,monospace;font-size:.85rem}
.status-succeeded{color:#1b7f3b;font-weight:600}.status-failed{color:#b00020;font-weight:600}
.status-incomplete,.status-running{color:#a15c00;font-weight:600}
tr.changed td{background:#fff6e0}button{padding:.3rem .9rem;margin:.5rem 0}
.nowrap{white-space:nowrap}body{max-width:90rem}
"""


def esc(value: Any) -> str:
    """Escaped text; None as an empty string."""
    return "" if value is None else html.escape(str(value))


def page(title: str, body: str, store_uri: str) -> str:
    """A full page with the navigation bar."""
    nav = (
        "<nav><a href='/'>Runs</a><a href='/models'>Models</a>"
        f"<span class='store'>store: {esc(store_uri)}</span></nav>"
    )
    doc = reports.html_page(title, body).replace("</style>", _CSS + "</style>", 1)
    return doc.replace("<body>", "<body>" + nav, 1)  # the navigation above the page title


def link(href: str, text: Any, **attrs: str) -> str:
    """An anchor with escaped text and attributes."""
    extra = "".join(f" {_attr(k)}='{esc(v)}'" for k, v in attrs.items())
    return f"<a href='{esc(href)}'{extra}>{esc(text)}</a>"


def _attr(name: str) -> str:
    return "class" if name == "cls" else name.replace("_", "-")


def table(header: Sequence[str], rows: Iterable[Sequence[str]], **attrs: str) -> str:
    """A table of already-escaped cells (so cells may hold links)."""
    extra = "".join(f" {_attr(k)}='{esc(v)}'" for k, v in attrs.items())
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not any(header):  # a key/value table
        return f"<table{extra}><tbody>{body}</tbody></table>"
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    return f"<table{extra}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def number(value: Any) -> str:
    """A metric for a table: 4 decimals, integers as integers, missing as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.0f}"
    if isinstance(value, float) and value.is_integer() and abs(value) >= 10:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.1f}"
    return esc(value)


def status(value: str) -> str:
    """A run or step status, coloured."""
    return f"<span class='status-{esc(value)}'>{esc(value)}</span>"


def verdict(blessed: bool | None) -> str:
    """The gate's decision as a word."""
    return {True: "blessed", False: "not blessed"}.get(blessed, "–")


def short(sha: Any) -> str:
    """A sha256 shortened to 12 characters, whole in the tooltip."""
    text = str(sha or "")
    return f"<span class='mono' title='{esc(text)}'>{esc(text[:12])}</span>" if text else ""


def run_href(run_id: str) -> str:
    """Where a run's page is."""
    return f"/runs/{urllib.parse.quote(run_id)}"


def model_href(name: str, version: str | None = None) -> str:
    """Where a model's page is (with a version selected)."""
    base = f"/models/{urllib.parse.quote(name)}"
    return f"{base}?version={urllib.parse.quote(version)}" if version else base


def key_metrics(infos: Sequence[Any]) -> list[str]:
    """The key metrics that at least one of these runs has, in KEY_METRICS order."""
    present = {name for info in infos for name in (info.metrics or {})}
    return [m for m in KEY_METRICS if m in present]


def runs_page(infos: Sequence[Any], store_uri: str) -> str:
    """The runs table; tick two or more and compare them."""
    if not infos:
        body = "<p>No runs recorded in this store yet: <code>kfops run</code> records one.</p>"
        return page("Runs", body, store_uri)
    metrics = key_metrics(infos)
    rows = []
    for info in infos:
        model = info.model or {}
        rows.append(
            (
                f"<input type='checkbox' name='run' value='{esc(info.run_id)}' "
                f"aria-label='select {esc(info.run_id)}'>",
                link(run_href(info.run_id), info.run_id, cls="run-link"),
                f"<span class='nowrap'>{esc(info.started_at[:16].replace('T', ' '))}</span>",
                status(info.status),
                esc(info.experiment),
                esc("" if info.duration_s is None else f"{info.duration_s:.1f}"),
                link(
                    model_href(model["name"], model["version"]),
                    f"{model['name']} v{model['version']}",
                )  # fmt: skip
                if model
                else "",
                esc(verdict(info.blessed)),
                *(number((info.metrics or {}).get(m)) for m in metrics),
            )
        )
    header = ["", "run", "started (UTC)", "status", "experiment", "seconds", "model", "gate"]
    body = (
        "<form action='/compare' method='get'>"
        + table([*header, *metrics], rows, id="runs")
        + "<button type='submit'>Compare selected runs</button></form>"
    )
    return page("Runs", body, store_uri)


def run_page(detail: Mapping[str, Any], store_uri: str) -> str:
    """One run: outcome, reports, parameters, steps and metrics."""
    run_id = detail["run_id"]
    model = detail.get("model") or {}
    facts = [
        ("status", status(detail["status"])),
        ("pipeline", esc(detail.get("pipeline"))),
        ("experiment", esc(detail.get("experiment"))),
        ("started (UTC)", esc(detail.get("started_at"))),
        ("duration (s)", number(detail.get("duration_s"))),
        ("gate", esc(verdict(detail.get("blessed")))),
        (
            "model",
            link(
                model_href(model["name"], model["version"]), f"{model['name']} v{model['version']}"
            )
            if model
            else "not registered",
        ),
        ("code version", esc(detail.get("code_version"))),
        ("package version", esc(detail.get("package_version"))),
    ]
    if detail.get("failed_step"):
        facts.append(("failed step", f"{esc(detail['failed_step'])}: {esc(detail.get('error'))}"))
    body = table(["", ""], facts, cls="kv")
    if detail.get("reasons"):
        items = "".join(f"<li>{esc(r)}</li>" for r in detail["reasons"])
        body += f"<h2>Reasons and notes</h2><ul>{items}</ul>"
    names = detail.get("reports") or []
    if names:
        links = "".join(
            f"<li>{link(f'{run_href(run_id)}/reports/{n}', f'{n} report', cls='report-link')}</li>"
            for n in names
        )
        body += f"<h2>Reports</h2><ul>{links}</ul>"
    else:
        body += "<h2>Reports</h2><p class='muted'>No reports stored with this run.</p>"
    params = sorted((detail.get("parameters") or {}).items())
    body += "<h2>Parameters</h2>" + table(
        ["name", "value"], [(esc(k), f"<span class='mono'>{esc(v)}</span>") for k, v in params]
    )
    body += "<h2>Steps</h2>" + _steps_table(detail.get("steps") or [])
    metrics = sorted(_all_metrics(detail.get("steps") or []).items())
    if metrics:
        body += "<h2>Metrics</h2>" + table(
            ["metric", "value"], [(esc(k), number(v)) for k, v in metrics]
        )
    if detail.get("problems"):
        items = "".join(f"<li>{esc(p)}</li>" for p in detail["problems"])
        body += f"<h2>Unreadable records</h2><ul>{items}</ul>"
    return page(f"Run {run_id}", body, store_uri)


def _steps_table(steps: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for s in steps:
        inputs = "<br>".join(
            f"{esc(i['name'])} {short(i.get('sha256'))}" for i in s.get("inputs") or []
        )
        outputs = "<br>".join(_output(o) for o in s.get("outputs") or [])
        rows.append(
            (
                esc(s.get("step")),
                status(str(s.get("status"))),
                esc(str(s.get("started_at") or "")[11:19]),
                esc(s.get("error") or ""),
                inputs,
                outputs,
            )
        )
    return table(["step", "status", "started", "error", "inputs", "outputs"], rows, id="steps")


def _output(output: Mapping[str, Any]) -> str:
    facts = []
    for key, value in output.items():
        if key == "name":
            continue
        facts.append(
            f"{esc(key)} {short(value)}" if key == "sha256" else f"{esc(key)}={esc(value)}"
        )
    return f"<b>{esc(output.get('name'))}</b> " + ", ".join(facts)


def _all_metrics(steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in steps:
        for k, v in (s.get("metrics") or {}).items():
            out[f"{s.get('step')}.{k}"] = v
    return out


def compare_page(comparison: Any, changed_only: bool, store_uri: str) -> str:
    """Runs side by side; rows that differ are highlighted, optionally the only ones shown."""
    ids = list(comparison.run_ids)
    rows = comparison.changed() if changed_only else list(comparison.rows)
    header = ["section", "name", *ids]
    body_rows = []
    for row in rows:
        cells = [esc(row.section), esc(row.name), *(_value(v) for v in row.values)]
        cls = " class='changed'" if row.changed else ""
        body_rows.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{link(run_href(h), h) if h in ids else esc(h)}</th>" for h in header)
    query = urllib.parse.urlencode(
        [("run", r) for r in ids] + [("changed", "0" if changed_only else "1")]
    )
    toggle = link(f"/compare?{query}", "show all rows" if changed_only else "show only differences")
    body = (
        f"<p>{len(comparison.changed())} of {len(comparison.rows)} facts differ "
        f"(highlighted). {toggle}</p>"
        f"<table id='compare'><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body_rows)}</tbody></table>"
    )
    return page(f"Compare {len(ids)} runs", body, store_uri)


def _value(value: Any) -> str:
    if isinstance(value, float | bool) or value is None:
        return number(value)
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return short(text)
    return f"<span class='mono'>{esc(text)}</span>"


def models_page(models: Sequence[Mapping[str, Any]], store_uri: str) -> str:
    """Every registered model with its champion and versions."""
    if not models:
        body = "<p>No models registered in this store yet.</p>"
        return page("Models", body, store_uri)
    rows = [
        (
            link(model_href(m["name"]), m["name"], cls="model-link"),
            esc(m["champion"] and f"v{m['champion']}") or "none",
            esc(len(m["versions"])),
            esc(m["versions"][-1] if m["versions"] else ""),
        )
        for m in models
    ]
    body = table(["model", "champion", "versions", "latest"], rows, id="models")
    return page("Models", body, store_uri)


def model_page(
    name: str,
    versions: Sequence[Mapping[str, Any]],
    pointer: Mapping[str, Any] | None,
    lineage: Mapping[str, Any] | None,
    monitoring: Sequence[Any],
    store_uri: str,
) -> str:
    """A model: versions with their metrics, the champion and its history, lineage, monitoring."""
    champion = (pointer or {}).get("version")
    metric_names = [m for m in KEY_METRICS if any(m in (v.get("metrics") or {}) for v in versions)]
    rows = []
    for v in reversed(versions):
        run_id = (v.get("lineage") or {}).get("run_id")
        rows.append(
            (
                link(model_href(name, v["version"]), f"v{v['version']}"),
                "<b>champion</b>" if v["version"] == champion else "",
                esc(str(v.get("created_at") or "")[:19].replace("T", " ")),
                link(run_href(run_id), run_id) if run_id else "",
                esc((v.get("lineage") or {}).get("source")),
                *(number((v.get("metrics") or {}).get(m)) for m in metric_names),
            )
        )
    header = ["version", "", "created (UTC)", "run", "data source", *metric_names]
    body = "<h2>Versions</h2>" + table(header, rows, id="versions")
    if pointer:
        history = ", ".join(f"v{esc(p)}" for p in pointer.get("previous") or []) or "none"
        body += (
            f"<h2>Champion</h2><p>v{esc(champion)} since {esc(pointer.get('updated_at'))}; "
            f"previous champions, newest first: {history}.</p>"
        )
    else:
        body += "<h2>Champion</h2><p>No champion: promote a version first.</p>"
    body += _lineage_html(lineage)
    body += _monitoring_html(monitoring)
    return page(f"Model {name}", body, store_uri)


def _lineage_html(lineage: Mapping[str, Any] | None) -> str:
    if not lineage:
        return ""
    model = lineage["model"]
    data = lineage.get("data") or {}
    run_id = lineage.get("run_id")
    facts = [
        ("version", esc(f"v{model['version']}") + (" (champion)" if model.get("champion") else "")),
        ("run", link(run_href(run_id), run_id) if run_id else "not recorded"),
        ("data source", esc(data.get("source"))),
        ("data sha256", short(data.get("data_sha256"))),
        ("rows", number(data.get("rows"))),
        ("code version", esc(lineage.get("code_version"))),
        ("package version", esc(lineage.get("package_version"))),
        ("image", esc(lineage.get("image"))),
    ]
    parents = lineage.get("parents") or []
    chain = " ← ".join(f"v{esc(p.get('version'))}" for p in parents) or "none (first champion line)"
    facts.append(("parent champions", chain))
    params = sorted((lineage.get("parameters") or {}).items())
    return (
        f"<h2>Lineage of v{esc(model['version'])}</h2>"
        + table(["", ""], facts, id="lineage")
        + "<h3>Parameters</h3>"
        + table(
            ["name", "value"], [(esc(k), f"<span class='mono'>{esc(v)}</span>") for k, v in params]
        )
    )


def _monitoring_html(monitoring: Sequence[Any]) -> str:
    if not monitoring:
        return (
            "<h2>Monitoring</h2><p class='muted'>No monitoring results recorded: "
            "<code>kfops monitor</code> records one.</p>"
        )
    rows = []
    for info in monitoring:
        metrics = info.metrics or {}
        retrain = metrics.get("retrain")
        rows.append(
            (
                link(run_href(info.run_id), info.run_id),
                esc(info.started_at[:19].replace("T", " ")),
                esc(f"v{info.model['version']}" if info.model else ""),
                number(metrics.get("rows")),
                number(metrics.get("drift_share")),
                "<b>retrain</b>" if retrain else ("no" if retrain is not None else "–"),
                link(f"{run_href(info.run_id)}/reports/monitoring", "report"),
            )
        )
    header = ["check", "when (UTC)", "version", "rows", "drift share", "decision", ""]
    return "<h2>Monitoring</h2>" + table(header, rows, id="monitoring")


def error_page(code: int, message: str, store_uri: str) -> str:
    """A 4xx page naming the problem."""
    return page(f"{code}", f"<p>{esc(message)}</p><p>{link('/', 'back to runs')}</p>", store_uri)

"""`kfops runs list|show|compare|data` and `kfops models lineage`: run records for people and tools.

Tables for people by default, `--json` for machines. The store defaults to `.kfops/store` (where
`kfops run` records); S3 settings come from the MINIO_* environment variables.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from typing import Any

from kfops import config, lineage, metric_catalog, registry, runs, snapshots, store

DEFAULT_STORE = config.LOCAL_STORE
MAX_KEY_METRICS = 3
_HASH_CHARS = 12


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `kfops runs` with its list, show, compare and data subcommands."""
    p = subparsers.add_parser("runs", help="list, show and compare recorded pipeline runs")
    sub = p.add_subparsers(dest="runs_command", required=True, metavar="SUBCOMMAND")
    ls = with_common(sub.add_parser("list", help="recorded runs, newest first"))
    ls.add_argument("--experiment", help="only runs of this experiment")
    ls.add_argument("--limit", type=int, default=50, help="at most this many runs (0: all)")
    ls.set_defaults(func=list_main)
    show = with_common(sub.add_parser("show", help="everything recorded about one run"))
    show.add_argument("run", help="run id (a unique prefix is enough)")
    show.set_defaults(func=show_main)
    cmp = with_common(sub.add_parser("compare", help="runs side by side, differences marked"))
    cmp.add_argument("run_ids", nargs="+", metavar="RUN", help="two or more run ids")
    cmp.add_argument("--changed", action="store_true", help="only rows that differ")
    cmp.set_defaults(func=compare_main)
    data = with_common(sub.add_parser("data", help="runs and models that used a dataset"))
    data.add_argument("sha256", help="dataset sha256 (at least 8 leading characters)")
    data.add_argument("--out", help="export the dataset snapshot (Parquet) to this file")
    data.set_defaults(func=data_main)
    prune = with_common(sub.add_parser("prune-data", help="delete old unused dataset snapshots"))
    prune.add_argument("--older-than-days", type=float, required=True,
                       help="only snapshots created before this many days ago")  # fmt: skip
    prune.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    prune.set_defaults(func=prune_main)


def add_lineage_parser(models_subparsers: argparse._SubParsersAction) -> None:
    """Adds `lineage` under `kfops models` (called by kfops.commands.models)."""
    p = models_subparsers.add_parser(
        "lineage", help="where a model version came from: run, data sha256, parameters, parents"
    )
    p.add_argument("name", help="model name")
    p.add_argument("version", nargs="?", help="version (default: the champion)")
    with_common(p).set_defaults(func=lineage_main)


def with_common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds --store and --json (shared with kfops.commands.models)."""
    p.add_argument(
        "--store", default=DEFAULT_STORE, help="store URI: directory or s3://bucket/prefix"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _store(args: argparse.Namespace) -> store.Store:
    return store.open_existing(args.store, config.StoreSettings.from_env())


def list_main(args: argparse.Namespace) -> int:
    """`kfops runs list`."""
    infos = runs.RunIndex(_store(args)).list(experiment=args.experiment)
    if args.limit > 0:
        infos = infos[: args.limit]
    if args.json:
        print_json([i.to_dict() for i in infos])
    elif not infos:
        print(f"no runs recorded in {args.store}")
    else:
        print(render_list(infos))
    return 0


def show_main(args: argparse.Namespace) -> int:
    """`kfops runs show RUN`."""
    detail = runs.RunIndex(_store(args)).show(args.run)
    print_json(detail) if args.json else print(render_show(detail))
    return 0


def compare_main(args: argparse.Namespace) -> int:
    """`kfops runs compare RUN RUN...`."""
    comparison = runs.RunIndex(_store(args)).compare(args.run_ids)
    if args.json:
        print_json(comparison.to_dict())
    else:
        print(render_compare(comparison, changed_only=args.changed))
    return 0


def data_main(args: argparse.Namespace) -> int:
    """`kfops runs data SHA256`: lineage from a dataset to runs and registered models."""
    s = _store(args)
    if args.out:  # the snapshot itself: the rows a model was trained on
        meta = snapshots.export(s, args.sha256, args.out)
        print_json(meta) if args.json else print(
            f"wrote {meta['rows']} rows of dataset {meta['sha256']} to {args.out}"
        )
        return 0
    found_runs = lineage.runs_for_data(runs.RunIndex(s), args.sha256)
    models = lineage.models_for_data(registry.Registry(s), args.sha256)
    if args.json:
        print_json(
            {
                "runs": [i.to_dict() for i in found_runs],
                "models": [{"name": n, "version": v} for n, v in models],
            }
        )
        return 0
    print(render_list(found_runs) if found_runs else "no recorded run used this data")
    print("models: " + (", ".join(f"{n} v{v}" for n, v in models) or "none"))
    return 0


def prune_main(args: argparse.Namespace) -> int:
    """`kfops runs prune-data`: retention of dataset snapshots no registered version uses."""
    doomed = snapshots.prune(_store(args), args.older_than_days, dry_run=args.dry_run)
    if args.json:
        print_json({"deleted" if not args.dry_run else "would_delete": doomed})
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb} {len(doomed)} dataset snapshot(s)" + "".join(f"\n  {d}" for d in doomed))
    return 0


def lineage_main(args: argparse.Namespace) -> int:
    """`kfops models lineage NAME [VERSION]`."""
    s = _store(args)
    facts = lineage.model_lineage(registry.Registry(s), runs.RunIndex(s), args.name, args.version)
    print_json(facts) if args.json else print(render_lineage(facts))
    return 0


def render_list(infos: Sequence[runs.RunInfo]) -> str:
    """The `runs list` table."""
    rows = [
        (
            i.run_id,
            _when(i.started_at),
            i.status + (f" ({i.failed_step})" if i.failed_step else ""),
            " ".join(f"{k}={_fmt(v)}" for k, v in key_metrics(i.metrics).items()) or "-",
            f"{i.model['name']} v{i.model['version']}" if i.model else "-",
            _yes_no(i.blessed),
            i.experiment,
        )
        for i in infos
    ]
    return table(
        ("RUN", "WHEN (UTC)", "STATUS", "KEY METRICS", "MODEL", "BLESSED", "EXPERIMENT"), rows
    )


def render_show(d: dict[str, Any]) -> str:
    """The `runs show` text."""
    took = f" ({d['duration_s']:.1f}s)" if d.get("duration_s") is not None else ""
    lines = [
        f"run {d['run_id']}  {d['status'].upper()}  experiment {d['experiment']}, "
        f"pipeline {d['pipeline']}",
        f"  started {_when(d['started_at'])}, ended {_when(d.get('ended_at'))}{took}",
        f"  code {d.get('code_version') or '-'}  kfops {d.get('package_version') or '-'}  "
        f"image {d.get('image') or '-'}",
    ]
    if d.get("failed_step"):
        lines.append(f"  step {d['failed_step']!r} failed: {d.get('error')}")
    elif d.get("error"):
        lines.append(f"  error: {d['error']}")
    if d.get("running_step"):
        lines.append(f"  last step seen running: {d['running_step']} (crashed or still running)")
    model = d.get("model")
    lines.append(f"  model {model['name']} v{model['version']}" if model else "  model -")
    lines[-1] += f"  blessed {_yes_no(d.get('blessed'))}"
    deploy = (d.get("outcome") or {}).get("deploy")
    if deploy:
        served = f" v{deploy['version']}" if deploy.get("version") else ""
        lines.append(f"  deploy {deploy.get('status')}{served}")
        if deploy.get("error"):
            lines[-1] += f": {deploy['error']}"
    lines += [f"  reason: {r}" for r in d.get("reasons") or []]
    lines += ["  parameters:"] + [
        f"    {k} = {_fmt(v)}" for k, v in sorted(d["parameters"].items())
    ]
    lines += ["", _indent(_steps_table(d["steps"]))] if d["steps"] else []
    lines += [f"  problem: {p}" for p in d.get("problems") or []]
    return "\n".join(lines)


def _steps_table(steps: Iterable[dict[str, Any]]) -> str:
    rows = []
    for s in steps:
        data = [f"<{i['name']}:{short_hash(i.get('sha256'))}" for i in s.get("inputs") or []]
        data += [_output(o) for o in s.get("outputs") or []]
        metrics = " ".join(f"{k}={_fmt(v)}" for k, v in (s.get("metrics") or {}).items())
        rows.append(
            (
                s.get("step"),
                s.get("status"),
                _when(s.get("started_at")),
                " ".join(data) or "-",
                metrics or "-",
            )
        )
    return table(("STEP", "STATUS", "STARTED", "DATA (sha256)", "METRICS"), rows)


def _output(item: dict[str, Any]) -> str:
    """`>name:sha256` for data, `>name(k=v,...)` for outputs without a hash (a registration)."""
    if item.get("sha256"):
        return f">{item['name']}:{short_hash(item['sha256'])}"
    facts = ",".join(f"{k}={_fmt(v)}" for k, v in sorted(item.items()) if k != "name")
    return f">{item['name']}({facts})"


def render_compare(comparison: runs.Comparison, changed_only: bool = False) -> str:
    """The `runs compare` table: '*' marks a row whose value differs; Δ for two numeric runs."""
    two = len(comparison.run_ids) == 2
    header = ("", "", *comparison.run_ids) + (("Δ",) if two else ())
    rows, section = [], None
    for row in comparison.changed() if changed_only else comparison.rows:
        if row.section != section:
            section = row.section
            title = f"{section}s" if section != "data" else "data (sha256)"
            rows.append(("", title, *[""] * len(header[2:])))
        cells = [short_hash(v) if row.section == "data" else _clip(_fmt(v)) for v in row.values]
        delta = [_delta(row.values)] if two else []
        rows.append(("*" if row.changed else "", f"  {row.name}", *cells, *delta))
    return table(header, rows)


def render_lineage(f: dict[str, Any]) -> str:
    """The `models lineage` text."""
    m, run, data = f["model"], f.get("run"), f["data"]
    where = (
        f"{run['status']}, {_when(run['started_at'])}, experiment {run['experiment']}"
        if run
        else "(no run record)"
    )
    params = " ".join(f"{k}={_fmt(v)}" for k, v in sorted(f["parameters"].items()))
    lines = [
        f"{m['name']} v{m['version']}{' (champion)' if m['champion'] else ''}, "
        f"registered {_when(m.get('created_at'))}",
        f"  run      {f.get('run_id') or '-'}  {where}",
        f"  data     {data.get('source') or '-'}  sha256 {data.get('data_sha256') or '-'}  "
        f"rows {_fmt(data.get('rows'))}",
        f"  snapshot {data.get('data_snapshot') or '-'}"
        + "".join(f"  built from {short_hash(p)}" for p in data.get("parents") or []),
        f"  code     {f.get('code_version') or '-'}  kfops {f.get('package_version') or '-'}  "
        f"image {f.get('image') or '-'}",
        f"  params   {params or '-'}",
    ]
    for p in f["parents"]:
        facts = (
            "(manifest missing)"
            if p.get("missing")
            else f"run {p.get('run_id') or '-'}  data sha256 {short_hash(p.get('data_sha256'))}"
        )
        lines.append(f"  parent   v{p['version']}  {facts}")
    if not f["parents"]:
        lines.append("  parent   - (first champion)")
    return "\n".join(lines)


def key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few metrics worth a column: the well-known ones present, else the first by name."""
    keys = metric_catalog.key_metrics(metrics) or sorted(metrics)
    return {k: metrics[k] for k in keys[:MAX_KEY_METRICS]}


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain left-aligned text table with a two-space gutter."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        # a count that went through JSON as a float (rows 5000.0) reads as a count
        if value.is_integer() and abs(value) >= 10:
            return str(int(value))
        return f"{value:.4f}"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


COMPARE_CELL = 24


def _clip(text: str, width: int = COMPARE_CELL) -> str:
    """A compare cell at most `width` wide; `--json` has long values (a list, a repr) whole."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _delta(values: Sequence[Any]) -> str:
    a, b = values
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    if not numeric or a == b:
        return ""
    return f"{b - a:+d}" if isinstance(a, int) and isinstance(b, int) else f"{b - a:+.4f}"


def short_hash(sha: Any) -> str:
    """The first 12 characters of a hash, "-" for none."""
    return str(sha)[:_HASH_CHARS] if sha else "-"


def _when(ts: str | None) -> str:
    return ts[:19].replace("T", " ") if ts else "-"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def print_json(obj: Any) -> None:
    """Prints `--json` output: sorted keys, 2-space indent."""
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))

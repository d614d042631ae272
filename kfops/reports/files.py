"""Report files a person opens: `<run_dir>/reports/<name>.html` after a local run.

KFP names output artifacts without an extension (`.../validate/report`), so a browser shows them
as text. The artifacts stay as they are (the KFP UI renders them by their HTML type); after a
`kfops run` this module writes `.html` files beside the run's other outputs: the validation
report as the step wrote it, the evaluation report rendered again with the gate's verdict, the
champion comparison and the registered version, and the model card as HTML.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kfops import dataio, reports
from kfops.reports import evaluation as evaluation_report


def write_run_reports(
    outputs: Path, dest: Path, identity: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Writes the run's reports as `.html` files into `dest`; returns name -> path.

    Args:
        outputs: the kfp.local outputs directory of the run (`<step>/<artifact>` files).
        dest: where the `.html` files go (created).
        identity: run identity for the evaluation report (kfops.reports.identity.from_run).
    """
    written: dict[str, str] = {}
    dest.mkdir(parents=True, exist_ok=True)

    def put(name: str, page: str) -> None:
        path = dest / f"{name}.html"
        dataio.write_text(path, page)
        written[name] = str(path)

    if (outputs / "validate" / "report").is_file():
        put("validation", (outputs / "validate" / "report").read_text(encoding="utf-8"))
    evaluation = _json(outputs / "evaluate" / "evaluation")
    if evaluation is not None:
        page = evaluation_report.evaluation_html(
            evaluation,
            identity=identity,
            blessing=_json(outputs / "gate" / "blessing"),
            champion=_json(outputs / "champion" / "champion_evaluation"),
        )
        put("evaluation", page)
    infra = _json(outputs / "infra-validate" / "report")
    if infra is not None:
        put("infra_validation", _facts_page("Infrastructure validation", infra))
    if (outputs / "push" / "model_card").is_file():
        card = (outputs / "push" / "model_card").read_text(encoding="utf-8")
        put("model_card", markdown_page("Model card", card))
    return written


def _json(path: Path) -> Any:
    return dataio.read_json(path) if path.is_file() else None


def _facts_page(title: str, facts: Mapping[str, Any]) -> str:
    rows = [
        (k, v if isinstance(v, str | int | float) else json.dumps(v, default=str))
        for k, v in facts.items()
    ]
    return reports.html_page(title, reports.html_table(["", ""], rows, header_row=False))


_INLINE_CODE = re.compile(r"`([^`]*)`")


def markdown_page(title: str, text: str) -> str:
    """The Markdown kfops writes (headings, pipe tables, bullets, paragraphs) as an HTML page.

    A leading `# Title` becomes the page title. Text is escaped: Markdown never injects HTML.
    """
    out: list[str] = []
    table: list[list[str]] = []
    bullets: list[str] = []

    def flush() -> None:
        if table:
            head, *rows = [r for r in table if not all(set(c) <= {"-", ":"} for c in r)]
            out.append(reports.html_table(head, rows))
            table.clear()
        if bullets:
            out.append("<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in bullets) + "</ul>")
            bullets.clear()

    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].startswith("# "):  # the document's title
        title, lines = lines[first][2:].strip(), lines[first + 1 :]
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("|") and stripped.endswith("|"):
            cells = re.split(r"(?<!\\)\|", stripped[1:-1])
            table.append([c.strip().replace("\\|", "|") for c in cells])
            continue
        if stripped.startswith("- "):
            bullets.append(stripped[2:])
            continue
        flush()
        if stripped.startswith("#"):
            level = min(len(stripped) - len(stripped.lstrip("#")), 4)
            out.append(f"<h{level}>{_inline(stripped.lstrip('#').strip())}</h{level}>")
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    flush()
    return reports.html_page(title, "".join(out))


def _inline(text: str) -> str:
    return _INLINE_CODE.sub(r"<code>\1</code>", html.escape(text))

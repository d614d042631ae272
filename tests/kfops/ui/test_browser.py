"""`kfops ui` and the reports in a real browser: Debian's chromium driven by Playwright.

Two real `kfops run`s (a classification on builtin:churn, a regression on a CSV this test writes)
fill a store; `kfops ui` serves it as a subprocess; the browser clicks from the runs table into a
run and its reports, checks that no text is cut off at an SVG's edge and that nothing is fetched
from anywhere but the UI, and takes screenshots (paths printed; directory: $KFOPS_TEST_OUTPUT or
.kfops/test-output, under screenshots/).
"""

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import sync_playwright

from kfops import cli, runs, store

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
FAST = ["--param", "search_iterations=2", "--param", "cv_folds=2"]
LONG_REGION = "north-west-coastal-and-islands"

# Every text element's box must lie inside its SVG's box (1 px tolerance): a tick label or a
# slice name drawn past the edge is clipped by the browser.
_CLIPPED_TEXT = """
() => {
  const out = [];
  for (const svg of document.querySelectorAll('svg')) {
    const box = svg.getBoundingClientRect();
    for (const t of svg.querySelectorAll('text')) {
      const r = t.getBoundingClientRect();
      if (r.width === 0) continue;
      if (r.left < box.left - 1 || r.right > box.right + 1 ||
          r.top < box.top - 1 || r.bottom > box.bottom + 1) {
        out.push(`${svg.getAttribute('aria-label')}: "${t.textContent}"`);
      }
    }
  }
  return out;
}
"""


def _screenshot_dir() -> Path:
    out = Path(os.environ.get("KFOPS_TEST_OUTPUT", ROOT / ".kfops" / "test-output")) / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _kfops_run(*argv):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli.main(["run", "--json", *FAST, *argv])
    assert code == 0, buffer.getvalue()
    return json.loads(buffer.getvalue())


def _houses(path: Path) -> Path:
    rng = np.random.default_rng(3)
    n = 900
    frame = pd.DataFrame(
        {
            "rooms": rng.integers(1, 8, n),
            "area": rng.gamma(4.0, 30.0, n).round(1),
            "region": rng.choice(["centre", "south", LONG_REGION], n),
        }
    )
    bonus = frame["region"].map({"centre": 90_000, "south": 20_000, LONG_REGION: 45_000})
    frame["price"] = (
        2_500 * frame["area"] + 15_000 * frame["rooms"] + bonus + rng.normal(0, 25_000, n)
    ).round()
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def store_with_runs(tmp_path_factory):
    """A store holding a classification and a regression run (module-scoped: runs are slow)."""
    base = tmp_path_factory.mktemp("ui-browser")
    store_dir, runs_dir = base / "store", base / "runs"
    common = ["--store", str(store_dir), "--runs-dir", str(runs_dir)]
    classification = _kfops_run(
        "--source",
        "builtin:churn?rows=1500&seed=1",
        "--slice",
        "region",
        "--sensitive",
        "age_band",
        *common,
    )
    regression = _kfops_run(
        "--source",
        str(_houses(base / "houses.csv")),
        "--label",
        "price",
        "--task",
        "regression",
        "--slice",
        "region",
        "--name",
        "houses",
        *common,
    )
    return store_dir, classification, regression


@pytest.fixture(scope="module")
def ui_url(store_with_runs):
    store_dir = store_with_runs[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "kfops.cli", "ui", "--store", str(store_dir), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stderr.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    assert match, line
    url = f"http://127.0.0.1:{match.group(1)}"
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is needed (make test installs it with apt)"
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def page(browser, ui_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.requests = []
    tab.on("request", lambda request: tab.requests.append(request.url))
    yield tab
    outside = [u for u in tab.requests if not u.startswith((ui_url, "data:", "about:", "file:"))]
    assert not outside, f"pages fetched from outside the UI: {outside}"
    context.close()


def _shoot(page, name: str, capsys) -> Path:
    path = _screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    with capsys.disabled():
        print(f"\nscreenshot: {path}")
    return path


def test_click_from_runs_table_into_run_and_its_reports(page, ui_url, store_with_runs, capsys):
    store_dir, classification, _ = store_with_runs
    page.goto(ui_url + "/")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == 2
    assert page.locator("#runs").get_by_text("blessed", exact=True).count() >= 1
    _shoot(page, "ui-runs", capsys)

    page.locator("a.run-link", has_text=classification["run_id"]).click()
    page.wait_for_url(f"**/runs/{classification['run_id']}")
    assert page.locator("h1").inner_text() == f"Run {classification['run_id']}"
    assert page.locator("#steps tbody tr").count() >= 8
    _shoot(page, "ui-run", capsys)

    page.locator("a.report-link", has_text="evaluation report").click()
    page.wait_for_url("**/reports/evaluation")
    recorded = runs.RunIndex(store.open_store(str(store_dir))).show(classification["run_id"])
    expected = "BLESSED:" if recorded["blessed"] else "NOT BLESSED:"
    assert page.locator(".verdict").first.inner_text().startswith(expected)
    texts = page.locator("svg[aria-label='ROC curve'] text").evaluate_all(
        "nodes => nodes.map(n => n.textContent)"
    )
    assert any(re.fullmatch(r"model \(AUC 0\.\d{3}\)", t) for t in texts), texts
    assert page.evaluate(_CLIPPED_TEXT) == []
    _shoot(page, "evaluation-classification", capsys)
    _explanations_are_shown(page, capsys)

    page.go_back()
    page.locator("a.report-link", has_text="validation report").click()
    page.wait_for_url("**/reports/validation")
    assert page.locator("h2", has_text="Distributions").count() == 1
    assert page.evaluate(_CLIPPED_TEXT) == []
    _shoot(page, "validation", capsys)


def _explanations_are_shown(page, capsys) -> None:
    """Importance, per-class metrics, worst slices and the error table are on screen (#19)."""
    for section in ("importance", "per-class", "worst-slices", "confidently-wrong"):
        located = page.locator(f"section#{section}")
        located.scroll_into_view_if_needed()
        assert located.is_visible(), section
        assert located.locator("tbody tr").count() >= 2, section
    features = page.locator("section#importance tbody tr td:first-child").all_inner_texts()
    assert "tenure_months" in features and "contract" in features, features
    assert page.locator("svg[aria-label='permutation importance']").is_visible()
    wrong = page.locator("section#confidently-wrong thead th").all_inner_texts()
    assert wrong[:5] == ["row", "customer_id", "churned", "prediction", "probability"], wrong
    path = _screenshot_dir() / "evaluation-explanations.png"
    page.locator("section#importance").screenshot(path=str(path))
    page.locator("section#confidently-wrong").screenshot(
        path=str(_screenshot_dir() / "evaluation-confidently-wrong.png")
    )
    with capsys.disabled():
        print(f"\nscreenshot: {path}")


def test_report_paths_the_cli_prints_open_as_pages_in_the_browser(page, store_with_runs, capsys):
    classification = store_with_runs[1]
    printed = classification["reports"]
    assert {"validation", "evaluation", "model_card"} <= set(printed)
    assert all(path.endswith(".html") for path in printed.values()), printed
    page.goto(Path(printed["evaluation"]).as_uri())
    assert page.locator("h1").inner_text() == "Model evaluation"  # rendered, not source text
    identity = page.locator("table.kv").first.inner_text()
    assert f"churn v{classification['model_version']}" in identity  # the version push assigned
    page.goto(Path(printed["model_card"]).as_uri())
    assert page.locator("h1").inner_text().startswith("Model card")
    assert page.locator("table").count() >= 3


def test_regression_report_has_scatter_residuals_and_whole_slice_names(
    page, ui_url, store_with_runs, capsys
):
    regression = store_with_runs[2]
    page.goto(f"{ui_url}/runs/{regression['run_id']}")
    page.locator("a.report-link", has_text="evaluation report").click()
    page.wait_for_url("**/reports/evaluation")
    for title in ("Predicted vs actual", "Residuals", "mae per slice"):
        assert page.get_by_text(title).count() >= 1, title
    shown = page.locator("svg[aria-label='mae per slice'] text").evaluate_all(
        "nodes => nodes.map(n => [...n.childNodes].filter(c => c.nodeType === 3)"
        ".map(c => c.textContent).join(''))"
    )  # the text drawn, without the tooltip
    assert f"region={LONG_REGION}" in shown, shown
    assert page.evaluate(_CLIPPED_TEXT) == []
    _shoot(page, "evaluation-regression", capsys)


def test_compare_two_runs_and_browse_models(page, ui_url, store_with_runs, capsys):
    page.goto(ui_url + "/")
    boxes = page.locator("#runs input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Compare selected runs").click()
    page.wait_for_url("**/compare?**")
    assert page.locator("h1").inner_text() == "Compare 2 runs"
    assert page.locator("#compare tr.changed").count() > 0
    _shoot(page, "ui-compare", capsys)

    page.get_by_role("link", name="Models", exact=True).click()
    page.locator("a.model-link", has_text="churn").click()
    assert page.locator("#versions tbody tr").count() == 1
    assert page.locator("#lineage").count() == 1
    _shoot(page, "ui-model", capsys)

"""The built site in a real browser: Debian's Chromium driven by Playwright, pages opened from file://.

Skipped, with the reason, when ``/usr/bin/chromium`` or the ``playwright`` package is missing
(``.ci/run`` installs both). Playwright never downloads a browser here: it launches the system one.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry.specs import reset_registry
from brainbench.leaderboard.build import build_site

from test_leaderboard import STEPS, XSS, HtmlPlugin, demo_database

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
N_ROWS = 1 + len(STEPS) + 3


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(session_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser-site") / "site"
    db = demo_database(session_home)  # first: it resets the plugins
    manager = get_plugin_manager()
    manager.register(HtmlPlugin, name="html-plugin")
    reset_registry()
    try:
        build_site(db, out)
    finally:
        manager.unregister(name="html-plugin")
        reset_registry()
    return out


@pytest.fixture
def page(browser, site, tmp_path):
    """A fresh page on the site's index; it records dialogs (an executed alert) and script errors."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    opened = context.new_page()
    opened.dialogs, opened.errors = [], []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("pageerror", lambda error: opened.errors.append(str(error)))
    opened.goto(site.joinpath("index.html").as_uri())
    yield opened
    opened.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()
    assert opened.errors == [] and opened.dialogs == []


def visible_rows(page) -> list[dict]:
    return page.eval_on_selector_all("#leaderboard tbody tr:not([hidden])", """rows => rows.map(r => ({
        model: r.dataset.model, checkpoint: r.cells[2].textContent.trim(), rank: r.cells[0].textContent.trim(),
        value: r.cells[5].dataset.value}))""")


def test_sorting_a_column_reorders_rows_and_ranks_missing_last(page, tmp_path):
    header = page.locator("#leaderboard thead tr.columns th").nth(7)  # Spatial · synthetic-fmri
    assert "synthetic-fmri" in header.inner_text() and header.get_attribute("aria-sort") is None
    header.locator("button.sort").click()
    assert header.get_attribute("aria-sort") == "descending"
    values = page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.map(r => r.cells[7].dataset.value)")
    present = [float(v) for v in values if v]
    assert present == sorted(present, reverse=True) and values[len(present):] == ["", ""]  # two never computed
    ranks = page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.map(r => r.cells[0].textContent)")
    assert ranks == [str(i) for i in range(1, len(present) + 1)] + ["—", "—"]
    header.locator("button.sort").click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.map(r => r.cells[7].dataset.value)")
    present = [float(v) for v in values if v]
    assert present == sorted(present) and values[-2:] == ["", ""]  # missing still last
    page.screenshot(path=str(tmp_path / "sorted.png"), full_page=True)


def test_filters_and_search_narrow_the_table(page, tmp_path):
    assert len(visible_rows(page)) == N_ROWS
    page.select_option("#filter-family", "dinov3")
    rows = visible_rows(page)
    assert {r["model"] for r in rows} == {"dinov3-tiny"} and len(rows) == 1 + len(STEPS)
    assert page.locator("#count").inner_text() == f"{len(rows)} of {N_ROWS} rows"
    page.select_option("#filter-checkpoint", "training steps")
    rows = visible_rows(page)
    assert sorted(r["checkpoint"] for r in rows) == sorted(f"step-{s}" for s in STEPS)
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]  # ranks among what is shown
    page.select_option("#filter-family", "")
    page.select_option("#filter-checkpoint", "")
    page.fill("#search", "CONVNET")
    assert [r["model"] for r in visible_rows(page)] == ["convnet-b"]
    page.fill("#search", "")
    page.select_option("#filter-size", "≥ 1B")
    assert [r["model"] for r in visible_rows(page)] == ["html-model"]
    page.screenshot(path=str(tmp_path / "filtered.png"), full_page=True)


def test_a_model_page_opens_and_its_plots_load(page, tmp_path):
    page.locator("#leaderboard tbody tr[data-model='dinov3-tiny'] td.model a").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/models/dinov3-tiny.html")
    assert page.locator("h1").inner_text() == "dinov3-tiny"
    images = page.locator("figure.plot img")
    assert images.count() >= 4
    loaded = page.eval_on_selector_all("figure.plot img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert all(loaded), loaded
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)


def test_a_script_in_a_model_name_shows_as_text(page, tmp_path):
    link = page.locator("#leaderboard tbody td.model a").filter(has_text="alert(1)")
    assert link.inner_text() == XSS
    assert page.evaluate("document.querySelectorAll('#leaderboard tbody script').length") == 0
    link.click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == XSS
    assert page.title().startswith(XSS)
    page.go_back()
    html_model = page.locator("#leaderboard tbody tr[data-model='html-model'] td").nth(3)
    assert html_model.inner_text() == "<b>bold</b>"  # a family with markup, shown as typed
    page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)
    assert page.dialogs == []


def test_the_site_needs_no_server_and_no_network(browser, site, tmp_path):
    copy = tmp_path / "copied-site"
    shutil.copytree(site, copy)  # relative links: the folder works wherever it is
    context = browser.new_context()
    requests = []
    context.on("request", lambda request: requests.append(request.url))
    opened = context.new_page()
    opened.goto(copy.joinpath("index.html").as_uri())
    opened.locator("nav a", has_text="Benchmarks").click()
    opened.locator("ul.benchmarks a").first.click()
    assert opened.locator("table.ranking tbody tr").count() >= 4
    context.close()
    assert requests and all(url.startswith("file://") for url in requests)


def test_a_model_page_shows_its_cortical_maps(page, tmp_path):
    page.goto(page.url.replace("index.html", "models/dinov3-tiny.html"))
    maps = page.locator("figure.plot img[src*='--cortex']")
    assert maps.count() == 2  # encoding r, and half-time over the step-N checkpoints
    loaded = page.eval_on_selector_all("figure.plot img[src*='--cortex']",
                                       "imgs => imgs.map(i => i.complete && i.naturalWidth > 300)")
    assert all(loaded), loaded
    assert "Glasser region on the cortex" in page.locator("figure.plot figcaption").all_inner_texts()[-2]
    page.screenshot(path=str(tmp_path / "cortex.png"), full_page=True)


def test_the_compare_page_scatters_two_models_region_by_region(page, tmp_path):
    page.goto(page.url.replace("index.html", "models/dinov3-tiny.html"))
    page.locator("a.compare").click()
    page.wait_for_load_state("load")
    assert page.locator("#compare-a").input_value() == "dinov3-tiny@step-10000"
    page.select_option("#compare-b", "dinov3-tiny@step-1000")
    points = page.locator("#scatter circle.region")
    assert points.count() == 12  # the synthetic regions, all scored by both
    # step-1000 rows are the final rows × 0.2, so every point lies on y = 0.2 x, below the diagonal
    ratios = page.eval_on_selector_all("#compare-table tbody tr", """rows => rows.map(r =>
        Number(r.cells[2].textContent) / Number(r.cells[1].textContent))""")
    assert len(ratios) == 12 and all(abs(r - 0.2) < 1e-3 for r in ratios)
    shared = page.evaluate("location.href")
    assert "bench=" in shared and "b=dinov3-tiny%40step-1000" in shared
    page.goto("about:blank")
    page.goto(shared)  # a shared address opens the same comparison
    assert page.locator("#compare-b").input_value() == "dinov3-tiny@step-1000"
    assert page.locator("#scatter circle.region").count() == 12
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_the_table_view_lives_in_the_address(page):
    header = page.locator("#leaderboard thead tr.columns th").nth(7)
    header.locator("button.sort").click()
    header.locator("button.sort").click()  # ascending
    page.select_option("#filter-family", "dinov3")
    page.fill("#search", "tiny")
    shared = page.evaluate("location.href")
    assert "sort=7" in shared and "dir=ascending" in shared and "family=dinov3" in shared and "q=tiny" in shared
    expected = visible_rows(page)
    page.goto("about:blank")
    page.goto(shared)
    assert page.locator("#leaderboard thead tr.columns th").nth(7).get_attribute("aria-sort") == "ascending"
    assert page.locator("#filter-family").input_value() == "dinov3" and page.locator("#search").input_value() == "tiny"
    assert visible_rows(page) == expected


def test_the_ceiled_toggle_divides_by_the_noise_ceiling(page):
    cells = "#leaderboard tbody tr[data-model='dinov3-tiny'] td.score[data-ceiled]"
    before = page.eval_on_selector_all(cells, "cs => cs.map(c => [Number(c.dataset.value), Number(c.dataset.ceiled)])")
    assert before and all(ceiled > raw > 0 for raw, ceiled in before)  # a ceiling below 1 raises the score
    page.check("#ceiled")
    after = page.eval_on_selector_all(cells, "cs => cs.map(c => [Number(c.dataset.value), c.querySelector('.value').textContent])")
    assert [v for v, _ in after] == [c for _, c in before] and all(t.endswith("(ceiled)") for _, t in after)
    assert "ceiled=1" in page.evaluate("location.href")
    page.uncheck("#ceiled")
    assert page.eval_on_selector_all(cells, "cs => cs.map(c => Number(c.dataset.value))") == [r for r, _ in before]


def test_every_benchmark_page_gives_bibtex(page):
    page.locator("nav a", has_text="Benchmarks").click()
    page.locator("ul.benchmarks a").first.click()
    bibtex = page.locator("pre.bibtex").inner_text()
    assert "@inproceedings{raugel2026disentangling" in bibtex and "@misc{synthetic" in bibtex
    assert bibtex.count("{") == bibtex.count("}")

"""The static leaderboard site, built from a database that `bench grid` filled with the synthetic demo data."""
from __future__ import annotations

import copy
import csv
import importlib
import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

import brainbench
from brainbench.core.errors import BrainbenchError
from brainbench.core.registry.discovery import get_plugin_manager, reset_plugin_manager
from brainbench.core.registry.specs import reset_registry
from brainbench.core.store.results import ResultStore
from brainbench.leaderboard.build import build_site
from brainbench.leaderboard.commands import leaderboard
from brainbench.leaderboard.data import half_time, slug

from conftest import TINY_DATASET, TINY_MODEL

XSS = "<script>alert(1)</script>"
STEPS = {1000: 0.2, 2000: 0.5, 5000: 0.8, 10000: 1.0}  # fraction of the final score at each step


class HtmlPlugin:
    """A registered model whose plugin-provided strings hold markup."""

    @staticmethod
    @brainbench.hookimpl
    def register_models(register):
        register("html-model", lambda checkpoint=None: None, description='<img src=x onerror="alert(2)">',
                 family="<b>bold</b>", parameters=5_000_000_000, training_data="<i>web</i>")


def demo_database(home: Path) -> Path:
    """`bench grid` on the tiny synthetic data, plus training steps, an XSS name and missing scores (built once)."""
    db = home / "leaderboard-demo.db"
    if db.exists():
        return db
    from brainbench.core.commands.grid import grid

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINBENCH_HOME", str(home))
        patch.setenv("BRAINBENCH_LOAD_PLUGINS", "")
        reset_plugin_manager()
        manager = get_plugin_manager()
        if manager.get_plugin("brainbench.plugins.metrics.temporal") is None:
            try:
                manager.register(importlib.import_module("brainbench.plugins.metrics.temporal"),
                                 name="brainbench.plugins.metrics.temporal")
            except ImportError:
                pass
        reset_registry()
        args = ["-m", TINY_MODEL, "-d", "synthetic-*", "-q", "--db", str(home / "partial.db"),
                "--set", "metric:spatial.n_permutations=100", "--set", "metric:temporal.n_permutations=100"]
        args += [a for k, v in TINY_DATASET.items() for a in ("--set", f"dataset.{k}={v}")]
        result = CliRunner().invoke(grid, args)
        assert result.exit_code == 0, result.output
        reset_plugin_manager()
    with ResultStore(home / "partial.db") as store:
        rows = store.query()
    with ResultStore(home / "partial.db") as store:
        for step, fraction in STEPS.items():
            for row in rows:
                new = copy.deepcopy(row)
                new.checkpoint, new.score = f"step-{step}", row.score * fraction
                if isinstance(new.detail.get("per_region"), dict):
                    new.detail["per_region"] = {k: v * fraction for k, v in new.detail["per_region"].items()}
                store.save(new)
        for model, factor in ((XSS, 0.9), ("convnet-b", 0.8), ("html-model", 0.7)):
            for row in rows:
                if row.metric == "spatial" and model != XSS:
                    continue  # a score that was never computed
                new = copy.deepcopy(row)
                new.model, new.score = model, row.score * factor
                if model == "convnet-b" and row.dataset == "synthetic-meg" and row.metric == "encoding":
                    new.score = float("nan")  # computed, but undefined
                store.save(new)
    (home / "partial.db").rename(db)
    return db


@pytest.fixture(scope="module")
def site(session_home, tmp_path_factory):
    db = demo_database(session_home)
    out = tmp_path_factory.mktemp("site") / "site"
    manager = get_plugin_manager()
    manager.register(HtmlPlugin, name="html-plugin")
    reset_registry()
    try:
        report = build_site(db, out)
    finally:
        manager.unregister(name="html-plugin")
        reset_registry()
    return out, report, db


def html_files(out: Path) -> list[Path]:
    return sorted(out.rglob("*.html"))


def test_half_time_interpolates_and_is_undefined_without_a_curve():
    assert half_time([(1000, 0.2), (2000, 0.5), (5000, 0.8), (10000, 1.0)]) == 2000
    assert half_time([(0, 0.0), (100, 1.0)]) == 50
    assert half_time([(300, 0.4), (100, 0.1), (200, 0.3)]) == pytest.approx(150)  # order does not matter
    assert half_time([(100, 0.5)]) is None  # one checkpoint
    assert half_time([(100, 0.2), (200, -0.1)]) is None  # final score not positive
    assert half_time([(100, float("nan")), (200, 0.4), (300, 0.4)]) == 200


def test_slugs_are_safe_and_never_collide():
    assert slug("dinov3-small") == "dinov3-small"
    unsafe = slug(XSS)
    assert all(c.isalnum() or c in "-._" for c in unsafe)
    assert slug("a/b") != slug("a?b") and slug("A") != slug("a")


def test_the_index_ranks_models_and_shows_missing_scores_as_missing(site):
    out, report, db = site
    html = (out / "index.html").read_text()
    assert report.rows == len(ResultStore(db).query())
    assert {"index.html", "benchmarks.html", "downloads.html"} <= set(report.pages)
    for column in ("Encoding", "Spatial", "synthetic-fmri", "synthetic-meg", "Half-time (steps)", "t½ encoding"):
        assert column in html
    assert html.count('<tr data-model=') == 1 + len(STEPS) + 3  # init, the steps, three more models
    rows = html.split('<tr data-model=')[1:]
    convnet = next(r for r in rows if r.startswith('"convnet-b"'))
    cells = convnet.split('<td class="score"')[1:]
    assert cells[1].startswith(' data-value=""') and 'title="computed, but undefined (NaN)">—' in cells[1]
    assert cells[2].startswith(' data-value="">') and 'title="not computed">—' in cells[2]
    assert ">0.0000<" not in convnet
    ranks = [r.split('<td class="rank">')[1].split("<")[0] for r in rows]
    assert ranks == [str(i) for i in range(1, len(rows) + 1)]  # every model has an fMRI encoding score
    final = next(r for r in rows if 'data-checkpoint="training steps"' in r and "step-10000" in r)
    assert '<td class="half" data-value="2000.0">2,000</td>' in final


def test_model_pages_have_metadata_and_plots(site):
    out, report, _ = site
    page = (out / "models" / "dinov3-tiny.html").read_text()
    assert "249.9k" in page and "none (test architecture)" in page
    assert "init, step-1000, step-2000, step-5000, step-10000" in page
    images = [line.split('src="../')[1].split('"')[0] for line in page.splitlines() if "<img src=" in line]
    assert any(p.endswith("--regions.svg") for p in images)  # per-region encoding bars
    assert any(p.endswith("--distance.svg") for p in images)  # best layer vs distance from V1
    assert any(p.endswith("training.svg") for p in images)  # score over training steps
    if any("temporal" in b for b in report.pages):
        assert any(p.endswith("--layer-time.svg") for p in images)  # MEG layer × time heat map
    for path in images:
        svg = (out / path).read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "<script" not in svg
    assert set(images) <= set(report.plots)
    assert "Encoding · synthetic-fmri · V1" in page  # per-region half-times
    convnet = (out / "models" / "convnet-b.html").read_text()
    assert "is not registered in the environment" in convnet and "unknown" in convnet


def test_benchmark_pages_rank_with_provenance(site):
    out, _, db = site
    page = (out / "benchmarks" / "synthetic-fmri--encoding.html").read_text()
    assert "brainbench synthetic data (planted hierarchy" in page  # the dataset's citation
    ceiling = page.split("noise ceiling</th><td>")[1].split("<")[0]
    assert 0 < float(ceiling.split()[0]) < 1
    rows = ResultStore(db).query(dataset="synthetic-fmri", metric="encoding", subject="all")
    assert rows[0].data_hash in page and brainbench.__version__ in page
    scores = [float(x.split("<")[0]) for x in page.split('<span class="value">')[1:]]
    assert scores == sorted(scores, reverse=True) and len(scores) == len(rows)
    spatial = (out / "benchmarks" / "synthetic-fmri--spatial.html").read_text()
    assert "not reported" in spatial  # the spatial score has no noise ceiling


def test_downloads_are_strict_json_and_csv(site):
    out, _, db = site

    def reject(constant):
        raise ValueError(constant)

    results = json.loads((out / "data" / "results.json").read_text(), parse_constant=reject)
    assert len(results) == len(ResultStore(db).query())
    with open(out / "data" / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(results)
    table = json.loads((out / "data" / "leaderboard.json").read_text(), parse_constant=reject)
    convnet = next(e for e in table if e["model"] == "convnet-b")
    assert convnet["scores"]["synthetic-meg/encoding"]["score"] is None
    assert convnet["scores"]["synthetic-fmri/spatial"]["score"] is None
    final = next(e for e in table if e["checkpoint"] == "step-10000")
    assert final["half_times"]["encoding"] == 2000
    with open(out / "data" / "leaderboard.csv") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == len(table)
    assert next(r for r in lines if r["model"] == "convnet-b")["synthetic-fmri/spatial score"] == ""


def test_plugin_strings_are_escaped_everywhere(site):
    out, _, _ = site
    pages = {p: p.read_text() for p in html_files(out)}
    for path, text in pages.items():
        assert XSS not in text, path
        assert "<b>bold</b>" not in text and "<i>web</i>" not in text and "onerror=\"alert" not in text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[out / "index.html"]
    html_model = pages[out / "models" / "html-model.html"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in html_model and "&lt;img src=x onerror=" in html_model
    assert (out / "models" / f"{slug(XSS)}.html").is_file()


def test_rebuilding_replaces_the_site_and_foreign_folders_are_refused(site, tmp_path):
    _, _, db = site
    out = tmp_path / "site"
    build_site(db, out)
    (out / "models" / "stale.html").write_text("old")
    build_site(db, out)
    assert not (out / "models" / "stale.html").exists()
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(BrainbenchError, match="not empty and was not built"):
        build_site(db, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_an_empty_database_builds_a_site_that_says_so(tmp_path):
    db = tmp_path / "empty.db"
    ResultStore(db).close()
    report = build_site(db, tmp_path / "site")
    assert "No results yet" in (tmp_path / "site" / "index.html").read_text()
    assert report.plots == []


def test_the_commands_build_and_serve_on_localhost(site, tmp_path):
    _, _, db = site
    out = tmp_path / "site"
    result = CliRunner().invoke(leaderboard, ["build", "--out", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"in {out}/; open {out / 'index.html'}" in result.output
    missing = CliRunner().invoke(leaderboard, ["build", "--out", str(out), "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "Error: no results database at" in missing.output
    server = subprocess.Popen([sys.executable, "-m", "brainbench.leaderboard.commands", "serve", "--out", str(out),
                               "--no-build", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith(f"serving {out} at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert response.status == 200 and "Leaderboard" in response.read().decode()
        with urllib.request.urlopen(url + "static/leaderboard.js", timeout=10) as response:
            assert response.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    assert server.returncode == 0

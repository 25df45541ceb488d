"""The leaderboard built from several labs' results: folders of result files and databases, merged."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from brainbench.core.errors import BrainbenchError
from brainbench.core.store.exchange import export_results
from brainbench.core.store.results import ResultStore
from brainbench.leaderboard.build import build_site
from brainbench.leaderboard.commands import leaderboard
from brainbench.leaderboard.sources import collect_rows

from test_portable import fill, make_rows, rewrite, set_aggregate_score


def export_lab(tmp: Path, name: str, contributor: str, *groups) -> Path:
    """Lab ``name`` scores ``groups`` on its machine and exports them as result files to ``tmp/name/``."""
    with ResultStore(fill(tmp / f"{name}.db", *groups)) as store:
        report = export_results(store, tmp / name, contributor=contributor, lab=f"{name} lab")
    assert report.written and not report.problems
    return tmp / name


@pytest.fixture(scope="module")
def labs(tmp_path_factory):
    """Lab A's results as a folder of files; lab B's as a database with one score identical to lab A's."""
    tmp = tmp_path_factory.mktemp("labs")
    folder = export_lab(tmp, "lab-a", "Ada Lovelace", make_rows(score=0.4), make_rows(model="convnext-tiny", score=0.3))
    database = fill(tmp / "lab-b.db", make_rows(model="resnet-50", score=0.2), make_rows(model="convnext-tiny", score=0.3))
    return tmp, folder, database


@pytest.fixture(scope="module")
def merged_site(labs):
    tmp, folder, database = labs
    out = tmp / "site"
    report = build_site([folder, database], out)
    return out, report


def links(page: Path) -> list[tuple[str, str]]:
    """(page, anchor) of every provenance link on ``page``, resolved against the site root."""
    root = "../" if page.parent.name in ("models", "benchmarks", "provenance") else ""
    found = re.findall(r'href="([^"]*provenance/[^"#]+\.html)#([^"]+)"', page.read_text())
    return [(target[len(root):] if target.startswith(root) else target, anchor) for target, anchor in found]


def test_two_labs_make_one_table_with_both(merged_site):
    out, report = merged_site
    html = (out / "index.html").read_text()
    models = re.findall(r'<tr data-model="([^"]+)"', html)
    assert sorted(models) == ["convnext-tiny", "dinov3-small", "resnet-50"]  # the shared score once
    assert report.rows == 9
    scores = [float(x) for x in re.findall(r'<span class="value">([0-9.]+)</span>', html)]
    assert scores == [0.4, 0.3, 0.2]  # ranked across labs
    table = json.loads((out / "data" / "leaderboard.json").read_text())
    cell = next(e for e in table if e["model"] == "dinov3-small")["scores"]["synthetic-fmri/encoding"]
    assert cell["contributor"] == "Ada Lovelace" and cell["benchmark_version"] == 1
    assert cell["benchmark_id"].startswith("synthetic-fmri/encoding@")


def test_every_score_links_to_its_provenance(merged_site):
    out, _ = merged_site
    pages = [out / "index.html", *sorted((out / "models").glob("*.html")), *sorted((out / "benchmarks").glob("*.html"))]
    seen = 0
    for page in pages:
        for target, anchor in links(page):
            assert f'id="{anchor}"' in (out / target).read_text(), (page, target, anchor)
            seen += 1
    assert seen >= 3 * 3  # every model's score on the index, its model page and the benchmark page
    provenance = (out / "provenance" / "synthetic-fmri--encoding.html").read_text()
    assert "Ada Lovelace (lab-a lab)" in provenance and "lab-a/synthetic-fmri/encoding/dinov3-small@init" in provenance
    assert "content sha256" in provenance and "lab-b.db" in provenance
    assert "not recorded (scored locally, not imported from a result file)" in provenance  # lab B's rows
    assert "sub-01" in provenance and "dddddddddddd" in provenance  # subjects and data hash


def test_versions_are_columns_of_their_own(labs, tmp_path):
    tmp, folder, database = labs
    newer = tmp_path / "newer"
    newer.mkdir()
    (source,) = (folder / "synthetic-fmri" / "encoding").glob("dinov3-small@*.json")
    copy = newer / source.name
    copy.write_text(source.read_text())
    rewrite(copy, lambda d: d["benchmark"].update(version=2))
    rewrite(copy, set_aggregate_score(0.5))  # a different score under version 2 is not a conflict
    build_site([folder, database, newer], tmp_path / "site")
    html = (tmp_path / "site" / "index.html").read_text()
    assert "synthetic-fmri v2</button>" in html
    v2 = (tmp_path / "site" / "benchmarks" / "synthetic-fmri--encoding--v2.html").read_text()
    assert "version 2" in v2 and [float(x) for x in re.findall(r'<span class="value">([0-9.]+)<', v2)] == [0.5]
    v1 = (tmp_path / "site" / "benchmarks" / "synthetic-fmri--encoding.html").read_text()
    assert [float(x) for x in re.findall(r'<span class="value">([0-9.]+)<', v1)] == [0.4, 0.3, 0.2]


def test_disagreeing_sources_stop_the_build(labs, tmp_path):
    tmp, folder, database = labs
    rival = fill(tmp_path / "rival.db", make_rows(model="resnet-50", score=0.25))
    with pytest.raises(BrainbenchError, match=r"lab-b.db and .*rival.db give different results for resnet-50@init × "
                                              r"synthetic-fmri × encoding \(benchmark version 1\): score 0\.2 vs "
                                              r"0\.25, different detail; 2 more conflicts; remove one of them"):
        collect_rows([folder, database, rival])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.json").write_text('{"schema_version": 1}')
    with pytest.raises(BrainbenchError, match="x.json does not follow result schema 1: the file lacks 'model'"):
        build_site([folder, broken], tmp_path / "site")
    assert not (tmp_path / "site").exists()  # nothing half-built
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BrainbenchError, match="is neither a result file"):
        collect_rows([tmp_path / "notes.txt"])


def test_the_command_builds_from_any_mix(labs, tmp_path):
    tmp, folder, database = labs
    out = tmp_path / "site"
    result = CliRunner().invoke(leaderboard, ["build", "--from", str(folder), "--from", str(database),
                                              "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "from 9 rows" in result.output and (out / "provenance" / "synthetic-fmri--encoding.html").is_file()
    missing = CliRunner().invoke(leaderboard, ["build", "--from", str(tmp_path / "nowhere"), "--out", str(out)])
    assert missing.exit_code == 1 and "nowhere does not exist" in missing.output

"""``bench report``: the paper's figures from stored rows, what cannot be drawn listed with its command."""
from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.results import ResultStore
from brainbench.leaderboard.report import write_report

from conftest import TINY_MODEL
from report_fixture import MODEL, GlasserToy, is_close_to_planted, trajectory_database


@pytest.fixture(scope="module")
def trajectory_db(tmp_path_factory):
    return trajectory_database(tmp_path_factory.mktemp("trajectory") / "results.db")


def test_a_trajectory_gives_the_cortex_the_curves_and_the_maps(trajectory_db, tmp_path):
    with ResultStore(trajectory_db) as store:
        (aggregate,) = store.query(metric="halftime", subject="all")
    assert is_close_to_planted(aggregate.detail, GlasserToy()) > 0.9  # the real metric recovers the plant
    report = write_report([MODEL], tmp_path / "report", trajectory_db)
    (model,) = report.models
    assert sorted({f.number for f in model.figures}) == [1, 4, 5, 6]
    assert all(path.is_file() and path.stat().st_size > 5_000 for path in report.files)
    assert {p.suffix for p in report.files} == {".png", ".svg"}
    assert {m.number for m in model.missing} == {2, 3}
    commands = {m.number: m.command for m in model.missing}
    assert commands[2] == f"bench run -m {MODEL} -d synthetic-fmri -x spatial"
    numbers = {quantity: mine for quantity, mine, _ in model.numbers}
    distance_r = float(numbers["half-time vs distance from V1 (r)"])
    assert distance_r == pytest.approx(aggregate.detail["distance_correlation"]["pearson_r"], abs=0.005)
    assert distance_r > 0.8  # half-times planted to grow with distance
    assert re.match(r"^-?\d\.\d\d \(spin p = \d\.\d{3}, 16 parcels\)$", numbers["half-time vs myelin_t1t2 (r)"])
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("<figure") == len(model.figures) and "bench run -m toy-net -d synthetic-meg -x temporal" in page
    assert "right hemisphere is not drawn" in page and "R = 0.91" in page


def test_the_default_run_reports_from_the_command_line(tiny_cli_args, tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["run", *tiny_cli_args]).exit_code == 0
    result = runner.invoke(main, ["report", "-m", TINY_MODEL, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "figures 1 drawn; not drawn: 2, 3, 4, 5, 6" in result.output
    page = (tmp_path / "r" / "index.html").read_text()
    assert "synthetic-fmri" in page and "not a Glasser" not in page  # the figure's note says it, the page lists figures
    assert len(list((tmp_path / "r").glob("*--1-cortex-encoding-*.png"))) == 1
    unknown = runner.invoke(main, ["report", "-m", "no-such-model", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 1 and "no stored rows for 'no-such-model'" in unknown.output
    assert "Traceback" not in unknown.output


def test_no_database_is_one_sentence(tmp_path):
    with pytest.raises(BrainbenchError, match="no results database at"):
        write_report(["x"], tmp_path / "out", tmp_path / "none.db")

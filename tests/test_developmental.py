"""Developmental synthetic data (readouts of trained tiny-dino) and half-times in ``bench grid``.

One real tiny-dino trajectory (4 DINO steps, checkpoints at steps 1 and 4, plus init) is trained
per module; the datasets are cut down to 40 images and 2 subjects so that a whole series scores
in seconds.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from brainbench.core.config import Config
from brainbench.core.errors import MissingDataError
from brainbench.core.commands.grid import grid
from brainbench.core.commands.trajectory import trajectory as trajectory_group
from brainbench.core.store.results import ResultStore
from brainbench.plugins.models.training import TrainingOptions, save_steps, train
from brainbench.plugins.datasets import synthetic_dev
from brainbench.plugins.datasets.synthetic import SyntheticFMRI
from brainbench.plugins.datasets.synthetic_dev import SyntheticFMRIDev, SyntheticMEGDev

DATA = {"n_images": 40, "image_size": 64, "n_subjects": 2}
FAST = {"folds": 3, "n_permutations": 50, "bootstrap": 20, "alphas": [1.0, 100.0, 1e4]}
SETS = [item for key, value in {**{f"dataset.{k}": v for k, v in DATA.items()},
                                **{f"metric.{k}": v for k, v in FAST.items()}}.items()
        for item in ("--set", f"{key}={json.dumps(value)}")]
SERIES = ["-m", "tiny-dino@all", "-x", "halftime", "-d", "synthetic-fmri-dev", "-d", "synthetic-meg-dev"]


@pytest.fixture(scope="module")
def trajectory(tmp_path_factory):
    """A real tiny-dino trajectory: 4 steps of DINO, checkpoints at steps 1 and 4."""
    root = tmp_path_factory.mktemp("weights")
    train(root / "tiny-dino", TrainingOptions(steps=4, batch_size=4, checkpoints=2, seed=0))
    return root


@pytest.fixture
def weights(trajectory, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(trajectory))
    return trajectory


def _stored(db=None, **filters):
    with ResultStore(db or Config().db_path) as store:
        return store.query(**filters)


# -- the datasets --------------------------------------------------------------------------------

def test_without_a_trajectory_the_dataset_says_how_to_make_one(tmp_path, monkeypatch):
    from brainbench.cli import main

    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path / "empty"))
    with pytest.raises(MissingDataError, match=r"holds none: run `bench trajectory make` .* or add --set "
                                               r"dataset.make_reference=true"):
        SyntheticMEGDev(**DATA)
    result = CliRunner().invoke(main, ["run", "-m", "dinov3-tiny@init", "-d", "synthetic-fmri-dev", "-x", "encoding"])
    assert result.exit_code != 0
    message = result.output.strip().splitlines()
    assert len(message) == 1 and "Traceback" not in result.output and "bench trajectory make" in message[0]


def test_make_reference_trains_the_trajectory_first(tmp_path, monkeypatch):
    from brainbench.cli import main

    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    # the defaults are bench trajectory make's (minutes); the test trains 2 steps
    monkeypatch.setattr(synthetic_dev, "REFERENCE_TRAINING", {"steps": 2, "batch_size": 2, "checkpoints": 2})
    # the series tiny-dino@all does not exist yet: the dataset makes it before the models are listed
    result = CliRunner().invoke(main, ["run", "-q", "-m", "tiny-dino@all", "-d", "synthetic-fmri-dev", "-x", "encoding",
                                       "--set", "dataset.make_reference=true", *SETS[:6],
                                       "--set", "metric.folds=3", "--set", "metric.alphas=[1, 100]"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "tiny-dino").glob("*.pth")) == ["model_0000000.pth",
                                                                              "model_0000001.pth"]
    assert {r.checkpoint for r in _stored(metric="encoding")} == {"init", "step-1", "step-2"}
    assert SyntheticFMRIDev(**DATA).options["reference"] == "tiny-dino@step-2"


def test_responses_read_out_the_last_checkpoint_and_are_cached_by_its_hash(weights, trajectory):
    dataset = SyntheticFMRIDev(**DATA)
    assert dataset.options["reference"] == "tiny-dino@step-4"
    # the same planted construction as synthetic-fmri, read out of the trained checkpoint
    planted = SyntheticFMRI(**{**DATA, "reference": "tiny-dino@step-4"})
    first = dataset.responses("sub-01")
    np.testing.assert_array_equal(first.data, planted.responses("sub-01").data)
    np.testing.assert_array_equal(first.units["region"], planted.responses("sub-01").units["region"])
    cached = dataset.cache_folder / "sub-01.npz"
    assert cached.is_file()

    again = SyntheticFMRIDev(**DATA)
    assert again.fingerprint() == dataset.fingerprint()
    second = again.responses("sub-01")
    assert "_reference_activations" not in vars(again), "a cached subject must not load the reference network"
    np.testing.assert_array_equal(second.data, first.data)
    np.testing.assert_array_equal(second.noise_ceiling, first.noise_ceiling)

    cached.write_bytes(cached.read_bytes()[:100])  # damaged: recomputed, never used
    repaired = SyntheticFMRIDev(**DATA).responses("sub-01")
    np.testing.assert_array_equal(repaired.data, first.data)

    earlier = SyntheticFMRIDev(reference="tiny-dino@step-1", **DATA)
    assert earlier.fingerprint() != dataset.fingerprint()
    assert not np.allclose(earlier.responses("sub-01").data, first.data)
    # a retrained trajectory (other weights under the same file name) gets new responses; training is
    # seeded, so retraining with the same options gives the same fingerprint
    try:
        train(trajectory / "tiny-dino", TrainingOptions(steps=4, batch_size=4, checkpoints=2, seed=1), force=True)
        assert SyntheticFMRIDev(**DATA).fingerprint() != dataset.fingerprint()
    finally:
        train(trajectory / "tiny-dino", TrainingOptions(steps=4, batch_size=4, checkpoints=2, seed=0), force=True)
    assert SyntheticFMRIDev(**DATA).fingerprint() == dataset.fingerprint()


def test_checkpoints_are_log_spaced_dense_early():
    defaults = TrainingOptions()
    steps = save_steps(defaults.steps, defaults.checkpoints)
    assert steps == [1, 2, 3, 4, 6, 10, 16, 25, 40, 63, 100, 158, 251, 398, 631, 1000]
    assert sum(s / 1000 <= 0.05 for s in steps) == 9  # over half the checkpoints in the first 5 % of training
    assert save_steps(300, 10) == [1, 2, 4, 7, 13, 24, 45, 84, 159, 300]
    assert save_steps(5, 10) == [1, 2, 3, 4, 5]  # fewer when they coincide
    refused = CliRunner().invoke(trajectory_group, ["make", "--checkpoints", "0"])
    assert refused.exit_code == 2 and "--checkpoints" in refused.output  # before any training


# -- half-time in the grid -----------------------------------------------------------------------

def _grid_command(*extra):
    return [sys.executable, "-m", "brainbench.core.commands.grid", "-q", *SERIES, *SETS, *extra]


def _count(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_grid_scores_the_series_resumes_after_a_kill_and_stores_bench_runs_half_times(weights, tmp_path):
    from brainbench.cli import main

    dry = CliRunner().invoke(grid, [*SERIES, *SETS, "--dry-run", "--format", "json"])
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)
    assert plan["to_run"] == 3 * (3 * 2 * 2)  # 3 checkpoints × 2 datasets × 2 base metrics × (2 subjects + all)
    (series,) = plan["series"]
    assert series["series"] == "tiny-dino@all" and series["steps"] == [0, 1, 4]
    assert series["bases"] == {"synthetic-fmri-dev": ["encoding", "spatial"],
                               "synthetic-meg-dev": ["encoding", "temporal"]}
    assert series["to_compute"] == series["rows"] == 4 * 3
    # without @all, a model's checkpoints on disk (the default grid's selection) are its series too
    default = CliRunner().invoke(grid, ["-m", "tiny-dino", *SERIES[2:], *SETS, "--dry-run", "--format", "json"])
    assert json.loads(default.output)["series"] == plan["series"]

    db = Path(os.environ["BRAINBENCH_DB"])
    process = subprocess.Popen(_grid_command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while _count(db) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    survivors = {(r.checkpoint, r.dataset, r.subject, r.metric): r.created_at for r in _stored(db)}
    assert 3 <= len(survivors) < 36 and not _stored(db, metric="halftime")

    text = CliRunner().invoke(grid, [*SERIES, *SETS, "--dry-run"]).output
    assert f"{len(survivors)} already stored" in text
    assert "tiny-dino@all: 3 checkpoints (steps 0, 1, 4); halftime of encoding, spatial on synthetic-fmri-dev; " \
           "encoding, temporal on synthetic-meg-dev: 12 rows to compute" in text

    rerun = subprocess.run(_grid_command(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    rows = _stored(db)
    assert all(r.created_at == survivors[(r.checkpoint, r.dataset, r.subject, r.metric)]
               for r in rows if (r.checkpoint, r.dataset, r.subject, r.metric) in survivors)
    half = {(r.dataset, r.subject, r.options): r for r in _stored(db, metric="halftime")}
    assert len(half) == 12 and {r.checkpoint for r in half.values()} == {"all"}
    assert "halftime(encoding)" in rerun.stdout
    assert "12 rows stored" in CliRunner().invoke(grid, [*SERIES, *SETS, "--dry-run"]).output

    # bench run reuses every checkpoint row the grid stored and writes the same half-time rows, same keys
    result = CliRunner().invoke(main, ["run", *SERIES, *SETS])
    assert result.exit_code == 0, result.output
    assert result.output.count("reused the stored rows") == 6
    assert "halftime of tiny-dino@all (% of training): " in result.output  # the closing note: order, then…
    assert "  per region (encoding, synthetic-fmri-dev): V1 " in result.output  # …per region, with r vs distance
    assert "half-time vs distance from V1: r" in result.output and "half-time vs window time: r" in result.output
    after = {(r.dataset, r.subject, r.options): r for r in _stored(db, metric="halftime")}
    assert after.keys() == half.keys()
    for key, row in half.items():
        assert after[key].score == pytest.approx(row.score, nan_ok=True)
        assert after[key].activations_key == row.activations_key and after[key].data_hash == row.data_hash
        for field in ("steps", "curve", "half_time_percent", "per_region_half_time", "distance_correlation",
                      "per_window_half_time", "order"):
            assert after[key].detail.get(field) == row.detail.get(field), field

    # the leaderboard shows these half-times (not a column of their own, no tiny-dino@all entry)
    from brainbench.leaderboard.data import build_leaderboard

    board = build_leaderboard(_stored(db))
    assert "all" not in {e.checkpoint for e in board.entries} and "halftime" not in {b.metric for b in board.benchmarks}
    for bench in board.benchmarks:
        total = next(r for r in after.values() if r.subject == "all" and r.dataset == bench.dataset
                     and r.detail["base"] == bench.metric)
        assert board.half_time("tiny-dino", bench) == total.detail["half_time_step"]



@pytest.mark.parametrize("name", ["synthetic-fmri-dev", "synthetic-meg-dev"])
def test_the_developmental_datasets_pass_the_conformance_checklist(weights, name):
    from brainbench.core.authoring import conformance
    from brainbench.core.registry import get_registry

    report = conformance.check_dataset(get_registry().dataset(name), DATA)
    assert report.ok and report.count("skip") == 0, report.render()

"""Trajectories: checkpoint discovery, the tiny DINO trainer and its checkpoints, and the runner on a real series.

The trajectory is trained for real (a few steps of DINO on CPU) once per module.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from brainbench.core.pipeline.activations import extract
from brainbench.core.config import Config
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.store.formatting import render
from brainbench.core.registry.discovery import DEFAULT_PLUGINS, get_plugin_manager
from brainbench.core.registry.specs import reset_registry
from brainbench.core.store.results import ResultStore
from brainbench.core.pipeline.runner import RunOptions, default_datasets, run
from brainbench.plugins.models.training import TrainingOptions, initial_network, save_steps, train
from brainbench.core.contract.checkpoints import Checkpoint, discover, find_step, select, series, step_of
from brainbench.core.commands.trajectory import trajectory
from brainbench.core.pipeline.trajectories import checkpoints_text
from brainbench.plugins.datasets.synthetic import photo_stimuli
from brainbench.plugins.models.dinov3_model import DINOv3
from conftest import TINY_DATASET

HALFTIME_PLUGIN = "brainbench.plugins.metrics.halftime"
STEPS = 12
#: the synthetic data, a little larger than the suite's tiny one so that encoding has signal
DATA = {**TINY_DATASET, "n_images": 60}
FAST_METRICS = {"folds": 3, "n_permutations": 200, "bootstrap": 100, "alphas": [1.0, 100.0, 1e4]}


@pytest.fixture(autouse=True)
def halftime_registered():
    """The halftime metric, registered like a built-in (whether or not core/registry/discovery.py lists it yet)."""
    if HALFTIME_PLUGIN not in DEFAULT_PLUGINS:
        import brainbench.plugins.metrics.halftime as module

        get_plugin_manager().register(module, name=HALFTIME_PLUGIN)
        reset_registry()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real tiny-dino trajectory: 12 DINO steps, checkpoints at steps 1, 3, 12 (and init)."""
    root = tmp_path_factory.mktemp("weights")
    manifest = train(root / "tiny-dino", TrainingOptions(steps=STEPS, batch_size=8, checkpoints=3, seed=0))
    return root, manifest


@pytest.fixture
def weights(trained, monkeypatch):
    root, _ = trained
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(root))
    return root


# -- discovery -----------------------------------------------------------------------------------

def test_checkpoints_are_discovered_in_step_order(tmp_path):
    (tmp_path / "model_0012499.pth").write_bytes(b"")
    (tmp_path / "step-500").mkdir()
    (tmp_path / "checkpoint-100000").mkdir()
    for other in ("model_final.pth", "notes.txt", "trajectory.json.bak"):
        (tmp_path / other).write_text("")
    found = discover(tmp_path)
    assert [(c.step, c.name, c.path.name) for c in found] == [
        (500, "step-500", "step-500"), (12500, "step-12500", "model_0012499.pth"),
        (100000, "step-100000", "checkpoint-100000")]
    assert find_step(tmp_path, 12500) == tmp_path / "model_0012499.pth"
    full = series("m", tmp_path)
    assert full[0] == Checkpoint(0, "init") and len(full) == 4
    assert [c.name for c in select(full, "first,last")] == ["init", "step-100000"]
    assert [c.name for c in select(full, "step-500, 12500")] == ["step-500", "step-12500"]
    assert [c.name for c in select(full, "step-1*")] == ["step-12500", "step-100000"]
    with pytest.raises(BrainbenchError, match="no checkpoint matches 'step-7'; the series has init, step-500"):
        select(full, "step-7")
    assert step_of("init") == 0 and step_of("step-12") == 12 and step_of("pretrained") is None


def test_patterns_come_from_the_folder_manifest_and_clashes_are_refused(tmp_path):
    (tmp_path / "ckpt_20.safetensors").write_bytes(b"")
    (tmp_path / "ckpt_5.safetensors").write_bytes(b"")
    assert discover(tmp_path) == []
    (tmp_path / "trajectory.json").write_text(json.dumps({"patterns": [r"ckpt_(?P<step>\d+)"]}))
    assert [c.step for c in discover(tmp_path)] == [5, 20]
    with pytest.raises(BrainbenchError, match="needs a named group"):
        discover(tmp_path, patterns=[r"ckpt_\d+"])
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "model_0000099.pth").write_bytes(b"")
    (clash / "step-100").mkdir()
    with pytest.raises(BrainbenchError, match="are both step 100"):
        discover(clash)
    with pytest.raises(MissingDataError, match="tiny-dino has no training checkpoints in .*`bench trajectory make`"):
        series("tiny-dino", tmp_path / "empty")


# -- the tiny DINO trainer --------------------------------------------------------------------------

def test_training_writes_original_dinov3_checkpoints(trained):
    root, manifest = trained
    assert manifest["saved_steps"] == save_steps(STEPS, 3) == [1, 3, 12]
    files = sorted(p.name for p in (root / "tiny-dino").iterdir())
    assert files == ["model_0000000.pth", "model_0000002.pth", "model_0000011.pth", "trajectory.json"]
    checkpoint = torch.load(root / "tiny-dino" / "model_0000011.pth", weights_only=True)
    assert checkpoint["iteration"] == 11
    teacher = checkpoint["teacher"]
    assert teacher["backbone.blocks.0.attn.qkv.weight"].shape == (3 * 96, 96)  # fused q/k/v, original names
    assert "backbone.storage_tokens" in teacher and "backbone.blocks.5.ls2.gamma" in teacher
    assert any(k.startswith("dino_head.") for k in teacher)
    saved = json.loads((root / "tiny-dino" / "trajectory.json").read_text())
    assert len(saved["loss"]) == STEPS and all(np.isfinite(saved["loss"]))
    assert set(saved["probe"]) == {"0", "1", "3", "12"}


def test_step_zero_is_tiny_dino_at_init():
    model = DINOv3("tiny-dino", "init", seed=3)
    model.load(torch.device("cpu"))
    start = initial_network(seed=3).state_dict()
    for key, value in model.network.state_dict().items():
        torch.testing.assert_close(value, start[key], rtol=0, atol=0)


def test_trained_checkpoint_matches_its_transformers_twin(trained, weights, tmp_path):
    """The converted original-format .pth gives the activations of the trainer's own teacher, saved by transformers."""
    _, manifest = trained
    manifest["_teacher"].save_pretrained(tmp_path / "twin")
    stimuli = photo_stimuli(6, 64, seed=5)
    converted = DINOv3("tiny-dino", f"step-{STEPS}")
    assert converted.source.path.name == f"model_{STEPS - 1:07d}.pth"
    twin = DINOv3("tiny-dino", "twin", weights=tmp_path / "twin")
    timm = DINOv3("tiny-dino", f"step-{STEPS}", backend="timm")  # timm's own converter: an independent check
    layers = [extract(m, stimuli, device="cpu", progress=False).layers for m in (converted, twin, timm)]
    for name in layers[0]:
        np.testing.assert_allclose(layers[0][name], layers[1][name], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(layers[0][name], layers[2][name], rtol=1e-4, atol=1e-4)
    initial = extract(DINOv3("tiny-dino", "init"), stimuli, device="cpu", progress=False).layers
    assert not np.allclose(initial["layer06"], layers[0]["layer06"])  # training changed the network


def test_trajectory_commands(trained, weights, tmp_path):
    listing = checkpoints_text("tiny-dino")
    assert "tiny-dino: 4 checkpoints in" in listing
    assert "step-12" in listing and "model_0000011.pth" in listing and "(random init, seed 0)" in listing
    data = json.loads(CliRunner().invoke(trajectory, ["checkpoints", "tiny-dino", "--json"]).output)
    assert [c["step"] for c in data["checkpoints"]] == [0, 1, 3, 12]
    result = CliRunner().invoke(trajectory, ["make", "--steps", "2", "--batch-size", "2", "--checkpoints", "2",
                                             "--out", str(tmp_path / "t")])
    assert result.exit_code == 0, result.output
    assert "trained tiny-dino for 2 steps" in result.output
    again = CliRunner().invoke(trajectory, ["make", "--steps", "2", "--out", str(tmp_path / "t")])
    assert again.exit_code != 0 and "already holds 2 checkpoints" in again.output and "--force" in again.output


# -- the runner on a real trajectory ----------------------------------------------------------------

def _run(models, metrics, datasets=("synthetic-fmri", "synthetic-meg"), metric_options=FAST_METRICS, **extra):
    messages = []
    options = RunOptions(dataset_options=DATA, metric_options=dict(metric_options), progress=False, **extra)
    with ResultStore(Config().db_path) as store:
        rows = run(models, list(datasets), metrics, store=store, config=Config(), options=options,
                   echo=messages.append)
    return rows, messages


def test_halftime_runs_on_the_tiny_trajectory_and_reuses_stored_rows(weights):
    assert default_datasets(["halftime"]) == ["synthetic-fmri", "synthetic-meg"]
    rows, messages = _run(["tiny-dino@all"], ["halftime"])
    assert {r.metric for r in rows} == {"halftime"} and {r.checkpoint for r in rows} == {"all"}
    bases = {(r.dataset, json.loads(r.options)["metric"]["base"]) for r in rows}
    assert bases == {("synthetic-fmri", "encoding"), ("synthetic-fmri", "spatial"), ("synthetic-meg", "encoding"),
                     ("synthetic-meg", "temporal")}
    totals = {(r.dataset, r.detail["base"]): r for r in rows if r.subject == "all"}
    encoding = totals[("synthetic-fmri", "encoding")]
    assert encoding.detail["steps"] == [0, 1, 3, 12] and len(encoding.detail["curve"]) == 4
    assert "regions" in encoding.detail and "distance_correlation" in encoding.detail
    assert set(encoding.detail["regions"]) == {"V1", *(f"area-{k:02d}" for k in range(1, 12))}
    assert "windows" in totals[("synthetic-meg", "encoding")].detail
    assert encoding.detail["order"]["paper_order"] == "temporal → encoding → spatial"
    assert any(m.startswith("halftime of tiny-dino@all (% of training): ") for m in messages)
    assert "halftime(encoding)" in render(rows, "table")
    with ResultStore(Config().db_path) as store:
        stored = store.query(model="tiny-dino", metric="encoding", subject="all")
        assert sorted(r.checkpoint for r in stored) == sorted(["init", "step-1", "step-3", "step-12"] * 2)
        before = {(r.checkpoint, r.dataset): r.updated_at for r in stored}
    # a second run reuses every per-checkpoint row and recomputes only the half-times
    again, messages = _run(["tiny-dino@all"], ["halftime"])
    assert sum("reused the stored rows" in m for m in messages) == 8
    assert not any("activations" in m for m in messages)
    assert [r.score for r in again] == pytest.approx([r.score for r in rows], nan_ok=True)
    with ResultStore(Config().db_path) as store:
        assert {(r.checkpoint, r.dataset): r.updated_at for r in store.query(
            model="tiny-dino", metric="encoding", subject="all")} == before
    _, messages = _run(["tiny-dino@all"], ["halftime"], datasets=["synthetic-fmri"], force=True,
                       checkpoints="first,last")
    assert not any("reused the stored rows" in m for m in messages)


def test_checkpoint_selections_and_refusals(weights):
    encoding = {"folds": 3, "alphas": [1.0, 100.0, 1e4]}
    rows, _ = _run(["tiny-dino"], ["encoding"], datasets=["synthetic-fmri"], metric_options=encoding,
                   checkpoints="first,last")
    assert sorted({r.checkpoint for r in rows}) == ["init", "step-12"]
    rows, _ = _run(["tiny-dino@step-3"], ["encoding"], datasets=["synthetic-fmri"], metric_options=encoding)
    assert {r.checkpoint for r in rows} == {"step-3"}
    with pytest.raises(BrainbenchError, match="needs a checkpoint series, but tiny-dino@step-3 is one checkpoint"):
        _run(["tiny-dino@step-3"], ["halftime"])
    with pytest.raises(BrainbenchError, match="none of the metrics .* has option 'nonsense'"):
        _run(["tiny-dino@all"], ["halftime"], metric_options={"nonsense": 1})


def test_bench_run_prints_half_times_per_metric(weights):
    from brainbench.cli import main

    assert "halftime" in CliRunner().invoke(main, ["list", "metrics"]).output
    args = ["run", "-m", "tiny-dino@all", "-x", "halftime", "-d", "synthetic-fmri", "-d", "synthetic-meg"]
    for key, value in {**DATA, **{f"metric.{k}": v for k, v in FAST_METRICS.items()}}.items():
        args += ["--set", f"{key if key.startswith('metric.') else 'dataset.' + key}={json.dumps(value)}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    table = [line.split() for line in result.output.splitlines() if line.startswith("tiny-dino@all ")]
    assert {(cells[1], cells[2]) for cells in table if cells[3] == "all"} == {
        ("synthetic-fmri", "halftime(encoding)"), ("synthetic-fmri", "halftime(spatial)"),
        ("synthetic-meg", "halftime(encoding)"), ("synthetic-meg", "halftime(temporal)")}
    assert "halftime of tiny-dino@all (% of training): " in result.output


def test_without_a_weights_setting_the_trajectory_goes_to_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_HOME", str(tmp_path))
    result = CliRunner().invoke(trajectory, ["make", "--steps", "1", "--batch-size", "2", "--checkpoints", "1"])
    assert result.exit_code == 0, result.output
    assert f"brainbench reads {tmp_path / 'weights'} by default" in result.output
    assert DINOv3("tiny-dino", "step-1").source.path == tmp_path / "weights" / "tiny-dino" / "model_0000000.pth"

"""``bench grid``: planning, resuming, failures, SIGKILL, worker processes and a real local Ray cluster."""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.config import Config
from brainbench.core.grid.executors import JobStarted, Note, PoolExecutor
from brainbench.core.grid.plan import GridRequest, parse_sets, plan_grid, run_plan, select_models
from brainbench.core.commands.grid import grid
from brainbench.core.store.formatting import failed_results
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry.specs import reset_registry
from brainbench.core.store.results import KEY_FIELDS, ResultStore

from conftest import TINY_DATASET, TINY_MODEL

TINY_SETS = [arg for key, value in TINY_DATASET.items() for arg in ("--set", f"dataset.{key}={value}")]
FAST_METRICS = ["--set", "metric:spatial.n_permutations=100"]
SUBJECTS = ("sub-01", "sub-02", "sub-03", "all")

#: a plugin written to a temporary folder, so that worker processes can import it by name
PLUGIN = '''
import os
import re
import torch
import brainbench
from brainbench.plugins.metrics.encoding import Encoding


class TinyCNN(brainbench.VisionModel):
    image_size = 32
    layer_names = ["conv1", "conv2", "conv3"]

    def __init__(self, name, checkpoint, seed):
        super().__init__(name, checkpoint)
        self.seed = seed

    def fingerprint(self):
        return {"seed": self.seed}

    def load(self, device):
        torch.manual_seed(self.seed)
        self.convs = [torch.nn.Conv2d(a, b, 3, stride=2).to(device).eval() for a, b in ((3, 8), (8, 16), (16, 16))]

    def forward_layers(self, pixels):
        out = []
        for conv in self.convs:
            pixels = conv(pixels).relu()
            out.append(pixels)
        return out


class Crashing(TinyCNN):
    """A model whose process dies when it is loaded (as if killed for memory)."""

    def load(self, device):
        os._exit(3)


class Flaky(Encoding):
    """The encoding score, except that it fails for the subject named in $GRID_TEST_FAIL."""

    name = "flaky"

    def score(self, features, responses, dataset):
        if responses.subject == os.environ.get("GRID_TEST_FAIL"):
            raise RuntimeError(f"planned failure of {responses.subject}")
        return super().score(features, responses, dataset)


@brainbench.hookimpl
def register_models(register):
    for name, seed in (("grid-cnn-a", 0), ("grid-cnn-b", 1)):
        register(name, lambda checkpoint=None, _n=name, _s=seed: TinyCNN(_n, checkpoint or "init", _s),
                 family="cnn", parameters=3000, training_data="none")
    register("grid-crash", lambda checkpoint=None: Crashing("grid-crash", checkpoint or "init", 2))


@brainbench.hookimpl
def register_metrics(register):
    register("flaky", Flaky, description="encoding that fails on purpose")
'''


def invoke(command, *args):
    return CliRunner().invoke(command, [str(a) for a in args])


def grid_args(*extra, models=(TINY_MODEL,), datasets=("synthetic-fmri", "synthetic-meg"), metrics=("encoding",)):
    args = [a for m in models for a in ("-m", m)] + [a for d in datasets for a in ("-d", d)]
    return args + [a for x in metrics for a in ("-x", x)] + TINY_SETS + FAST_METRICS + list(extra)


def stored(db=None) -> list:
    with ResultStore(db or os.environ["BRAINBENCH_DB"]) as store:
        return store.query()


def comparable(row) -> tuple:
    return (row.model, row.checkpoint, row.dataset, row.subject, row.metric, row.options, row.score, row.error,
            row.n_units, json.dumps(row.detail, sort_keys=True), row.data_hash, row.activations_key)


@pytest.fixture
def test_plugin(tmp_path, monkeypatch):
    """Register the temporary plugin module (two tiny CNNs and a metric that can fail)."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "grid_test_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    module = importlib.import_module("grid_test_plugin")
    get_plugin_manager().register(module, name="grid_test_plugin")
    reset_registry()
    yield module
    sys.modules.pop("grid_test_plugin", None)


# -- options and selection ---------------------------------------------------------------------

def test_set_options_apply_to_all_plugins_or_to_one():
    options = parse_sets(["dataset.n_images=40", "metric.folds=3", "metric:spatial.n_permutations=100",
                          "model:dinov3-tiny.seed=2", "dataset.reference=dinov3-tiny@init"])
    assert options.get("dataset", "synthetic-fmri") == {"n_images": 40, "reference": "dinov3-tiny@init"}
    assert options.get("metric", "spatial") == {"folds": 3, "n_permutations": 100}
    assert options.get("metric", "encoding") == {"folds": 3}
    assert options.get("model", "dinov3-tiny") == {"seed": 2} and options.get("model", "dinov3-small") == {}
    for bad in ("folds=3", "metrics.folds=3", "metric:.folds=3", "metric.folds"):
        with pytest.raises(Exception, match="TARGET.OPTION=VALUE"):
            parse_sets([bad])


def test_checkpoints_come_from_metadata_and_from_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "dinov3-tiny").mkdir()
    for name in ("step-20.safetensors", "step-3.pth", "notes.txt"):
        (tmp_path / "dinov3-tiny" / name).write_bytes(b"not really weights")
    pairs = select_models(["dinov3-tiny"], tmp_path)
    assert [c for _, c in pairs] == ["init", "step-3", "step-20"]  # steps in numeric order; no notes
    assert [c for _, c in select_models(["dinov3-ti*@step-*"], tmp_path)] == ["step-3", "step-20"]
    assert [c for _, c in select_models(["dinov3-tiny@step-7"], tmp_path)] == ["step-7"]  # exact: taken as given
    with pytest.raises(Exception, match="did you mean 'dinov3-tiny'"):
        select_models(["dinov3-tyni"], tmp_path)
    with pytest.raises(Exception, match=re.escape("no registered model matches 'nothing-*'")):
        select_models(["nothing-*"], tmp_path)


def test_dry_run_reports_jobs_activations_memory_and_what_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path / "no-weights"))
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    result = invoke(grid, *grid_args("--dry-run", "--format", "json", models=(TINY_MODEL, "dinov3-small@pretrained"),
                                     datasets=("synthetic-*", "nsd"), metrics=("encoding", "spatial")))
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    # fMRI: (encoding + spatial) × (3 subjects + all); MEG: encoding × 4 (spatial does not apply to MEG)
    assert (plan["jobs"], plan["to_run"], plan["stored"]) == (12, 12, 0)
    (model,) = plan["models"]
    assert model["model"] == "dinov3-tiny@init" and model["jobs"] == 12
    (activations,) = model["activations"]  # both datasets show the same images: one extraction
    assert activations["datasets"] == ["synthetic-fmri", "synthetic-meg"] and activations["n_stimuli"] == 40
    assert model["memory_bytes"] > 249_920 * 4 and plan["peak_memory_bytes"] == model["memory_bytes"]
    unavailable = {u["name"]: u["reason"] for u in plan["unavailable"]}
    assert "no weights for dinov3-small" in unavailable["dinov3-small@pretrained"]
    assert "nsd" in unavailable
    assert {(n["dataset"], n["metric"]) for n in plan["not_applicable"]} == {("synthetic-meg", "spatial")}
    assert not Path(os.environ["BRAINBENCH_DB"]).exists() or stored() == []  # nothing ran

    text = invoke(grid, *grid_args("--dry-run"))
    assert text.exit_code == 0, text.output
    assert "grid plan on cpu: 8 jobs, 8 to run, 0 already stored" in text.stdout
    assert "synthetic-fmri+synthetic-meg (40 stimuli" in text.stdout
    assert "estimated peak memory:" in text.stdout


# -- running, resuming, failures ---------------------------------------------------------------

def test_grid_stores_what_bench_run_stores_and_a_rerun_skips_everything(tmp_path):
    result = invoke(grid, *grid_args(metrics=("encoding", "spatial")))
    assert result.exit_code == 0, result.output
    assert "dinov3-tiny@init × synthetic-meg: reused the activations of the same stimuli" in result.stderr
    assert "grid: 12 jobs done, 0 already stored, 0 failed" in result.stderr
    rows = stored()
    assert len(rows) == 12
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 2 + 3 and all(" all " in line for line in summary[2:])  # the aggregates

    # the same scores as `bench run` (same keys: a later `bench run` would update these rows)
    reference = tmp_path / "run.db"
    for metric in ("encoding", "spatial"):
        for dataset in ("synthetic-fmri", "synthetic-meg") if metric == "encoding" else ("synthetic-fmri",):
            run = invoke(main, "run", "-m", TINY_MODEL, "-d", dataset, "-x", metric, "-q", "--db", reference,
                         *TINY_SETS, *(["--set", "metric.n_permutations=100"] if metric == "spatial" else []))
            assert run.exit_code == 0, run.output
    assert sorted(map(comparable, rows)) == sorted(map(comparable, stored(reference)))

    before = {(r.dataset, r.subject, r.metric): r.updated_at for r in rows}
    again = invoke(grid, *grid_args(metrics=("encoding", "spatial")))
    assert again.exit_code == 0, again.output
    assert "grid: 0 jobs to run, 12 already stored" in again.stderr
    assert {(r.dataset, r.subject, r.metric): r.updated_at for r in stored()} == before


def test_failures_are_recorded_listed_and_retried(test_plugin, monkeypatch):
    monkeypatch.setenv("GRID_TEST_FAIL", "sub-02")
    args = grid_args(models=("grid-cnn-a",), datasets=("synthetic-fmri",), metrics=("flaky",))
    first = invoke(grid, *args)
    assert first.exit_code == 1
    assert "Error: 2 of 4 jobs failed (the others were stored); see `bench results --failed`" in first.stderr
    assert "failed: grid-cnn-a@init × synthetic-fmri × flaky × sub-02: RuntimeError: planned failure" in first.stderr
    assert sorted(r.subject for r in stored()) == ["sub-01", "sub-03"]
    listing = json.loads(failed_results(fmt="json"))
    assert [(f["subject"], f["attempts"]) for f in listing] == [("all", 1), ("sub-02", 1)]
    assert listing[1]["error"] == "RuntimeError: planned failure of sub-02"
    assert "Traceback" in listing[1]["traceback"] and listing[1]["options"]["dataset"] == TINY_DATASET
    table = failed_results()
    assert "cannot aggregate over subjects: sub-02 failed" in table
    assert failed_results(subject="sub-0?").count("\n") == 2  # header, rule, one failure

    skipped = invoke(grid, *args, "--skip-failed")
    assert skipped.exit_code == 0 and "grid: 0 jobs to run" in skipped.stderr
    assert [f["attempts"] for f in json.loads(failed_results(fmt="json"))] == [1, 1]

    monkeypatch.delenv("GRID_TEST_FAIL")
    retried = invoke(grid, *args)
    assert retried.exit_code == 0, retried.output
    assert "grid: 2 jobs to run, 2 already stored" in retried.stderr
    assert sorted(r.subject for r in stored()) == sorted(SUBJECTS)
    assert failed_results() == "no failed jobs"  # a stored score clears its failure


def test_a_model_whose_weights_cannot_load_fails_its_jobs_only(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    (tmp_path / "dinov3-tiny").mkdir()
    (tmp_path / "dinov3-tiny" / "step-5.safetensors").write_bytes(b"garbage")
    result = invoke(grid, *grid_args(models=("dinov3-tiny",), datasets=("synthetic-fmri",)))
    assert result.exit_code == 1
    assert {(r.checkpoint, r.subject) for r in stored()} == {("init", s) for s in SUBJECTS}
    failures = json.loads(failed_results(fmt="json"))
    assert {(f["checkpoint"], f["subject"]) for f in failures} == {("step-5", s) for s in SUBJECTS}


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_sigkill_loses_no_finished_row_and_duplicates_none(tmp_path):
    db = Path(os.environ["BRAINBENCH_DB"])
    command = [sys.executable, "-m", "brainbench.core.commands.grid", "-q",
               *grid_args(datasets=("synthetic-fmri", "synthetic-meg"))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _count(db) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    with ResultStore(db) as store:
        survivors = {tuple(getattr(r, k) for k in KEY_FIELDS): r.created_at for r in store.query()}
    assert 2 <= len(survivors) < 8, "the grid should have been killed half-way"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    with ResultStore(db) as store:
        rows = store.query()
        keys = [tuple(getattr(r, k) for k in KEY_FIELDS) for r in rows]
    assert len(rows) == len(set(keys)) == 8
    assert {(r.dataset, r.subject) for r in rows} == {(d, s) for d in ("synthetic-fmri", "synthetic-meg")
                                                      for s in SUBJECTS}
    after = {tuple(getattr(r, k) for k in KEY_FIELDS): r.created_at for r in rows}
    assert all(after[key] == created for key, created in survivors.items())  # kept, not recomputed


# -- executors ---------------------------------------------------------------------------------

def test_a_pool_of_worker_processes_runs_the_units_and_survives_a_crash(test_plugin):
    config = Config()
    tiny = {**TINY_DATASET, "reference": "grid-cnn-a@init"}  # workers need not import transformers
    request = GridRequest(models=["grid-*"], datasets=["synthetic-fmri"], metrics=["encoding"],
                          options=parse_sets([f"dataset.{k}={v}" for k, v in tiny.items()]), device="cpu")
    with ResultStore(config.db_path) as store:
        plan = plan_grid(request, store, config)
        assert [u.ref for u in plan.units] == ["grid-cnn-a@init", "grid-cnn-b@init", "grid-crash@init"]
        workers, notes = set(), []
        report = run_plan(plan, store, PoolExecutor(["cpu", "cpu"]),
                          lambda e: workers.add(e.worker) if isinstance(e, JobStarted) else notes.append(e))
        assert len(report.done) == 8 and store.count() == 8
        assert {(f.model, f.subject) for f in report.failed} == {("grid-crash", s) for s in SUBJECTS}
        assert {f.error for f in report.failed} == {"the worker process on cpu died (exit code 3)"}
        assert len(store.failures()) == 4
    pids = {w.split("pid ")[1] for w in workers}
    assert pids and str(os.getpid()) not in pids  # worker processes ran the jobs, not this one
    messages = [n.message for n in notes if isinstance(n, Note)]
    assert [m.split(" × ")[0] for m in sorted(messages)] == ["grid-cnn-a@init", "grid-cnn-b@init"]


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray cluster on 127.0.0.1, shared by the module's tests."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
             logging_level="error")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_a_ray_grid_writes_the_same_rows_as_a_local_one(ray_cluster, tmp_path):
    local = invoke(grid, *grid_args("-q", metrics=("encoding", "spatial")))
    assert local.exit_code == 0, local.output
    ray_db = tmp_path / "ray.db"
    env = {**os.environ, "BRAINBENCH_DB": str(ray_db)}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "brainbench.core.commands.grid", "--executor", "ray", "--ray-address", ray_cluster,
               *grid_args(metrics=("encoding", "spatial"))]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"Ray tasks on {ray_cluster}" in result.stderr
    assert "grid: 12 jobs done, 0 already stored, 0 failed" in result.stderr
    assert sorted(map(comparable, stored(ray_db))) == sorted(map(comparable, stored()))


def test_grid_names_a_training_series_by_step_like_bench_run(tmp_path):
    from brainbench.core.registry.specs import get_registry
    from brainbench.core.grid.selection import candidate_checkpoints

    folder = tmp_path / "tiny-dino"
    folder.mkdir()
    for name in ("model_0000099.pth", "model_0000009.pth"):
        (folder / name).touch()
    assert candidate_checkpoints(get_registry().model("tiny-dino"), tmp_path) == ["init", "step-10", "step-100"]

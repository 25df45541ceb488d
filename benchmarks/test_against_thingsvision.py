"""brainbench's extraction against THINGSvision's, on the same model, weights and JPEGs.

Skipped unless ``BRAINBENCH_THINGSVISION_PYTHON`` names the python of THINGSvision's own environment
(``make thingsvision-env`` builds ``.venv-thingsvision/``: thingsvision 2.7.3 with brainbench's torch
and transformers, see benchmarks/thingsvision-requirements.txt). Then, for dinov3-small (and
dinov3-base in the full pass):

1. ``_extraction.py export`` saves the model's ``@init`` weights (seed 0) with ``save_pretrained``;
2. ``_thingsvision_worker.py``, under THINGSvision's python, loads that folder as a transformers
   ``DINOv3ViTModel`` and extracts the embedding output and the 12 blocks' outputs with
   THINGSvision's ``ImageDataset``/``DataLoader`` and ``extract_features`` (one pass for all 13
   modules), pooled by the mean of the patch tokens (registers excluded) in its ``flatten_fn``;
3. ``_extraction.py run --weights``, under brainbench's python, loads the same folder and runs
   ``extract()`` (its default: every layer, the same pooling, a fresh cache folder, decoding workers).

Each side runs in its own process. Two times are reported per side: the extraction alone (measured
inside the worker, from the dataset/``extract()`` call to the pooled features in memory; the model is
loaded before it) and the whole process (interpreter start, imports — THINGSvision imports
TensorFlow — loading the weights, extraction, saving the features), with its CPU seconds (the
worker's and its children's: steadier than wall time on a busy machine). Each ratio is THINGSvision's
time over brainbench's: above 1, brainbench is faster. Memory is each worker's own peak RSS
(``VmHWM``), and the peak of the summed PSS of the worker and its children (brainbench's decoding
workers), both from /proc (benchmarks/_memory.py: ``ru_maxrss`` would report the pytest process's RSS
at the fork). The features of both sides must have the
same shape and agree to float tolerance; timings are only reported.

``pytest benchmarks/test_against_thingsvision.py --benchmark-only``: 192 images (set
``BRAINBENCH_BENCH_THINGSVISION_N``), batch 16; ``--benchmark-disable`` (or
``BRAINBENCH_BENCH_QUICK=1``): dinov3-small on 16 images.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_extraction.py"
TV_WORKER = HERE / "_thingsvision_worker.py"
ENV = "BRAINBENCH_THINGSVISION_PYTHON"
BATCH = 16


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(cmd: list[str], env: dict | None = None) -> tuple[dict, float, float]:
    """The JSON of the last stdout line of ``cmd``, and the process's wall and CPU seconds (its children's too)."""
    start, cpu = time.perf_counter(), _cpu_of_children()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds, cpu = time.perf_counter() - start, _cpu_of_children() - cpu
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd[:2]))} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]), seconds, cpu


@pytest.mark.parametrize("name", ["dinov3-small", "dinov3-base"])
def test_extraction_against_thingsvision(benchmark, images, tmp_path, quick, lines, name):
    python = os.environ.get(ENV)
    if not python:
        pytest.skip(f"{ENV} is not set (THINGSvision's python: `make thingsvision-env`)")
    if quick and name == "dinov3-base":
        pytest.skip("dinov3-base runs in the full pass only")
    if not Path(python).is_file():
        pytest.fail(f"{ENV}={python} is not a file; `make thingsvision-env` builds .venv-thingsvision/bin/python")
    from _extraction import jpeg_folder

    n = 16 if quick else int(os.environ.get("BRAINBENCH_BENCH_THINGSVISION_N", 192))
    jpeg_folder(images, n)
    weights = tmp_path / "weights"
    model = _run([sys.executable, str(WORKER), "export", name, str(weights)])[0]
    tv_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # THINGSvision's side never sees brainbench
    tv_env["HF_HUB_OFFLINE"] = "1"
    bb_env = {**os.environ, "BRAINBENCH_HOME": str(tmp_path / "home")}  # its memo of the weights' hash stays here
    results = {}

    def measure():
        results["tv"] = _run([python, str(TV_WORKER), str(weights), str(images), str(tmp_path / "tv"), "--n", str(n),
                              "--batch", str(BATCH), "--size", str(model["image_size"]),
                              "--mean", *map(str, model["mean"]), "--std", *map(str, model["std"]),
                              "--save", str(tmp_path / "tv.npz")], env=tv_env)
        results["bb"] = _run([sys.executable, str(WORKER), "run", name, str(images), str(tmp_path / "cache"),
                              "--n", str(n), "--batch", str(BATCH), "--weights", str(weights),
                              "--save", str(tmp_path / "bb.npz")], env=bb_env)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    (tv, tv_wall, tv_cpu), (bb, bb_wall, bb_cpu) = results["tv"], results["bb"]
    tv_feats, bb_feats = np.load(tmp_path / "tv.npz"), np.load(tmp_path / "bb.npz")
    assert sorted(tv_feats.files) == sorted(bb_feats.files) == sorted(model["layers"])
    worst = 0.0
    for layer in model["layers"]:
        a, b = tv_feats[layer], bb_feats[layer]
        assert a.shape == b.shape == (n, a.shape[1]), (layer, a.shape, b.shape)
        scale = float(np.abs(b).max()) or 1.0
        worst = max(worst, float(np.abs(a - b).max()) / scale)
    versions, width = tv["versions"], bb_feats[model["layers"][0]].shape[1]
    ours = {lib: version(lib) for lib in ("torch", "transformers")}
    libraries = (f"torch {versions['torch']}, transformers {versions['transformers']} on both sides"
                 if all(versions[lib].split("+")[0] == ours[lib].split("+")[0] for lib in ours) else
                 f"THINGSvision's torch {versions['torch']} and transformers {versions['transformers']}, brainbench's "
                 f"{ours['torch']} and {ours['transformers']}")
    lines.append(
        f"THINGSvision {versions['thingsvision']} vs brainbench, {name} (its @init weights, one saved folder) on "
        f"{n} × 425-px JPEGs, batch {BATCH}, {len(model['layers'])} layers × {width}, "
        f"patch-token mean ({libraries}): "
        f"extraction THINGSvision {tv['extract_s']:.1f} s, brainbench {bb['extract_s']:.1f} s "
        f"(ratio {tv['extract_s'] / bb['extract_s']:.2f}); whole process {tv_wall:.1f} s vs {bb_wall:.1f} s "
        f"(ratio {tv_wall / bb_wall:.2f}; CPU {tv_cpu:.1f} s vs {bb_cpu:.1f} s, ratio {tv_cpu / bb_cpu:.2f}); "
        f"peak memory THINGSvision {tv['peak_rss_mb']:.0f} MB, brainbench {bb['peak_rss_mb']:.0f} MB (VmHWM of the "
        f"process; with its decoding workers, summed PSS: {tv['peak_pss_mb']:.0f} vs {bb['peak_pss_mb']:.0f} MB); "
        f"features agree to {worst:.1e} of the "
        f"largest value"
    )
    assert worst < 1e-4, f"the two sides' features differ by {worst:.2e} of the largest value"
    # gross failures only: both finished, with the same features; the timings are reported, not asserted

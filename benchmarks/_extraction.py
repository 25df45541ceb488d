"""Workloads of the extraction benchmarks, and a worker run in its own process (peak RSS, kill -9).

``python benchmarks/_extraction.py run MODEL IMAGES CACHE [--n N] [--batch B] [--count FILE]``
extracts MODEL@init over the first N JPEGs of IMAGES into CACHE and prints its peak RSS (MB) as
JSON; with ``--count`` it appends the number of images of each forward pass to FILE before the
pass, so a killed run tells how far it got. ``--weights DIR`` loads those weights instead of the
random ones, ``--save FILE`` writes the pooled layers to FILE (``.npz``); the JSON also has the
seconds of ``extract()`` alone (``extract_s``: the model is built before it). Memory is measured
from /proc (benchmarks/_memory.py): ``peak_rss_mb`` is the worker's own peak RSS (``VmHWM``),
``peak_pss_mb`` the peak of the summed PSS of the worker and its decoding workers, sampled every
50 ms from before the model is built to the end.

``python benchmarks/_extraction.py export MODEL DIR`` saves MODEL@init (a transformers model) with
``save_pretrained`` into DIR and prints its preprocessing and layers as JSON, for
benchmarks/test_against_thingsvision.py, whose other side loads the same folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

#: NSD's stimulus resolution (px): images are resized to the model's 224 px, as in the paper
NSD_SIZE = 425


def jpeg_folder(folder: Path, n: int, size: int = NSD_SIZE) -> list[Path]:
    """``n`` JPEGs (``size`` px, quality 90) made from scikit-image's photographs: real decoding and resizing."""
    from PIL import Image

    from brainbench.plugins.datasets.synthetic import photo_stimuli

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img{i:05d}.jpg" for i in range(n)]
    missing = [i for i, p in enumerate(paths) if not p.is_file()]
    for start in range(0, len(missing), 100):
        block = missing[start: start + 100]
        images = photo_stimuli(len(block), size, seed=block[0]).images
        for i, image in zip(block, images):
            Image.fromarray(image).save(paths[i], quality=90)
    return paths


def stimuli(folder: Path, n: int):
    from brainbench.plugins.datasets.things_meg import ThingsImages

    return ThingsImages(jpeg_folder(folder, n))


def build(name: str, checkpoint: str = "init", **options):
    from brainbench.core.registry import get_registry

    return get_registry().model(name).factory(checkpoint, **options)


def _export(model_name: str, folder: Path) -> None:
    import torch

    model = build(model_name)
    model.load(torch.device("cpu"))
    model.network.save_pretrained(folder)
    print(json.dumps({"image_size": model.image_size, "mean": list(model.mean), "std": list(model.std),
                      "num_prefix_tokens": model.num_prefix_tokens, "layers": model.layer_names}))


def _main(argv: list[str]) -> None:
    if argv[:1] == ["export"]:
        export = argparse.ArgumentParser()
        export.add_argument("command", choices=["export"])
        export.add_argument("model")
        export.add_argument("folder", type=Path)
        args = export.parse_args(argv)
        _export(args.model, args.folder)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run"])
    parser.add_argument("model")
    parser.add_argument("images", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--count", type=Path)
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args(argv)
    from _memory import PeakPSS, high_water_mb

    with PeakPSS() as memory:
        result = _run(args)
    print(json.dumps({**result, "peak_rss_mb": high_water_mb(), "peak_pss_mb": memory.peak, "n": args.n}))


def _run(args) -> dict:
    import torch

    from brainbench.core.pipeline.activations import extract

    model = build(args.model, "exported", weights=args.weights) if args.weights else build(args.model)
    model.load(torch.device("cpu"))  # built (or read) here, so that extract_s is the extraction alone
    if args.count is not None:
        original = model.iter_layers

        def counted(pixels):
            with open(args.count, "a") as f:
                f.write(f"{len(pixels)}\n")
            yield from original(pixels)

        model.iter_layers = counted
    images = stimuli(args.images, args.n)
    start = time.perf_counter()
    result = extract(model, images, device="cpu", batch_size=args.batch,
                     cache_dir=args.cache, pooling=args.pooling, progress=False)
    total = sum(float(np.asarray(v[:1]).sum()) for v in result.layers.values())  # touch every layer
    seconds = time.perf_counter() - start
    if args.save is not None:
        np.savez(args.save, **{name: np.asarray(v) for name, v in result.layers.items()})
    return {"check": total, "extract_s": seconds}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _main(sys.argv[1:])

"""Workloads of the extraction benchmarks, and a worker run in its own process (peak RSS, kill -9).

``python benchmarks/_extraction.py run MODEL IMAGES CACHE [--n N] [--batch B] [--count FILE]``
extracts MODEL@init over the first N JPEGs of IMAGES into CACHE and prints its peak RSS (MB) as
JSON; with ``--count`` it appends the number of images of each forward pass to FILE before the
pass, so a killed run tells how far it got.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
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


def build(name: str, **options):
    from brainbench.core.registry import get_registry

    return get_registry().model(name).factory("init", **options)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run"])
    parser.add_argument("model")
    parser.add_argument("images", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--count", type=Path)
    args = parser.parse_args(argv)
    from brainbench.core.pipeline.activations import extract

    model = build(args.model)
    if args.count is not None:
        original = model.iter_layers

        def counted(pixels):
            with open(args.count, "a") as f:
                f.write(f"{len(pixels)}\n")
            yield from original(pixels)

        model.iter_layers = counted
    result = extract(model, stimuli(args.images, args.n), device="cpu", batch_size=args.batch,
                     cache_dir=args.cache, pooling=args.pooling, progress=False)
    total = sum(float(np.asarray(v[:1]).sum()) for v in result.layers.values())  # touch every layer
    print(json.dumps({"peak_rss_mb": peak_rss_mb(), "n": args.n, "check": total}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _main(sys.argv[1:])

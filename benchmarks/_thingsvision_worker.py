"""THINGSvision's side of benchmarks/test_against_thingsvision.py, run under THINGSvision's own python.

``PYTHON benchmarks/_thingsvision_worker.py WEIGHTS IMAGES OUT --n N --batch B --size S --mean R G B
--std R G B [--save FILE]`` loads the transformers DINOv3 saved in WEIGHTS (``save_pretrained``), and
extracts, with THINGSvision's documented API, the embedding output and every transformer block's
output for the first N JPEGs (sorted by name) of IMAGES, pooled as brainbench pools by default: the
mean of the patch tokens, CLS and register tokens excluded. It prints one JSON line: peak memory (MB,
measured as brainbench's side measures it, benchmarks/_memory.py),
the seconds of the extraction alone (``extract_s``: dataset, loader and ``extract_features``; the
model is loaded before) and the versions used. ``--save`` writes the features to FILE (``.npz``,
keys ``layer00``… as brainbench names them).

How THINGSvision is used (thingsvision 2.7.3; README and docs/CustomModels.md):

- ``get_extractor_from_model(model=..., device="cpu", backend="pt", preprocess=..., flatten_fn=...)``
  wraps a model built outside THINGSvision (its own ``get_extractor`` sources have no DINOv3);
- images come from THINGSvision's ``ImageDataset`` (PIL decoding) and ``DataLoader`` (one process);
- ``extract_features(batches, module_names=[...], flatten_acts=True, output_type="ndarray")`` takes
  all 13 modules in one pass (THINGSvision supports several modules per call: a forward hook per
  module, each output cloned);
- the pooling is THINGSvision's ``flatten_fn`` hook, ``flatten_fn(self, act)``, called per batch
  and module when ``flatten_acts=True``. THINGSvision's built-in ``token_extraction="avg_pool"``
  averages tokens 1: and so the four register tokens too; brainbench's default does not.
- ``preprocess`` reproduces brainbench's resize (shorter side to S, bicubic with antialiasing on
  [0, 1] floats, centre crop, rounded to 8 bits) and normalisation, so that both sides see the same
  pixels; THINGSvision's default (PIL bilinear resize to 256, crop 224) would differ.

Standalone: it imports thingsvision, torch, torchvision, transformers and numpy, never brainbench.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _preprocess(size: int, mean: list[float], std: list[float]):
    """brainbench's resize_uint8 + normalise as a torchvision composition of PIL → float tensor."""
    from torchvision import transforms as T

    return T.Compose([
        T.PILToTensor(),
        T.Lambda(lambda t: t.float().div(255.0)),
        T.Resize(size, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
        T.CenterCrop(size),
        T.Lambda(lambda t: t.mul(255.0).round().clamp(0, 255).div(255.0)),  # 8-bit levels, as brainbench keeps
        T.Normalize(mean, std),
    ])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("out", type=Path, help="THINGSvision's out_path (it writes file_names.txt there)")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--mean", type=float, nargs=3, default=[0.485, 0.456, 0.406])
    parser.add_argument("--std", type=float, nargs=3, default=[0.229, 0.224, 0.225])
    parser.add_argument("--save", type=Path)
    args = parser.parse_args(argv)
    from _memory import PeakPSS, high_water_mb  # beside this script; standalone too

    with PeakPSS() as memory:
        result = _run(args)
    print(json.dumps({**result, "peak_rss_mb": high_water_mb(), "peak_pss_mb": memory.peak}))


def _run(args) -> dict:
    import numpy as np
    import thingsvision
    import torch
    import transformers
    from thingsvision import get_extractor_from_model
    from thingsvision.utils.data import DataLoader, ImageDataset
    from transformers import DINOv3ViTModel

    model = DINOv3ViTModel.from_pretrained(args.weights, dtype=torch.float32).eval()
    prefix = 1 + model.config.num_register_tokens  # CLS + registers
    modules = ["embeddings"] + [f"model.layer.{i}" for i in range(model.config.num_hidden_layers)]

    def patch_mean(self, act):
        return act[:, prefix:].mean(dim=1)

    extractor = get_extractor_from_model(model=model, device="cpu", backend="pt",
                                         preprocess=_preprocess(args.size, args.mean, args.std), flatten_fn=patch_mean)
    names = sorted(p.name for p in args.images.iterdir() if p.suffix == ".jpg")[: args.n]
    if len(names) < args.n:
        raise SystemExit(f"{args.images} has {len(names)} JPEGs, fewer than --n {args.n}")

    start = time.perf_counter()
    dataset = ImageDataset(root=str(args.images), out_path=str(args.out), backend=extractor.get_backend(),
                           file_names=names, transforms=extractor.get_transformations())
    batches = DataLoader(dataset=dataset, batch_size=args.batch, backend=extractor.get_backend())
    features = extractor.extract_features(batches=batches, module_names=modules, flatten_acts=True,
                                          output_type="ndarray")
    seconds = time.perf_counter() - start

    layers = {f"layer{i:02d}": features[m] for i, m in enumerate(modules)}
    if args.save is not None:
        np.savez(args.save, **layers)
    return {
        "extract_s": seconds, "n": len(names), "shapes": {k: list(v.shape) for k, v in layers.items()},
        "versions": {"thingsvision": thingsvision.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "python": sys.version.split()[0]},
        "torch_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1:])

"""Layer-wise activations of a model over a stimulus set, pooled per image, cached on disk.

Cache layout: ``<home>/activations/<model>/<key>/<layer>.npy`` plus ``meta.json``.
``key`` hashes everything that changes activations: the model's name, checkpoint and
weights fingerprint, its preprocessing (resolution, normalisation, resize rule), the
token pooling, the stimulus set's content hash and this module's format version; the
layer is the file name. Files are written to a temporary name and renamed, so an
interrupted run never leaves a half-written file behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from .data import StimulusSet
from .errors import BrainbenchError
from .model import VisionModel

FORMAT_VERSION = 1
POOLINGS = ("mean", "cls", "cls+mean", "all")
#: features kept by ``pooling="all"`` (a fixed Gaussian random projection of all tokens)
ALL_TOKENS_DIM = 4096


@dataclass
class Activations:
    """Pooled activations: ``layers`` maps layer name → (n_stimuli, n_features) float32."""

    layers: dict[str, np.ndarray]
    key: str
    from_cache: bool


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise BrainbenchError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BrainbenchError(f"device {device!r} was asked for but no CUDA GPU is available; use --device cpu")
    return resolved


def pool_tokens(output: torch.Tensor, model: VisionModel, pooling: str) -> torch.Tensor:
    """One layer's output → (batch, features).

    - ``mean`` (default): mean over patch tokens, CLS and register tokens excluded;
      spatial mean for convolutional maps.
    - ``cls``: the CLS token (token 0).
    - ``cls+mean``: both, concatenated.
    - ``all``: every token flattened, then a fixed random projection to at most
      :data:`ALL_TOKENS_DIM` features (seeded, so identical across runs).
    """
    if output.ndim == 2:
        return output
    if output.ndim == 4:  # (batch, channels, h, w)
        output = output.flatten(2).transpose(1, 2)
        prefix = 0
    elif output.ndim == 3:
        prefix = model.num_prefix_tokens
    else:
        raise BrainbenchError(f"model {model.name!r} returned a layer of shape {tuple(output.shape)}")
    if pooling == "mean":
        return output[:, prefix:].mean(dim=1)
    if pooling in ("cls", "cls+mean"):
        if not model.has_cls_token or output.shape[1] == 0 or prefix == 0:
            raise BrainbenchError(f"model {model.name!r} has no CLS token; use --pooling mean")
        cls = output[:, 0]
        return cls if pooling == "cls" else torch.cat([cls, output[:, prefix:].mean(dim=1)], dim=1)
    if pooling == "all":
        flat = output.flatten(1)
        if flat.shape[1] <= ALL_TOKENS_DIM:
            return flat
        gen = torch.Generator().manual_seed(flat.shape[1])
        proj = torch.randn(flat.shape[1], ALL_TOKENS_DIM, generator=gen) / ALL_TOKENS_DIM**0.5
        return flat.float() @ proj.to(flat.device)
    raise BrainbenchError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


def cache_key(model: VisionModel, stimuli: StimulusSet, pooling: str) -> str:
    identity = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "checkpoint": model.checkpoint,
        "weights": model.fingerprint(),
        "preprocessing": model.preprocessing(),
        "pooling": pooling,
        "stimuli": stimuli.fingerprint(),
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def _layer_file(folder: Path, layer: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer)
    return folder / f"{safe}.npy"


def _atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def extract(
    model: VisionModel,
    stimuli: StimulusSet,
    *,
    layers: Sequence[str] | None = None,
    pooling: str = "mean",
    device: str = "auto",
    batch_size: int = 32,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> Activations:
    """Pooled activations of ``layers`` (default: all) for every stimulus.

    With ``cache_dir`` set, layers already on disk are loaded instead of recomputed;
    the model is only built when some layer is missing.
    """
    if pooling not in POOLINGS:
        raise BrainbenchError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    all_layers = list(model.layer_names)
    wanted = all_layers if layers is None else list(layers)
    missing_names = [layer for layer in wanted if layer not in all_layers]
    if missing_names:
        raise BrainbenchError(f"model {model.name!r} has no layer {missing_names[0]!r}; its layers: {', '.join(all_layers)}")
    key = cache_key(model, stimuli, pooling)
    folder = None if cache_dir is None else Path(cache_dir) / model.name / key
    if folder is not None and all(_layer_file(folder, layer).is_file() for layer in wanted):
        return Activations({layer: np.load(_layer_file(folder, layer)) for layer in wanted}, key, True)

    torch_device = resolve_device(device)
    model.load(torch_device)
    index = {layer: i for i, layer in enumerate(all_layers)}
    chunks: dict[str, list[np.ndarray]] = {layer: [] for layer in wanted}
    starts = range(0, len(stimuli), batch_size)
    bar = tqdm(starts, desc=f"{model.name}@{model.checkpoint}", unit="batch", disable=not progress, leave=False)
    with torch.inference_mode():
        for start in bar:
            images = stimuli.load(range(start, min(start + batch_size, len(stimuli))))
            pixels = model.preprocess(images).to(torch_device)
            outputs = model.forward_layers(pixels)
            if len(outputs) != len(all_layers):
                raise BrainbenchError(
                    f"model {model.name!r} returned {len(outputs)} layers but declares {len(all_layers)}"
                )
            for layer in wanted:
                pooled = pool_tokens(outputs[index[layer]], model, pooling)
                chunks[layer].append(pooled.float().cpu().numpy())
    result = {layer: np.concatenate(parts).astype(np.float32, copy=False) for layer, parts in chunks.items()}
    if folder is not None:
        for layer, array in result.items():
            _atomic_save(_layer_file(folder, layer), array)
        meta = {"model": model.name, "checkpoint": model.checkpoint, "pooling": pooling,
                "n_stimuli": len(stimuli), "layers": all_layers}
        _atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1))
    return Activations(result, key, False)

"""Layer-wise activations of a model over a stimulus set, pooled per image, cached on disk.

Cache layout: ``<home>/activations/<model>/<key>/<layer>.npy`` plus ``meta.json``.
``key`` hashes everything that changes activations: the model's name, checkpoint and
weights fingerprint, its preprocessing (resolution, normalisation, resize rule), the
token pooling, the precision (when not fp32), the stimulus set's content hash and this
module's format version; the layer is the file name. Files are written to a temporary
name and renamed, so an interrupted run never leaves a half-written file behind.

Memory: images go through the model in batches; each layer's output is pooled and moved
to the CPU as soon as the model yields it (:meth:`VisionModel.iter_layers`). Before the
model is built, a pre-flight estimate (:func:`check_memory`) refuses, in one sentence, a
model whose weights and one image cannot fit in the device's free memory.
``batch_size="auto"`` starts from the largest batch the estimate allows and halves it
whenever the device runs out of memory.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..compute.memory import free_host_memory
from ..contract.data import StimulusSet
from ..errors import BrainbenchError
from ..files import atomic_write
from ..contract.model import VisionModel, resolve_precision

FORMAT_VERSION = 1
POOLINGS = ("mean", "cls", "cls+mean", "all")
#: features kept by ``pooling="all"`` (a fixed sparse random projection of all tokens)
ALL_TOKENS_DIM = 4096
#: the projection used by ``pooling="all"`` (enters the cache key)
ALL_TOKENS_PROJECTION = "countsketch-v1"
#: largest batch ``batch_size="auto"`` tries, per device type
AUTO_BATCH_CAP = {"cuda": 256, "cpu": 32}


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
    - ``all``: every token flattened; above :data:`ALL_TOKENS_DIM` features, a fixed sparse
      random projection to :data:`ALL_TOKENS_DIM` (CountSketch: each input feature is added,
      with a random sign, to one random output feature; seeded by the input size, so identical
      across runs, and inner products are preserved in expectation). Unlike a dense Gaussian
      matrix it needs no (features × 4096) matrix, which for DINOv3-7B would be 13 GB.
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
        buckets, signs = _sketch(flat.shape[1])
        out = torch.zeros(flat.shape[0], ALL_TOKENS_DIM, dtype=torch.float32, device=flat.device)
        return out.index_add_(1, buckets.to(flat.device), flat.float() * signs.to(flat.device))
    raise BrainbenchError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")


@functools.lru_cache(maxsize=8)
def _sketch(n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The CountSketch of ``pooling="all"``: an output index and a ±1 sign per input feature."""
    gen = torch.Generator().manual_seed(n_features)
    buckets = torch.randint(0, ALL_TOKENS_DIM, (n_features,), generator=gen)
    signs = torch.randint(0, 2, (n_features,), generator=gen).float().mul_(2).sub_(1)
    return buckets, signs


def cache_key(model: VisionModel, stimuli: StimulusSet, pooling: str) -> str:
    """The activation cache key of ``model`` (at its current precision) on ``stimuli``."""
    identity = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "checkpoint": model.checkpoint,
        "weights": model.fingerprint(),
        "preprocessing": model.preprocessing(),
        "pooling": pooling,
        "stimuli": stimuli.fingerprint(),
    }
    # Added only when they apply, so that keys written before they existed stay valid.
    if pooling == "all":
        identity["projection"] = ALL_TOKENS_PROJECTION
    if model.precision != "fp32":
        identity["precision"] = model.precision
    if getattr(model, "layer_selection", None):  # --layers that reads submodules (core/layers.py)
        identity["layers"] = list(model.layer_selection)
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def model_folder(cache_dir: Path, name: str) -> Path:
    """``cache_dir/<name>``; a name with characters unsafe in a path (``hf:org/name``) gets a safe form plus a hash."""
    safe = "".join(c if c.isalnum() or c in "-_.+" else "-" for c in name)
    return Path(cache_dir) / (safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}")


def _layer_file(folder: Path, layer: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer)
    return folder / f"{safe}.npy"


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic_write(path, "wb") as f:
        np.save(f, array)


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device``: the GPU's free memory, or the RAM (and container limit) left on the CPU."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    return free_host_memory()


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(model: VisionModel, device: torch.device, budget: int | None = None) -> int | None:
    """Pre-flight check: the largest batch that fits, None when unknown, or a one-sentence refusal.

    ``budget`` is the number of bytes the model may use (default: what ``device`` has free).
    The estimate comes from :meth:`VisionModel.estimate_memory` at the model's precision.
    """
    estimate = model.estimate_memory()
    available = budget if budget is not None else available_memory(device)
    if estimate is None or available is None:
        return None
    on_cpu = device.type == "cpu"
    resident = max(estimate.weights, estimate.staging) if on_cpu else estimate.weights
    if resident + estimate.per_image > available:
        where = "this machine's RAM" if on_cpu else "the GPU"
        if model.precision == "fp32":
            hint = "use --precision bf16 on a GPU, a GPU with more memory, or a smaller model"
        else:
            hint = "use a GPU with more memory or a smaller model"
        staged = (f" (it is built in {_gib(estimate.staging)} of float32 first)"
                  if on_cpu and estimate.staging > estimate.weights else "")
        raise BrainbenchError(
            f"{model.name} does not fit in {where}: it needs about {_gib(estimate.weights)} for its "
            f"{model.precision} weights{staged} plus {_gib(estimate.per_image)} per image, but only "
            f"{_gib(available)} is free; {hint}"
        )
    host = None if on_cpu else available_memory(torch.device("cpu"))
    if host is not None and estimate.staging > host:
        raise BrainbenchError(
            f"{model.name} needs about {_gib(estimate.staging)} of RAM to load its weights before they move to "
            f"the GPU, but only {_gib(host)} is free; free some RAM or use a machine with more"
        )
    return int((available - resident) // max(estimate.per_image, 1))


def _free_device_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _run_batch(model, images, device, wanted, index, pooling, autocast_dtype):
    """Pool every wanted layer of one batch; layers leave the device as soon as they are yielded."""
    pixels = model.preprocess(images).to(device)
    context = (torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None
               else contextlib.nullcontext())
    pooled: dict[str, np.ndarray] = {}
    count = 0
    with context:
        for position, output in enumerate(model.iter_layers(pixels)):
            count += 1
            layer = wanted.get(position)
            if layer is not None:
                pooled[layer] = pool_tokens(output.float(), model, pooling).cpu().numpy()
            del output
    if count != len(index):
        raise BrainbenchError(f"model {model.name!r} returned {count} layers but declares {len(index)}")
    return pooled


def extract(
    model: VisionModel,
    stimuli: StimulusSet,
    *,
    layers: Sequence[str] | None = None,
    pooling: str = "mean",
    device: str = "auto",
    batch_size: int | str = 32,
    cache_dir: Path | None = None,
    progress: bool = True,
    precision: str | None = None,
    memory_budget: int | None = None,
) -> Activations:
    """Pooled activations of ``layers`` (default: all) for every stimulus.

    Parameters
    ----------
    model, stimuli
        What to run, and on which images.
    layers
        Layer names to keep (default: every layer of ``model``), or a ``--layers`` selection: names
        and globs of layers or submodules, comma-separated (:mod:`brainbench.core.contract.layers`).
    pooling
        Token pooling, one of :data:`POOLINGS` (see :func:`pool_tokens`).
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    batch_size
        Images per forward pass, or ``"auto"``: the largest batch the memory estimate allows
        (at most :data:`AUTO_BATCH_CAP`), halved each time the device runs out of memory.
    cache_dir
        With a folder, layers already on disk are loaded instead of recomputed and new ones
        are saved; the model is only built when some layer is missing.
    progress
        Show a progress bar.
    precision
        ``fp32``, ``bf16`` or ``fp16``; None keeps the model's own (``model.precision``).
        Half precision is meant for GPUs; it enters the cache key.
    memory_budget
        Bytes the model may use (default: what the device has free), for the pre-flight check.

    Returns
    -------
    Activations
        Layer name → (n_stimuli, n_features) float32, the cache key, and whether it came from the cache.
    """
    if pooling not in POOLINGS:
        raise BrainbenchError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
    auto = batch_size == "auto"
    if not auto and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise BrainbenchError(f"invalid batch size {batch_size!r}; give a positive integer or 'auto'")
    if precision is not None:
        model.set_precision(precision)
    dtype = resolve_precision(model.precision)
    if layers is not None:
        from ..contract.layers import with_layers

        model, layers = with_layers(model, layers)  # submodules are read by forward hooks
    all_layers = list(model.layer_names)
    wanted = all_layers if layers is None else list(layers)
    missing_names = [layer for layer in wanted if layer not in all_layers]
    if missing_names:
        raise BrainbenchError(f"model {model.name!r} has no layer {missing_names[0]!r}; its layers: {', '.join(all_layers)}")
    key = cache_key(model, stimuli, pooling)
    features_for = getattr(model, "features_for", None)
    if callable(features_for):  # imported features (plugins/models/features.py): read, nothing to run or cache
        arrays = features_for(stimuli, wanted)
        return Activations({layer: pool_tokens(torch.from_numpy(np.ascontiguousarray(arrays[layer], dtype=np.float32)),
                                               model, pooling).numpy() for layer in wanted}, key, False)
    folder = None if cache_dir is None else model_folder(cache_dir, model.name) / key
    if folder is not None and all(_layer_file(folder, layer).is_file() for layer in wanted):
        return Activations({layer: np.load(_layer_file(folder, layer)) for layer in wanted}, key, True)

    torch_device = resolve_device(device)
    fits = check_memory(model, torch_device, memory_budget)
    if auto:
        cap = AUTO_BATCH_CAP.get(torch_device.type, 32)
        batch_size = max(1, min(cap, fits if fits is not None else cap, len(stimuli)))
    model.load(torch_device)
    autocast_dtype = None if dtype == torch.float32 or model.handles_precision else dtype
    index = {layer: i for i, layer in enumerate(all_layers)}
    by_position = {index[layer]: layer for layer in wanted}
    chunks: dict[str, list[np.ndarray]] = {layer: [] for layer in wanted}
    bar = tqdm(total=len(stimuli), desc=f"{model.name}@{model.checkpoint}", unit="img", disable=not progress,
               leave=False)
    start = 0
    with torch.inference_mode():
        while start < len(stimuli):
            stop = min(start + batch_size, len(stimuli))
            out_of_memory = False
            try:
                pooled = _run_batch(model, stimuli.load(range(start, stop)), torch_device, by_position, index,
                                    pooling, autocast_dtype)
            except torch.OutOfMemoryError:
                out_of_memory = True
            if out_of_memory:  # outside the except block, so the failed batch's tensors can be freed
                _free_device_memory(torch_device)
                if not auto or batch_size == 1:
                    hint = "; use --batch-size auto" if not auto else ""
                    raise BrainbenchError(
                        f"{model.name} ran out of {torch_device.type} memory with a batch of {batch_size} "
                        f"image{'s' if batch_size > 1 else ''} at {model.precision}{hint or '; use --precision bf16, a larger GPU or a smaller model'}"
                    )
                batch_size = max(1, batch_size // 2)
                continue
            for layer, array in pooled.items():
                chunks[layer].append(array)
            bar.update(stop - start)
            start = stop
    bar.close()
    result = {layer: np.concatenate(parts).astype(np.float32, copy=False) for layer, parts in chunks.items()}
    if folder is not None:
        for layer, array in result.items():
            _atomic_save(_layer_file(folder, layer), array)
        meta = {"model": model.name, "checkpoint": model.checkpoint, "pooling": pooling,
                "precision": model.precision, "n_stimuli": len(stimuli), "layers": all_layers}
        _atomic_write_text(folder / "meta.json", json.dumps(meta, indent=1))
    return Activations(result, key, False)

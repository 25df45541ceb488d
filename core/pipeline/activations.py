"""Layer-wise activations of a model over a stimulus set, pooled per image, cached on disk.

Cache layout: ``<home>/activations/<model>/<key>/<layer>.npy`` plus ``meta.json`` (see
:mod:`brainbench.core.pipeline.layer_store`). ``key`` hashes everything that changes activations: the
model's name, checkpoint and weights fingerprint (a hash of the weight files' content), its
preprocessing (resolution, normalisation, resize rule), the token pooling, the precision (when not
fp32), the stimulus set's content hash and this module's format version; the layer is the file
name. Every layer file is checked against the shape, dtype and checksum written with it before
it is reused; a damaged file is reported and computed again.

Pipeline: images are decoded and resized to uint8 in worker processes (a ``DataLoader``,
:mod:`brainbench.core.pipeline.input_pipeline`), or read from the preprocessed-image cache
(:mod:`brainbench.core.pipeline.image_cache`) when a model with the same resize ran before, and normalised
on the device. Each batch's pooled layers are written to preallocated per-layer files at once,
with a progress marker: a killed extraction resumes from its last complete batch, and memory holds
the model and a few batches, whatever the number of images. The layers come back as a lazy
mapping of memory-mapped arrays (:class:`~brainbench.core.pipeline.layer_store.LayerFiles`).

Memory: each layer's output is pooled and moved to the CPU as soon as the model yields it
(:meth:`VisionModel.iter_layers`). Before the model is built, a pre-flight estimate
(:func:`check_memory`) refuses, in one sentence, a model whose weights and one image cannot fit
in the device's free memory. ``batch_size="auto"`` starts from the largest batch the estimate
allows and halves it whenever the device runs out of memory.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..contract.data import StimulusSet
from ..errors import BrainbenchError
from .image_cache import CHUNK, ImageCache
from ..compute.images import normalise
from .input_pipeline import has_own_preprocess, iter_batches, release_heap
from .layer_store import LayerFiles, StreamingWriter, check_writable, layer_file, verify
from ..contract.model import VisionModel, resolve_precision
from ..compute.memory import free_host_memory

log = logging.getLogger("brainbench.cache")

FORMAT_VERSION = 2
POOLINGS = ("mean", "cls", "cls+mean", "all")
#: features kept by ``pooling="all"`` (a fixed sparse random projection of all tokens)
ALL_TOKENS_DIM = 4096
#: the projection used by ``pooling="all"`` (enters the cache key)
ALL_TOKENS_PROJECTION = "countsketch-v1"
#: largest batch ``batch_size="auto"`` tries, per device type
AUTO_BATCH_CAP = {"cuda": 256, "cpu": 32}


@dataclass
class Activations:
    """Pooled activations: ``layers`` maps layer name → (n_stimuli, n_features) float32.

    From the cache, ``layers`` is a lazy mapping of memory-mapped files (a layer is read when it is
    accessed); without a cache folder, a dict of in-memory arrays.
    """

    layers: Mapping[str, np.ndarray]
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


def _run_batch(model, batch, device, wanted, index, pooling, autocast_dtype):
    """Pool every wanted layer of one batch; layers leave the device as soon as they are yielded.

    ``batch`` is uint8 (b, 3, S, S), normalised here on the device, or already-normalised floats
    from a model's own ``preprocess``.
    """
    if batch.dtype == torch.uint8:
        pixels = normalise(batch, model.mean, model.std, device)
    else:
        pixels = batch.to(device, non_blocking=True)
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


class _InMemory:
    """Rows of each layer kept in preallocated arrays (extraction without a cache folder)."""

    def __init__(self, layers: list[str], n: int):
        self.layers, self.n, self.arrays = layers, n, {}

    def write(self, first: int, pooled: dict[str, np.ndarray]) -> None:
        for layer in self.layers:
            values = pooled[layer]
            if layer not in self.arrays:
                self.arrays[layer] = np.empty((self.n, values.shape[1]), np.float32)
            self.arrays[layer][first: first + len(values)] = values


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
    workers: int | None = None,
    image_cache: bool = True,
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
        With a folder, layers already on disk (and intact) are reused instead of recomputed, new
        ones are streamed there batch by batch, and an interrupted extraction is resumed; the model
        is only built when some layer is missing. Without one, the layers are kept in memory.
    progress
        Show a progress bar.
    precision
        ``fp32``, ``bf16`` or ``fp16``; None keeps the model's own (``model.precision``).
        Half precision is meant for GPUs; it enters the cache key.
    memory_budget
        Bytes the model may use (default: what the device has free), for the pre-flight check.
    workers
        Processes that decode and resize images (default: from the CPU count, see
        :func:`brainbench.core.pipeline.input_pipeline.default_workers`; 0 decodes in this process).
    image_cache
        With ``cache_dir``, keep the resized uint8 images in ``<cache_dir>/.images`` and reuse
        them for every model with the same resize (:mod:`brainbench.core.pipeline.image_cache`).

    Returns
    -------
    Activations
        Layer name → (n_stimuli, n_features) float32, the cache key, and whether it came from the cache.

    Raises
    ------
    BrainbenchError
        An unknown layer, pooling, precision or device; a batch that does not fit in memory; a
        cache folder that cannot be written (checked before any work) or a disk that fills up
        (found at the first batch, when the layer files are preallocated).
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
    good: dict[str, Path] = {}
    if folder is not None:
        good, bad = verify(folder, wanted, len(stimuli))
        for layer, why in bad.items():
            log.warning("Warning: the cached activations %s are damaged (%s); they are computed again",
                        layer_file(folder, layer), why)
        if len(good) == len(wanted):
            return Activations(LayerFiles({layer: good[layer] for layer in wanted}), key, True)
        check_writable(folder)
    todo = [layer for layer in wanted if layer not in good]

    torch_device = resolve_device(device)
    fits = check_memory(model, torch_device, memory_budget)
    if auto:
        cap = AUTO_BATCH_CAP.get(torch_device.type, 32)
        batch_size = max(1, min(cap, fits if fits is not None else cap, len(stimuli)))
    if folder is not None:
        sink = StreamingWriter(folder, todo, len(stimuli), {
            "key": key, "model": model.name, "checkpoint": model.checkpoint, "pooling": pooling,
            "precision": model.precision, "model_layers": all_layers})
        start = sink.resume()
        if start:
            log.warning("Resuming the interrupted extraction of %s@%s at image %d of %d", model.name,
                        model.checkpoint, start, len(stimuli))
    else:
        sink, start = _InMemory(todo, len(stimuli)), 0
    images = None
    if folder is not None and image_cache and not has_own_preprocess(model):
        resize = model.preprocessing().get("resize", "")
        images = ImageCache(Path(cache_dir) / ".images", stimuli.fingerprint(), len(stimuli), model.image_size, resize)
    have = images.load() if images is not None else {}

    model.load(torch_device)
    autocast_dtype = None if dtype == torch.float32 or model.handles_precision else dtype
    index = {layer: i for i, layer in enumerate(all_layers)}
    by_position = {index[layer]: layer for layer in todo}
    bar = tqdm(total=len(stimuli), initial=start, desc=f"{model.name}@{model.checkpoint}", unit="img",
               disable=not progress, leave=False)
    try:
        with torch.inference_mode():
            for first, batch in iter_batches(stimuli, model, start, batch_size, torch_device, workers=workers,
                                             cached=have, chunk=CHUNK):
                done = 0
                while done < len(batch):
                    size = min(batch_size, len(batch) - done)
                    out_of_memory = False
                    try:
                        pooled = _run_batch(model, batch[done: done + size], torch_device, by_position, index,
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
                    sink.write(first + done, pooled)
                    bar.update(size)
                    done += size
                if images is not None and batch.dtype == torch.uint8:
                    images.add(first, batch, have)
                del batch
                release_heap()
    finally:
        bar.close()
        if folder is not None:
            sink.close()
    if folder is None:
        return Activations({layer: sink.arrays[layer] for layer in wanted}, key, False)
    good.update(sink.finish())
    return Activations(LayerFiles({layer: good[layer] for layer in wanted}), key, False)

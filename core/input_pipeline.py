"""The input pipeline of extraction: images → uint8 at the model's resolution → normalised on the device.

Decoding and resizing run in ``torch.utils.data.DataLoader`` worker processes (their number from
the CPUs this process may use, see :func:`default_workers`), so they overlap with the forward
pass; batches arrive as uint8 (batch, 3, S, S) tensors, in pinned memory when the model runs on a
GPU, and are converted to float and normalised on the device (:func:`normalise`), where that
costs nothing next to the forward.

The preprocessing itself is :meth:`brainbench.core.model.VisionModel.preprocess`'s definition,
split in two halves: :func:`resize_uint8` (shorter side to ``image_size``, bicubic with
antialiasing, centre crop, rounded to uint8 like every image library's resize) and
:func:`normalise` ((x / 255 - mean) / std). Models that override ``preprocess`` keep it: their
batches are preprocessed by that method in the workers instead.

Images already resized by an earlier model with the same preprocessing come from the
:mod:`~brainbench.core.image_cache` instead of being decoded again.
"""
from __future__ import annotations

import ctypes
import os
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data import StimulusSet
from .model import VisionModel

#: at most this many worker processes (beyond it, decoding is no longer the bottleneck)
MAX_WORKERS = 8


def default_workers() -> int:
    """Worker processes for decoding: the CPUs this process may use, minus one for the main loop (≤ 8)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cpus - 1))


def resize_uint8(image: np.ndarray, size: int) -> torch.Tensor:
    """One uint8 (H, W, 3) (or (H, W)) image → uint8 (3, size, size) tensor.

    The shorter side is resized to ``size`` (bicubic, antialiased, in float on [0, 1]), the
    centre square is cropped and the result is rounded to 8 bits (at most half a grey level,
    1/510, from the unrounded resize).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(image[:, :, :3])).permute(2, 0, 1).float().div_(255.0)
    h, w = t.shape[1:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) != (h, w):
        t = torch.nn.functional.interpolate(
            t[None], size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
        )[0]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    t = t[:, top: top + size, left: left + size]
    return t.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)


def normalise(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float], device: torch.device) -> torch.Tensor:
    """uint8 (batch, 3, S, S) → float32 ((x / 255) - mean) / std on ``device`` (copied without blocking)."""
    pixels = batch.to(device, non_blocking=True).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return pixels.sub_(mean_t).div_(std_t)


def has_own_preprocess(model: VisionModel) -> bool:
    """Whether ``model``'s class replaces the standard preprocessing (then its method is used as is)."""
    return type(model).preprocess is not VisionModel.preprocess


class _Batches(Dataset):
    """Item ``i`` is batch ``i``: uint8 (b, 3, S, S) (or the model's own float preprocessing).

    ``cached`` maps a chunk number to the memory-mapped chunk of the image cache (complete and
    verified); images of those chunks are copied from it instead of being decoded.
    """

    def __init__(self, stimuli: StimulusSet, batches: list[range], model: VisionModel, cached: dict, chunk: int):
        self.stimuli, self.batches = stimuli, batches
        self.size = model.image_size
        # only a custom preprocess needs the model in the workers (not its network: it is unused there)
        self.custom = model.preprocess if has_own_preprocess(model) else None
        self.cached, self.chunk = cached, chunk

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        indices = self.batches[i]
        if self.custom is not None:
            return self.custom(self.stimuli.load(list(indices)))
        out = torch.empty((len(indices), 3, self.size, self.size), dtype=torch.uint8)
        todo = []
        for row, index in enumerate(indices):
            chunk = self.cached.get(index // self.chunk)
            if chunk is not None:
                out[row] = torch.from_numpy(np.array(chunk[index % self.chunk]))
            else:
                todo.append((row, index))
        if todo:
            images = self.stimuli.load([index for _, index in todo])
            for (row, _), image in zip(todo, images):
                out[row] = resize_uint8(image, self.size)
        return out


def iter_batches(stimuli: StimulusSet, model: VisionModel, start: int, batch_size: int, device: torch.device, *,
                 workers: int | None = None, cached: dict | None = None, chunk: int = 1) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(first index, batch)`` for images ``start..n``: uint8 (b, 3, S, S), or float for custom preprocessing.

    ``workers`` decode in parallel (default :func:`default_workers`; none when the work is a single
    batch or comes entirely from the cache). On a GPU the batches are in pinned memory.
    """
    batches = [range(i, min(i + batch_size, len(stimuli))) for i in range(start, len(stimuli), batch_size)]
    cached = cached or {}
    all_cached = all(i // chunk in cached for i in range(start, len(stimuli))) and not has_own_preprocess(model)
    if workers is None:
        workers = 0 if all_cached or len(batches) < 2 else default_workers()
    loader = DataLoader(_Batches(stimuli, batches, model, cached, chunk), batch_size=None, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda",
                        prefetch_factor=2 if workers else None, persistent_workers=False)
    for rows, batch in zip(batches, loader):
        yield rows.start, batch


_LIBC = None
#: RSS growth (bytes) above the level after the last trim that triggers the next ``malloc_trim``
TRIM_SLACK = 128 * 2**20
_after_trim: int | None = None


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def release_heap() -> None:
    """Give freed heap memory back to the system (glibc ``malloc_trim``) so RSS stays flat across batches.

    glibc keeps large freed blocks (per-batch tensors) in a fragmented heap; measured on
    dinov3-base, RSS otherwise grows ~6 MB per image (docs/performance.md). Trimming after every
    batch costs ~5 % of a CPU forward (the next batch faults its pages in again), so it is done
    only once RSS has grown :data:`TRIM_SLACK` past its level after the previous trim. No-op
    without glibc.
    """
    global _LIBC, _after_trim
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim  # noqa: B018 - fails on a libc without it
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return
    try:
        rss = _rss()
    except (OSError, ValueError):
        rss = None
    if rss is not None and _after_trim is not None and rss < _after_trim + TRIM_SLACK:
        return
    _LIBC.malloc_trim(0)
    try:
        _after_trim = _rss()
    except (OSError, ValueError):
        _after_trim = None

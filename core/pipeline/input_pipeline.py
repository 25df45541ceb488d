"""The input pipeline of extraction: images → uint8 at the model's resolution → normalised on the device.

Decoding and resizing run in ``torch.utils.data.DataLoader`` worker processes (their number from
the CPUs this process may use, see :func:`default_workers`), so they overlap with the forward
pass; batches arrive as uint8 (batch, 3, S, S) tensors, in pinned memory when the model runs on a
GPU, and are converted to float and normalised on the device (:func:`normalise`), where that
costs nothing next to the forward.

The preprocessing itself is :meth:`brainbench.core.contract.model.VisionModel.preprocess`'s definition,
split in two halves: :func:`resize_uint8` (shorter side to ``image_size``, bicubic with
antialiasing, centre crop, rounded to uint8 like every image library's resize) and
:func:`normalise` ((x / 255 - mean) / std). Models that override ``preprocess`` keep it: their
batches are preprocessed by that method in the workers instead.

Images already resized by an earlier model with the same preprocessing come from the
:mod:`~brainbench.core.pipeline.image_cache` instead of being decoded again.
"""
from __future__ import annotations

import ctypes
import os
from typing import Iterator, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..compute.images import resize_uint8
from ..contract.data import StimulusSet
from ..errors import BrainbenchError
from ..contract.model import VisionModel

#: at most this many worker processes (beyond it, decoding is no longer the bottleneck)
MAX_WORKERS = 8


def default_workers() -> int:
    """Worker processes for decoding: the CPUs this process may use, minus one for the main loop (≤ 8)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cpus - 1))



def has_own_preprocess(model: VisionModel) -> bool:
    """Whether ``model``'s class replaces the standard preprocessing (then its method is used as is)."""
    return type(model).preprocess is not VisionModel.preprocess


class _Failed(NamedTuple):
    """A batch that could not be made, with the one-sentence reason (raised again in the main process)."""

    message: str


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

    def __getitem__(self, i: int) -> torch.Tensor | _Failed:
        # a worker's exception reaches the main process wrapped in torch's traceback text; the one
        # sentence of a BrainbenchError (a damaged image, float stimuli) travels as a value instead
        try:
            return self._batch(i)
        except BrainbenchError as exc:
            return _Failed(str(exc))

    def _batch(self, i: int) -> torch.Tensor:
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
        if isinstance(batch, _Failed):
            raise BrainbenchError(batch.message)
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

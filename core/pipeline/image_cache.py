"""Preprocessed images on disk: uint8 (n, 3, S, S) at a model's resolution, shared by every model that resizes alike.

Every DINOv3 size and checkpoint (and most other models) resize the stimuli identically, so the
second model of a grid need not decode or resize any image again. The images are kept per
(stimulus set fingerprint, resize key) — the resolution and the resize rule; mean and std are
applied later, on the device — in ``<activations cache>/.images/<key>/``, as chunks of
:data:`CHUNK` images: ``chunk-<number>-<crc32>.npy``, each written to a temporary name and renamed
when complete (a killed run leaves whole chunks or none), read memory-mapped. The CRC32 of its
data in the file name is checked when a chunk is first opened; a chunk that fails is deleted and
its images decoded again. Writing is best effort: when the disk has no room for a chunk, the
cache is skipped (with a warning), since extraction does not need it.

Size: 150 KB per image at 224 px (11 GB for NSD's 73,000 images).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("brainbench.cache")

#: images per chunk file (38 MB at 224 px)
CHUNK = 256


def resize_key(image_size: int, resize: str) -> str:
    """The part of a model's preprocessing that the cached uint8 images depend on."""
    return f"{image_size}px-" + hashlib.sha256(json.dumps([image_size, resize]).encode()).hexdigest()[:12]


def _crc(array: np.ndarray) -> str:
    return f"{zlib.crc32(memoryview(np.ascontiguousarray(array)).cast('B')):08x}"


class ImageCache:
    """The chunked uint8 images of one stimulus set at one resolution (see the module docstring).

    Parameters
    ----------
    root
        The folder of all image caches (``<activations cache>/.images``).
    stimuli_fingerprint, n_images, image_size, resize
        What the images are: the stimulus set's content hash and length, and the resize applied.
    """

    def __init__(self, root: Path, stimuli_fingerprint: str, n_images: int, image_size: int, resize: str):
        self.folder = Path(root) / f"{stimuli_fingerprint[:32]}-{resize_key(image_size, resize)}"
        self.n, self.size = n_images, image_size
        self.n_chunks = -(-n_images // CHUNK)
        self.enabled = True
        self._pending: dict[int, dict[int, torch.Tensor]] = {}

    def chunk_rows(self, chunk: int) -> int:
        return min(CHUNK, self.n - chunk * CHUNK)

    def load(self) -> dict[int, np.ndarray]:
        """Chunk number → memory-mapped uint8 (rows, 3, S, S), for the complete chunks whose checksum holds."""
        found: dict[int, np.ndarray] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("chunk-*.npy")):
            try:
                _, number, crc = path.stem.split("-")
                chunk = int(number)
                array = np.load(path, mmap_mode="r")
                ok = (chunk < self.n_chunks and array.dtype == np.uint8
                      and array.shape == (self.chunk_rows(chunk), 3, self.size, self.size) and _crc(array) == crc)
            except (ValueError, OSError):
                ok = False
            if ok:
                found[chunk] = array
            else:
                log.warning("Warning: the preprocessed-image cache file %s is damaged; its images are decoded again",
                            path)
                path.unlink(missing_ok=True)
        return found

    def add(self, first: int, batch: torch.Tensor, have: dict[int, np.ndarray]) -> None:
        """Keep the uint8 images ``first..first+len(batch)``; write every chunk that becomes complete."""
        if not self.enabled:
            return
        for offset in range(len(batch)):
            index = first + offset
            chunk = index // CHUNK
            if chunk in have:
                continue
            rows = self._pending.setdefault(chunk, {})
            rows[index % CHUNK] = batch[offset].clone()
            if len(rows) == self.chunk_rows(chunk):
                self._write(chunk, torch.stack([rows[i] for i in range(len(rows))]).numpy())
                del self._pending[chunk]

    def _write(self, chunk: int, array: np.ndarray) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if shutil.disk_usage(self.folder).free < 2 * array.nbytes:
                raise OSError(28, "not enough free space")
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, array)
                os.replace(tmp, self.folder / f"chunk-{chunk:05d}-{_crc(array)}.npy")
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            self.enabled = False
            self._pending.clear()
            log.warning("Warning: the preprocessed-image cache in %s is not written (%s); images are decoded for "
                        "every model", self.folder, exc.strerror or exc)

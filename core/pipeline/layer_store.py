"""Activations on disk: one ``.npy`` per layer, written batch by batch, resumable, verified before reuse.

Layout of one cache entry ``<activations cache>/<model>/<key>/``:

- ``<layer>.npy``: float32 (n_stimuli, n_features), complete;
- ``meta.json``: written last; per layer its file, shape, dtype and the CRC32 of its data (the
  entry exists only once this file does);
- while extracting: ``<layer>.partial.npy`` files preallocated to their full size (so a full disk
  is found at the first batch, not at the end) and ``progress.json``, rewritten atomically after
  each batch with the number of complete rows. A killed extraction resumes at that row: at most
  the batch in flight is computed again.

Rows are written with ``pwrite`` into the preallocated file (no mapping), so the process's memory
holds one batch, whatever the number of images; the complete files are read memory-mapped
(:class:`LayerFiles`), one layer at a time.

Nothing is reused blindly (:func:`verify`): each layer file is checked against ``meta.json`` —
shape, dtype, file size, checksum — and a file that fails is reported and computed again.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import BrainbenchError
from ..files import atomic_write

log = logging.getLogger("brainbench.cache")

#: version of this layout, recorded in meta.json
STORE_FORMAT = 2
_READ_BLOCK = 1 << 24


def layer_file(folder: Path, layer: str, partial: bool = False) -> Path:
    """The file of ``layer`` in a cache entry (characters outside ``[A-Za-z0-9._-]`` become ``_``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in layer)
    return folder / f"{safe}{'.partial' if partial else ''}.npy"


def data_checksum(path: Path, offset: int, nbytes: int) -> str:
    """CRC32 (hex) of ``nbytes`` bytes of ``path`` from ``offset``, read in 16 MB blocks."""
    crc = 0
    with open(path, "rb") as f:
        f.seek(offset)
        left = nbytes
        while left > 0:
            block = f.read(min(_READ_BLOCK, left))
            if not block:
                break
            crc = zlib.crc32(block, crc)
            left -= len(block)
    return f"{crc:08x}"


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of an ``.npy`` file (ValueError / OSError when it is not one)."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy version {version}")
        if fortran:
            raise ValueError("Fortran-ordered")
        return tuple(shape), np.dtype(dtype), f.tell()


def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_write(path) as f:
        f.write(text)


def storage_error(folder: Path, exc: OSError) -> BrainbenchError:
    """One sentence for a cache folder that cannot be written (read-only, full, missing permission)."""
    reason = exc.strerror or str(exc)
    if exc.errno == 28:
        hint = "free some space there or set BRAINBENCH_HOME to a folder on a larger disk"
    else:
        hint = "make it writable or set BRAINBENCH_HOME to a writable folder"
    return BrainbenchError(f"cannot write the activation cache in {folder}: {reason}; {hint}")


def check_writable(folder: Path) -> None:
    """Create ``folder`` and a file in it, or raise :func:`storage_error` (before any work is done)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise storage_error(folder, exc) from None


def read_meta(folder: Path) -> dict | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def verify(folder: Path, layers: list[str], n_stimuli: int) -> tuple[dict[str, Path], dict[str, str]]:
    """Check the layer files of a cache entry against ``meta.json``: (good layer → file, bad layer → why).

    A layer is good when its file is an ``.npy`` of float32 (n_stimuli, n_features) with the
    shape, dtype and CRC32 that ``meta.json`` recorded, and the file holds exactly that many bytes.
    Layers without a file or a ``meta.json`` entry are neither (they are simply missing).
    """
    meta = read_meta(folder)
    files = meta.get("files", {}) if meta and meta.get("store") == STORE_FORMAT else {}
    good: dict[str, Path] = {}
    bad: dict[str, str] = {}
    for layer in layers:
        path = layer_file(folder, layer)
        record = files.get(layer)
        if record is None or not path.exists():
            continue
        try:
            shape, dtype, offset = _header(path)
        except (ValueError, OSError, SyntaxError) as exc:
            bad[layer] = f"not a readable .npy file ({exc})"
            continue
        expected = tuple(record["shape"])
        if shape != expected or shape[:1] != (n_stimuli,):
            bad[layer] = f"shape {shape} instead of {expected}"
        elif dtype != np.dtype(record["dtype"]):
            bad[layer] = f"dtype {dtype} instead of {record['dtype']}"
        elif path.stat().st_size != offset + int(np.prod(shape)) * dtype.itemsize:
            bad[layer] = f"{path.stat().st_size} bytes instead of {offset + int(np.prod(shape)) * dtype.itemsize}"
        elif data_checksum(path, offset, int(np.prod(shape)) * dtype.itemsize) != record["crc32"]:
            bad[layer] = "its content does not match the checksum written with it"
        else:
            good[layer] = path
    return good, bad


class LayerFiles(Mapping):
    """Layer name → (n_stimuli, n_features) float32, read memory-mapped on access (nothing held in memory).

    Arrays are copy-on-write mappings: a metric may modify them without touching the files.
    """

    def __init__(self, files: dict[str, Path]):
        self._files = dict(files)

    def __getitem__(self, layer: str) -> np.ndarray:
        return np.asarray(np.load(self._files[layer], mmap_mode="c"))

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"LayerFiles({list(self._files)})"


class RowsOf(Mapping):
    """The rows ``index`` of each layer of ``layers``, taken when a layer is accessed (one layer in memory at a time)."""

    def __init__(self, layers: Mapping[str, np.ndarray], index: np.ndarray):
        self._layers, self._index = layers, index

    def __getitem__(self, layer: str) -> np.ndarray:
        return np.asarray(self._layers[layer])[self._index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)


class StreamingWriter:
    """Writes the pooled layers of one cache entry batch by batch (see the module docstring).

    Parameters
    ----------
    folder
        The cache entry (created if needed).
    layers
        The layers to write, in order.
    n_stimuli
        Rows of every layer.
    identity
        JSON-able description of the entry (model, pooling, …); a ``progress.json`` left by a run
        with another identity is not resumed.
    """

    def __init__(self, folder: Path, layers: list[str], n_stimuli: int, identity: dict):
        self.folder, self.layers, self.n = Path(folder), list(layers), n_stimuli
        self.identity = {**identity, "layers": self.layers, "n_stimuli": n_stimuli}
        self.features: dict[str, int] = {}
        self.done = 0
        self._fds: dict[str, tuple[int, int]] = {}  # layer → (fd, data offset)

    # -- resume -------------------------------------------------------------------------
    def resume(self) -> int:
        """The number of complete rows left by an interrupted run with the same identity (0 if none)."""
        try:
            progress = json.loads((self.folder / "progress.json").read_text())
        except (OSError, ValueError):
            return 0
        if not isinstance(progress, dict) or progress.get("identity") != self.identity:
            return 0
        done, features = int(progress.get("done", 0)), progress.get("features", {})
        if not 0 < done <= self.n or set(features) != set(self.layers):
            return 0
        try:
            for layer in self.layers:
                path = layer_file(self.folder, layer, partial=True)
                shape, dtype, offset = _header(path)
                if shape != (self.n, features[layer]) or dtype != np.float32:
                    return 0
                if path.stat().st_size != offset + self.n * features[layer] * 4:
                    return 0
        except (ValueError, OSError, SyntaxError):
            return 0
        try:
            for layer in self.layers:
                path = layer_file(self.folder, layer, partial=True)
                self._fds[layer] = (os.open(path, os.O_WRONLY), _header(path)[2])
        except OSError as exc:
            self.close()
            raise storage_error(self.folder, exc) from None
        self.features = {layer: int(features[layer]) for layer in self.layers}
        self.done = done
        return done

    # -- writing --------------------------------------------------------------------------
    def _open(self, features: dict[str, int]) -> None:
        """Preallocate every ``<layer>.partial.npy`` to its full size (a full disk fails here, at once)."""
        self.features = features
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for layer in self.layers:
                path = layer_file(self.folder, layer, partial=True)
                header = _npy_header((self.n, features[layer]))
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                self._fds[layer] = (fd, len(header))
                os.write(fd, header)
                size = len(header) + self.n * features[layer] * 4
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, size)
                else:  # pragma: no cover - macOS: sparse, a full disk shows at the write
                    os.ftruncate(fd, size)
        except OSError as exc:
            self.abandon()
            raise storage_error(self.folder, exc) from None

    def write(self, first: int, pooled: dict[str, np.ndarray]) -> None:
        """Write rows ``first..first+len`` of every layer, then record them as complete."""
        if not self._fds:
            self._open({layer: int(pooled[layer].shape[1]) for layer in self.layers})
        rows = len(next(iter(pooled.values())))
        try:
            for layer in self.layers:
                fd, offset = self._fds[layer]
                data = np.ascontiguousarray(pooled[layer], dtype=np.float32)
                if data.shape != (rows, self.features[layer]):
                    raise BrainbenchError(f"layer {layer!r} gave {data.shape[1:]} features after {self.features[layer]}")
                os.pwrite(fd, memoryview(data).cast("B"), offset + first * self.features[layer] * 4)
            self.done = first + rows
            _atomic_write_text(self.folder / "progress.json", json.dumps(
                {"identity": self.identity, "done": self.done, "features": self.features}))
        except OSError as exc:
            self.close()
            raise storage_error(self.folder, exc) from None

    def finish(self) -> dict[str, Path]:
        """Checksum the files, move them to their final names, write ``meta.json``: layer → file."""
        self.close()
        files, records = {}, {}
        try:
            for layer in self.layers:
                partial, final = layer_file(self.folder, layer, partial=True), layer_file(self.folder, layer)
                nbytes = self.n * self.features[layer] * 4
                records[layer] = {"file": final.name, "shape": [self.n, self.features[layer]], "dtype": "float32",
                                  "crc32": data_checksum(partial, _header(partial)[2], nbytes)}
                os.replace(partial, final)
                files[layer] = final
            meta = read_meta(self.folder) or {}
            kept = meta.get("files", {}) if meta.get("store") == STORE_FORMAT else {}
            meta = {**{k: v for k, v in self.identity.items() if k != "layers"}, "store": STORE_FORMAT,
                    "files": {**kept, **records}}
            _atomic_write_text(self.folder / "meta.json", json.dumps(meta, indent=1))
            (self.folder / "progress.json").unlink(missing_ok=True)
        except OSError as exc:
            raise storage_error(self.folder, exc) from None
        return files

    def close(self) -> None:
        for fd, _ in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def abandon(self) -> None:
        """Remove the partial files (after a failure that leaves nothing worth resuming)."""
        self.close()
        for layer in self.layers:
            layer_file(self.folder, layer, partial=True).unlink(missing_ok=True)
        (self.folder / "progress.json").unlink(missing_ok=True)


def _npy_header(shape: tuple[int, int]) -> bytes:
    """The bytes of an ``.npy`` (version 1.0) header for a C-ordered float32 array of ``shape``."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                                  "fortran_order": False, "shape": shape})
    return buffer.getvalue()

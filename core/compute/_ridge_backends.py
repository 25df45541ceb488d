"""Array backends of the ridge engine (:mod:`brainbench.core.compute.ridge`): NumPy and PyTorch.

A backend exposes its array module as ``xp`` (``numpy`` or ``torch``: the functions the engine
calls on it, such as ``matmul``, ``multiply``, ``square``, ``argmin`` and ``linalg.eigh``, share
their names and their ``out=`` / ``axis=`` keywords) and the few operations that differ:
moving arrays in and out, dtypes, row gathers and the memory left for target chunks.
"""
from __future__ import annotations

import sys

import numpy as np

from .memory import free_host_memory

#: Targets per chunk on a CPU: a chunk's (n_samples, chunk) blocks then stay in the L2/L3
#: caches between the products and the elementwise passes (measured: 256-1024 are best).
CPU_CHUNK = 512
#: Targets per chunk on a GPU (if memory allows): wide products keep it busy, while the
#: host-side copies of a chunk stay small next to Y.
GPU_CHUNK = 16384


def _host_memory() -> int:
    free = free_host_memory()
    return sys.maxsize if free is None else free  # unknown (no /proc, no sysconf): chunks are not bounded by it


class NumpyBackend:
    """NumPy on the CPU (BLAS through NumPy only)."""

    xp = np
    chunk = CPU_CHUNK

    def asarray(self, a, dtype=None):
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def zeros(self, shape, dtype):
        return np.zeros(shape, dtype)

    def empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def take(self, a, rows):
        """Rows ``rows`` (an index array made by :meth:`asarray`) of ``a``."""
        return np.take(a, rows, axis=0)

    def free_memory(self) -> int:
        return _host_memory()


class TorchBackend:
    """PyTorch on ``device`` (CUDA when available): the same algebra as :class:`NumpyBackend`."""

    def __init__(self, device=None):
        import torch

        self.xp = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.chunk = CPU_CHUNK if self.device.type == "cpu" else GPU_CHUNK
        self._dtypes = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

    def asarray(self, a, dtype=None):
        dtype = None if dtype is None else self._dtype(dtype)
        return self.xp.as_tensor(a, dtype=dtype, device=self.device)

    def to_numpy(self, a) -> np.ndarray:
        return a.cpu().numpy()

    def _dtype(self, dtype):
        return self._dtypes[np.dtype(dtype)]

    def zeros(self, shape, dtype):
        return self.xp.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def empty(self, shape, dtype):
        return self.xp.empty(shape, dtype=self._dtype(dtype), device=self.device)

    def take(self, a, rows):
        return a.index_select(0, rows)

    def free_memory(self) -> int:
        if self.device.type == "cuda":
            return self.xp.cuda.mem_get_info(self.device)[0]
        return _host_memory()


def get_backend(name: str = "auto"):
    """A backend by name: ``"numpy"``, ``"torch"`` (CUDA if available, else CPU), or ``"auto"``
    (torch when CUDA is available, else numpy)."""
    if name == "numpy":
        return NumpyBackend()
    if name == "torch":
        return TorchBackend()
    if name == "auto":
        import torch

        return TorchBackend("cuda") if torch.cuda.is_available() else NumpyBackend()
    raise ValueError(f"backend must be 'auto', 'numpy' or 'torch', not {name!r}")

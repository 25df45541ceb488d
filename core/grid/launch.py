"""Which executor runs a grid (``bench grid --executor``, ``--workers``), on which devices."""
from __future__ import annotations

from .executors import LocalExecutor, PoolExecutor


def local_devices(device: str, workers: int | None) -> list[str]:
    """Devices of the local workers: one per GPU for ``auto``/``cuda`` with GPUs, else ``workers`` × ``device``."""
    import torch

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device in ("auto", "cuda") and n_gpus:
        return [f"cuda:{i % n_gpus}" for i in range(workers or n_gpus)]
    return ["cpu" if device == "auto" else device] * (workers or 1)


def make_executor(kind: str, device: str, workers: int | None = None, ray_address: str | None = None,
                  gpus_per_task: float = 1, cpus_per_task: float = 1, progress: bool = False):
    """The executor ``bench grid --executor KIND`` uses (see :mod:`brainbench.core.grid.executors`)."""
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(ray_address, device, gpus_per_task, cpus_per_task)
    devices = local_devices(device, workers)
    return LocalExecutor(devices[0], progress) if len(devices) == 1 else PoolExecutor(devices)

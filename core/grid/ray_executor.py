"""Run grid units as Ray tasks on a cluster; the driver stores what they stream back.

Each :class:`~brainbench.core.grid.executors.WorkUnit` (one model at one checkpoint) becomes one
Ray task, a streaming generator: every event the unit yields reaches the driver as soon as it
is produced, and the driver writes rows into its one results database. Workers need the same
Python environment (brainbench and its plugins installed) and, for the activation cache and
the data, the same paths as the driver: a shared filesystem (see ``docs/cluster.md``).

GPUs: with ``--device auto`` (or ``cuda``) and GPUs in the cluster, each task asks Ray for
``gpus_per_task`` GPUs (Ray then sets ``CUDA_VISIBLE_DEVICES`` for it); otherwise tasks run on
CPUs.
"""
from __future__ import annotations

import os
from typing import Iterator

from ..errors import BrainbenchError
from .executors import Event, JobDone, JobFailed, WorkUnit, describe_error, execute_unit


def _ray_unit(unit: WorkUnit, device: str):
    """The Ray task: run one unit where Ray placed it, streaming its events."""
    yield from execute_unit(unit, device)


class RayExecutor:
    """Runs each unit as a Ray task on the cluster at ``address``.

    Parameters
    ----------
    address
        The cluster (``HOST:PORT`` of the head's GCS, or ``auto``); None reads ``RAY_ADDRESS``,
        and without it Ray starts a local instance. When Ray is already initialised in this
        process, that connection is used as it is.
    device
        ``auto`` (GPUs when the cluster has some), ``cpu``, or ``cuda``.
    gpus_per_task, cpus_per_task
        The resources each task asks Ray for (GPUs only when the tasks run on GPUs).
    """

    def __init__(self, address: str | None = None, device: str = "auto", gpus_per_task: float = 1,
                 cpus_per_task: float = 1):
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.device = device
        self.gpus_per_task = gpus_per_task
        self.cpus_per_task = cpus_per_task
        self._connected_here = False

    def describe(self) -> str:
        return f"Ray tasks on {self.address or 'a local Ray instance'}"

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise BrainbenchError("the Ray executor needs Ray; install it with `pip install 'ray>=2.10'`") from None
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         logging_level="warning")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise BrainbenchError(f"cannot connect to the Ray cluster at {self.address or 'a new local instance'}"
                                      f" ({describe_error(exc)})") from None
            self._connected_here = True
        return ray

    def _placement(self, ray) -> tuple[float, str]:
        """GPUs per task and the device string the workers use."""
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        if self.device.startswith("cuda") and not has_gpus:
            raise BrainbenchError(f"device {self.device!r} was asked for but the Ray cluster has no GPUs; "
                                  "use --device cpu or auto")
        if self.device != "cpu" and has_gpus:
            return self.gpus_per_task, "cuda"  # Ray makes the task's GPUs visible as cuda:0, cuda:1, …
        return 0, "cpu"

    def run(self, units: list[WorkUnit]) -> Iterator[Event]:
        ray = self._connect()
        pending: list = []
        completed = False
        try:
            num_gpus, device = self._placement(ray)
            task = ray.remote(_ray_unit).options(num_gpus=num_gpus, num_cpus=self.cpus_per_task, max_retries=0)
            streams = {task.remote(unit, device): (unit, set()) for unit in units}
            pending = list(streams)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for stream in ready:
                    unit, finished = streams[stream]
                    try:
                        event = ray.get(next(stream))
                    except StopIteration:
                        continue
                    except Exception as exc:  # noqa: BLE001 - a crashed task fails its unfinished jobs
                        reason = f"the Ray task of {unit.ref} failed ({describe_error(exc)})"
                        for job in unit.jobs():
                            if job not in finished:
                                yield JobFailed(job, reason)
                        continue
                    if isinstance(event, (JobDone, JobFailed)):
                        finished.add(event.job)
                    pending.append(stream)
                    yield event
            completed = True
        finally:
            if not completed:  # interrupted: stop the tasks still running
                for stream in pending:
                    try:
                        ray.cancel(stream, force=True)
                    except Exception:  # noqa: BLE001 - best effort
                        pass
            if self._connected_here:
                ray.shutdown()
                self._connected_here = False

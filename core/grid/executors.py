"""What a grid worker runs, and where: in this process, one process per GPU, or Ray tasks.

The planner (:mod:`brainbench.core.grid.plan`) cuts a grid into :class:`WorkUnit`\\ s, one per
model and checkpoint, so that a model is built (and loaded on its device) at most once.
:func:`execute_unit` runs one unit and *yields* an event per job — :class:`JobStarted`, then
:class:`JobDone` (with the row to store) or :class:`JobFailed` (with the error) — plus
:class:`Note`\\ s about activations. Workers never touch the results database: the driver
stores what they yield, as soon as it arrives, so killing the driver loses at most the jobs
in flight.

Executors run units and merge their events into one stream:

- :class:`LocalExecutor`: units one after the other in this process, on one device;
- :class:`PoolExecutor`: one worker process per device (e.g. one per GPU), fed from a queue;
- :class:`~brainbench.core.grid.ray_executor.RayExecutor`: one Ray task per unit, streamed back.
"""
from __future__ import annotations

import gc
import importlib
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NamedTuple

from ..errors import BrainbenchError
from ..registry.guards import build
from ..contract.metric import Score
from ..store.results import AGGREGATE_SUBJECT, ResultRow


class JobKey(NamedTuple):
    """The key of the row a job writes (the results table's unique key)."""

    model: str
    checkpoint: str
    dataset: str
    subject: str
    metric: str
    options: str

    @property
    def label(self) -> str:
        """``model@checkpoint × dataset × metric × subject``, for messages."""
        return f"{self.model}@{self.checkpoint} × {self.dataset} × {self.metric} × {self.subject}"


@dataclass
class MetricTask:
    """One metric on one dataset: the subjects to score, and whether to aggregate them.

    ``stored`` holds, per subject already in the database, the fields of its :class:`Score`
    (``value``, ``error``, ``n_units``, ``detail``), so that the aggregate over every subject
    can be computed without scoring them again.
    """

    metric: str
    options: dict[str, Any]
    row_options: str
    subjects: list[str]
    aggregate: bool
    all_subjects: list[str]
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class DatasetTask:
    """The metrics to run on one dataset; ``stimuli`` (the stimulus set's hash) groups activations."""

    dataset: str
    options: dict[str, Any]
    stimuli: str
    metrics: list[MetricTask]


@dataclass
class WorkUnit:
    """Every pending job of one model at one checkpoint.

    ``environment`` holds the ``BRAINBENCH_*`` settings of the driver (and ``HF_HUB_OFFLINE``),
    applied by the worker; ``plugins`` lists (name, module) of plugins registered in the
    driver's process besides the built-in and entry-point ones, registered again by the worker.
    """

    model: str
    checkpoint: str
    model_options: dict[str, Any]
    datasets: list[DatasetTask]
    pooling: str = "mean"
    batch_size: int | str = 32
    precision: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    plugins: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.checkpoint}"

    def jobs(self) -> list[JobKey]:
        """The keys of the rows this unit writes, in the order it writes them."""
        out = []
        for task in self.datasets:
            for m in task.metrics:
                subjects = m.subjects + ([AGGREGATE_SUBJECT] if m.aggregate else [])
                out += [JobKey(self.model, self.checkpoint, task.dataset, s, m.metric, m.row_options) for s in subjects]
        return out


@dataclass
class JobStarted:
    job: JobKey
    worker: str = ""


@dataclass
class JobDone:
    job: JobKey
    row: ResultRow


@dataclass
class JobFailed:
    job: JobKey
    error: str
    traceback: str = ""


@dataclass
class Note:
    """A message for the user (activations extracted or reused)."""

    message: str


Event = JobStarted | JobDone | JobFailed | Note


def describe_error(exc: BaseException) -> str:
    """One line: the message of a :class:`BrainbenchError`, else ``Type: message``."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text if isinstance(exc, BrainbenchError) else f"{type(exc).__name__}: {text}".rstrip(": ")


_prepared: tuple | None = None


def prepare_worker(environment: dict[str, str], plugins: list[tuple[str, str]]) -> None:
    """Apply the driver's settings and plugins in this process (once per distinct setting)."""
    global _prepared
    state = (tuple(sorted(environment.items())), tuple(plugins))
    if state == _prepared:
        return
    os.environ.update(environment)
    from ..registry.discovery import get_plugin_manager, reset_plugin_manager

    reset_plugin_manager()
    manager = get_plugin_manager()
    for name, module in plugins:
        if manager.get_plugin(name) is None:
            manager.register(importlib.import_module(module), name=name)
    from ..registry.specs import reset_registry

    reset_registry()
    _prepared = state


def execute_unit(unit: WorkUnit, device: str = "auto", progress: bool = False,
                 prepare: bool = True) -> Iterator[Event]:
    """Run every job of ``unit``; yield an event per job (failures are events, never exceptions).

    Parameters
    ----------
    unit
        The model, datasets and metrics to run.
    device
        Where the model runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
    progress
        Show the extraction progress bar.
    prepare
        Apply ``unit.environment`` and ``unit.plugins`` first (workers in other processes);
        the driver's own process passes False.
    """
    from ..registry.specs import get_registry

    try:
        if prepare:
            prepare_worker(unit.environment, unit.plugins)
        spec = get_registry().model(unit.model)
        model = build(spec, unit.checkpoint, **unit.model_options)
    except Exception as exc:  # noqa: BLE001 - recorded per job, the grid goes on
        yield from _fail(unit.jobs(), exc)
        return
    shared: dict[str, Any] = {}
    try:
        for task in unit.datasets:
            yield from _run_dataset(unit, spec, model, task, shared, device, progress)
    finally:
        shared.clear()
        del model
        _release_memory(device)


def _run_dataset(unit, model_spec, model, task: DatasetTask, shared: dict, device: str, progress: bool):
    from ..pipeline.activations import extract
    from ..config import Config
    from ..registry.specs import get_registry
    from ..pipeline.scoring import result_context

    jobs = [j for j in unit.jobs() if j.dataset == task.dataset]
    try:
        dataset_spec = get_registry().dataset(task.dataset)
        dataset = build(dataset_spec, **task.options)
        started = time.perf_counter()
        activations = shared.get(task.stimuli)
        if activations is None:
            from ..pipeline.stimuli_checks import checked_stimuli

            activations = extract(model, checked_stimuli(dataset), pooling=unit.pooling, device=device,
                                  batch_size=unit.batch_size, cache_dir=Config().cache_dir, progress=progress,
                                  precision=unit.precision)
            shared[task.stimuli] = activations
            how = ("reused cached activations" if activations.from_cache
                   else f"extracted activations in {time.perf_counter() - started:.1f} s")
        else:
            how = "reused the activations of the same stimuli"
        yield Note(f"{unit.ref} × {task.dataset}: {how} ({len(activations.layers)} layers × "
                   f"{len(dataset.stimuli)} stimuli, pooling={unit.pooling})")
    except Exception as exc:  # noqa: BLE001
        yield from _fail(jobs, exc)
        return
    for mtask in task.metrics:
        metric_jobs = [j for j in jobs if j.metric == mtask.metric and j.options == mtask.row_options]
        try:
            metric_spec = get_registry().metric(mtask.metric)
            metric = build(metric_spec, **mtask.options)
            context = result_context(model, dataset, metric, activations.key, unit.pooling, unit.model_options,
                                     task.options, (model_spec, dataset_spec, metric_spec), unit.precision)
        except Exception as exc:  # noqa: BLE001
            yield from _fail(metric_jobs, exc)
            continue
        yield from _run_metric(mtask, (metric, metric_spec), (dataset, dataset_spec), activations, context,
                               metric_jobs)


def _run_metric(mtask: MetricTask, metric_and_spec, dataset_and_spec, activations, context: dict,
                jobs: list[JobKey]):
    from ..pipeline.scoring import score_metric

    by_subject = {job.subject: job for job in jobs}
    stored = {s: (Score(**{k: v for k, v in fields.items() if k != "elapsed_s"}), float(fields.get("elapsed_s", 0.0)))
              for s, fields in mtask.stored.items()}
    for outcome in score_metric(metric_and_spec, dataset_and_spec, activations, context, mtask.subjects,
                                aggregate=mtask.aggregate, over=mtask.all_subjects, stored=stored):
        job = by_subject[outcome.subject]
        if outcome.state == "started":
            yield JobStarted(job)
        elif outcome.state == "done":
            for line in outcome.warnings:
                yield Note(f"warning: {job.label}: {line}")
            yield JobDone(job, outcome.row)
        elif isinstance(outcome.error, str):
            yield JobFailed(job, outcome.error)
        else:
            yield from _fail([job], outcome.error, started=False)


def _fail(jobs: Iterable[JobKey], exc: BaseException, started: bool = True) -> Iterator[Event]:
    message, trace = describe_error(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for job in jobs:
        if started:
            yield JobStarted(job)
        yield JobFailed(job, message, trace)


def _release_memory(device: str) -> None:
    gc.collect()
    if device != "cpu":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class LocalExecutor:
    """Runs units one after the other in this process, on ``device``."""

    def __init__(self, device: str = "auto", progress: bool = False):
        self.device = device
        self.progress = progress

    def describe(self) -> str:
        return f"this process, device {self.device}"

    def run(self, units: list[WorkUnit]) -> Iterator[Event]:
        for unit in units:
            yield from execute_unit(unit, self.device, self.progress, prepare=False)


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (even by SIGKILL)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pool_worker(device: str, tasks, connection) -> None:
    """A :class:`PoolExecutor` process: take units until the sentinel, send their events back.

    Events go through a pipe of this worker's own, written synchronously: what was sent before
    a crash reaches the driver, and the driver sees the pipe close when the worker ends.
    """
    _die_with_parent()
    while True:
        item = tasks.get()
        if item is None:
            break
        number, unit = item
        connection.send(("begin", number))
        for event in execute_unit(unit, device):
            if isinstance(event, JobStarted):
                event.worker = f"{device} pid {os.getpid()}"
            connection.send(("event", event))
        connection.send(("end", number))
    connection.close()


class PoolExecutor:
    """One worker process per device (``["cuda:0", "cuda:1"]``), each taking whole units from a queue.

    A worker that dies (out of memory, a crash) fails the jobs of its unit that had not finished;
    the other workers go on with the remaining units.
    """

    def __init__(self, devices: list[str]):
        if not devices:
            raise BrainbenchError("a worker pool needs at least one device")
        self.devices = list(devices)

    def describe(self) -> str:
        return f"{len(self.devices)} worker processes ({', '.join(self.devices)})"

    def run(self, units: list[WorkUnit]) -> Iterator[Event]:
        import multiprocessing
        from multiprocessing.connection import wait

        context = multiprocessing.get_context("spawn")
        tasks = context.Queue()
        for number, unit in enumerate(units):
            tasks.put((number, unit))
        for _ in self.devices:
            tasks.put(None)
        workers, pipes = [], {}
        for index, device in enumerate(self.devices):
            reader, writer = context.Pipe(duplex=False)
            worker = context.Process(target=_pool_worker, args=(device, tasks, writer), daemon=True)
            worker.start()
            writer.close()  # the worker holds the only writing end: its exit closes the pipe
            workers.append(worker)
            pipes[reader] = index
        running: dict[int, int] = {}  # worker index -> unit number
        finished: dict[int, set[JobKey]] = {}
        ended: set[int] = set()
        try:
            while pipes:
                for reader in wait(list(pipes)):
                    index = pipes[reader]
                    try:
                        kind, payload = reader.recv()
                    except EOFError:
                        del pipes[reader]
                        yield from self._worker_gone(index, workers[index], running, finished, ended, units)
                        continue
                    if kind == "begin":
                        running[index], finished[payload] = payload, set()
                    elif kind == "end":
                        ended.add(running.pop(index))
                    else:
                        if isinstance(payload, (JobDone, JobFailed)):
                            finished[running[index]].add(payload.job)
                        yield payload
            for number, unit in enumerate(units):
                if number not in ended:
                    for job in unit.jobs():
                        yield JobFailed(job, "no worker process was left to run this job")
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                worker.join(timeout=5)

    def _worker_gone(self, index, worker, running, finished, ended, units) -> Iterator[Event]:
        """A worker's pipe closed: if it was inside a unit, fail that unit's unfinished jobs."""
        worker.join(timeout=5)
        if index not in running:
            return
        number = running.pop(index)
        ended.add(number)
        reason = f"the worker process on {self.devices[index]} died (exit code {worker.exitcode})"
        for job in units[number].jobs():
            if job not in finished[number]:
                yield JobFailed(job, reason)

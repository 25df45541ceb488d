"""``bench grid`` (score a whole grid, resumably) and the listing behind ``bench results --failed``."""
from __future__ import annotations

import csv
import io
import json
import sys

import click

from .cli_common import BATCH_SIZE
from .config import Config
from .errors import BrainbenchError
from .executors import JobDone, JobFailed, JobStarted, LocalExecutor, Note, PoolExecutor
from .formatting import FORMATS, render
from .grid import GridReport, GridRequest, Plan, parse_sets, plan_grid, run_plan
from .grid_series import finish_series, series_lines
from .results import AGGREGATE_SUBJECT, Failure, ResultStore

FAILURE_FIELDS = ("model", "checkpoint", "dataset", "subject", "metric", "attempts", "updated_at", "error")


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f} GiB"


def local_devices(device: str, workers: int | None) -> list[str]:
    """Devices of the local workers: one per GPU for ``auto``/``cuda`` with GPUs, else ``workers`` × ``device``."""
    import torch

    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device in ("auto", "cuda") and n_gpus:
        return [f"cuda:{i % n_gpus}" for i in range(workers or n_gpus)]
    return ["cpu" if device == "auto" else device] * (workers or 1)


def make_executor(kind: str, device: str, workers: int | None = None, ray_address: str | None = None,
                  gpus_per_task: float = 1, cpus_per_task: float = 1, progress: bool = False):
    """The executor ``bench grid --executor KIND`` uses (see :mod:`brainbench.core.executors`)."""
    if kind == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(ray_address, device, gpus_per_task, cpus_per_task)
    devices = local_devices(device, workers)
    return LocalExecutor(devices[0], progress) if len(devices) == 1 else PoolExecutor(devices)


def describe_plan(plan: Plan) -> str:
    """The ``--dry-run`` report: jobs per model, activations to extract, memory, and what was left out."""
    data = plan.to_json()
    lines = [f"grid plan on {plan.device}: {data['jobs']} jobs, {data['to_run']} to run, {data['stored']} already "
             f"stored" + (f", {data['failed_skipped']} failed before (skipped)" if data["failed_skipped"] else "")]
    rows = [("model", "to run", "stored", "activations", "memory")]
    for m in plan.models:
        sets = "; ".join(f"{'+'.join(a.datasets)} ({a.n_stimuli} stimuli, {'cached' if a.cached else 'to extract'})"
                         for a in m.activations) or "-"
        rows.append((m.ref, str(m.jobs), str(m.stored), sets, _gib(m.memory_bytes)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    cached = sum(a.cached for m in plan.models if m.jobs for a in m.activations)
    lines.append(f"activations to extract: {data['activations_to_extract']} ({cached} already cached)")
    lines.append(f"estimated peak memory: {_gib(plan.peak_memory())} on {plan.device} (the largest model's "
                 "weights plus one batch of images; models run one at a time per device)")
    lines += series_lines(plan.series)
    if plan.unavailable:
        lines.append("unavailable (skipped):")
        lines += [f"  {kind} {name}: {reason}" for kind, name, reason in plan.unavailable]
    if plan.not_applicable:
        lines.append("not applicable (skipped):")
        lines += [f"  {metric} × {dataset}: {reason}" for dataset, metric, reason in plan.not_applicable]
    return "\n".join(lines)


def summary_rows(plan: Plan, store: ResultStore):
    """The stored rows of the grid's aggregate jobs (or of its subjects, when no aggregate is in the grid)."""
    keys = set(plan.pending) | set(plan.stored)
    wanted = {k for k in keys if k.subject == AGGREGATE_SUBJECT} or keys
    groups = {(k.model, k.checkpoint, k.dataset, k.metric) for k in wanted}
    rows = []
    for model, checkpoint, dataset, metric in sorted(groups):
        for row in store.query(model=model, checkpoint=checkpoint, dataset=dataset, metric=metric):
            if (row.model, row.checkpoint, row.dataset, row.subject, row.metric, row.options) in wanted:
                rows.append(row)
    return rows


def render_failures(failures: list[Failure], fmt: str = "table") -> str:
    """Failed jobs as a table, JSON or CSV (``bench results --failed``)."""
    if fmt == "json":
        return json.dumps([f.to_json() for f in failures], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*FAILURE_FIELDS, "options"], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for failure in failures:
            writer.writerow(vars(failure))
        return buffer.getvalue().rstrip("\n")
    if not failures:
        return "no failed jobs"
    lines = [("model", "dataset", "metric", "subject", "attempts", "last tried", "error")]
    lines += [(f"{f.model}@{f.checkpoint}", f.dataset, f.metric, f.subject, str(f.attempts), f.updated_at, f.error)
              for f in failures]
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    out = ["  ".join(c.ljust(w) for c, w in zip(line[:6], widths)) + "  " + line[6] for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths) + "  -----")
    return "\n".join(out)


def failed_results(db: str | None = None, fmt: str = "table", **filters: str | None) -> str:
    """What ``bench results --failed`` prints: the failures in the database, filtered by key globs."""
    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run `bench grid` first")
    with ResultStore(config.db_path) as store:
        return render_failures(store.failures(**filters), fmt)


class _Progress:
    """One overall bar (jobs, with ETA) whose label is the job running now."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="job", desc="grid", disable=not enabled, file=sys.stderr,
                        dynamic_ncols=True)
        self.enabled = enabled

    def __call__(self, event) -> None:
        if isinstance(event, JobStarted):
            self.bar.set_postfix_str(event.job.label, refresh=True)
        elif isinstance(event, (JobDone, JobFailed)):
            self.bar.update(1)
            if isinstance(event, JobFailed) and self.enabled:
                self.bar.write(f"failed: {event.job.label}: {event.error}", file=sys.stderr)
        elif isinstance(event, Note) and self.enabled:
            self.bar.write(event.message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


@click.command()
@click.option("--models", "-m", multiple=True, metavar="GLOB[@CHECKPOINT]",
              help="Models to score (repeatable, globs): 'dinov3-*', 'dinov3-small@init', '*@pretrained'. "
                   "Default: every registered model at every checkpoint it declares or has on disk; "
                   "those that cannot load are reported and skipped.")
@click.option("--datasets", "-d", multiple=True, metavar="GLOB", help="Datasets (repeatable, globs). Default: all.")
@click.option("--metrics", "-x", multiple=True, metavar="GLOB", help="Metrics (repeatable, globs). Default: all.")
@click.option("--subject", "-s", "subjects", multiple=True, metavar="GLOB",
              help="Subjects (repeatable, globs). Default: all, plus their aggregate 'all'.")
@click.option("--set", "sets", multiple=True, metavar="TARGET.OPTION=VALUE",
              help="Plugin option for every model/dataset/metric (dataset.n_images=100), or for one "
                   "(metric:spatial.permutations=1000).")
@click.option("--pooling", default="mean", show_default=True, type=click.Choice(["mean", "cls", "cls+mean", "all"]))
@click.option("--batch-size", default="32", show_default=True, type=BATCH_SIZE, help="Images per forward pass, or 'auto'.")
@click.option("--precision", default=None, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Weights/compute precision (default: the model's, fp32); bf16/fp16 are meant for GPUs.")
@click.option("--device", default=None, help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Local worker processes (default: one per GPU when there are several, else 1).")
@click.option("--executor", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="Run jobs here, or as Ray tasks on a cluster.")
@click.option("--ray-address", default=None, help="Ray cluster address (default: $RAY_ADDRESS).")
@click.option("--gpus-per-task", default=1.0, show_default=True, type=click.FloatRange(0),
              help="GPUs each Ray task asks for, when the cluster has GPUs.")
@click.option("--cpus-per-task", default=1.0, show_default=True, type=click.FloatRange(0),
              help="CPUs each Ray task asks for.")
@click.option("--dry-run", is_flag=True, help="Print the plan (jobs, activations to extract, memory) and stop.")
@click.option("--force", is_flag=True, help="Recompute jobs that are already stored (rows are updated in place).")
@click.option("--skip-failed", is_flag=True, help="Do not retry jobs that failed before.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(FORMATS))
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages.")
def grid(models, datasets, metrics, subjects, sets, pooling, batch_size, precision, device, workers, executor,
         ray_address, gpus_per_task, cpus_per_task, dry_run, force, skip_failed, fmt, db, quiet):
    """Score every selected model × dataset × subject × metric; skip what is stored, record failures.

    Safe to interrupt and re-run: finished rows are kept and skipped, none is stored twice.

    \b
    Examples:
        bench grid --dry-run
        bench grid -m 'dinov3-*@init' -d synthetic-fmri -d synthetic-meg --set dataset.n_images=100
        bench grid --executor ray --ray-address head-node:6379
        bench results --failed
    """
    try:
        _grid(models, datasets, metrics, subjects, sets, pooling, batch_size, precision, device, workers, executor,
              ray_address, gpus_per_task, cpus_per_task, dry_run, force, skip_failed, fmt, db, quiet)
    except BrainbenchError as exc:
        raise click.ClickException(str(exc)) from None


def _grid(models, datasets, metrics, subjects, sets, pooling, batch_size, precision, device, workers, executor,
          ray_address, gpus_per_task, cpus_per_task, dry_run, force, skip_failed, fmt, db, quiet):
    config = Config(db=db, device=device)
    device = config.get("device")
    request = GridRequest(models, datasets, metrics, subjects, parse_sets(sets), pooling, batch_size,
                          precision, device, force, not skip_failed, check_memory=executor == "local")
    with ResultStore(config.db_path) as store:
        plan = plan_grid(request, store, config)
        if dry_run:
            click.echo(json.dumps(plan.to_json(), indent=2) if fmt == "json" else describe_plan(plan))
            return
        runner = make_executor(executor, device, workers, ray_address, gpus_per_task, cpus_per_task,
                               progress=not quiet)
        if not quiet:
            click.echo(f"grid: {len(plan.pending)} jobs to run, {len(plan.stored)} already stored; "
                       f"{runner.describe()}", err=True)
            for kind, name, reason in plan.unavailable:
                click.echo(f"skipped {kind} {name}: {reason}", err=True)
        progress = _Progress(len(plan.pending), not quiet)
        try:
            report = run_plan(plan, store, runner, progress)
        finally:
            progress.close()
        rows = summary_rows(plan, store)
        rows += finish_series(plan.series, store, request, echo=lambda message: quiet or click.echo(message, err=True))
    click.echo(render(rows, fmt))
    _finish(report, plan, quiet)


def _finish(report: GridReport, plan: Plan, quiet: bool) -> None:
    if not quiet:
        click.echo(f"grid: {len(report.done)} jobs done, {len(plan.stored)} already stored, "
                   f"{len(report.failed)} failed", err=True)
    if report.failed:
        raise BrainbenchError(f"{len(report.failed)} of {len(plan.pending)} jobs failed (the others were stored); "
                              "see `bench results --failed`")


if __name__ == "__main__":  # python -m brainbench.core.grid_command
    grid()

"""``bench grid``: score a whole grid, resumably (the work is done by ``brainbench.core.grid``)."""
from __future__ import annotations

import csv
import io
import json
import sys

import click

from .common import BATCH_SIZE
from ..config import Config
from ..errors import BrainbenchError
from ..store.formatting import FORMATS, render
from ..store.results import ResultStore
from ..failures import writable_folder
from ..store.checks import CheckedStore


class _Progress:
    """One overall bar (jobs, with ETA) whose label is the job running now."""

    def __init__(self, total: int, enabled: bool):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, unit="job", desc="grid", disable=not enabled, file=sys.stderr,
                        dynamic_ncols=True)
        self.enabled = enabled

    def __call__(self, event) -> None:
        from ..grid.executors import JobDone, JobFailed, JobStarted, Note

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
    from ..grid.launch import make_executor
    from ..grid.plan import GridRequest, describe_plan, parse_sets, plan_grid, run_plan, summary_rows

    config = Config(db=db, device=device)
    device = config.get("device")
    request = GridRequest(models, datasets, metrics, subjects, parse_sets(sets), pooling, batch_size,
                          precision, device, force, not skip_failed, check_memory=executor == "local")
    writable_folder(config.home, "brainbench home folder (BRAINBENCH_HOME)")
    with CheckedStore(config.db_path) as store:
        plan = plan_grid(request, store, config)
        if dry_run:
            click.echo(json.dumps(plan.to_json(), indent=2) if fmt == "json" else describe_plan(plan))
            return
        if not plan.units and not plan.stored and plan.unavailable:
            kind, name, reason = plan.unavailable[0]
            raise BrainbenchError(f"nothing to run: {kind} {name} cannot be used ({reason})"
                                  + (f", and {len(plan.unavailable) - 1} more" if len(plan.unavailable) > 1 else ""))
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
        from ..grid.series import finish_series

        rows += finish_series(plan.series, store, request, echo=lambda message: quiet or click.echo(message, err=True))
    click.echo(render(rows, fmt))
    _finish(report, plan, quiet)


def _finish(report, plan, quiet: bool) -> None:
    if not quiet:
        click.echo(f"grid: {len(report.done)} jobs done, {len(plan.stored)} already stored, "
                   f"{len(report.failed)} failed", err=True)
    if report.failed:
        raise BrainbenchError(f"{len(report.failed)} of {len(plan.pending)} jobs failed (the others were stored); "
                              "see `bench results --failed`")


if __name__ == "__main__":  # python -m brainbench.core.commands.grid
    grid()

"""``bench run``: score models on datasets with metrics, store and print the rows."""
from __future__ import annotations

import click

from .common import BATCH_SIZE
from .flags import data_root_options
from ..config import Config
from ..store.formatting import FORMATS, render
from ..store.checks import CheckedStore

DEFAULT_MODEL = "dinov3-small@init"
DEFAULT_DATASET = "synthetic-fmri"
DEFAULT_METRIC = "encoding"


@click.command()
@click.option("--model", "-m", "models", multiple=True, metavar="NAME[@CHECKPOINT]",
              help=f"Model to score (repeatable). Default: {DEFAULT_MODEL}.")
@click.option("--dataset", "-d", "datasets", multiple=True, help=f"Dataset (repeatable). Default: {DEFAULT_DATASET}.")
@click.option("--metric", "-x", "metrics", multiple=True, help=f"Metric (repeatable). Default: {DEFAULT_METRIC}.")
@click.option("--subject", "-s", "subjects", multiple=True, help="Subject to score (repeatable). Default (or 'all'): every subject.")
@click.option("--device", default=None, help="auto (CUDA when present), cpu, cuda or cuda:N.")
@click.option("--pooling", default="mean", show_default=True, type=click.Choice(["mean", "cls", "cls+mean", "all"]),
              help="How a layer's tokens become one feature vector.")
@click.option("--batch-size", default="32", show_default=True, type=BATCH_SIZE,
              help="Images per forward pass, or 'auto': the largest that fits, halved on GPU out-of-memory.")
@click.option("--precision", default=None, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Weights/compute precision (default: the model's, fp32); bf16/fp16 are meant for GPUs.")
@click.option("--set", "sets", multiple=True, metavar="TARGET.OPTION=VALUE",
              help="Plugin option, e.g. metric.folds=3, dataset.n_images=100, model.seed=1.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(FORMATS))
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
@click.option("--quiet", "-q", is_flag=True, help="No progress messages.")
@click.option("--checkpoints", default=None, metavar="all|first,last|step-N,…",
              help="Score the checkpoint series of every model given without @ (NAME@all does the same).")
@click.option("--force", is_flag=True, help="Recompute a checkpoint series' rows even when they are stored.")
@click.option("--layers", default=None, metavar="NAMES",
              help="Layers or submodules to score: names and globs, comma-separated, e.g. 'blocks.*' "
                   "(`bench info MODEL --layers` lists them). Default: the model's layers.")
@data_root_options
def run(models, datasets, metrics, subjects, device, pooling, batch_size, precision, sets, fmt, db, quiet,
        checkpoints, force, layers):
    """Score models on datasets with metrics; store and print the results.

    \b
    Examples:
        bench run                                   # dinov3-small@init × synthetic-fmri × encoding
        bench run -m dinov3-tiny@init -d synthetic-meg -x encoding --format json
        bench run -m tiny-dino@all -x halftime      # every checkpoint, then half-times
        bench run -m timm:resnet18@init --layers 'layer*'
    """
    from ..contract.options import SetSyntaxError
    from ..pipeline.run_checks import check_run
    from ..pipeline.runner import RunOptions, default_datasets, run as run_all

    config = Config(db=db, device=device)
    echo = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    models = list(models) or [DEFAULT_MODEL]
    metrics = list(metrics) or [DEFAULT_METRIC]
    datasets = list(datasets) or default_datasets(metrics) or [DEFAULT_DATASET]
    # options, storage and flags are checked before any model is built or activation extracted
    try:
        plugin_options = check_run(models, datasets, metrics, sets, config, checkpoints, echo)
    except SetSyntaxError as exc:
        raise click.BadParameter(exc.usage, param_hint="--set") from None
    options = RunOptions(subjects=list(subjects) or None, pooling=pooling, device=config.get("device"),
                         batch_size=batch_size, precision=precision, model_options=plugin_options["model"],
                         dataset_options=plugin_options["dataset"], metric_options=plugin_options["metric"],
                         progress=not quiet, checkpoints=checkpoints, force=force, layers=layers)
    with CheckedStore(config.db_path) as store:
        rows = run_all(models, datasets, metrics, store=store, config=config, options=options, echo=echo)
    echo(f"saved {len(rows)} rows to {config.db_path}")
    click.echo(render(rows, fmt))

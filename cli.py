"""The ``bench`` command: parses arguments and hands over to ``brainbench.core``."""
from __future__ import annotations

import json
import sys

import click

from .core.cli_common import BATCH_SIZE, BenchGroup
from .core.config import Config, set_flags
from .core.errors import BrainbenchError
from .core.formatting import FORMATS, render
from .core.registry import KINDS, get_registry
from .core.results import ResultStore

DEFAULT_MODEL = "dinov3-small@init"
DEFAULT_DATASET = "synthetic-fmri"
DEFAULT_METRIC = "encoding"


def data_root_options(command):
    """The flags that point plugins at data and weights (same as the BRAINBENCH_* variables)."""
    flags = [
        ("--weights", "weights", "Folder of local model weights (BRAINBENCH_WEIGHTS)."),
        ("--things-images-root", "things_images_root", "THINGS images root (BRAINBENCH_THINGS_IMAGES)."),
        ("--things-meg-root", "things_meg_root", "THINGS-MEG ds004212 root (BRAINBENCH_THINGS_MEG_ROOT)."),
        ("--nsd-root", "nsd_root", "Natural Scenes Dataset root (BRAINBENCH_NSD_ROOT)."),
    ]
    for flag, name, help_text in flags:
        command = click.option(flag, name, default=None, metavar="PATH", help=help_text,
                               callback=lambda ctx, param, value: set_flags(**{param.name: value}) or value,
                               expose_value=False)(command)
    return command


def _parse_sets(values: tuple[str, ...]) -> dict[str, dict]:
    """``--set metric.folds=3`` → {"metric": {"folds": 3}}; values are read as JSON when they parse."""
    out: dict[str, dict] = {"model": {}, "dataset": {}, "metric": {}}
    for item in values:
        key, sep, raw = item.partition("=")
        target, dot, name = key.partition(".")
        if not sep or not dot or target not in out or not name:
            raise click.BadParameter(f"{item!r}: use TARGET.OPTION=VALUE with TARGET model, dataset or metric",
                                     param_hint="--set")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[target][name] = value
    return out


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brainbench")
def main():
    """brainbench: how brain-like are a vision model's representations?

    \b
    Example:
        bench run --model dinov3-small@init --dataset synthetic-fmri --metric encoding
    """


@main.command(name="list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, "checkpoints"]))
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(kind, model, as_json):
    """List registered models, datasets and metrics, and plugins that failed to load.

    \b
    Example:
        bench list models
        bench list checkpoints tiny-dino
    """
    if kind == "checkpoints":
        from .core.trajectory_commands import checkpoints_text

        if not model:
            raise BrainbenchError("name the model: bench list checkpoints MODEL")
        click.echo(checkpoints_text(model, as_json=as_json))
        return
    registry = get_registry()
    kinds = [kind] if kind else list(KINDS)
    if as_json:
        data = {k: [registry.specs[k][n].to_json() for n in registry.names(k)] for k in kinds}
        data["errors"] = [vars(e) for e in registry.errors]
        click.echo(json.dumps(data, indent=2))
        return
    for k in kinds:
        click.secho(f"{k}:", bold=True)
        for name in registry.names(k):
            spec = registry.specs[k][name]
            extra = spec.metadata.get("parameters")
            size = f"  [{extra / 1e6:,.1f}M params]" if isinstance(extra, (int, float)) else ""
            origin = "" if spec.source == "built-in" else f"  (from {spec.source})"
            click.echo(f"  {name:<22} {spec.description}{size}{origin}")
    if registry.errors:
        click.secho("plugins that failed to load:", bold=True, fg="red")
        for error in registry.errors:
            click.echo(f"  {error.plugin} ({error.source}): {error.error}")


@main.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(name, as_json):
    """Show what is known about one model, dataset or metric.

    \b
    Example:
        bench info dinov3-large
    """
    spec = get_registry().find(name)
    if as_json:
        click.echo(json.dumps(spec.to_json(), indent=2))
        return
    click.echo(f"{spec.name} ({spec.kind[:-1]}, from {spec.source})")
    click.echo(f"  {spec.description}")
    for key, value in spec.metadata.items():
        click.echo(f"  {key}: {value}")


@main.command()
@click.option("--model", "-m", "models", multiple=True, metavar="NAME[@CHECKPOINT]",
              help=f"Model to score (repeatable). Default: {DEFAULT_MODEL}.")
@click.option("--dataset", "-d", "datasets", multiple=True, help=f"Dataset (repeatable). Default: {DEFAULT_DATASET}.")
@click.option("--metric", "-x", "metrics", multiple=True, help=f"Metric (repeatable). Default: {DEFAULT_METRIC}.")
@click.option("--subject", "-s", "subjects", multiple=True, help="Subject to score (repeatable). Default: all.")
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
@data_root_options
def run(models, datasets, metrics, subjects, device, pooling, batch_size, precision, sets, fmt, db, quiet,
        checkpoints, force):
    """Score models on datasets with metrics; store and print the results.

    \b
    Examples:
        bench run                                   # dinov3-small@init × synthetic-fmri × encoding
        bench run -m dinov3-tiny@init -d synthetic-meg -x encoding --format json
        bench run -m tiny-dino@all -x halftime      # every checkpoint, then half-times
    """
    from .core.runner import RunOptions, default_datasets, run as run_all

    config = Config(db=db, device=device)
    plugin_options = _parse_sets(sets)
    options = RunOptions(subjects=list(subjects) or None, pooling=pooling, device=config.get("device"),
                         batch_size=batch_size, precision=precision, model_options=plugin_options["model"],
                         dataset_options=plugin_options["dataset"], metric_options=plugin_options["metric"],
                         progress=not quiet, checkpoints=checkpoints, force=force)
    echo = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    with ResultStore(config.db_path) as store:
        metrics = list(metrics) or [DEFAULT_METRIC]
        datasets = list(datasets) or default_datasets(metrics) or [DEFAULT_DATASET]
        rows = run_all(models or [DEFAULT_MODEL], datasets, metrics, store=store, config=config, options=options,
                       echo=echo)
    echo(f"saved {len(rows)} rows to {config.db_path}")
    click.echo(render(rows, fmt))


@main.group()
def data():
    """Inspect the data a dataset plugin reads."""


@data.command(name="check")
@click.argument("name")
@click.option("--set", "sets", multiple=True, metavar="OPTION=VALUE", help="Dataset option, e.g. subjects=subj01.")
@data_root_options
def data_check(name, sets):
    """Validate a dataset's files without loading them; list every problem, file by file.

    \b
    Example:
        bench data check nsd --nsd-root /data/nsd
    """
    spec = get_registry().dataset(name)
    check = getattr(spec.factory, "check", None)
    if check is None:
        click.echo(f"dataset {name!r} reads no files to check")
        return
    problems = check(**_parse_sets(tuple(f"dataset.{item}" for item in sets))["dataset"])
    if not problems:
        click.echo(f"{name}: all files present and well-formed")
        return
    for problem in problems:
        click.echo(f"- {problem}")
    raise click.ClickException(f"{name}: {len(problems)} problem{'s' * (len(problems) != 1)} found")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def config(as_json):
    """Show every setting in effect and where it came from (flag, environment, config file, default).

    \b
    Example:
        BRAINBENCH_NSD_ROOT=/data/nsd bench config
    """
    settings = Config()
    rows = settings.rows()
    if as_json:
        click.echo(json.dumps({"config_file": str(settings.file),
                               "settings": {s.name: {"value": s.value, "source": s.source} for s in rows}}, indent=2))
        return
    click.echo(f"config file: {settings.file}{'' if settings.file.exists() else ' (absent)'}")
    for s in rows:
        click.echo(f"  {s.name:<20} {s.value if s.value is not None else '-':<40} {s.source}")


from .core.contrib_commands import check as _check_command, new as _new_command  # noqa: E402
from .core.fetch_command import fetch as _fetch_group  # noqa: E402
from .core.grid_command import grid as _grid_command  # noqa: E402
from .core.results_commands import results  # noqa: E402
from .core.trajectory_commands import analyze as _analyze_group, trajectory as _trajectory_group  # noqa: E402
from .leaderboard.commands import leaderboard as _leaderboard_group  # noqa: E402

main.add_command(_new_command)
main.add_command(_check_command)
main.add_command(data_root_options(_grid_command))
main.add_command(_leaderboard_group)
main.add_command(_trajectory_group)
main.add_command(_analyze_group)
main.add_command(results)
data.add_command(_fetch_group)

if __name__ == "__main__":  # python -m brainbench.cli
    sys.exit(main())

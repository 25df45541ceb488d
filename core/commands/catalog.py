"""``bench list``, ``bench info``, ``bench config`` and ``bench data check``: what is installed and set."""
from __future__ import annotations

import json

import click

from .flags import data_root_options
from ..config import Config
from ..errors import BrainbenchError
from ..registry.specs import KINDS, get_registry


@click.command(name="list")
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
        from ..pipeline.trajectories import checkpoints_text

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
        if k == "models":
            for prefix in sorted(registry.prefixes.values(), key=lambda p: p.prefix):
                origin = "" if prefix.source == "built-in" else f"  (from {prefix.source})"
                click.echo(f"  {prefix.prefix + ':NAME':<22} {prefix.description}{origin}")
    if registry.errors:
        click.secho("plugins that failed to load:", bold=True, fg="red")
        for error in registry.errors:
            click.echo(f"  {error.plugin} ({error.source}): {error.error}")


@click.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--layers", "show_layers", is_flag=True,
              help="List the model's layers and every named submodule that --layers can select.")
def info(name, as_json, show_layers):
    """Show what is known about one model, dataset or metric.

    \b
    Example:
        bench info dinov3-large
        bench info timm:resnet18 --layers
    """
    if show_layers:
        from ..pipeline.layers_info import layer_listing

        click.echo(layer_listing(name, as_json=as_json))
        return
    from ..contract.options import declared, describe

    spec = get_registry().find(name)
    if as_json:
        data = spec.to_json()
        data["option_types"] = {n: {"type": o.kind, "default": o.default, "accepts": o.accepts()}
                                for n, o in declared(spec).table.items()}
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{spec.name} ({spec.kind[:-1]}, from {spec.source})")
    click.echo(f"  {spec.description}")
    for key, value in spec.metadata.items():
        if key != "options":
            click.echo(f"  {key}: {value}")
    lines = describe(spec)
    if lines:
        click.echo("  options (--set " + spec.kind[:-1] + ".NAME=VALUE):")
        for line in lines:
            click.echo(f"    {line}")


@click.group()
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
    from ..contract.options import coerce, parse_plain

    problems = check(**coerce(spec, parse_plain(sets)))
    if not problems:
        click.echo(f"{name}: all files present and well-formed")
        return
    for problem in problems:
        click.echo(f"- {problem}")
    raise click.ClickException(f"{name}: {len(problems)} problem{'s' * (len(problems) != 1)} found")


@click.command()
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


COMMANDS = (list_, info, data, config)

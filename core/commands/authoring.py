"""``bench new`` and ``bench check``: the contributor's commands.

``cli.py`` attaches them to the ``bench`` group (``main.add_command(new)``,
``main.add_command(check)``); ``python -m brainbench.core.commands.authoring`` runs them on their own.
"""
from __future__ import annotations

import functools
import json

import click

from ..authoring import scaffold
from ..errors import BrainbenchError
from ..registry.specs import get_registry


def _one_line_errors(command):
    """Show a :class:`BrainbenchError` as one sentence, also when the command runs outside ``bench``."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BrainbenchError as exc:
            raise click.ClickException(str(exc)) from None
    return wrapper


@click.command()
@click.argument("kind", type=click.Choice(list(scaffold.KINDS)))
@click.argument("name")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Where to create the package folder brainbench-NAME.")
@click.option("--force", is_flag=True, help="Overwrite the files of an existing folder.")
@_one_line_errors
def new(kind, name, directory, force):
    """Create a ready-to-edit plugin package for a model, dataset or metric.

    It holds pyproject.toml (with the `brainbench` entry point), the plugin module (a working
    example), a test that runs the conformance checklist, and a README.

    \b
    Example:
        bench new model my-model
        pip install -e brainbench-my-model && bench check my-model
    """
    root = scaffold.new_plugin(kind, name, directory, force=force)
    click.echo(f"created {root}/")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        click.echo(f"  {path.relative_to(root)}")
    names = scaffold.PluginNames.from_name(kind, name)
    click.echo("next:")
    click.echo(f"  pip install -e {root}")
    click.echo(f"  bench list {kind}s          # {name} is listed")
    click.echo(f"  bench check {names.check_name}")
    click.echo(f"  {names.run_example}")


@click.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME[@CHECKPOINT]...")
@click.option("--checkpoint", default=None, help="Model checkpoint, when NAME has no @CHECKPOINT (e.g. init).")
@click.option("--set", "sets", multiple=True, metavar="OPTION=VALUE",
              help="Option for the plugin's factory, e.g. image_size=64 or root=/data (repeatable).")
@click.option("--device", default="cpu", show_default=True, help="Where a model runs: cpu, cuda, cuda:N or auto.")
@click.option("--metadata-only", is_flag=True, help="Check a model's metadata without building it.")
@click.option("--strict", is_flag=True, help="Count skipped checks (weights or data not on disk) as failures.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_one_line_errors
def check(names, checkpoint, sets, device, metadata_only, strict, as_json):
    """Run the conformance checklist on models, datasets or metrics (✓/✗/– and one sentence each).

    Exits with status 1 when a check fails (with --strict, also when one is skipped).

    \b
    Examples:
        bench check dinov3-tiny@init
        bench check dinov3-small --checkpoint init --set image_size=64
        bench check synthetic-fmri --set n_images=40
        bench check encoding
    """
    from ..authoring import conformance
    from ..contract.options import SetSyntaxError, coerce, parse_plain

    try:
        options = parse_plain(sets)
    except SetSyntaxError as exc:
        raise click.BadParameter(exc.usage, param_hint="--set") from None
    reports = []
    for name in names:
        try:
            checked = coerce(get_registry().find(name.partition("@")[0]), options)  # as bench run reads them
            reports.append(conformance.check(name, checkpoint=checkpoint, options=checked, run=not metadata_only,
                                             device=device))
        except BrainbenchError as exc:
            errors = get_registry().errors
            hint = "" if not errors else "; " + "; ".join(
                f"plugin {e.plugin} ({e.source}) failed to load: {e.error}" for e in errors[:3])
            raise BrainbenchError(f"{exc}{hint}") from None
    if as_json:
        click.echo(json.dumps([r.to_json() for r in reports], indent=2))
    else:
        click.echo("\n\n".join(r.render() for r in reports))
    failed = sum(r.count("fail") + (r.count("skip") if strict else 0) for r in reports)
    if failed:
        what = "failed or were skipped" if strict else "failed"
        raise click.ClickException(f"{failed} check{'s' * (failed != 1)} {what}")


@click.group()
def _standalone():
    """brainbench contributor commands (also available as `bench new` and `bench check`)."""


_standalone.add_command(new)
_standalone.add_command(check)

if __name__ == "__main__":  # python -m brainbench.core.commands.authoring check NAME
    _standalone()

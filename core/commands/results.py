"""``bench results``: query stored scores, and exchange them as portable result files.

``bench results [--model …] [--format …]`` queries the database as it always did (the group runs
without a subcommand); ``bench results --failed`` lists failed grid jobs; and

- ``bench results export --out results/`` writes one portable file per (model, checkpoint,
  dataset, metric, options);
- ``bench results import FILE|FOLDER...`` checks files and merges them into the database;
- ``bench results validate FILE|FOLDER...`` checks files and that no two conflict (for CI).

See ``docs/community.md``.
"""
from __future__ import annotations

import json

import click

from ..config import Config
from .common import BenchGroup
from ..errors import BrainbenchError
from ..store.formatting import FORMATS, render
from ..store.checks import CheckedStore
from ..store.results import KEY_FIELDS, ResultStore


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.group(cls=BenchGroup, invoke_without_command=True)
@click.option("--model", "-m", default=None, help="Model name (glob: 'dinov3-*'), or NAME@CHECKPOINT as bench run takes it.")
@click.option("--checkpoint", default=None, help="Checkpoint (glob).")
@click.option("--dataset", "-d", default=None, help="Dataset (glob).")
@click.option("--metric", "-x", default=None, help="Metric (glob).")
@click.option("--subject", "-s", default=None, help="Subject (glob); 'all' is the aggregate over subjects.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(FORMATS))
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
@click.option("--failed", is_flag=True, help="List the grid jobs that failed, with their errors, instead of scores.")
@click.option("--detail", default=None, type=click.Choice(["layers", "regions", "times", "halftimes"]),
              help="One row per layer, region, MEG time point or half-time target instead of per score "
                   "(columns: docs/notebook-api.md).")
@click.pass_context
def results(ctx, model, checkpoint, dataset, metric, subject, fmt, db, failed, detail):
    """Query stored scores, and export them as JSON or CSV; exchange portable result files.

    \b
    Examples:
        bench results --subject all
        bench results --model 'dinov3-*' --format csv > scores.csv
        bench results --detail regions --format csv > regions.csv
        bench results --failed
        bench results export --out results/my-lab/ --contributor 'Ada Lovelace'
        bench results validate results/
        bench results import results/
    """
    if ctx.invoked_subcommand is not None:
        if any((model, checkpoint, dataset, metric, subject, db, failed, detail)) or fmt != "table":
            raise click.UsageError(f"give options after the subcommand: `bench results {ctx.invoked_subcommand} "
                                   "--help` lists them")
        return
    if model and "@" in model:  # dinov3-small@init, as `bench run` and the table itself spell it
        model, _, named = model.partition("@")
        if checkpoint is not None and checkpoint != named:
            raise click.UsageError(f"--model {model}@{named} and --checkpoint {checkpoint} name two checkpoints; "
                                   "give one")
        checkpoint = named
    if failed:
        from ..store.formatting import failed_results

        click.echo(failed_results(db, fmt, model=model, checkpoint=checkpoint, dataset=dataset, metric=metric,
                                  subject=subject))
        return
    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run `bench run` first")
    with CheckedStore(config.db_path, write=False) as store:
        rows = store.query(model=model, checkpoint=checkpoint, dataset=dataset, metric=metric, subject=subject)
        if not rows and any((model, checkpoint, dataset, metric, subject)):
            stored = sorted({key[KEY_FIELDS.index("model")] for key in store.keys()})
            click.echo(f"no stored score matches these filters; stored models: {', '.join(stored) or 'none'}",
                       err=True)
    if detail:
        from ..store.tables import render_detail

        click.echo(render_detail(rows, detail, fmt))
        return
    click.echo(render(rows, fmt))


@results.command()
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder to write into (<dataset>/<metric>/<model>@<checkpoint>--<options hash>.json).")
@click.option("--model", "-m", default=None, help="Model name (glob).")
@click.option("--checkpoint", default=None, help="Checkpoint (glob).")
@click.option("--dataset", "-d", default=None, help="Dataset (glob).")
@click.option("--metric", "-x", default=None, help="Metric (glob).")
@click.option("--contributor", default=None, help="Who produced the scores (default: $BRAINBENCH_CONTRIBUTOR).")
@click.option("--lab", default=None, help="Their lab or group (default: $BRAINBENCH_LAB).")
@click.option("--data-fingerprints/--no-data-fingerprints", "fingerprints", default=True, show_default=True,
              help="Open datasets whose plugin exposes fingerprints() to record them.")
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
def export(out, model, checkpoint, dataset, metric, contributor, lab, fingerprints, db):
    """Write one portable result file per (model, checkpoint, dataset, metric, options).

    Each file holds every subject's row and the aggregate, the benchmark id and version, and
    the provenance: contributor, machine, brainbench and plugin versions, data fingerprints.
    Rows imported from other labs keep their own provenance. A file whose scores did not change
    is left as it is.

    \b
    Example:
        bench results export --out results/my-lab/ --contributor 'Ada Lovelace' --lab 'Vision Lab'
    """
    from ..store.exchange import export_results

    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run `bench run` first")
    with CheckedStore(config.db_path, write=False) as store:
        report = export_results(store, out, filters=dict(model=model, checkpoint=checkpoint, dataset=dataset,
                                                         metric=metric),
                                contributor=contributor, lab=lab, fingerprints=fingerprints)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    for problem in report.problems:
        click.echo(f"not exported: {problem}")
    unchanged = f" ({len(report.unchanged)} more unchanged)" if report.unchanged else ""
    click.echo(f"wrote {_plural(len(report.written), 'result file')} to {out}{unchanged}")
    if report.problems:
        raise click.ClickException(f"{_plural(len(report.problems), 'score')} could not be exported (listed above)")


@results.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--db", default=None, help="Results database to merge into (default: <home>/results.db).")
@click.option("--replace", is_flag=True, help="Overwrite stored scores that a file contradicts (default: refuse).")
@click.option("--any-version", is_flag=True,
              help="Accept files of other benchmark versions than this brainbench scores.")
def import_(paths, db, replace, any_version):
    """Check result files (or folders of them) and merge their rows into the results database.

    A file that fails a check is rejected with one sentence. Rows equal to stored rows are
    ignored; a file that gives a different score for a stored key is reported and nothing of
    it is imported, unless --replace.

    \b
    Example:
        bench results import results/ --db community.db
    """
    from ..store.exchange import import_files

    config = Config(db=db)
    with CheckedStore(config.db_path) as store:
        report = import_files(store, paths, replace=replace, strict_version=not any_version)
    for line in [*report.rejected, *report.conflicts]:
        click.echo(f"not imported: {line}")
    click.echo(f"imported {_plural(len(report.imported), 'file')} into {config.db_path}: "
               f"{_plural(report.added, 'row')} added, {report.identical} identical ignored"
               + (f", {report.replaced} replaced" if report.replaced else ""))
    if not report.ok:
        raise click.ClickException(f"{_plural(len(report.rejected), 'file')} rejected and "
                                   f"{_plural(len(report.conflicts), 'file')} in conflict (listed above)")


@results.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--any-version", is_flag=True,
              help="Accept files of other benchmark versions than this brainbench scores (kept apart on the site).")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]))
def validate(paths, any_version, fmt):
    """Check result files (or folders of them): schema, integrity, provenance, ranges, versions, conflicts.

    Exits with status 1 when a file is invalid or two files give different scores for one key;
    this is what the CI of a results repository runs (docs/results-repo-workflow.yml).

    \b
    Example:
        bench results validate results/
    """
    from ..store.exchange import validate_files

    report = validate_files(paths, strict_version=not any_version)
    if fmt == "json":
        click.echo(json.dumps({"valid": report.valid, "invalid": report.invalid, "conflicts": report.conflicts,
                               "identical_duplicates": report.identical}, indent=2))
    else:
        for line in report.invalid:
            click.echo(f"invalid: {line}")
        for line in report.conflicts:
            click.echo(f"conflict: {line}")
        click.echo(f"{_plural(len(report.valid), 'valid file')}, {len(report.invalid)} invalid, "
                   f"{_plural(len(report.conflicts), 'conflict')}")
    if not report.ok:
        raise click.ClickException(f"{_plural(len(report.invalid), 'invalid file')} and "
                                   f"{_plural(len(report.conflicts), 'conflict')} (listed above)")

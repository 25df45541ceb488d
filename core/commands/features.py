"""``bench features``: register features computed elsewhere, to score them as ``features:NAME``."""
from __future__ import annotations

import click

from .common import BenchGroup


@click.group(cls=BenchGroup)
def features():
    """Features computed elsewhere (THINGSvision, Net2Brain, your own code), scored as features:NAME."""


@features.command(name="import")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="Name to score them under: -m features:NAME.")
@click.option("--ids", "ids", default=None, metavar="FILE",
              help="Stimulus id of each row: one per line, or a CSV with a stimulus_id column. "
                   "Default: file_names.txt / stimulus_ids.txt / ids.txt in FOLDER, or an ids array.")
@click.option("--dataset", "-d", default=None,
              help="Check the ids against this dataset's stimuli now; without ids, the rows follow its order.")
@click.option("--set", "sets", multiple=True, metavar="OPTION=VALUE", help="Dataset option, e.g. n_images=40.")
@click.option("--description", default=None, help="One line shown by `bench list` and `bench info`.")
@click.option("--source", default=None, help="Where the features come from (model, tool), for the leaderboard.")
def import_(folder, name, ids, dataset, sets, description, source):
    """Check and register one array per layer (.npy, .npz, .h5, or THINGSvision's output folder).

    \b
    Examples:
        bench features import thingsvision_out/ --name clip-lab --dataset things-meg
        bench features import feats.npz --name lab-model --ids stimuli.csv   # FOLDER holding feats.npz
        bench run -m features:lab-model -d nsd -x spatial
    """
    from ...plugins.models.features import import_features
    from ..grid.selection import parse_sets

    manifest, notes = import_features(folder, name, ids=ids, dataset=dataset,
                                      dataset_options=parse_sets([f"dataset.{item}" for item in sets]).general["dataset"],
                                      description=description, source=source)
    for note in notes:
        click.echo(note, err=True)
    layers = ", ".join(f"{k} {tuple(v['shape'])}" for k, v in manifest["layers"].items())
    checked = f", checked against {dataset}" if dataset else ""
    click.echo(f"features:{name}: {len(manifest['layers'])} layers ({layers}) for {len(manifest['ids'])} stimuli "
               f"(ids from {manifest['ids_from']}{checked}); "
               f"{len(manifest['files'])} file{'s' * (len(manifest['files']) != 1)} hashed")

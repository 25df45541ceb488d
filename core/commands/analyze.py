"""Click commands: ``bench analyze cortical-maps`` (the analysis is ``brainbench.core.compute.cortical``)."""
from __future__ import annotations

import json
import math

import click

from .common import BenchGroup
from ..errors import BrainbenchError


@click.group(cls=BenchGroup)
def analyze():
    """Analyses of stored results."""


@analyze.command(name="cortical-maps")
@click.option("--model", "-m", default=None, help="Model whose stored results to use.")
@click.option("--checkpoint", default="all", show_default=True,
              help="Checkpoint of the stored row ('all' for half-times).")
@click.option("--dataset", "-d", default=None, help="Dataset of the stored row (e.g. nsd).")
@click.option("--metric", "-x", default="halftime", show_default=True, help="Metric of the stored row.")
@click.option("--base", default="encoding", show_default=True, help="For halftime: the base metric.")
@click.option("--key", default=None, help="Detail table to use (default: per_region_half_time / per_region).")
@click.option("--values", "values_file", default=None, metavar="CSV", help="Per-region values instead: region,value.")
@click.option("--maps", "maps_files", multiple=True, metavar="CSV", help="Map table(s) (default: the shipped one).")
@click.option("--method", default="pearson", show_default=True, type=click.Choice(["pearson", "spearman"]))
@click.option("--null", default="spin", show_default=True, type=click.Choice(["spin", "permutation"]),
              help="spin: rotations of the sphere (keeps spatial autocorrelation); permutation: shuffled parcels.")
@click.option("--permutations", default=1000, show_default=True, type=click.IntRange(min=0))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--hemisphere", default="mean", show_default=True, type=click.Choice(["mean", "lh", "rh", "both"]),
              help="How lh./rh. regions map onto the left-hemisphere parcels.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json"]))
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
def cortical_maps(model, checkpoint, dataset, metric, base, key, values_file, maps_files, method, null, permutations,
                  seed, hemisphere, fmt, db):
    """Correlate per-region half-times (or any per-region score) with cortical maps, per Glasser parcel.

    Maps: myelin (T1w/T2w), cortical thickness, evolutionary expansion, intrinsic timescale
    (see brainbench.core.compute.cortical for sources), or your own CSV (parcel,map1,map2,…).

    \b
    Examples:
        bench analyze cortical-maps -m dinov3-large -d nsd
        bench analyze cortical-maps --values halftimes.csv --null permutation
    """
    from ..compute.cortical import correlate_maps, load_maps
    from ..pipeline.analysis import region_values_file, stored_region_values

    if values_file:
        values, what = region_values_file(values_file)
    elif model and dataset:
        values, what = stored_region_values(model, checkpoint, dataset, metric, base, key, db)
    else:
        raise BrainbenchError("give --model and --dataset (stored results) or --values CSV")
    results = []
    for path in maps_files or [None]:
        maps = load_maps(path)
        for result in correlate_maps(values, maps, method=method, null=null, permutations=permutations, seed=seed,
                                     hemisphere=hemisphere):
            results.append({**result, "maps": maps.source})
    if fmt == "json":
        click.echo(json.dumps({"values": what, "results": results}, indent=2, default=lambda v: None))
        return
    nulls = {"spin": f"spin test, {permutations} random rotations of fsaverage's sphere (parcels re-assigned by "
                     "the Hungarian method; Alexander-Bloch 2018, Váša 2018)",
             "permutation": f"{permutations} permutations of the parcels (ignores spatial autocorrelation)"}
    click.echo(f"values: {what}")
    click.echo(f"null: {nulls[null]}; {method} r")
    click.echo(f"  {'map':<20} {'n':>4} {'r':>8} {'p':>8}")
    for r in results:
        text = "n/a" if not math.isfinite(r["r"]) else f"{r['r']:.3f}"
        p = "n/a" if not math.isfinite(r["p_value"]) else f"{r['p_value']:.4f}"
        click.echo(f"  {r['map']:<20} {r['n']:>4} {text:>8} {p:>8}")

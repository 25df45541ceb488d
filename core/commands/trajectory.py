"""Click commands: ``bench trajectory make|checkpoints`` and ``bench analyze cortical-maps``.

``cli.py`` adds the two groups (``main.add_command(trajectory)``, ``main.add_command(analyze)``);
``bench list checkpoints MODEL`` prints the same listing (``pipeline.trajectories.checkpoints_text``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from .common import BenchGroup
from ..config import Config, default_weights_root, set_flags
from ..errors import BrainbenchError

#: ``--weights PATH``: the weights root for this command (same as BRAINBENCH_WEIGHTS)
weights_option = click.option("--weights", default=None, metavar="PATH", expose_value=False,
                              help="Folder of local model weights (BRAINBENCH_WEIGHTS).",
                              callback=lambda ctx, param, value: set_flags(weights=value) or value)


@click.group(cls=BenchGroup)
def trajectory():
    """Training trajectories: train the tiny one, list a model's checkpoints.

    \b
    Examples:
        bench trajectory make                      # tiny-dino, 1000 steps, ~6 min of CPU
        bench trajectory checkpoints tiny-dino
        bench run -m tiny-dino@all -x halftime
    """


@trajectory.command(name="make")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(min=1), help="Training steps.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Photos per step.")
@click.option("--checkpoints", "count", default=16, show_default=True, type=click.IntRange(min=1),
              help="Checkpoints to save, log-spaced (dense early), the last at --steps.")
@click.option("--lr", default=5e-4, show_default=True, type=float, help="Peak AdamW learning rate.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed (tiny-dino@init with this seed is step 0).")
@click.option("--threads", default=None, type=click.IntRange(min=1), help="torch threads (default: torch's).")
@click.option("--out", default=None, metavar="PATH", help="Folder (default: <weights>/tiny-dino).")
@click.option("--force", is_flag=True, help="Replace a trajectory already in the folder.")
@weights_option
def make(steps, batch_size, count, lr, seed, threads, out, force):
    """Train tiny-dino (a small DINOv3 ViT) with DINO self-distillation on CPU; save its checkpoints.

    The checkpoints are the teacher's weights in the original DINOv3 format
    (model_<iteration>.pth); `bench run -m tiny-dino@all` scores them in step order.

    \b
    Example:
        bench trajectory make --steps 300 --checkpoints 10    # shorter: ~2 min, no per-region order
    """
    from brainbench.plugins.models.training import MODEL, TrainingOptions, train

    folder = Path(out).expanduser() if out else default_weights_root() / MODEL
    options = TrainingOptions(steps=steps, batch_size=batch_size, checkpoints=count, lr=lr, seed=seed, threads=threads)
    manifest = train(folder, options, force=force, echo=click.echo)
    probe = manifest["probe"]
    first, last = probe["0"], probe[str(manifest["saved_steps"][-1])]
    click.echo(f"trained {MODEL} for {steps} steps in {manifest['elapsed_s']:.1f} s; {len(manifest['saved_steps'])} "
               f"checkpoints in {folder}; crop invariance {first['invariance']:.3f} → {last['invariance']:.3f}")
    if out is None and Config().get("weights") is None:
        click.echo(f"(no weights setting: brainbench reads {folder.parent} by default)")


@trajectory.command(name="checkpoints")
@click.argument("model")
@click.option("--pattern", "patterns", multiple=True, metavar="REGEX",
              help="Checkpoint-name pattern with (?P<step>…) or (?P<iteration>…) (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@weights_option
def checkpoints(model, patterns, as_json):
    """List a model's checkpoints on disk, in step order (step 0 is init).

    \b
    Example:
        bench trajectory checkpoints dinov3-large
    """
    from ..pipeline.trajectories import checkpoints_text

    click.echo(checkpoints_text(model, patterns, as_json))


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

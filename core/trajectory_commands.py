"""Click commands: ``bench trajectory make|checkpoints`` and ``bench analyze cortical-maps``.

``cli.py`` adds the two groups (``main.add_command(trajectory)``, ``main.add_command(analyze)``);
:func:`checkpoints_text` also serves ``bench list checkpoints MODEL``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import click

from .cli_common import BenchGroup
from .config import Config, set_flags
from .errors import BrainbenchError

#: ``--weights PATH``: the weights root for this command (same as BRAINBENCH_WEIGHTS)
weights_option = click.option("--weights", default=None, metavar="PATH", expose_value=False,
                              help="Folder of local model weights (BRAINBENCH_WEIGHTS).",
                              callback=lambda ctx, param, value: set_flags(weights=value) or value)


def default_weights_root() -> Path:
    """The ``weights`` setting, else ``<home>/weights`` (where ``bench trajectory make`` writes by default)."""
    config = Config()
    return config.path("weights") or config.home / "weights"


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
    from .training import MODEL, TrainingOptions, train

    folder = Path(out).expanduser() if out else default_weights_root() / MODEL
    options = TrainingOptions(steps=steps, batch_size=batch_size, checkpoints=count, lr=lr, seed=seed, threads=threads)
    manifest = train(folder, options, force=force, echo=click.echo)
    probe = manifest["probe"]
    first, last = probe["0"], probe[str(manifest["saved_steps"][-1])]
    click.echo(f"trained {MODEL} for {steps} steps in {manifest['elapsed_s']:.1f} s; {len(manifest['saved_steps'])} "
               f"checkpoints in {folder}; crop invariance {first['invariance']:.3f} → {last['invariance']:.3f}")
    if out is None and Config().get("weights") is None:
        click.echo(f"(no weights setting: brainbench reads {folder.parent} by default)")


def checkpoints_text(model: str, patterns: tuple[str, ...] = (), as_json: bool = False) -> str:
    """What ``bench list checkpoints MODEL`` prints: the model's checkpoint series, in step order."""
    from .registry import get_registry
    from .trajectory import describe, series
    from .trajectory_run import series_folder

    spec = get_registry().model(model)
    folder = series_folder(spec.name, {})
    points = series(spec.name, folder, patterns=list(patterns) or spec.metadata.get("checkpoint_patterns"),
                    declared=spec.metadata.get("checkpoints", []))
    rows = describe(points)
    if as_json:
        return json.dumps({"model": spec.name, "folder": None if folder is None else str(folder), "checkpoints": rows},
                          indent=2)
    lines = [f"{spec.name}: {len(rows)} checkpoints in {folder}", "  step      name            % of training  file"]
    for row in rows:
        file = Path(row["path"]).name if row["path"] else "(random init, seed 0)"
        lines.append(f"  {row['step']:<9} {row['name']:<15} {row['percent']:>12.2f}  {file}")
    return "\n".join(lines)


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
    click.echo(checkpoints_text(model, patterns, as_json))


@click.group(cls=BenchGroup)
def analyze():
    """Analyses of stored results."""


def _stored_values(model, checkpoint, dataset, metric, base, key, db) -> tuple[dict, str]:
    from .results import ResultStore

    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run `bench run` first")
    with ResultStore(config.db_path) as store:
        rows = store.query(model=model, checkpoint=checkpoint, dataset=dataset, metric=metric, subject="all")
    if metric == "halftime":
        rows = [r for r in rows if json.loads(r.options).get("metric", {}).get("base") == base]
    if not rows:
        raise BrainbenchError(f"no stored {metric} row for {model}@{checkpoint} on {dataset}; "
                              f"run `bench run -m {model}@{checkpoint} -d {dataset} -x {metric}` first")
    row = max(rows, key=lambda r: r.updated_at)
    key = key or ("per_region_half_time" if metric == "halftime" else "per_region")
    table = row.detail.get(key)
    if not isinstance(table, dict) or not table:
        raise BrainbenchError(f"the stored {metric} row of {model}@{checkpoint} on {dataset} has no per-region table "
                              f"{key!r}")
    values = {k: (v if isinstance(v, (int, float)) else math.nan) for k, v in table.items() if v is not None}
    return values, f"{model}@{checkpoint} × {dataset} × {metric}{f'({base})' if metric == 'halftime' else ''}: {key}"


def _values_file(path: str) -> tuple[dict, str]:
    from .cortical import _read_csv

    header, rows = _read_csv(Path(path))
    if len(header) < 2:
        raise BrainbenchError(f"{path} needs two columns: region, value")
    return {row[0]: float(row[1]) for row in rows if len(row) > 1 and row[1] not in ("", "nan", "NaN")}, path


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
    (see brainbench.core.cortical for sources), or your own CSV (parcel,map1,map2,…).

    \b
    Examples:
        bench analyze cortical-maps -m dinov3-large -d nsd
        bench analyze cortical-maps --values halftimes.csv --null permutation
    """
    from .cortical import correlate_maps, load_maps

    if values_file:
        values, what = _values_file(values_file)
    elif model and dataset:
        values, what = _stored_values(model, checkpoint, dataset, metric, base, key, db)
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

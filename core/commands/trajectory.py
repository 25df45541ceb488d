"""Click commands: ``bench trajectory make|checkpoints``.

``cli.py`` adds the group (``main.add_command(trajectory)``);
``bench list checkpoints MODEL`` prints the same listing (``pipeline.trajectories.checkpoints_text``).
"""
from __future__ import annotations

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
        bench trajectory make                      # tiny-dino, 300 steps, ~2 min on 2 CPU cores
        bench trajectory checkpoints tiny-dino
        bench run -m tiny-dino@all -x halftime
    """


@trajectory.command(name="make")
@click.option("--steps", default=300, show_default=True, type=click.IntRange(min=1), help="Training steps.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Photos per step.")
@click.option("--checkpoints", "count", default=10, show_default=True, type=click.IntRange(min=1),
              help="Checkpoints to save, log-spaced, the last at --steps.")
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
        bench trajectory make --steps 300 --checkpoints 10
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

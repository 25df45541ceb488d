"""Pieces shared by every ``bench`` command group (``cli.py`` and the command modules)."""
from __future__ import annotations

import json

import click

from ..config import set_flags
from ..errors import BrainbenchError


class BenchGroup(click.Group):
    """Shows a :class:`BrainbenchError` as one sentence, without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrainbenchError as exc:
            raise click.ClickException(str(exc)) from None


class BatchSize(click.ParamType):
    """A positive integer or ``auto``."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, int):
            return value
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is neither a positive integer nor 'auto'", param, ctx)
        return number


BATCH_SIZE = BatchSize()


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

"""Flags that several ``bench`` commands share: the data-root flags.

``--set`` values are parsed in one place, :func:`brainbench.core.contract.options.parse_sets`.
"""
from __future__ import annotations

import click

from ..config import set_flags


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


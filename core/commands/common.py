"""Pieces shared by every ``bench`` command group (``cli.py`` and the command modules)."""
from __future__ import annotations

import click

from ..errors import BrainbenchError


class BenchGroup(click.Group):
    """Shows any error as one sentence (``Error: …``, exit 1); the traceback only with ``--debug``.

    See :mod:`brainbench.core.failures`.
    """

    def invoke(self, ctx):
        from ..failures import debug_enabled, one_sentence, show_traceback

        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the command line never shows a bare traceback
            if debug_enabled():
                show_traceback(exc)
            raise click.ClickException(" ".join(one_sentence(exc).split())) from None


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

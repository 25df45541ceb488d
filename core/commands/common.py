"""Pieces shared by every ``bench`` command group (``cli.py`` and the command modules)."""
from __future__ import annotations

import click

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

"""The ``bench`` command: the root group; each command group lives in ``core/commands/``.

A new command goes into the module of its group there (or a new module, added below); a
command module parses options and calls one function of ``brainbench.core``, nothing more.
"""
from __future__ import annotations

import sys

import click

from .core.commands import authoring, catalog, features, fetch, grid, results, run, trajectory
from .core.commands.common import BenchGroup
from .core.commands.flags import data_root_options
from .leaderboard.commands import leaderboard, report


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="brainbench")
@click.option("--debug", is_flag=True, help="On an error, also print the traceback (same as BRAINBENCH_DEBUG=1).")
def main(debug):
    """brainbench: how brain-like are a vision model's representations?

    \b
    Example:
        bench run --model dinov3-small@init --dataset synthetic-fmri --metric encoding
    """
    from .core.failures import set_debug

    set_debug(debug)


for _command in (*catalog.COMMANDS, run.run, authoring.new, authoring.check, data_root_options(grid.grid),
                 leaderboard, trajectory.trajectory, trajectory.analyze, results.results, features.features,
                 report):
    main.add_command(_command)
catalog.data.add_command(fetch.fetch)  # bench data fetch, beside bench data check

if __name__ == "__main__":  # python -m brainbench.cli
    sys.exit(main())

"""``bench data fetch nsd|things-meg|things-images``: the data a run needs, from the public buckets.

The transfer engine is :mod:`brainbench.core.fetch`; what each dataset needs is listed next to
its plugin (``plugins/datasets/nsd_fetch.py``, ``plugins/datasets/things_meg_fetch.py``), loaded
by name when its command runs.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import click

from ..config import Config, remember
from ..errors import BrainbenchError
from ..fetch import ENDPOINT_ENV, Bucket, Plan, endpoint_url, human, run_plan


def _plugin(module: str):
    """A dataset plugin's fetch module, loaded by name (core does not import plugins)."""
    return importlib.import_module(f"brainbench.plugins.datasets.{module}")


def _common(command):
    """Options every remote fetch takes."""
    for decorator in reversed([
        click.option("--endpoint-url", "endpoint_url_", default=None, metavar="URL",
                     help=f"S3 endpoint of a mirror or test server (default: ${ENDPOINT_ENV}, else AWS)."),
        click.option("--dry-run", is_flag=True, help="List the keys and the total size; write nothing."),
        click.option("--workers", "-j", default=4, show_default=True, type=click.IntRange(1, 64),
                     help="Files (or image reads) transferred in parallel."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]):
        command = decorator(command)
    return command


def _root(to: str | None, setting: str) -> Path:
    """``--to``, else the dataset's root setting, else the current folder."""
    path = Path(to).expanduser() if to else Config().path(setting)
    return (path or Path(".")).absolute()


def _adopt(root: Path, setting: str) -> None:
    """Make ``root`` the dataset's root in the config file when none is set, so that runs find it."""
    if Config().get(setting) is None:
        click.echo(f"{setting} = {root} recorded in {remember(setting, str(root))}", err=True)


def _execute(plan: Plan, dry_run: bool, workers: int, quiet: bool, after: str, setting: str) -> None:
    """Print the plan; unless ``dry_run``, fetch it and say what was transferred."""
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    total = plan.bytes_to_transfer()
    if dry_run:
        for line in plan.listing():
            click.echo(line)
        click.echo(f"total: {total:,} bytes ({human(total)}) to transfer into {plan.root}; nothing written (dry run)")
        return
    if total == 0:
        click.echo(f"everything asked for is already in {plan.root}; nothing to transfer")
    else:
        received = run_plan(plan, workers=workers, progress=not quiet)
        click.echo(f"transferred {received:,} bytes ({human(received)}) into {plan.root}")
    _adopt(plan.root, setting)
    click.echo(after)


@click.group(name="fetch")
def fetch():
    """Download a dataset's files from its public bucket (anonymous, resumable).

    \b
    Examples:
        bench data fetch nsd --subjects 1 --sessions 1-2 --to /data/nsd --agree-nsd-terms
        bench data fetch things-meg --participants P1 --to /data/ds004212
        bench data fetch things-images --zip images_THINGS.zip --password PW --to /data/THINGS
    """


@fetch.command(name="nsd")
@click.option("--subjects", required=True, metavar="1,2|subj01,…", help="Subjects to fetch.")
@click.option("--sessions", default=None, metavar="1-10|1,2,5",
              help="Beta sessions to fetch (default: all of each subject's).")
@click.option("--to", default=None, metavar="FOLDER",
              help="NSD root (default: nsd_root / BRAINBENCH_NSD_ROOT, else the current folder, then recorded as "
                   "nsd_root).")
@click.option("--what", default=None, metavar="PARTS",
              help="Parts: design, atlas, ncsnr, betas, stimuli (default: all), nsdgeneral, prf-visualrois; "
                   "+part adds, -part drops, plain names replace the list.")
@click.option("--stimuli", "stimuli_mode", default="subset", show_default=True, type=click.Choice(["subset", "full"]),
              help="subset: only the images these subjects saw, read out of nsd_stimuli.hdf5; full: the 37 GiB file.")
@click.option("--betas-format", default="hdf5", show_default=True, type=click.Choice(["hdf5", "nii"]))
@click.option("--space", default="func1pt8mm", show_default=True)
@click.option("--agree-nsd-terms", is_flag=True, help="Accept the NSD Terms and Data Access Agreement (remembered).")
@_common
def fetch_nsd(subjects, sessions, to, what, stimuli_mode, betas_format, space, agree_nsd_terms, endpoint_url_,
              dry_run, workers, quiet):
    """The Natural Scenes Dataset files an `nsd` run reads, for some subjects and sessions.

    \b
    Example:
        bench data fetch nsd --subjects 1 --sessions 1-2 --to /data/nsd --agree-nsd-terms --dry-run
    """
    nsd_fetch = _plugin("nsd_fetch")
    subject_list = nsd_fetch.parse_subjects(subjects)
    session_list = nsd_fetch.parse_sessions(sessions)
    parts = nsd_fetch.parse_what(what)
    root = _root(to, "nsd_root")
    if not nsd_fetch.agreed():
        click.echo(nsd_fetch.TERMS, err=True)
        if agree_nsd_terms:
            click.echo(f"agreement recorded in {nsd_fetch.remember_agreement()}", err=True)
        elif not dry_run:
            raise BrainbenchError("read the NSD terms above, then run the command again with --agree-nsd-terms "
                                  "(asked once; remembered in the config file)")
    bucket = Bucket(nsd_fetch.BUCKET, nsd_fetch.REGION, endpoint_url(endpoint_url_))
    plan = nsd_fetch.plan(root, subject_list, session_list, bucket=bucket, what=parts, stimuli=stimuli_mode,
                          betas_format=betas_format, space=space, workers=workers,
                          say=lambda m: click.echo(m, err=True))
    names = ",".join(subject_list)
    _execute(plan, dry_run, workers, quiet, f"next: bench run -d nsd -x spatial --set dataset.subjects={names}",
             "nsd_root")


@fetch.command(name="things-meg")
@click.option("--participants", default=None, metavar="P1,P2", help="Participants to fetch (default: P1-P4).")
@click.option("--to", default=None, metavar="FOLDER",
              help="ds004212 root (default: things_meg_root / BRAINBENCH_THINGS_MEG_ROOT, else the current folder).")
@_common
def fetch_things_meg(participants, to, endpoint_url_, dry_run, workers, quiet):
    """THINGS-MEG's preprocessed epochs (every split part) and trial tables, from OpenNeuro ds004212.

    \b
    Example:
        bench data fetch things-meg --participants P1,P2 --to /data/ds004212
    """
    things_meg_fetch = _plugin("things_meg_fetch")
    names = things_meg_fetch.parse_participants(participants)
    root = _root(to, "things_meg_root")
    bucket = Bucket(things_meg_fetch.BUCKET, things_meg_fetch.REGION, endpoint_url(endpoint_url_))
    plan = things_meg_fetch.plan(root, names, bucket=bucket, workers=workers)
    _execute(plan, dry_run, workers, quiet,
             "next: bench data fetch things-images --zip images_THINGS.zip, then bench run -d things-meg -x temporal",
             "things_meg_root")


@fetch.command(name="things-images")
@click.option("--zip", "archive", default=None, metavar="PATH", help="images_THINGS.zip downloaded from OSF.")
@click.option("--password", default=None, help="The archive's password (given on the THINGS database page).")
@click.option("--to", default=None, metavar="FOLDER",
              help="Where to unpack (default: things_images_root / BRAINBENCH_THINGS_IMAGES, else the current "
                   "folder).")
def fetch_things_images(archive, password, to):
    """Check and unpack the THINGS images archive (it is on OSF, not on a public bucket).

    \b
    Example:
        bench data fetch things-images --zip images_THINGS.zip --password PW --to /data/THINGS
    """
    unpack_images = _plugin("things_meg_fetch").unpack_images
    if archive is None:
        unpack_images(None, Path("."))
    root = _root(to, "things_images_root")
    category_root, count = unpack_images(Path(archive), root, password)
    click.echo(f"unpacked {count:,} images into {category_root}")
    _adopt(category_root, "things_images_root")

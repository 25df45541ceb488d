"""What ``bench data fetch things-meg`` and ``bench data fetch things-images`` put on disk.

THINGS-MEG (OpenNeuro ds004212, CC0) from ``s3://openneuro.org/ds004212/`` (us-east-1,
anonymous), per participant: every part of the preprocessed epochs
(``derivatives/preprocessed/preprocessed_P1-epo.fif``, ``-epo-1.fif``, …) and the trial table
``sourcedata/sample_attributes_P1.csv`` — the files the ``things-meg`` plugin reads. Keys lose
their ``ds004212/`` prefix locally, so ``--to`` is the ds004212 root.

The THINGS images are not on that bucket (they are behind a password on OSF, for copyright):
``things-images --zip PATH`` checks and unpacks the archive a user downloaded.
"""
from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.fetch import Bucket, Plan, list_prefix, relative_dest
from brainbench.plugins.datasets.things_meg import GET_IMAGES, SUBJECTS

BUCKET = "openneuro.org"
REGION = "us-east-1"
DATASET = "ds004212/"
EPOCHS = re.compile(r"preprocessed_(P\d+)-epo(-\d+)?\.fif$")


def parse_participants(text: str | None) -> list[str]:
    """``"P1,P2"`` or ``"1,2"`` → participant names; None → all four."""
    if not text:
        return list(SUBJECTS)
    out = []
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        name = f"P{item}" if item.isdigit() else item.upper()
        if name not in SUBJECTS:
            raise BrainbenchError(f"--participants: {item!r} is not a THINGS-MEG participant; give P1…P4 "
                                  "separated by commas")
        out.append(name)
    return list(dict.fromkeys(out))


def plan(root: Path, participants: list[str], *, bucket: Bucket, workers: int = 8) -> Plan:
    """Every epochs part and metadata table of ``participants``, sizes from the listing."""
    client = bucket.client(workers)
    out = Plan(bucket, Path(root))
    epochs = list_prefix(client, bucket, DATASET + "derivatives/preprocessed/")
    tables = list_prefix(client, bucket, DATASET + "sourcedata/")
    for participant in participants:
        parts = sorted((k for k in epochs if (m := EPOCHS.search(k)) and m.group(1) == participant),
                       key=lambda k: int((EPOCHS.search(k).group(2) or "-0")[1:]))
        if not parts:
            raise MissingDataError(f"no preprocessed epochs of {participant} under "
                                   f"{bucket.url(DATASET + 'derivatives/preprocessed/')}")
        out.files += [epochs[k] for k in parts]
        table = f"{DATASET}sourcedata/sample_attributes_{participant}.csv"
        if table in tables:
            out.files.append(tables[table])
        else:
            out.notes.append(f"{bucket.url(table)} is not in the bucket; the metadata stored in the epochs is used")
    out.files = relative_dest(out.files, DATASET)
    return out


def unpack_images(archive: Path | None, images_root: Path, password: str | None = None) -> tuple[Path, int]:
    """Check and unpack the THINGS images archive into ``images_root``; returns (category folder root, images).

    Raises
    ------
    MissingDataError
        No archive given (the sentence says where to get it) or the path does not exist.
    BrainbenchError
        Not a zip, a damaged member (CRC), a wrong password, or no JPEG images inside.
    """
    if archive is None:
        raise MissingDataError("the THINGS images are not on a public bucket (nor part of ds004212): download "
                               "images_THINGS.zip from the THINGS database on OSF (https://osf.io/jum2f/), then run "
                               "`bench data fetch things-images --zip images_THINGS.zip --password PW --to FOLDER` (PW: the "
                               "password given on OSF), which checks and unzips it and records FOLDER as the images root")
    archive = Path(archive).expanduser()
    if not archive.is_file():
        raise MissingDataError(f"--zip {archive} does not exist; {GET_IMAGES}")
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise BrainbenchError(f"{archive} is not a zip archive (is the download complete?)") from None
    with zf:
        if password:
            zf.setpassword(password.encode())
        images = [n for n in zf.namelist() if n.lower().endswith((".jpg", ".jpeg", ".png")) and "__MACOSX" not in n]
        inner = [n for n in zf.namelist() if n.lower().endswith(".zip") and "__MACOSX" not in n]
        if inner and not images:  # an archive of archives (e.g. one per letter): unpack each the same way
            return _unpack_nested(zf, archive, inner, Path(images_root).expanduser(), password)
        if not images:
            raise BrainbenchError(f"{archive} holds no images; is it images_THINGS.zip from the THINGS database?")
        try:
            bad = zf.testzip()
        except RuntimeError as exc:  # encrypted and no (or a wrong) password
            raise BrainbenchError(f"{archive} is password-protected ({exc}); pass --password with the password "
                                  "given on the THINGS database page (https://osf.io/jum2f/)") from None
        if bad is not None:
            raise BrainbenchError(f"{archive} is damaged: member {bad} fails its CRC check; download it again")
        images_root = Path(images_root).expanduser()
        images_root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(images_root).free
        needed = sum(i.file_size for i in zf.infolist())
        if needed > free:
            raise BrainbenchError(f"unpacking {archive} needs {needed:,} bytes but {free:,} are free under "
                                  f"{images_root}")
        zf.extractall(images_root)
    # the folder holding the category folders: the archive's object_images/ when it has one
    found = [images_root / Path(n) for n in images]
    category_root = found[0].parent.parent
    return category_root, len(images)


def _unpack_nested(zf: zipfile.ZipFile, archive: Path, inner: list[str], images_root: Path,
                   password: str | None) -> tuple[Path, int]:
    """Unpack the archives inside ``archive`` one by one into ``images_root``."""
    images_root.mkdir(parents=True, exist_ok=True)
    roots, total = [], 0
    for name in inner:
        try:
            path = Path(zf.extract(name, images_root, pwd=password.encode() if password else None))
        except (RuntimeError, zipfile.BadZipFile, OSError) as exc:
            raise BrainbenchError(f"{name} in {archive} cannot be extracted ({exc}); with a password-protected "
                                  "archive pass --password") from None
        root, count = unpack_images(path, images_root, password)
        path.unlink()
        roots.append(root)
        total += count
    return roots[0], total

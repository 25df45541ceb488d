"""What ``bench data fetch nsd`` downloads: exactly the files an ``nsd`` run reads.

From the public bucket ``s3://natural-scenes-dataset`` (us-east-2, anonymous access), for the
subjects and sessions asked for (the keys are the local paths below the root):

- ``design``: ``nsddata/experiments/nsd/nsd_expdesign.mat``
- ``atlas``: ``nsddata/freesurfer/fsaverage/label/HCP_MMP1.mgz.ctab`` and per subject
  ``nsddata/ppdata/subjNN/<space>/roi/{lh,rh}.HCP_MMP1.nii.gz``
- ``ncsnr``: ``nsddata_betas/ppdata/subjNN/<space>/betas_fithrf_GLMdenoise_RR/ncsnr.nii.gz``
- ``betas``: ``…/betas_sessionNN.hdf5`` (``--betas-format nii``: ``.nii.gz``) of the sessions asked for
- ``stimuli``: the images those subjects saw in those sessions, read out of
  ``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5`` (see ``nsd_stimuli_subset.py``);
  ``--stimuli full`` downloads the whole 37 GiB file instead.
- optional: ``nsdgeneral`` and ``prf-visualrois`` (the other region sets, ``--what +nsdgeneral``).

Use of NSD is governed by its Terms and Data Access Agreement: the first fetch prints them and
needs ``--agree-nsd-terms`` once; the agreement is remembered in the config file.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Callable

import numpy as np

from brainbench.core.config import Config, remember
from brainbench.core.errors import BrainbenchError
from brainbench.core.fetch import Bucket, Plan, RemoteFile, Step, head, list_prefix, read_object
from brainbench.plugins.datasets.nsd_files import SUBJECT_SESSIONS, SUBJECTS, Design, Layout, read_design
from brainbench.plugins.datasets.nsd_stimuli_subset import FULL, ImageFetch, fetched_ids, subset_path

BUCKET = "natural-scenes-dataset"
REGION = "us-east-2"
PARTS = ("design", "atlas", "ncsnr", "betas", "stimuli")
OPTIONAL_PARTS = ("nsdgeneral", "prf-visualrois")
TERMS_KEY = "nsd_terms_agreed"
TERMS = ("Use of the Natural Scenes Dataset is governed by the NSD Terms and Conditions / Data Access Agreement "
         "(https://naturalscenesdataset.org): read them before downloading. Publications that use NSD cite "
         "Allen et al. 2022, Nature Neuroscience 25:116-126.")


def parse_subjects(text: str) -> list[str]:
    """``"1,2"`` or ``"subj01,subj02"`` → NSD subject names."""
    out = []
    for item in [t.strip() for t in str(text).split(",") if t.strip()]:
        name = f"subj{int(item):02d}" if item.isdigit() else item
        if name not in SUBJECTS:
            raise BrainbenchError(f"--subjects: {item!r} is not an NSD subject; give numbers 1-8 or names "
                                  "subj01…subj08, separated by commas")
        out.append(name)
    if not out:
        raise BrainbenchError("--subjects names no subject; give e.g. --subjects 1,2")
    return list(dict.fromkeys(out))


def parse_sessions(text: str | None) -> list[int] | None:
    """``"1-10"``, ``"3"``, ``"1-2,5"`` → sorted session numbers; None (all) for None or ``all``."""
    if text is None or str(text).strip() in ("", "all"):
        return None
    out = set()
    for item in str(text).split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", item)
        if not match or int(match.group(1)) < 1 or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise BrainbenchError(f"--sessions: {item.strip()!r} is not a session number or range; give e.g. 1-10 "
                                  "or 1,2,5 (sessions count from 1)")
        out.update(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    return sorted(out)


def parse_what(text: str | None) -> list[str]:
    """``--what``: names replace the default parts; ``+name`` adds one, ``-name`` drops one."""
    parts = list(PARTS)
    if not text:
        return parts
    items = [t.strip() for t in text.split(",") if t.strip()]
    if any(not t.startswith(("+", "-")) for t in items):
        parts = []
    for item in items:
        sign, name = (item[0], item[1:]) if item[0] in "+-" else ("+", item)
        if name not in PARTS + OPTIONAL_PARTS:
            raise BrainbenchError(f"--what: unknown part {name!r}; parts are {', '.join(PARTS + OPTIONAL_PARTS)} "
                                  "(a name replaces the default list, +name adds, -name drops)")
        if sign == "+" and name not in parts:
            parts.append(name)
        elif sign == "-" and name in parts:
            parts.remove(name)
    return parts


def agreed(config: Config | None = None) -> bool:
    value = (config or Config()).get(TERMS_KEY)
    return str(value).lower() in ("true", "1", "yes")


def remember_agreement() -> Path:
    """Record ``nsd_terms_agreed = true`` in the config file; returns its path."""
    return remember(TERMS_KEY, True)


def _design(client, bucket: Bucket, layout: Layout, remote: RemoteFile, preloaded: dict[str, bytes]) -> Design:
    """The experiment design: the local copy when complete, else read from the bucket into memory
    (kept in ``preloaded`` so that the fetch writes it instead of downloading it twice)."""
    local = layout.root / remote.dest
    if local.is_file() and local.stat().st_size == remote.size:
        return read_design(local)
    import scipy.io

    preloaded[remote.key] = read_object(client, bucket, remote.key)
    try:
        mat = scipy.io.loadmat(io.BytesIO(preloaded[remote.key]))
    except Exception as exc:  # noqa: BLE001
        raise BrainbenchError(f"{bucket.url(remote.key)} is not a readable MATLAB file ({exc})") from None
    order = np.asarray(mat["masterordering"]).ravel().astype(np.int64) - 1
    subjectim = np.asarray(mat["subjectim"]).astype(np.int64) - 1
    return Design(order, subjectim, np.asarray(mat.get("sharedix", subjectim[0, :1000] + 1)).ravel() - 1)


def plan(root: Path, subjects: list[str], sessions: list[int] | None, *, bucket: Bucket, what: list[str],
         stimuli: str = "subset", betas_format: str = "hdf5", space: str = "func1pt8mm",
         betas_version: str = "betas_fithrf_GLMdenoise_RR", workers: int = 8,
         say: Callable[[str], None] = print) -> Plan:
    """Every file and image the request needs, with sizes from the bucket's listing (nothing is written)."""
    if stimuli not in ("subset", "full"):
        raise BrainbenchError(f"--stimuli must be subset or full, got {stimuli!r}")
    if betas_format not in ("hdf5", "nii"):
        raise BrainbenchError(f"--betas-format must be hdf5 or nii, got {betas_format!r}")
    client = bucket.client(workers)
    layout = Layout(Path(root), space, betas_version)
    out = Plan(bucket, layout.root)
    key = layout.where
    design_file = head(client, bucket, key(layout.design))
    if "design" in what:
        out.files.append(design_file)
    for subject in subjects:
        if "atlas" in what or any(p in what for p in OPTIONAL_PARTS):
            rois = list_prefix(client, bucket, key(layout.roi(subject, "x")).rsplit("/", 1)[0] + "/")
            atlases = (["HCP_MMP1"] if "atlas" in what else []) + [p for p in OPTIONAL_PARTS if p in what]
            for atlas in atlases:
                for hemisphere in ("lh", "rh"):
                    wanted = key(layout.roi(subject, atlas, hemisphere))
                    if wanted not in rois:
                        raise BrainbenchError(f"{bucket.url(wanted)} is not in the bucket")
                    out.files.append(rois[wanted])
        if "betas" in what or "ncsnr" in what:
            listed = list_prefix(client, bucket, key(layout.betas_dir(subject)) + "/")
            if "ncsnr" in what:
                ncsnr = key(layout.ncsnr(subject))
                if ncsnr in listed:
                    out.files.append(listed[ncsnr])
                else:
                    out.notes.append(f"{subject}: {bucket.url(ncsnr)} is not in the bucket; the noise ceiling "
                                     "will come from split halves")
            if "betas" in what:
                total = SUBJECT_SESSIONS[subject]
                chosen = [s for s in (sessions or range(1, total + 1)) if s <= total]
                if sessions and max(sessions) > total:
                    out.notes.append(f"{subject} has {total} sessions; sessions above {total} are skipped")
                for session in chosen:
                    wanted = key(layout.session(subject, session, betas_format))
                    if wanted not in listed:
                        raise BrainbenchError(f"{bucket.url(wanted)} is not in the bucket")
                    out.files.append(listed[wanted])
    if "atlas" in what:
        out.files.append(head(client, bucket, key(layout.label_tables("HCP_MMP1")[0])))
    if "stimuli" in what:
        if stimuli == "full":
            out.files.append(head(client, bucket, FULL))
        elif (layout.root / FULL).is_file():
            out.notes.append(f"{layout.root / FULL} is here already: no image needs fetching")
        else:
            design = _design(client, bucket, layout, design_file, out.preloaded)
            ids = np.unique(np.concatenate([
                design.trial_images(s, min(max(sessions) if sessions else SUBJECT_SESSIONS[s], SUBJECT_SESSIONS[s]))
                for s in subjects]))
            if len(np.setdiff1d(ids, fetched_ids(subset_path(layout.root)))):
                images = ImageFetch(bucket, layout.root, ids, workers=workers, say=say)
                out.steps.append(Step(images.describe(), images.size, images.run))
    # one entry per key, in a stable order
    out.files = list({f.key: f for f in out.files}.values())
    return out

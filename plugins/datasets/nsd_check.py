"""``bench data check nsd``: every file of an NSD tree that a run reads, checked without loading the
betas, one problem per line.

Apart from :mod:`brainbench.plugins.datasets.nsd_files` (the readers) because it also uses the
session rules of :mod:`brainbench.plugins.datasets.nsd_sessions`, which build on those readers.
"""
from __future__ import annotations

from typing import Iterable

from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.plugins.datasets.nsd_files import (
    BUCKET, HEMISPHERES, SUBJECTS, Layout, _check_session_shape, atlas_labels, read_design, read_float_volume,
    read_label_volume, session_shape,
)
from brainbench.plugins.datasets.nsd_sessions import contiguous, sessions_on_disk, usable_sessions


def check_tree(layout: Layout, subjects: Iterable[str] | None = None, sessions: int | None = None,
               betas_format: str = "auto", atlas: str = "HCP_MMP1") -> list[str]:
    """Every problem of an NSD tree, one sentence each naming the file (empty: all good).

    Reads headers and small files only: the stimuli's shape, the design, the label
    tables and volumes, and each beta session's header.
    """
    if not layout.root.is_dir():
        return [f"NSD root {layout.root} is not a folder; set BRAINBENCH_NSD_ROOT, nsd_root in the config file "
                "or the dataset option root"]
    problems: list[str] = []
    n_images = _check_stimuli(layout, problems)
    _collect(problems, lambda: _check_design(layout, n_images))
    _collect(problems, lambda: atlas_labels(layout, atlas))
    subjects = list(subjects) if subjects else layout.present_subjects()
    if not subjects:
        problems.append(f"no subject's betas were found under {layout.root / 'nsddata_betas/ppdata'} "
                        f"(expected folders like {layout.where(layout.betas_dir('subj01'))})")
    for subject in subjects:
        _check_subject(layout, subject, sessions, betas_format, atlas, problems)
    return problems


def _collect(problems: list[str], step) -> object:
    try:
        return step()
    except BrainbenchError as exc:
        problems.append(str(exc))
        return None


def _check_stimuli(layout: Layout, problems: list[str]) -> int | None:
    path = layout.stimuli
    subset = layout.root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli_subset.hdf5"  # see nsd_stimuli_subset.py
    path = subset if not path.is_file() and subset.is_file() else path
    if not path.is_file():
        problems.append(str(layout.missing(path, "stimuli file")))
        return None
    from brainbench.plugins.datasets.nsd_integrity import check_stimuli_file

    return _collect(problems, lambda: check_stimuli_file(path))  # the same checks as the dataset's


def _check_design(layout: Layout, n_images: int | None) -> None:
    design = read_design(layout.design)
    if n_images is not None and design.subjectim.max() >= n_images:
        raise BrainbenchError(f"'subjectim' in {layout.design} refers to nsdId {design.subjectim.max()} "
                              f"but 'imgBrick' in {layout.stimuli} holds only {n_images} images")


def _check_subject(layout: Layout, subject: str, sessions: int | None, betas_format: str, atlas: str,
                   problems: list[str]) -> None:
    if subject not in SUBJECTS:
        problems.append(f"{subject!r} is not an NSD subject; subjects are {', '.join(SUBJECTS)}")
        return
    shape = None
    for hemisphere in HEMISPHERES:
        volume = _collect(problems, lambda h=hemisphere: read_label_volume(layout.roi(subject, atlas, h), layout))
        if volume is None:
            continue
        if shape is None:
            shape = volume[0].shape
        elif volume[0].shape != shape:
            problems.append(f"{layout.roi(subject, atlas, hemisphere)} has shape {volume[0].shape} but "
                            f"{layout.roi(subject, atlas, 'lh')} has {shape}")
    for optional in ("nsdgeneral", "prf-visualrois", "HCP_MMP1"):
        path = layout.roi(subject, optional)
        if path.is_file() and shape is not None:
            volume = _collect(problems, lambda p=path: read_label_volume(p))
            if volume is not None and volume[0].shape != shape:
                problems.append(f"{path} has shape {volume[0].shape} but the {atlas} volumes are {shape}")
    if layout.ncsnr(subject).is_file() and shape is not None:
        _collect(problems, lambda: read_float_volume(layout.ncsnr(subject), shape))
    n = _collect(problems, lambda: usable_sessions(layout, subject, sessions, betas_format))
    n = contiguous(sessions_on_disk(layout, subject, betas_format)) if n is None else n
    missing = []
    for session in range(1, n + 1):
        try:
            path = layout.session_file(subject, session, betas_format)
        except MissingDataError:
            missing.append(session)
            continue
        dims = _collect(problems, lambda p=path: session_shape(p))
        if dims is not None and shape is not None:
            _collect(problems, lambda p=path, d=dims: _check_session_shape(p, d, shape))
    if missing:
        problems.append(_missing_sessions(layout, subject, missing, betas_format))


def _missing_sessions(layout: Layout, subject: str, missing: list[int], betas_format: str) -> str:
    """One sentence for a subject's missing beta sessions, runs collapsed (``3-40``)."""
    runs, start = [], missing[0]
    for previous, current in zip(missing, missing[1:] + [None]):
        if current != previous + 1:
            runs.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = current
    fmt = "nii" if betas_format == "auto" else betas_format
    first = layout.session(subject, missing[0], fmt)
    plural = "s" if len(missing) > 1 else ""
    return (f"NSD beta session{plural} {', '.join(runs)} of {subject} {'are' if plural else 'is'} missing "
            f"(no {first}{' and so on' if plural else ''}); download {'them' if plural else 'it'} from "
            f"{BUCKET}/{layout.where(layout.betas_dir(subject))}/ (betas_sessionNN.hdf5 or .nii.gz), "
            "or use fewer sessions (dataset option sessions)")


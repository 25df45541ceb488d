"""Which NSD beta sessions a run uses: the contiguous ones on disk from session 1.

A partial download (say sessions 1–2 of subj01's 40) is scored as it is, with one line saying
so; a gap (sessions 1, 2 and 4) or an explicit ``sessions`` option beyond what is on disk is one
clear error, raised before any activation is extracted.
"""
from __future__ import annotations

import numpy as np

from brainbench.core.errors import MissingDataError
from brainbench.plugins.datasets.nsd_files import (
    FORMATS, SUBJECT_SESSIONS, TRIALS_PER_SESSION, Design, Layout,
)


def runs(numbers: list[int]) -> str:
    """``[1, 2, 3, 5]`` → ``"1–3, 5"``."""
    out, start = [], None
    for i, n in enumerate(numbers):
        start = n if start is None else start
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            out.append(f"{start}" if start == n else f"{start}–{n}")
            start = None
    return ", ".join(out)


def sessions_on_disk(layout: Layout, subject: str, betas_format: str = "auto") -> list[int]:
    """The subject's session numbers with a beta file of the format asked for (``auto``: either)."""
    formats = tuple(FORMATS) if betas_format == "auto" else (betas_format,)
    return [s for s in range(1, SUBJECT_SESSIONS[subject] + 1)
            if any(layout.session(subject, s, f).is_file() for f in formats)]


def contiguous(present: list[int]) -> int:
    """How many sessions 1, 2, … are present without a gap."""
    have, n = set(present), 0
    while n + 1 in have:
        n += 1
    return n


def usable_sessions(layout: Layout, subject: str, requested: int | None, betas_format: str = "auto") -> int:
    """Sessions to read for ``subject``: ``requested`` (capped at its total) or the contiguous ones on disk.

    Raises
    ------
    BrainbenchError
        No session on disk, a gap among the sessions on disk, or ``requested`` beyond them.
    """
    total = SUBJECT_SESSIONS[subject]
    present = sessions_on_disk(layout, subject, betas_format)
    n = contiguous(present)
    number = int(subject[-2:])
    folder = layout.where(layout.betas_dir(subject))
    first_missing = layout.session(subject, n + 1, "nii" if betas_format == "nii" else "hdf5")
    on_disk = (f"session{'s' * (len(present) > 1)} {runs(present)} {'are' if len(present) > 1 else 'is'} on disk"
               if present else "no session is on disk")
    if requested is not None:
        wanted = min(requested, total)
        if wanted > n:
            lower = f", or set sessions={n}" if n else ""
            missing = [s for s in range(1, wanted + 1) if s not in present]
            plural = len(missing) > 1
            raise MissingDataError(f"nsd option sessions={requested} needs sessions 1–{wanted} but session"
                                   f"{'s' * plural} {runs(missing)} of {subject} {'are' if plural else 'is'} missing "
                                   f"(no {first_missing}; {on_disk}); fetch {'them' if plural else 'it'} with "
                                   f"`bench data fetch nsd --subjects {number} --sessions {n + 1}-{wanted}`{lower}")
        return wanted
    if n == 0:
        raise MissingDataError(f"NSD beta session 1 of {subject} is missing (no {first_missing}; {on_disk} under "
                              f"{folder}); fetch it with "
                              f"`bench data fetch nsd --subjects {number} --sessions 1`")
    beyond = [s for s in present if s > n]
    if beyond:
        raise MissingDataError(f"{subject}: beta sessions {runs(present)} are on disk but session {n + 1} is missing "
                              f"(no {first_missing}); "
                              f"sessions are used from 1 without gaps, so fetch it (`bench data fetch nsd --subjects "
                              f"{number} --sessions {n + 1}`) or set the dataset option sessions={n}")
    return n


def partial_notice(subject: str, n: int, design: Design) -> str | None:
    """``"subj01: sessions 1–2 of 40 on disk; 1,500 trials, 1,084 images"``; None when all are used."""
    total = SUBJECT_SESSIONS[subject]
    if n >= total:
        return None
    images = len(np.unique(design.trial_images(subject, n)))
    which = "session 1" if n == 1 else f"sessions 1–{n}"
    return f"{subject}: {which} of {total} on disk; {n * TRIALS_PER_SESSION:,} trials, {images:,} images"

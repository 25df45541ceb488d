"""What was left out of a score, said: the dataset's and the metric's notes become detail fields and warnings.

A dataset puts what it dropped in ``Responses.notes`` (regions without voxels, trials with NaN
samples); :func:`with_notes` copies those into the score's ``detail`` (the metric's own fields
win). A metric records what it dropped in ``detail`` under the keys of :data:`WARNINGS`. ``bench
run`` prints one line per such field (:func:`warnings_of`), so nothing is dropped without a word.
"""
from __future__ import annotations

from typing import Any

from .metric import Score

#: detail keys that mean something was left out, and how to say it
WARNINGS = {
    "empty_regions": "requested regions with no voxel in the atlas, left out: {}",
    "regions_without_usable_units": "regions whose every unit is NaN or constant, left out: {}",
    "n_dropped_trials": "{} trials with NaN or infinite samples were dropped before filtering",
    "n_dropped_stimuli": "{} stimuli lost every trial and were left out",
}


def with_notes(score: Score, responses) -> Score:
    """``score`` with the dataset's notes (``responses.notes``) added to its detail."""
    for key, value in (getattr(responses, "notes", None) or {}).items():
        score.detail.setdefault(key, value)
    return score


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def warnings_of(detail: dict) -> list[str]:
    """One sentence per field of ``detail`` that says something was left out (empty list: nothing was)."""
    return [text.format(_shown(detail[key])) for key, text in WARNINGS.items() if detail.get(key)]

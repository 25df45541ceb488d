"""Stimuli are checked as they are loaded: uint8 RGB, or one sentence naming the dataset and the image.

Every model's preprocessing divides by 255, so a plugin that gives float images in [0, 1]
(``skimage.img_as_float``) would be scaled twice and scored without a word. ``bench run`` and
``bench grid`` extract activations from :func:`checked_stimuli` (a view of the dataset's stimuli
that checks each image it loads), so such a dataset is refused before its first batch is run.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..contract.data import StimulusSet
from ..errors import BrainbenchError


def stimulus_problem(image: Any) -> str | None:
    """What is wrong with one loaded stimulus, as a phrase; None when it is a uint8 (H, W, 3) array."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        scale = ""
        if np.issubdtype(array.dtype, np.floating) and array.size and np.nanmax(array) <= 1.0:
            scale = " with values in [0, 1]"
        return f"is {array.dtype} {array.shape}{scale}"
    if array.ndim != 3 or array.shape[2] != 3:
        return f"has shape {array.shape}"
    return None


class CheckedStimuli(StimulusSet):
    """``inner`` (a dataset's stimuli), refusing any loaded image that is not uint8 (H, W, 3)."""

    def __init__(self, inner: StimulusSet, dataset: str):
        self.inner, self.dataset = inner, dataset
        self.ids = inner.ids

    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        indices = list(indices)
        images = self.inner.load(indices)
        for index, image in zip(indices, images):
            problem = stimulus_problem(image)
            if problem:
                raise BrainbenchError(
                    f"dataset {self.dataset!r} gave stimulus {self.ids[index]!r} that {problem}; stimuli must be "
                    "uint8 RGB arrays (height, width, 3) with values 0-255 (a float image in [0, 1] would be "
                    "divided by 255 twice): convert with (image * 255).round().astype(np.uint8)")
        return images

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def __getattr__(self, name: str) -> Any:  # the dataset's own attributes (nsd_ids, paths, …)
        return getattr(self.inner, name)


def checked_stimuli(dataset) -> CheckedStimuli:
    """The stimuli of ``dataset``, checked as they load (see the module docstring)."""
    return CheckedStimuli(dataset.stimuli, dataset.name)

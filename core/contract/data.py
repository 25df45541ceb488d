"""The contract a dataset plugin's factory fulfils: stimuli, and brain responses per subject."""
from __future__ import annotations

import abc
import hashlib
import sys
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


class StimulusSet(abc.ABC):
    """The images shown to subjects, loaded lazily by index."""

    ids: Sequence[str]

    def __len__(self) -> int:
        return len(self.ids)

    @abc.abstractmethod
    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        """uint8 (H, W, 3) images for ``indices`` (sizes may differ)."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A hash of the images' content; it enters the activation cache key."""


class ArrayStimulusSet(StimulusSet):
    """Stimuli held in memory as one uint8 array (n, H, W, 3)."""

    def __init__(self, images: np.ndarray, ids: Sequence[str] | None = None):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (n, H, W, 3), got {images.dtype} {images.shape}")
        self.images = images
        self.ids = list(ids) if ids is not None else [f"img{i:05d}" for i in range(len(images))]
        if len(self.ids) != len(images):
            raise ValueError(f"{len(self.ids)} ids for {len(images)} images")
        self._fingerprint: str | None = None

    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        return [self.images[i] for i in indices]

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update("\n".join(self.ids).encode())
            h.update(str(self.images.shape).encode())
            h.update(np.ascontiguousarray(self.images).data)
            self._fingerprint = h.hexdigest()
        return self._fingerprint


@dataclass
class Responses:
    """One subject's responses: ``data`` (n_stimuli, n_units) for the stimuli in ``stimulus_index``.

    ``units`` labels each column, e.g. ``{"region": [...]}`` for fMRI voxels or
    ``{"sensor": [...], "time": [...]}`` for MEG sensor × time points; metrics summarise
    per label. ``noise_ceiling`` (n_units,) is the best achievable Pearson r per unit, if known.
    ``notes`` says what the dataset left out and why (JSON-able, e.g. ``{"empty_regions": ["lh.V3"]}``);
    it is copied into each score's ``detail`` and printed (:mod:`brainbench.core.contract.data_notes`).
    """

    subject: str
    data: np.ndarray
    stimulus_index: np.ndarray
    units: dict[str, np.ndarray] = field(default_factory=dict)
    noise_ceiling: np.ndarray | None = None
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        self.data = np.asarray(self.data)
        self.stimulus_index = np.asarray(self.stimulus_index, dtype=np.int64)
        if self.data.ndim != 2:
            raise ValueError(f"responses of {self.subject} must be 2-D (stimuli, units), got {self.data.shape}")
        n, m = self.data.shape
        if self.stimulus_index.shape != (n,):
            raise ValueError(
                f"responses of {self.subject} have {n} rows but {self.stimulus_index.shape[0]} stimulus indices"
            )
        self.units = {k: np.asarray(v) for k, v in self.units.items()}
        for label, values in self.units.items():
            if values.shape != (m,):
                raise ValueError(f"unit label {label!r} of {self.subject} has {values.shape[0]} entries for {m} units")
        if self.noise_ceiling is not None:
            self.noise_ceiling = np.asarray(self.noise_ceiling, dtype=np.float64)
            if self.noise_ceiling.shape != (m,):
                raise ValueError(f"noise ceiling of {self.subject} has {self.noise_ceiling.shape} for {m} units")

    @property
    def n_units(self) -> int:
        return self.data.shape[1]


class Dataset(abc.ABC):
    """Stimuli plus responses of several subjects to them.

    A dataset class may also define a classmethod ``check(**options) -> list[str]`` that
    validates its files without loading them and lists every problem, one sentence each
    (``bench data check NAME``).
    """

    name: str
    #: "fmri" or "meg": which metrics apply
    modality: str
    #: the region that distances are measured from (spatial score)
    reference_region: str = "V1"

    stimuli: StimulusSet
    subjects: Sequence[str]

    @abc.abstractmethod
    def responses(self, subject: str) -> Responses:
        """The subject's responses; raises ``BrainbenchError`` naming any bad file."""

    def region_positions(self, subject: str) -> dict[str, np.ndarray] | None:
        """Region name → centroid (x, y, z) in mm, for spatial metrics; None if not spatial."""
        return None

    def reference_for(self, region: str) -> str:
        """The region that ``region``'s distance is measured from (override per hemisphere)."""
        return self.reference_region

    def write_unit_map(self, subject: str, values: np.ndarray, units: dict[str, np.ndarray], path) -> str:
        """Write per-unit values (e.g. encoding r) as an image in the subject's space; returns the path.

        Datasets with a brain volume override it (NSD writes a NIfTI); others cannot.
        """
        from ..errors import BrainbenchError

        raise BrainbenchError(f"dataset {self.name!r} has no brain volume to write a map into")

    def fingerprint(self) -> str:
        """A hash of what the responses depend on (stored with every result)."""
        return self.stimuli.fingerprint()

    def check_files(self) -> list[str]:
        """Problems with the files a run will read, one sentence each, found without loading them.

        The runner calls it before extracting activations, so that a run never fails on a
        missing or malformed file after the expensive step. Datasets with files override it.
        """
        return []


def require_files(dataset: Dataset) -> None:
    """Raise ``BrainbenchError`` with the first of :meth:`Dataset.check_files`' problems, if any."""
    from ..errors import BrainbenchError

    problems = getattr(dataset, "check_files", lambda: [])()
    if problems:
        more = len(problems) - 1
        rest = f" (and {more} more; `bench data check {dataset.name}` lists them)" if more else ""
        raise BrainbenchError(f"{problems[0]}{rest}")


def notice(message: str) -> None:
    """Tell the user one line about the data in use (stderr), e.g. that a tree is a partial download."""
    print(message, file=sys.stderr, flush=True)

"""Developmental synthetic datasets: the synthetic "brains" read out a *trained* network.

``synthetic-fmri-dev`` and ``synthetic-meg-dev`` are :mod:`~brainbench.plugins.datasets.synthetic`'s
datasets — same stimuli, regions, sensors, noise, options and planted layer-to-region and
layer-to-time hierarchy — with one difference: the reference network they read out is the
**last checkpoint of tiny-dino's training trajectory** (``bench trajectory make``), not a
random ViT-S. Scoring ``tiny-dino@all`` on them (``bench run -m tiny-dino@all -d
synthetic-fmri-dev -d synthetic-meg-dev -x halftime``) therefore measures how each checkpoint's
features approach those the training ends with: how early each region (fMRI) or time window
(MEG) becomes predictable, and in which order the encoding, spatial and temporal scores rise.
Nothing about that order is planted; see docs/trajectories.md for what was measured.

Options (besides those of the synthetic datasets):

- ``reference`` — ``tiny-dino`` (default: the last checkpoint of its series on disk) or
  ``tiny-dino@step-N`` (an earlier checkpoint: a shallower stage of training as the "brain");
- ``make_reference`` — when the trajectory is not on disk, train it first (``bench trajectory
  make``'s defaults, seeded; about 2 minutes on two CPU cores) instead of stopping with one
  sentence that says how to make it.

Responses are cached under ``<home>/activations/synthetic-dev/`` by a fingerprint of the
dataset's options and the SHA-256 of the reference checkpoint's tensors, so a second run does not
load the reference network, and a retrained trajectory (a different file) gives new responses.
A damaged cache file is recomputed, never used.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from functools import cached_property
from pathlib import Path

import numpy as np

import brainbench
from brainbench.core.config import Config
from brainbench.core.contract.data import Responses
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.registry import ModelRef

from .synthetic import SyntheticFMRI, SyntheticMEG

#: the network whose trained checkpoint is the reference
REFERENCE_MODEL = "tiny-dino"
#: bumped whenever the way responses are computed changes (part of the cache key)
RESPONSES_VERSION = 1
#: ``make_reference=true`` trains with ``bench trajectory make``'s defaults (TrainingOptions), overridable here
REFERENCE_TRAINING: dict = {}


def reference_folder() -> Path:
    """``<weights>/tiny-dino``: where ``bench trajectory make`` writes by default and ``tiny-dino@all`` reads."""
    from brainbench.core.config import default_weights_root

    return default_weights_root() / REFERENCE_MODEL


def resolve_reference(reference: str, make_reference: bool, dataset: str) -> tuple[str, Path]:
    """The reference checkpoint (``tiny-dino@step-N``) and its file; trains the trajectory when asked.

    Raises
    ------
    MissingDataError
        When the trajectory is not on disk and ``make_reference`` is false (one sentence saying how to make it).
    BrainbenchError
        When ``reference`` is not tiny-dino, or names a checkpoint the series does not have.
    """
    from brainbench.core.contract.checkpoints import discover, select

    ref = ModelRef.parse(reference)
    if ref.name != REFERENCE_MODEL:
        raise BrainbenchError(f"dataset {dataset!r} option reference must be {REFERENCE_MODEL} or "
                              f"{REFERENCE_MODEL}@step-N, got {reference!r}")
    folder = reference_folder()
    found = discover(folder) if folder.is_dir() else []
    if not found and make_reference:
        from brainbench.plugins.models.training import TrainingOptions, train

        train(folder, TrainingOptions(**REFERENCE_TRAINING),
              echo=lambda message: print(f"{dataset}: {message}", file=sys.stderr, flush=True))
        found = discover(folder)
    if not found:
        raise MissingDataError(f"dataset {dataset!r} reads out the last checkpoint of {REFERENCE_MODEL}'s training, "
                               f"and {folder} holds none: run `bench trajectory make` (a few minutes on CPU) or add "
                               "--set dataset.make_reference=true")
    chosen = select(found, ref.checkpoint if ref.checkpoint not in (None, "all") else "last")[-1]
    return f"{REFERENCE_MODEL}@{chosen.name}", chosen.path


def checkpoint_sha256(path: Path) -> str:
    """SHA-256 of a checkpoint's tensors (names, dtypes, shapes, values), not of its file's bytes.

    ``torch.save`` archives carry their temporary file's name, so two identical trainings write
    different bytes; the tensors are what the responses depend on. An unreadable file is an error
    naming it.
    """
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to read is a damaged checkpoint
        raise BrainbenchError(f"cannot read the reference checkpoint {path}: {exc}; run `bench trajectory make "
                              "--force` to retrain it") from None
    digest = hashlib.sha256()

    def walk(value, prefix: str) -> None:
        if isinstance(value, dict):
            for key in sorted(value, key=str):
                walk(value[key], f"{prefix}/{key}")
        elif isinstance(value, torch.Tensor):
            tensor = value.detach().contiguous()
            digest.update(f"{prefix}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
        else:
            digest.update(f"{prefix}={value!r}".encode())

    walk(state, "")
    return digest.hexdigest()


class TrainedReference:
    """What the two developmental datasets add to the synthetic ones: a trained reference, cached responses."""

    def _init_reference(self, reference: str, make_reference: bool, options: dict) -> dict:
        resolved, self.reference_path = resolve_reference(reference, make_reference, self.name)
        self.reference_sha256 = checkpoint_sha256(self.reference_path)
        return {**options, "reference": resolved}

    def fingerprint(self) -> str:
        """Options plus the SHA-256 of the reference checkpoint's tensors (no network is built to compute it)."""
        blob = json.dumps({"class": type(self).__name__, "version": RESPONSES_VERSION, **self.options,
                           "reference_sha256": self.reference_sha256}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @cached_property
    def cache_folder(self) -> Path:
        return Config().cache_dir / "synthetic-dev" / self.name / self.fingerprint()[:32]

    def responses(self, subject: str) -> Responses:
        path = self.cache_folder / f"{subject}.npz"
        if path.is_file():
            cached = _read_cached(path, subject, len(self.stimuli))
            if cached is not None:
                return cached
        responses = super().responses(subject)
        _write_cached(path, responses)
        return responses


def _read_cached(path: Path, subject: str, n_stimuli: int) -> Responses | None:
    """The cached responses, or None when the file is damaged or does not fit (then it is recomputed)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            units = {key[len("unit_"):]: saved[key] for key in saved.files if key.startswith("unit_")}
            ceiling = saved["noise_ceiling"] if "noise_ceiling" in saved.files else None
            responses = Responses(subject, saved["data"], saved["stimulus_index"], units=units, noise_ceiling=ceiling)
    except Exception:  # noqa: BLE001 - any damage means recompute
        return None
    if len(responses.stimulus_index) != n_stimuli or not np.isfinite(responses.data).all():
        return None
    return responses


def _write_cached(path: Path, responses: Responses) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"data": responses.data, "stimulus_index": responses.stimulus_index,
              **{f"unit_{k}": v for k, v in responses.units.items()}}
    if responses.noise_ceiling is not None:
        arrays["noise_ceiling"] = responses.noise_ceiling
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SyntheticFMRIDev(TrainedReference, SyntheticFMRI):
    """synthetic-fmri with the last tiny-dino checkpoint as reference (see the module docstring)."""

    name = "synthetic-fmri-dev"
    modality = "fmri"

    def __init__(self, *, reference: str = REFERENCE_MODEL, make_reference: bool = False, **options):
        resolved = self._init_reference(reference, make_reference, {})["reference"]
        super().__init__(reference=resolved, **options)


class SyntheticMEGDev(TrainedReference, SyntheticMEG):
    """synthetic-meg with the last tiny-dino checkpoint as reference (see the module docstring)."""

    name = "synthetic-meg-dev"
    modality = "meg"

    def __init__(self, *, reference: str = REFERENCE_MODEL, make_reference: bool = False, **options):
        resolved = self._init_reference(reference, make_reference, {})["reference"]
        super().__init__(reference=resolved, **options)


@brainbench.hookimpl(trylast=True)
def register_datasets(register):
    citation = ("brainbench developmental synthetic data (readouts of tiny-dino's last training checkpoint; "
                "see plugins/datasets/synthetic_dev.py)")
    register("synthetic-fmri-dev", SyntheticFMRIDev,
             description="Synthetic fMRI whose 12 regions read out layers of trained tiny-dino (run `bench trajectory "
                         "make` first): half-times of tiny-dino@all",
             modality="fmri", spatial=True, citation=citation)
    register("synthetic-meg-dev", SyntheticMEGDev,
             description="Synthetic MEG whose time points read out layers of trained tiny-dino (run `bench "
                         "trajectory make` first): half-times of tiny-dino@all",
             modality="meg", citation=citation)

"""The Natural Scenes Dataset (NSD; Allen et al. 2022, Nature Neuroscience 25:116–126).

7T fMRI of 8 subjects viewing COCO photographs, read from a local copy of the tree the
NSD authors publish (``BRAINBENCH_NSD_ROOT`` / ``nsd_root`` in the config file, or the
dataset option ``root``). File layout and readers: ``nsd_files.py``.
Use of the data is governed by the NSD Terms and Conditions / Data Access Agreement.

Options (``--set dataset.KEY=VALUE``):

- ``subjects``: subjects to load (``"subj01,subj02"``); default: every subject whose betas
  folder exists under the root. The stimulus set is the union of their images, so name
  one subject to extract activations for its ~10,000 images only.
- ``sessions``: use only the first N sessions of each subject (default: the sessions on disk,
  contiguous from 1, up to 40/40/32/30/40/32/40/30; a partial tree is scored as it is, with
  one line saying so: ``subj01: sessions 1–2 of 40 on disk; 1,500 trials, …``). A gap among the
  sessions on disk, or N beyond them, is an error before anything is extracted
  (``nsd_sessions.py``).
- ``regions``: comma-separated region names of the region set (``lh.MT`` for one
  hemisphere, ``MT`` for those in ``hemispheres``; ``BA44``/``BA45`` are accepted for the
  Glasser names ``44``/``45``), ``"all"`` for every label; default :data:`DEFAULT_REGIONS`.
- ``hemispheres``: ``lh``, ``rh`` or ``both`` (default).
- ``atlas``: region set, ``HCP_MMP1`` (default, Glasser 2016), ``prf-visualrois`` or
  ``nsdgeneral``; read from ``lh.<atlas>.nii.gz`` / ``rh.<atlas>.nii.gz``.
- ``betas_format``: ``auto`` (HDF5 when present, it reads faster), ``nii`` or ``hdf5``.
- ``space`` (``func1pt8mm``), ``betas_version`` (``betas_fithrf_GLMdenoise_RR``),
  ``zscore`` (True), ``cache`` (True).

Choices the paper left open, made here:

- **Betas**: ``betas_fithrf_GLMdenoise_RR`` in ``func1pt8mm``, int16 / 300 = % signal
  change, then **z-scored per voxel within each session** over its 750 trials (standard
  NSD practice; removes session-wise drifts). A voxel that is constant (e.g. outside the
  brain mask) or non-finite in any session becomes NaN and is dropped and counted by the
  metrics, never imputed.
- **Repetitions**: each image's trials (up to 3) are averaged; responses have one row per
  distinct image (sorted by nsdId). Per-repetition data: :meth:`NSD.repetitions`.
- **Train/test**: the metric's K-fold CV over all of the subject's images (the paper's
  5-fold). The 1000 shared images are the natural held-out set: :meth:`NSD.shared_split`
  gives the (train, test) split for ``Encoding(folds=...)``.
- **Noise ceiling** (``Responses.noise_ceiling`` = best achievable Pearson r per voxel):
  from ``ncsnr.nii.gz`` when present, NC = ncsnr² / (ncsnr² + mean(1/kᵢ)) with kᵢ the
  number of trials averaged for image i (the NSD manual's formula; 1/3 when every image
  has 3 trials), r = √NC. Without it, split-half: ρ₁ = Pearson r between the first and
  second repetition over images shown ≥ 2 times, ncsnr² = ρ₁/(1 − ρ₁) (ρ₁ < 0 → 0), same
  formula — i.e. the Spearman-Brown prediction for a k-trial average.
- **Geometry**: a region's centroid is the mean of its voxel indices mapped through the
  label volume's NIfTI affine (volume centroid in the subject's native functional space,
  mm; not a surface centroid), per hemisphere; distances are Euclidean, to V1 of the same
  hemisphere (``reference_for("rh.MT") == "rh.V1"``).
- **Fingerprints**: the stimulus fingerprint hashes the nsdIds used, the HDF5 file's size,
  ``imgBrick``'s shape and dtype and 8 images spread over the used ids (never the whole
  37 GiB file); the dataset fingerprint adds the options and each beta file's name and size.
- **Cache**: averaged responses are cached in ``<home>/nsd-cache/`` keyed by the files'
  paths, sizes and modification times and the options (reading 40 gzipped sessions takes
  minutes); ``cache=False`` disables it.

Voxel-wise maps: units carry ``region`` ("lh.V1"), ``hemisphere`` and ``voxel`` (flat C-order
index in the subject's volume); :func:`write_voxel_map` writes per-unit values as a NIfTI.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import brainbench
from brainbench.core.config import Config
from brainbench.core.contract.data import Dataset, Responses, StimulusSet, notice
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.contract.options import Bool, Choice, Int, PathOption, Text, Texts
from brainbench.core.files import atomic_write
from brainbench.plugins.datasets.nsd_files import (
    ATLASES, HEMISPHERES, SUBJECT_SESSIONS, SUBJECTS, TRIALS_PER_SESSION, Design, Layout, atlas_labels,
    read_design, read_float_volume, read_label_volume, read_session,
)
from brainbench.plugins.datasets.nsd_integrity import check_stimuli_file, reading, region_problems
from brainbench.plugins.datasets.nsd_check import check_tree
from brainbench.plugins.datasets.nsd_options import (  # noqa: F401 - DEFAULT_REGIONS is part of the API
    DEFAULT_REGIONS, ROOT_HINT, choice, flag, parse_subjects, positive_int, resolve_regions, resolve_root, split_region,
)
from brainbench.plugins.datasets.nsd_sessions import partial_notice, usable_sessions
from brainbench.plugins.datasets.nsd_stimuli_subset import FULL, stimuli_file
from brainbench.plugins.datasets.nsd_signal import (
    ncsnr_to_r, occurrence_index, split_half_ncsnr, write_voxel_map, zscore_session,
)

#: the region distances are measured from, per region set (None: no geometry)
REFERENCE = {"HCP_MMP1": "V1", "prf-visualrois": "V1v", "nsdgeneral": None}
FINGERPRINT_SAMPLES = 8
CACHE_VERSION = 1


class NSDStimuli(StimulusSet):
    """The NSD images used by the loaded subjects, read lazily from ``nsd_stimuli.hdf5``.

    Parameters
    ----------
    path : the HDF5 file; ``imgBrick`` is (73000, 425, 425, 3) uint8, indexed by 0-based nsdId.
    nsd_ids : (n,) sorted 0-based nsdIds; stimulus i is image ``nsd_ids[i]``.
    """

    def __init__(self, path: Path, nsd_ids: np.ndarray):
        self.path = Path(path)
        self.nsd_ids = np.asarray(nsd_ids, dtype=np.int64)
        self.ids = [f"nsd{n:05d}" for n in self.nsd_ids]
        self._fingerprint: str | None = None

    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        import h5py

        wanted = self.nsd_ids[np.asarray(indices, dtype=np.int64)]
        unique, inverse = np.unique(wanted, return_inverse=True)  # h5py wants increasing indices

        def read():
            with h5py.File(self.path, "r") as f:
                return f["imgBrick"][unique.tolist()]

        block = reading(self.path, read)
        return [block[i] for i in inverse.ravel()]

    def check(self) -> None:
        """Refuse, in one sentence, a file that cannot give these images (see :mod:`.nsd_integrity`)."""
        check_stimuli_file(self.path, self.nsd_ids)

    def fingerprint(self) -> str:
        """sha256 of the nsdIds, the file size, ``imgBrick``'s shape/dtype and 8 sampled images."""
        if self._fingerprint is None:
            import h5py

            h = hashlib.sha256(self.nsd_ids.tobytes())
            if self.path.name == Path(FULL).name:  # a subset file grows as subjects are fetched: not its size
                h.update(str(self.path.stat().st_size).encode())

            def sample():
                with h5py.File(self.path, "r") as f:
                    brick = f["imgBrick"]
                    h.update(f"{brick.shape} {brick.dtype}".encode())
                    picks = np.unique(np.linspace(0, len(self.nsd_ids) - 1, FINGERPRINT_SAMPLES).round().astype(int))
                    for image in brick[self.nsd_ids[picks].tolist()] if len(self.nsd_ids) else []:
                        h.update(np.ascontiguousarray(image).data)

            reading(self.path, sample)
            self._fingerprint = h.hexdigest()
        return self._fingerprint


@dataclass
class SubjectVolume:
    """A subject's label volumes: ``labels`` hemisphere → (X, Y, Z) int32, with the voxel→mm ``affine``."""

    labels: dict[str, np.ndarray]
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return next(iter(self.labels.values())).shape


@dataclass
class Repetitions:
    """Per-repetition responses: ``data`` (max_reps, n_images, n_units), NaN where image i had fewer trials."""

    subject: str
    data: np.ndarray
    stimulus_index: np.ndarray
    counts: np.ndarray


@dataclass
class _Loaded:
    """One subject's loaded betas: ``data`` (n_images, n_voxels) averaged, ``reps`` (max_reps, n_images, n_voxels)."""

    data: np.ndarray
    images: np.ndarray
    counts: np.ndarray
    ceiling: np.ndarray | None
    report: dict[str, Any]
    reps: np.ndarray | None = None


class NSD(Dataset):
    """The Natural Scenes Dataset read from a local tree (see the module docstring for every choice)."""

    name = "nsd"
    modality = "fmri"
    reference_region = "V1"
    option_types = {
        "root": PathOption(help="the NSD tree (default: the nsd_root setting)"),
        "subjects": Texts(nullable=True, help="default: every subject present"),
        "regions": Texts(words=("all",), nullable=True, help="default: 16 HCP-MMP1 regions"),
        "hemispheres": Choice("lh", "rh", "both", default="both"),
        "sessions": Int(minimum=1, words=("all",), nullable=True, help="first N sessions; default: all"),
        "betas_format": Choice("auto", "nii", "hdf5", default="auto"),
        "atlas": Choice(*ATLASES, default="HCP_MMP1"),
        "space": Text("func1pt8mm"), "betas_version": Text("betas_fithrf_GLMdenoise_RR"),
        "zscore": Bool(True), "cache": Bool(True),
    }

    def __init__(self, *, root: str | None = None, subjects: str | Sequence[str] | None = None,
                 regions: str | Sequence[str] | None = None, hemispheres: str = "both",
                 sessions: int | None = None, betas_format: str = "auto", atlas: str = "HCP_MMP1",
                 space: str = "func1pt8mm", betas_version: str = "betas_fithrf_GLMdenoise_RR",
                 zscore: bool = True, cache: bool = True):
        self.layout = Layout(resolve_root(root), space, betas_version)
        if not self.layout.root.is_dir():
            raise MissingDataError(f"NSD root {self.layout.root} is not a folder; {ROOT_HINT}")
        self.hemispheres = choice("hemispheres", hemispheres, ("lh", "rh", "both"))
        self.betas_format = choice("betas_format", betas_format, ("auto", "nii", "hdf5"))
        self.sessions = positive_int("sessions", sessions)
        self.atlas = choice("atlas", atlas, tuple(ATLASES))
        self.zscore, self.cache = flag(zscore), flag(cache)
        self.reference_region = REFERENCE[self.atlas]
        self.subjects = parse_subjects(subjects, self.layout)
        self.design: Design = read_design(self.layout.design)
        self.label_names = atlas_labels(self.layout, self.atlas, self.subjects[0])
        self.regions = resolve_regions(regions, self.label_names, self._hemis, self.atlas)
        #: sessions read per subject: the contiguous ones on disk, or the ``sessions`` option
        self._n_sessions = {s: usable_sessions(self.layout, s, self.sessions, self.betas_format) for s in self.subjects}
        #: one line per subject scored on part of its sessions
        self.notices = [n for s in self.subjects if (n := partial_notice(s, self._n_sessions[s], self.design))]
        for line in self.notices:
            notice(line)
        ids = np.unique(np.concatenate([self.design.trial_images(s, self.n_sessions(s)) for s in self.subjects]))
        stimuli = stimuli_file(self.layout.root, ids, ", ".join(self.subjects))
        if not stimuli.is_file():
            raise self.layout.missing(self.layout.stimuli, "stimuli file")
        self.stimuli = NSDStimuli(stimuli, ids)
        self.stimuli.check()  # a damaged image file fails here, before any activation is extracted
        self.options = dict(root=str(self.layout.root), subjects=list(self.subjects), regions=list(self.regions),
                            sessions=self.sessions, betas_format=self.betas_format, atlas=atlas, space=space,
                            betas_version=betas_version, zscore=self.zscore)
        #: per subject: voxels, units, dropped voxels, noise-ceiling source, … (filled by responses)
        self.report: dict[str, dict[str, Any]] = {}
        self._volumes: dict[str, SubjectVolume] = {}
        self._last: tuple[str, Responses] | None = None

    # ------------------------------------------------------------ options and checks
    @classmethod
    def check(cls, *, root: str | None = None, subjects=None, sessions=None, betas_format: str = "auto",
              atlas: str = "HCP_MMP1", space: str = "func1pt8mm",
              betas_version: str = "betas_fithrf_GLMdenoise_RR", regions=None, hemispheres: str = "both",
              **_ignored) -> list[str]:
        """Every problem of the tree the same options would read, one sentence each naming the file."""
        try:
            layout = Layout(resolve_root(root), space, betas_version)
            if not layout.root.is_dir():
                return [f"NSD root {layout.root} is not a folder; {ROOT_HINT}"]
            wanted = None if subjects is None else parse_subjects(subjects, layout)
            problems = check_tree(layout, wanted, positive_int("sessions", sessions),
                                  choice("betas_format", betas_format, ("auto", "nii", "hdf5")),
                                  choice("atlas", atlas, tuple(ATLASES)))
        except BrainbenchError as exc:
            return [str(exc)]
        try:
            hemis = HEMISPHERES if hemispheres == "both" else (hemispheres,)
            resolved = resolve_regions(regions, atlas_labels(layout, atlas), hemis, atlas)
            # regions named explicitly must have voxels; the reference region always
            problems += region_problems(layout, wanted or layout.present_subjects(), atlas,
                                        resolved if regions is not None else [], REFERENCE.get(atlas), hemis)
        except BrainbenchError as exc:
            problems.append(str(exc))
        if not problems:  # a consistent tree: say which sessions a run will use, and check the images cover them
            try:
                design = read_design(layout.design)
                chosen = wanted or layout.present_subjects()
                used = {s: usable_sessions(layout, s, positive_int("sessions", sessions), betas_format) for s in chosen}
                for subject, n in used.items():
                    if line := partial_notice(subject, n, design):
                        notice(line)
                ids = np.unique(np.concatenate([design.trial_images(s, n) for s, n in used.items()]))
                stimuli_file(layout.root, ids, ", ".join(chosen))
            except BrainbenchError as exc:
                problems.append(str(exc))
        return list(dict.fromkeys(problems))

    def check_files(self) -> list[str]:
        """Every problem of the files this dataset will read (headers only), before any extraction."""
        problems = []
        for subject in self.subjects:
            problems += check_tree(self.layout, [subject], self.n_sessions(subject), self.betas_format, self.atlas)
        return list(dict.fromkeys(problems))

    @property
    def _hemis(self) -> tuple[str, ...]:
        return HEMISPHERES if self.hemispheres == "both" else (self.hemispheres,)

    def n_sessions(self, subject: str) -> int:
        """Sessions loaded for ``subject``: the contiguous ones on disk, or the ``sessions`` option."""
        if subject in getattr(self, "_n_sessions", {}):
            return self._n_sessions[subject]
        total = SUBJECT_SESSIONS[subject]
        return total if self.sessions is None else min(self.sessions, total)

    # ------------------------------------------------------------ geometry
    def write_unit_map(self, subject: str, values: np.ndarray, units: dict[str, np.ndarray], path) -> str:
        """Per-voxel values as a NIfTI in the subject's functional space (see :func:`write_voxel_map`)."""
        return str(write_voxel_map(self, subject, values, units["voxel"], path))

    def volume(self, subject: str) -> SubjectVolume:
        """The label volumes of the hemispheres the regions use; they must share shape and affine."""
        if subject not in self._volumes:
            self._check_subject(subject)
            labels, affines = {}, {}
            for hemisphere in dict.fromkeys(split_region(r)[0] for r in self.regions):
                path = self.layout.roi(subject, self.atlas, hemisphere)
                labels[hemisphere], affines[hemisphere] = read_label_volume(path, self.layout)
                first = next(iter(labels))
                if labels[hemisphere].shape != labels[first].shape or not np.allclose(affines[hemisphere],
                                                                                       affines[first]):
                    raise BrainbenchError(f"{path} has shape {labels[hemisphere].shape} or affine unlike "
                                          f"{self.layout.roi(subject, self.atlas, first)}; are both from {subject}?")
            self._volumes[subject] = SubjectVolume(labels, next(iter(affines.values())))
        return self._volumes[subject]

    def volume_geometry(self, subject: str) -> tuple[tuple[int, int, int], np.ndarray]:
        """(X, Y, Z) shape and 4×4 voxel→mm affine of the subject's functional volume."""
        volume = self.volume(subject)
        return volume.shape, volume.affine

    def region_voxels(self, subject: str, region: str) -> np.ndarray:
        """Sorted flat (C-order) voxel indices of ``region`` ("lh.MT") in the subject's volume."""
        hemisphere, name = split_region(region)
        index = {v: k for k, v in self.label_names.items()}[name]
        return np.flatnonzero(self.volume(subject).labels[hemisphere].ravel() == index)

    def region_positions(self, subject: str) -> dict[str, np.ndarray] | None:
        """Centroid (x, y, z) in mm of every loaded region with voxels, plus each hemisphere's reference."""
        if self.reference_region is None:
            return None
        volume = self.volume(subject)
        names = list(self.regions) + [f"{h}.{self.reference_region}" for h in volume.labels]
        positions = {}
        for region in dict.fromkeys(names):
            voxels = self.region_voxels(subject, region)
            if len(voxels):
                ijk = np.stack(np.unravel_index(voxels, volume.shape)).mean(axis=1)
                positions[region] = volume.affine[:3, :3] @ ijk + volume.affine[:3, 3]
        return positions

    def region_distances(self, subject: str) -> dict[str, float]:
        """Euclidean distance (mm) of each region's centroid from its hemisphere's reference centroid."""
        positions = self.region_positions(subject) or {}
        return {r: float(np.linalg.norm(p - positions[self.reference_for(r)]))
                for r, p in positions.items() if self.reference_for(r) in positions}

    def reference_for(self, region: str) -> str:
        """The same hemisphere's reference region: ``"rh.MT"`` → ``"rh.V1"``."""
        hemisphere, _ = split_region(region)
        reference = self.reference_region or ""
        return f"{hemisphere}.{reference}" if hemisphere and reference else reference

    # ------------------------------------------------------------ responses
    def responses(self, subject: str) -> Responses:
        """Repetition-averaged, session-z-scored betas: (n_images, n_units) for the selected regions."""
        if self._last is not None and self._last[0] == subject:
            return self._last[1]
        voxels, columns, units = self._units(subject)
        loaded = self._read_cache(subject, voxels)
        if loaded is None:
            loaded = self._load(subject, voxels, keep_repetitions=False)
            self._write_cache(subject, voxels, loaded)
        self.report[subject].update(loaded.report, n_units=len(columns))
        ceiling = None if loaded.ceiling is None else loaded.ceiling[columns]
        empty = self.report[subject].get("empty_regions") or []
        responses = Responses(subject, loaded.data[:, columns], np.searchsorted(self.stimuli.nsd_ids, loaded.images),
                              units, ceiling, notes={"empty_regions": list(empty)} if empty else {})
        self._last = (subject, responses)
        return responses

    def repetitions(self, subject: str) -> Repetitions:
        """Per-repetition (session-z-scored) responses, same units as :meth:`responses`; 4× its memory."""
        voxels, columns, _units = self._units(subject)
        loaded = self._load(subject, voxels, keep_repetitions=True)
        return Repetitions(subject, loaded.reps[:, :, columns],
                           np.searchsorted(self.stimuli.nsd_ids, loaded.images), loaded.counts)

    def shared_split(self, responses: Responses) -> list[tuple[np.ndarray, np.ndarray]]:
        """One (train rows, test rows) pair: test = the shared images (``Encoding(folds=...)``)."""
        shared = np.isin(self.stimuli.nsd_ids[responses.stimulus_index], self.design.shared)
        return [(np.flatnonzero(~shared), np.flatnonzero(shared))]

    def _units(self, subject: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Union of region voxels (sorted flat indices), each unit's column in it, and unit labels."""
        per_region = {r: self.region_voxels(subject, r) for r in self.regions}
        empty = [r for r, v in per_region.items() if not len(v)]
        per_region = {r: v for r, v in per_region.items() if len(v)}
        if not per_region:
            raise BrainbenchError(f"none of the regions {', '.join(self.regions)} has voxels in "
                                  f"{self.layout.roi(subject, self.atlas, self._hemis[0])}")
        voxels = np.unique(np.concatenate(list(per_region.values())))
        region = np.concatenate([[r] * len(v) for r, v in per_region.items()])
        flat = np.concatenate(list(per_region.values()))
        self.report[subject] = {"empty_regions": empty}
        units = {"region": region, "hemisphere": np.array([split_region(r)[0] for r in region]), "voxel": flat}
        return voxels, np.searchsorted(voxels, flat), units

    def _session_files(self, subject: str) -> list[Path]:
        return [self.layout.session_file(subject, s, self.betas_format) for s in range(1, self.n_sessions(subject) + 1)]

    def _load(self, subject: str, voxels: np.ndarray, keep_repetitions: bool) -> "_Loaded":
        """Read every session of ``subject`` for ``voxels`` (one session in memory at a time)."""
        files = self._session_files(subject)  # fail on a missing session before reading any
        shape = self.volume(subject).shape
        ijk = np.stack(np.unravel_index(voxels, shape))
        trial_ids = self.design.trial_images(subject, len(files))
        images, rows = np.unique(trial_ids, return_inverse=True)
        counts = np.bincount(rows, minlength=len(images))
        ncsnr_path = self.layout.ncsnr(subject)
        keep_repetitions = keep_repetitions or not ncsnr_path.is_file()
        sums = np.zeros((len(images), len(voxels)), np.float32)
        reps = np.full((counts.max(), len(images), len(voxels)), np.nan, np.float32) if keep_repetitions else None
        occurrence = occurrence_index(rows)
        bad = np.zeros(len(voxels), bool)
        for s, path in enumerate(files):
            betas = read_session(path, ijk, shape)
            betas = zscore_session(betas) if self.zscore else betas
            bad |= ~np.isfinite(betas).all(0)
            trials = slice(s * TRIALS_PER_SESSION, (s + 1) * TRIALS_PER_SESSION)
            np.add.at(sums, rows[trials], betas)
            if reps is not None:
                reps[occurrence[trials], rows[trials]] = betas
        if ncsnr_path.is_file():
            ncsnr, source = read_float_volume(ncsnr_path, shape)[tuple(ijk)], "ncsnr"
        else:
            ncsnr, source = split_half_ncsnr(reps, counts), "split-half"
        ceiling = None if ncsnr is None else ncsnr_to_r(ncsnr, counts)
        report = {"n_voxels": len(voxels), "n_images": len(images), "n_trials": len(trial_ids), "sessions": len(files),
                  "n_bad_voxels": int(bad.sum()), "noise_ceiling": source if ceiling is not None else None}
        sums /= counts[:, None]
        return _Loaded(sums, images, counts, ceiling, report, reps)

    # ------------------------------------------------------------ cache
    def _cache_path(self, subject: str, voxels: np.ndarray) -> Path:
        stats = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in self._session_files(subject)]
        ncsnr = self.layout.ncsnr(subject)
        if ncsnr.is_file():
            stats.append([str(ncsnr), ncsnr.stat().st_size, ncsnr.stat().st_mtime_ns])
        blob = json.dumps({"version": CACHE_VERSION, "subject": subject, "files": stats, "zscore": self.zscore,
                           "design": self.layout.design.stat().st_size,
                           "voxels": hashlib.sha256(voxels.tobytes()).hexdigest()}, sort_keys=True)
        return Config().home / "nsd-cache" / f"{subject}-{hashlib.sha256(blob.encode()).hexdigest()[:24]}.npz"

    def _read_cache(self, subject: str, voxels: np.ndarray):
        if not self.cache:
            return None
        path = self._cache_path(subject, voxels)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                ceiling = z["ceiling"] if z["has_ceiling"] else None
                return _Loaded(z["data"], z["images"], z["counts"], ceiling, json.loads(str(z["report"])))
        except Exception:  # noqa: BLE001 - an unreadable cache file is simply rebuilt
            return None

    def _write_cache(self, subject: str, voxels: np.ndarray, loaded: "_Loaded") -> None:
        if not self.cache:
            return
        path = self._cache_path(subject, voxels)
        with atomic_write(path, "wb") as f:
            np.savez(f, data=loaded.data, images=loaded.images, counts=loaded.counts,
                     has_ceiling=loaded.ceiling is not None,
                     ceiling=np.zeros(0) if loaded.ceiling is None else loaded.ceiling,
                     report=json.dumps(loaded.report))

    def fingerprints(self) -> dict[str, str]:
        """sha256 of the design file, of each label table and ROI volume used, and of each beta file's
        first 64 KiB (its header), keyed by path relative to the root — never the data itself.
        Recorded in exported results (``bench results export``)."""
        paths = [self.layout.design, *[p for p in self.layout.label_tables(self.atlas, self.subjects[0]) if p.is_file()]]
        for subject in self.subjects:
            hemispheres = ("lh", "rh") if self.hemispheres == "both" else (self.hemispheres,)
            paths += [p for h in hemispheres if (p := self.layout.roi(subject, self.atlas, h)).is_file()]
            for session in range(1, self.n_sessions(subject) + 1):
                try:
                    paths.append(self.layout.session_file(subject, session, self.betas_format))
                except MissingDataError:
                    continue
        out = {}
        for path in paths:
            whole = path == self.layout.design or path.suffix == ".ctab" or "roi" in path.parts
            with open(path, "rb") as f:
                out[self.layout.where(path)] = hashlib.sha256(f.read() if whole else f.read(65536)).hexdigest()
        return out

    def fingerprint(self) -> str:
        """sha256 of the stimulus fingerprint, the options and each beta file's name and size."""
        files = {}
        for subject in self.subjects:
            for session in range(1, self.n_sessions(subject) + 1):
                try:
                    path = self.layout.session_file(subject, session, self.betas_format)
                    files[f"{subject}/{path.name}"] = path.stat().st_size
                except MissingDataError:
                    files[f"{subject}/session{session:02d}"] = None
        options = {k: v for k, v in self.options.items() if k != "root"}
        blob = json.dumps({"stimuli": self.stimuli.fingerprint(), "options": options, "files": files}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _check_subject(self, subject: str) -> None:
        if subject not in self.subjects:
            raise BrainbenchError(f"dataset 'nsd' was not built for subject {subject!r}; "
                                  f"its subjects: {', '.join(self.subjects)}")


@brainbench.hookimpl(trylast=True)
def register_datasets(register):
    register("nsd", NSD,
             description="Natural Scenes Dataset: 7T fMRI of 8 subjects viewing COCO images (local tree, HCP-MMP1 regions)",
             modality="fmri", spatial=True, subjects=list(SUBJECTS),
             citation="Allen et al. 2022, A massive 7T fMRI dataset to bridge cognitive neuroscience and "
                      "artificial intelligence, Nature Neuroscience 25:116-126",
             options=["root", "subjects", "sessions", "regions", "hemispheres", "atlas", "betas_format", "space",
                      "betas_version", "zscore", "cache"])

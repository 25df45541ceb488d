"""THINGS-MEG (OpenNeuro ds004212): four participants' MEG responses to THINGS images.

Files read (``root`` = ``things_meg_root``; see ``docs/things-meg.md``):

- ``derivatives/preprocessed/preprocessed_P{N}-epo.fif`` (MNE splits it into ``-epo-1.fif``,
  ``-epo-2.fif``…; all parts are read through the first): 271 CTF channels (type ``mag``,
  names like ``MLO11-1609``), 200 Hz, −100…+1300 ms (281 samples), baseline-z-scored.
  Opened with ``preload=False``; epochs are read from disk in chunks.
- trial metadata: ``epochs.metadata`` when the file holds it, else
  ``sourcedata/sample_attributes_P{N}.csv`` (one row per epoch); columns used:
  ``trial_type`` (``exp`` / ``test`` / ``catch``) and ``image_path``.
- images: THINGS object images under ``images_root`` (``things_images_root``), not part of
  ds004212. ``image_path`` ``images_meg/<category>/<file>.jpg`` and
  ``images_test_meg/<file>.jpg`` both resolve to ``<images_root>/<category>/<file>.jpg``
  (``<images_root>/object_images/...`` and ``<images_root>/<image_path>`` are tried too).

Responses of a participant: one row per unique image of the selected trial types (default
``exp`` and ``test``; catch trials are always dropped), the mean of that image's trials
(an ``exp`` image has one trial, a ``test`` image twelve). Columns: sensor × time points,
flattened sensor-major, labelled ``units["sensor"]`` and ``units["time"]`` (ms). Per epoch:
channels picked, then (``decimate`` > 1) a zero-phase FIR low-pass at the new Nyquist
frequency and every ``decimate``-th sample kept, on a grid through 0 ms, then the
``tmin``…``tmax`` window kept. Defaults: ``decimate=4`` (50 Hz), −100…800 ms: 46 time points,
271 × 46 = 12,466 targets, about 1.1 GB of float32 for the 22,448 images of a participant.

Noise ceiling (only from the ``test`` images, which are repeated): per sensor × time, the
Pearson r across test images between the means of odd and even repetitions (in the real
data, odd and even sessions), r_h. With m_h the mean over images and halves of 1 / (trials
in a half), one trial's signal-to-noise variance ratio is SNR = r_h · m_h / (1 − r_h) (so
that r_h = SNR / (SNR + m_h), Spearman–Brown). A response row averaging k trials then has
a best achievable Pearson r of √(SNR / (SNR + 1/k)); for the rows returned the ceiling is
√(SNR / (SNR + mean 1/kᵢ)). For twelve-trial test rows this is √(2 r_h / (1 + r_h)), the
square root of the split-half reliability corrected by Spearman–Brown. r_h ≤ 0 gives 0.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
import warnings
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import brainbench
from brainbench.core.config import Config
from brainbench.core.contract.data import Dataset, Responses, StimulusSet, notice
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.failures import file_error
from brainbench.core.contract.options import Bool, Float, Int, PathOption, Texts
from brainbench.core.compute.stats import pearson

SUBJECTS = ("P1", "P2", "P3", "P4")
SFREQ = 200.0
TRIAL_TYPES = ("exp", "test", "catch")
CTF_NAME = re.compile(r"^M[LRZ][CFOPT]\d{2}(-\d{4})?$")  # MLO11-1609; the suffix is the system serial
#: lobe names accepted by the ``sensors`` option (third letter of a CTF channel name)
SENSOR_GROUPS = {"occipital": "O", "temporal": "T", "parietal": "P", "frontal": "F", "central": "C"}
CHUNK = 128  # epochs read from disk at a time (128 × 271 × 281 float64 ≈ 78 MB)
GET_DATA = ("download ds004212 from OpenNeuro (s3://openneuro.org/ds004212/: derivatives/preprocessed and "
            "sourcedata) and set BRAINBENCH_THINGS_MEG_ROOT or things_meg_root in the config file")
GET_IMAGES = ("the images are not part of ds004212: download images_THINGS.zip from the THINGS database on OSF "
              "(https://osf.io/jum2f/), unzip it with the password given there, and set BRAINBENCH_THINGS_IMAGES "
              "or things_images_root in the config file to the folder holding the category folders")


def epochs_file(root: Path, subject: str) -> Path:
    """The first (or only) file of a participant's preprocessed epochs."""
    return root / "derivatives" / "preprocessed" / f"preprocessed_{subject}-epo.fif"


def attributes_file(root: Path, subject: str) -> Path:
    """A participant's trial metadata table (one row per epoch)."""
    return root / "sourcedata" / f"sample_attributes_{subject}.csv"


def things_relpath(image_path: str) -> str:
    """``category/file.jpg`` for an ``image_path`` of the metadata (exp and test forms)."""
    parts = Path(str(image_path)).parts
    name = parts[-1]
    category = parts[-2] if len(parts) >= 3 else "_".join(Path(name).stem.split("_")[:-1])
    return f"{category}/{name}"


def resolve_image(images_root: Path, image_path: str) -> Path | None:
    """The file of a THINGS image under ``images_root``, or None when none of the known layouts has it."""
    rel = things_relpath(image_path)
    for candidate in (images_root / rel, images_root / "object_images" / rel, images_root / image_path):
        if candidate.is_file():
            return candidate
    return None


class ThingsImages(StimulusSet):
    """THINGS images as files, loaded on demand; ``ids`` are file stems (``aardvark_01b``)."""

    def __init__(self, paths: Sequence[Path]):
        self.paths = list(paths)
        self.ids = [p.stem for p in self.paths]

    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        from PIL import Image

        out = []
        for i in indices:
            try:
                with Image.open(self.paths[i]) as image:
                    out.append(np.array(image.convert("RGB"), dtype=np.uint8))
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                raise file_error(self.paths[i], "THINGS image", exc, "it is damaged or not an image; restore it "
                                 "from images_THINGS.zip (https://osf.io/jum2f/)") from None
        return out

    @cached_property
    def _digest(self) -> str:
        h = hashlib.sha256()
        for image_id, path in zip(self.ids, self.paths):
            h.update(image_id.encode())
            h.update(path.read_bytes())
        return h.hexdigest()

    def fingerprint(self) -> str:
        """SHA-256 of every image's id and bytes (computed once per object)."""
        return self._digest


def decimate(x: np.ndarray, times: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-pass and subsample the last axis on a grid through 0 ms.

    Parameters
    ----------
    x : array of shape (..., n_times)
    times : array of shape (n_times,), ms
    factor : keep every ``factor``-th sample (1: unchanged)

    Returns
    -------
    x : array of shape (..., n_kept); times : array of shape (n_kept,)
    """
    offset = int(np.argmin(np.abs(times))) % factor
    if factor == 1:
        return x, times
    from scipy.signal import decimate as fir_decimate

    return fir_decimate(x[..., offset:], factor, ftype="fir", axis=-1, zero_phase=True), times[offset::factor]


def noise_ceiling(half_a: np.ndarray, half_b: np.ndarray, inv_half: float, inv_rows: float) -> np.ndarray:
    """Best achievable Pearson r per unit from split-half repetitions (see the module docstring).

    Parameters
    ----------
    half_a, half_b : arrays of shape (n_images, n_units), means of the two halves of each image's trials
    inv_half : mean over images and halves of 1 / (trials in the half)
    inv_rows : mean over the scored rows of 1 / (trials averaged in the row)

    Returns
    -------
    ceiling : array of shape (n_units,), in [0, 1]
    """
    r_half = np.clip(np.nan_to_num(pearson(half_a, half_b)), 0.0, 1 - 1e-9)
    snr = r_half * inv_half / (1 - r_half)
    return np.sqrt(snr / (snr + inv_rows))


@contextmanager
def _quiet_mne():
    """Hide MNE's own pandas deprecation warning (``set_index(inplace=True)`` on the metadata)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword")
        yield


def _milliseconds(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BrainbenchError(f"things-meg {name} must be a time in ms, got {value!r}") from None


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _mean_and_scale(sums: np.ndarray, counts: np.ndarray, zscore: bool) -> np.ndarray:
    """Row means (in place) of ``sums`` (n_rows, n_sensors, n_times); optionally z-scored per sensor."""
    sums /= counts[:, None, None].astype(np.float32)
    if zscore:
        sums -= sums.mean(axis=(0, 2), keepdims=True)
        sums /= np.maximum(sums.std(axis=(0, 2), keepdims=True), np.finfo(np.float32).tiny)
    return sums


def _ceiling(halves: np.ndarray, plan: dict, counts: np.ndarray) -> np.ndarray | None:
    """Noise ceiling from the summed halves (n_test, 2, n_sensors, n_times); None under 3 usable test images."""
    tested = plan["half"] >= 0
    n_half = np.zeros((len(halves), 2))
    np.add.at(n_half, (plan["test_image"][tested], plan["half"][tested]), 1)
    usable = (n_half > 0).all(1)
    if usable.sum() < 3:
        return None
    means = halves[usable] / n_half[usable][:, :, None, None]
    a, b = (m.reshape(len(m), -1) for m in (means[:, 0], means[:, 1]))
    return noise_ceiling(a, b, float(np.mean(1 / n_half[usable])), float(np.mean(1 / counts)))


class _Participant:
    """One participant's opened (not loaded) epochs and their metadata."""

    def __init__(self, subject: str, epochs, metadata):
        self.subject = subject
        self.epochs = epochs
        self.metadata = metadata.reset_index(drop=True)


class ThingsMEG(Dataset):
    """THINGS-MEG preprocessed epochs of participants P1…P4 (those present under ``root``)."""

    name = "things-meg"
    modality = "meg"

    #: every option and its default (``root`` / ``images_root`` None: from the configuration)
    defaults = {"root": None, "images_root": None, "trial_types": "exp,test", "decimate": 4, "tmin": -100.0,
                "tmax": 800.0, "sensors": "all", "zscore": False}
    option_types = {"root": PathOption(), "images_root": PathOption(), "trial_types": Texts(help="exp, test or both"),
                    "decimate": Int(minimum=1), "tmin": Float(help="ms"), "tmax": Float(help="ms"),
                    "sensors": Texts(help="all, lobes or channel-name prefixes"), "zscore": Bool()}

    def __init__(self, **options: Any):
        self._setup(**options)
        problems = self._inspect()
        if problems:
            raise problems[0]

    @classmethod
    def check(cls, **options: Any) -> list[str]:
        """Every problem with the files the options point at, one sentence each (nothing is loaded)."""
        self = cls.__new__(cls)
        try:
            self._setup(**options)
        except BrainbenchError as exc:
            return [str(exc)]
        return [str(p) for p in self._inspect()]

    # -- options and files -------------------------------------------------------------------
    def _setup(self, **options: Any) -> None:
        unknown = [k for k in options if k not in self.defaults]
        if unknown:
            close = difflib.get_close_matches(unknown[0], self.defaults, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; options: {', '.join(self.defaults)}"
            raise BrainbenchError(f"dataset 'things-meg' has no option {unknown[0]!r}{hint}")
        o = {**self.defaults, **options}
        config = Config()
        self.root = Path(o["root"]).expanduser() if o["root"] else config.path("things_meg_root")
        self.images_root = (Path(o["images_root"]).expanduser() if o["images_root"]
                            else config.path("things_images_root"))
        self.trial_types = _as_list(o["trial_types"])
        if not self.trial_types or any(t not in ("exp", "test") for t in self.trial_types):
            raise BrainbenchError(f"things-meg trial_types must be 'exp', 'test' or 'exp,test' (catch trials show "
                                  f"no THINGS image), got {o['trial_types']!r}")
        factor = o["decimate"]
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
            raise BrainbenchError(f"things-meg decimate must be a positive whole number, got {factor!r}")
        self.decimate_factor = factor
        self.tmin, self.tmax = _milliseconds("tmin", o["tmin"]), _milliseconds("tmax", o["tmax"])
        if not self.tmin < self.tmax:
            raise BrainbenchError(f"things-meg needs tmin < tmax (ms), got tmin={self.tmin:g} and tmax={self.tmax:g}")
        self.sensor_spec = _as_list(o["sensors"])
        self.zscore = bool(o["zscore"])
        #: what the responses depend on besides the files (enters the fingerprint)
        self.options = dict(trial_types=self.trial_types, decimate=factor, tmin=self.tmin, tmax=self.tmax,
                            sensors=self.sensor_spec, zscore=self.zscore)

    def _inspect(self) -> list[BrainbenchError]:
        """Open every participant's files, check them, and build the stimulus set; returns the problems."""
        if self.root is None:
            return [MissingDataError(f"the THINGS-MEG root is not set; {GET_DATA}")]
        present = [s for s in SUBJECTS if epochs_file(self.root, s).is_file()]
        if not present:
            return [MissingDataError(f"no THINGS-MEG epochs under {self.root} (expected "
                                     f"{epochs_file(self.root, 'P1').relative_to(self.root)}); {GET_DATA}")]
        if len(present) < len(SUBJECTS):  # a partial download: the participants present are used
            notice(f"things-meg: participant{'s' * (len(present) > 1)} {', '.join(present)} of {len(SUBJECTS)} "
                   f"on disk (under {self.root})")
        problems: list[BrainbenchError] = []
        self._participants = {}
        for subject in present:
            participant = self._open(subject, problems)
            if participant is not None:
                self._participants[subject] = participant
        self.subjects = list(self._participants)
        self._build_stimuli(problems)
        return problems

    def _open(self, subject: str, problems: list[BrainbenchError]) -> _Participant | None:
        """Open a participant's epochs (headers only) and metadata; append what is wrong to ``problems``."""
        import mne

        path = epochs_file(self.root, subject)
        try:
            with _quiet_mne():
                epochs = mne.read_epochs(path, preload=False, verbose="error")
        except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
            problems.append(BrainbenchError(f"{path} cannot be read as MNE epochs ({type(exc).__name__}: {exc})"))
            return None
        found = self._signal_problems(path, epochs)
        metadata = self._metadata(subject, path, epochs, found)
        problems.extend(found)
        return None if found else _Participant(subject, epochs, metadata)

    def _signal_problems(self, path: Path, epochs) -> list[BrainbenchError]:
        """Sampling rate, channel set, and whether the sensors and window options fit them."""
        found = []
        if abs(epochs.info["sfreq"] - SFREQ) > 1e-6:
            found.append(BrainbenchError(f"{path} is sampled at {epochs.info['sfreq']:g} Hz but THINGS-MEG's "
                                         f"preprocessed epochs are {SFREQ:g} Hz; use the ds004212 derivatives as "
                                         "published"))
        odd = [(n, t) for n, t in zip(epochs.ch_names, epochs.get_channel_types())
               if t != "mag" or not CTF_NAME.match(n)]
        if odd:
            found.append(BrainbenchError(
                f"{path} has {len(odd)} channels that are not CTF MEG sensors (first: {odd[0][0]!r}, type "
                f"{odd[0][1]}); THINGS-MEG epochs hold 271 CTF channels of type mag named like 'MLO11-1609'"))
            return found
        try:
            self._picks(epochs.ch_names)
            self._grid(np.round(epochs.times * 1000, 6))
        except BrainbenchError as exc:
            found.append(exc)
        return found

    def _metadata(self, subject: str, path: Path, epochs, found: list[BrainbenchError]):
        """The trial table (``epochs.metadata``, else the CSV), checked against the epochs."""
        import pandas as pd

        csv = attributes_file(self.root, subject)
        metadata = epochs.metadata
        if csv.is_file():
            try:
                table = pd.read_csv(csv)
            except (OSError, ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
                found.append(file_error(csv, "THINGS-MEG trial table", exc, "download it again from ds004212"))
                return metadata
            if len(table) != len(epochs):
                found.append(BrainbenchError(f"{path} has {len(epochs)} epochs but {csv} has {len(table)} rows; "
                                             "the metadata must have one row per epoch"))
            metadata = table if metadata is None else metadata
        if metadata is None:
            found.append(MissingDataError(f"{path} holds no trial metadata and {csv} is missing; {GET_DATA}"))
        elif len(metadata) != len(epochs):
            found.append(BrainbenchError(f"{path} has {len(epochs)} epochs but its metadata has {len(metadata)} "
                                         "rows; the metadata must have one row per epoch"))
        elif missing := [c for c in ("trial_type", "image_path") if c not in metadata.columns]:
            found.append(BrainbenchError(f"the trial metadata of {subject} lacks the column(s) {', '.join(missing)}"))
        elif unknown := sorted(set(metadata["trial_type"].astype(str)) - set(TRIAL_TYPES)):
            found.append(BrainbenchError(f"the trial metadata of {subject} has trial types {unknown} besides exp, "
                                         "test and catch"))
        return metadata

    def _build_stimuli(self, problems: list[BrainbenchError]) -> None:
        wanted = set()
        for participant in self._participants.values():
            rows = participant.metadata["trial_type"].isin(self.trial_types)
            wanted.update(participant.metadata.loc[rows, "image_path"].astype(str))
        by_rel = {things_relpath(p): p for p in sorted(wanted)}
        paths, missing = {}, []
        if self.images_root is None:
            problems.append(MissingDataError(f"the THINGS images root is not set; {GET_IMAGES}"))
        else:
            for rel, image_path in by_rel.items():
                found = resolve_image(self.images_root, image_path)
                if found is None:
                    missing.append(rel)
                else:
                    paths[rel] = found
            if missing:
                problems.append(MissingDataError(f"{len(missing)} of {len(by_rel)} THINGS images are missing under "
                                                 f"{self.images_root} (first: {missing[0]}); {GET_IMAGES}"))
        order = sorted(paths, key=lambda rel: Path(rel).stem)
        self._stimulus_row = {rel: i for i, rel in enumerate(order)}
        self.stimuli = ThingsImages([paths[rel] for rel in order])

    # -- responses ---------------------------------------------------------------------------
    def _picks(self, ch_names: list[str]) -> list[int]:
        if self.sensor_spec == ["all"]:
            return list(range(len(ch_names)))
        picks = set()
        for entry in self.sensor_spec:
            letter = SENSOR_GROUPS.get(entry.lower())
            hits = [i for i, n in enumerate(ch_names) if (n[2] == letter if letter else n.startswith(entry))]
            if not hits:
                raise BrainbenchError(f"things-meg sensors entry {entry!r} matches no channel; give 'all', lobes "
                                      f"({', '.join(SENSOR_GROUPS)}), or channel-name prefixes such as 'MLO'")
            picks.update(hits)
        return sorted(picks)

    def _grid(self, times_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times kept after decimation, and the mask of them inside tmin…tmax."""
        _, grid = decimate(np.zeros((1, len(times_ms))), times_ms, self.decimate_factor)
        keep = (grid >= self.tmin - 1e-6) & (grid <= self.tmax + 1e-6)
        if not keep.any():
            raise BrainbenchError(f"things-meg window {self.tmin:g}…{self.tmax:g} ms holds no time point of the "
                                  f"epochs ({times_ms[0]:g}…{times_ms[-1]:g} ms)")
        return grid, keep

    def _plan(self, meta) -> dict[str, np.ndarray]:
        """Where each trial goes.

        Returns
        -------
        plan : dict of arrays of shape (n_trials,): ``row``, the response row a trial is averaged
            into (−1: none); ``test_image`` and ``half``, the test image and repetition half
            (0: odd, 1: even occurrence) it feeds the noise ceiling with (−1: not a test trial);
            and ``stimuli`` (n_rows,), each row's index in the stimulus set.
        """
        trial_type = meta["trial_type"].astype(str).to_numpy()
        rel = meta["image_path"].astype(str).map(things_relpath)
        selected = np.isin(trial_type, self.trial_types)
        test = trial_type == "test"
        images = sorted({self._stimulus_row[r] for r in rel[selected]})
        row_of = {stim: row for row, stim in enumerate(images)}
        row = np.array([row_of[self._stimulus_row[r]] if keep else -1 for r, keep in zip(rel, selected)])
        test_image = {r: i for i, r in enumerate(dict.fromkeys(rel[test]))}
        image = np.array([test_image.get(r, -1) for r in rel])
        half = np.full(len(meta), -1)
        half[test] = meta.assign(_rel=rel)[test].groupby("_rel").cumcount().to_numpy() % 2
        return {"row": row, "test_image": image, "half": half, "stimuli": np.array(images, dtype=np.int64)}

    def responses(self, subject: str) -> Responses:
        participant = self._participants[subject]
        epochs = participant.epochs
        plan = self._plan(participant.metadata)
        picks = self._picks(epochs.ch_names)
        times_ms = np.round(epochs.times * 1000, 6)
        grid, keep = self._grid(times_ms)
        shape = (len(picks), int(keep.sum()))
        sums = np.zeros((len(plan["stimuli"]), *shape), np.float32)
        halves = np.zeros((int(plan["test_image"].max()) + 1, 2, *shape))
        to_read = np.flatnonzero((plan["row"] >= 0) | (plan["half"] >= 0))
        n_bad = 0
        for start in range(0, len(to_read), CHUNK):
            idx = to_read[start:start + CHUNK]
            with _quiet_mne():
                x = epochs.get_data(item=idx, picks=picks, verbose="error")
            good = np.isfinite(x).all(axis=(1, 2))
            if not good.all():  # dropped before filtering: one NaN sample would spread through the low-pass
                n_bad += int((~good).sum())
                plan["row"][idx[~good]] = plan["half"][idx[~good]] = -1
                idx, x = idx[good], x[good]
            x = decimate(x, times_ms, self.decimate_factor)[0][..., keep]
            rows, half = plan["row"][idx], plan["half"][idx]
            np.add.at(sums, rows[rows >= 0], x[rows >= 0].astype(np.float32))
            np.add.at(halves, (plan["test_image"][idx][half >= 0], half[half >= 0]), x[half >= 0])
        counts = np.bincount(plan["row"][plan["row"] >= 0], minlength=len(sums))
        seen = counts > 0  # an image all of whose trials were dropped has no response
        data = _mean_and_scale(sums[seen], counts[seen], self.zscore)
        names, times = np.array(epochs.ch_names)[picks], grid[keep]
        notes = {"n_dropped_trials": n_bad, "n_dropped_stimuli": int((~seen).sum())} if n_bad else {}
        return Responses(subject, data.reshape(len(data), -1), plan["stimuli"][seen],
                         units={"sensor": np.repeat(names, len(times)), "time": np.tile(times, len(names))},
                         noise_ceiling=_ceiling(halves, plan, counts[seen]), notes=notes)

    def _data_files(self) -> list[Path]:
        """Every participant's epochs files (split parts included) and metadata table, when present."""
        files = []
        for subject in self.subjects:
            folder = epochs_file(self.root, subject).parent
            csv = attributes_file(self.root, subject)
            files += sorted(folder.glob(f"preprocessed_{subject}-epo*.fif")) + ([csv] if csv.is_file() else [])
        return files

    def fingerprints(self) -> dict[str, str]:
        """sha256 of each epochs file's first 64 KiB (its FIF header: channels, sampling rate, times) and
        of each metadata table, keyed by path relative to the root — never the MEG data itself.
        Recorded in exported results (``bench results export``)."""
        out = {}
        for path in self._data_files():
            with open(path, "rb") as f:
                blob = f.read() if path.suffix == ".csv" else f.read(65536)
            out[str(path.relative_to(self.root))] = hashlib.sha256(blob).hexdigest()
        return out

    def fingerprint(self) -> str:
        """Hash of the options, the epochs and metadata files (names, sizes, times) and the images."""
        files = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in self._data_files()]
        blob = json.dumps({"dataset": self.name, "options": self.options, "files": files,
                           "stimuli": self.stimuli.fingerprint()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@brainbench.hookimpl(trylast=True)
def register_datasets(register):
    register("things-meg", ThingsMEG,
             description="THINGS-MEG (ds004212): 4 participants, 22,448 THINGS images, 271 CTF sensors × time",
             modality="meg", subjects=list(SUBJECTS),
             citation="Hebart, Contier, Teichmann et al. (2023) THINGS-data, eLife 12:e82580; OpenNeuro ds004212",
             options=list(ThingsMEG.defaults))

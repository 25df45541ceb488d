"""Writes a miniature THINGS-MEG in the real formats, for the plugin's tests.

Layout as in OpenNeuro ds004212 plus a THINGS image folder:

    <root>/derivatives/preprocessed/preprocessed_P1-epo.fif   (+ -epo-1.fif … when split)
    <root>/sourcedata/sample_attributes_P1.csv
    <images_root>/<category>/<category>_<exemplar>.jpg

The epochs are an MNE ``EpochsArray`` saved with ``Epochs.save`` (FIF, float32), 200 Hz,
−100…+1300 ms (281 samples), channels of type ``mag`` with CTF-275 names such as
``MLO11-1609`` and the CTF axial-gradiometer coil type, the trial metadata attached as
``epochs.metadata`` and written again as the CSV. Events carry ``things_image_nr`` (999999
for catch trials), as in the published file. Metadata columns: the ones the published table
is known to have (``session_nr``, ``run_nr``, ``trial_type``, ``image_path`` in 9th place,
``image_nr``, ``things_image_nr``, ``things_category_nr``, ``things_exemplar_nr``,
``test_image_nr``, ``image_on``, ``image_off``), padded with placeholders to its 18 columns.

Each image has a latent vector ``a`` (3 numbers); a trial is
``signal · (a @ W)[sensor] · exp(−(t − 150 ms)² / (2 · 50²)) + noise · N(0, 1)`` plus an
optional ``waveform`` shared by every trial; catch trials are noise only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CATEGORIES = ("aardvark", "hot_dog", "zebra", "banana", "bicycle", "candle", "ice_cream", "owl")
CATCH_NR = 999999
EXTRA_COLUMNS = ("trial_nr", "catch_response", "RT", "key_pressed", "image_duration", "fixation_duration",
                 "condition")


@dataclass
class MiniThingsMEG:
    """What was written: paths, and per participant the trials as stored and their metadata."""

    root: Path
    images_root: Path
    times_ms: np.ndarray
    channels: list[str]
    trials: dict = field(default_factory=dict)    # subject -> (n_trials, n_channels, n_times) float32
    metadata: dict = field(default_factory=dict)  # subject -> pandas.DataFrame

    def epochs_path(self, subject: str) -> Path:
        return self.root / "derivatives" / "preprocessed" / f"preprocessed_{subject}-epo.fif"

    def csv_path(self, subject: str) -> Path:
        return self.root / "sourcedata" / f"sample_attributes_{subject}.csv"


def ctf_names(n: int) -> list[str]:
    """``n`` distinct CTF-275-style channel names, lobes interleaved (``MLO11-1609``, ``MRO11-1609``, …)."""
    names = [f"M{side}{lobe}{row}{col}-1609" for row in range(1, 6) for col in range(1, 6) for lobe in "OTPCF"
             for side in "LR"]
    return names[:n]


def _image_table(n_exp: int, n_test: int) -> list[dict]:
    """THINGS-style names: exp images ``images_meg/<cat>/<cat>_NNb.jpg``, test ``images_test_meg/<cat>_NNs.jpg``."""
    images = []
    for i in range(n_exp + n_test):
        category = CATEGORIES[i % len(CATEGORIES)]
        exemplar = i // len(CATEGORIES) + 1
        is_test = i >= n_exp
        file = f"{category}_{exemplar:02d}{'s' if is_test else 'b'}.jpg"
        images.append({"file": file, "category": category, "category_nr": CATEGORIES.index(category) + 1,
                       "exemplar": exemplar, "image_nr": i + 1, "test": is_test,
                       "image_path": f"images_test_meg/{file}" if is_test else f"images_meg/{category}/{file}"})
    return images


def _write_images(images_root: Path, images: list[dict], size: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(123)
    for image in images:
        folder = images_root / image["category"]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / image["file"], quality=95)


def _trial_order(images: list[dict], n_reps: int, n_catch: int, rng) -> list[dict]:
    """Rows of the metadata: each test image once per session, exp images spread over sessions, catch trials."""
    exp = [im for im in images if not im["test"]]
    test = [im for im in images if im["test"]]
    rows = []
    for session in range(1, n_reps + 1):
        session_trials = exp[session - 1::n_reps] + test + [None] * (n_catch // n_reps + (session <= n_catch % n_reps))
        for k in rng.permutation(len(session_trials)):
            im = session_trials[k]
            rows.append({"session_nr": session, "run_nr": 1, "image": im})
    return rows


def _metadata(rows: list[dict]):
    import pandas as pd

    records = []
    for t, row in enumerate(rows):
        im = row["image"]
        catch = im is None
        trial_type = "catch" if catch else ("test" if im["test"] else "exp")
        records.append({
            "session_nr": row["session_nr"], "run_nr": row["run_nr"],
            "image_nr": np.nan if catch else im["image_nr"],
            "things_category_nr": np.nan if catch else im["category_nr"],
            "things_image_nr": np.nan if catch else im["image_nr"],
            "things_exemplar_nr": np.nan if catch else im["exemplar"],
            "test_image_nr": im["image_nr"] if not catch and im["test"] else np.nan,
            "image_on": 1.5 * t, "image_path": f"images_catch_meg/catch_{t:03d}.jpg" if catch else im["image_path"],
            "trial_type": trial_type, "image_off": 1.5 * t + 0.5,
            **{name: np.nan for name in EXTRA_COLUMNS},
        })
    order = ["session_nr", "run_nr", "image_nr", "things_category_nr", "things_image_nr", "things_exemplar_nr",
             "test_image_nr", "image_on", "image_path", "trial_type", "image_off", *EXTRA_COLUMNS]
    return pd.DataFrame.from_records(records)[order]


def build_things_meg(folder: Path, *, subjects=("P1",), n_exp: int = 24, n_test: int = 6, n_reps: int = 4,
                     n_catch: int = 4, n_channels: int = 12, sfreq: float = 200.0, split_size=None,
                     metadata_in_fif: bool = True, write_csv: bool = True, signal: float = 1.5, noise: float = 1.0,
                     waveform=None, channel_names=None, channel_type: str = "mag", image_size: int = 16,
                     seed: int = 0) -> MiniThingsMEG:
    """Write a miniature THINGS-MEG under ``folder``; see the module docstring.

    ``waveform`` is a function of time in ms, added to every trial and channel.
    ``split_size`` (e.g. ``"1MB"``) makes MNE split the epochs into ``-epo.fif``, ``-epo-1.fif``….
    """
    import mne
    from mne.io.constants import FIFF

    folder = Path(folder)
    root, images_root = folder / "ds004212", folder / "THINGS" / "object_images"
    images = _image_table(n_exp, n_test)
    _write_images(images_root, images, image_size)
    names = list(channel_names or ctf_names(n_channels))
    times = -0.1 + np.arange(int(round(1.4 * sfreq)) + 1) / sfreq
    times_ms = np.round(times * 1000, 6)
    profile = np.exp(-((times_ms - 150) ** 2) / (2 * 50.0 ** 2))
    out = MiniThingsMEG(root, images_root, times_ms, names)
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(len(images), 3))
    for s, subject in enumerate(subjects):
        sub_rng = np.random.default_rng([seed, s])
        rows = _trial_order(images, n_reps, n_catch, sub_rng)
        metadata = _metadata(rows)
        mixing = sub_rng.normal(size=(3, len(names)))
        data = noise * sub_rng.normal(size=(len(rows), len(names), len(times)))
        for t, row in enumerate(rows):
            if row["image"] is not None:
                data[t] += signal * np.outer(latent[row["image"]["image_nr"] - 1] @ mixing, profile)
        if waveform is not None:
            data += waveform(times_ms)
        info = mne.create_info(names, sfreq, channel_type)
        if channel_type == "mag":
            for ch in info["chs"]:
                ch["coil_type"] = FIFF.FIFFV_COIL_CTF_GRAD
        codes = metadata["things_image_nr"].fillna(CATCH_NR).astype(int).to_numpy()
        events = np.c_[np.arange(len(rows)) * int(1.5 * sfreq), np.zeros(len(rows), int), codes]
        epochs = mne.EpochsArray(data, info, events=events, tmin=-0.1, baseline=None, verbose="error",
                                 metadata=metadata if metadata_in_fif else None,
                                 event_id={str(c): int(c) for c in np.unique(codes)})
        path = out.epochs_path(subject)
        path.parent.mkdir(parents=True, exist_ok=True)
        epochs.save(path, split_size=split_size or "2GB", overwrite=True, verbose="error")
        if write_csv:
            out.csv_path(subject).parent.mkdir(parents=True, exist_ok=True)
            metadata.to_csv(out.csv_path(subject), index=False)
        out.trials[subject] = data.astype(np.float32)
        out.metadata[subject] = metadata
    return out

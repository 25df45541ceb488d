"""NSD numerics: session z-scoring, repetition bookkeeping, noise ceilings, voxel maps.

Used by the ``nsd`` dataset (``nsd.py``); each function documents its shapes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from brainbench.core.errors import BrainbenchError
from brainbench.core.compute.stats import pearson


def zscore_session(betas: np.ndarray) -> np.ndarray:
    """Z-score each voxel over one session's trials; constant or non-finite voxels become NaN.

    Parameters
    ----------
    betas : (n_trials, n_voxels)

    Returns
    -------
    z : float32 (n_trials, n_voxels)
    """
    betas = np.asarray(betas, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        centred = betas - betas.mean(0)
        sd = centred.std(0)
        z = centred / sd
    z[:, ~(sd > 0)] = np.nan
    return z.astype(np.float32)


def occurrence_index(rows: np.ndarray) -> np.ndarray:
    """For each trial, how many earlier trials showed the same image (0, 1, 2, …)."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_rows)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    occurrence = np.empty_like(rows)
    occurrence[order] = np.arange(len(rows)) - first
    return occurrence


def ncsnr_to_r(ncsnr: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Noise ceiling as a Pearson r: √(ncsnr² / (ncsnr² + mean(1/k))), k = trials per image.

    Parameters
    ----------
    ncsnr : (n_voxels,) noise-ceiling signal-to-noise ratio (signal s.d. / noise s.d.)
    counts : (n_images,) trials averaged per image

    Returns
    -------
    r : (n_voxels,) in [0, 1]; NaN where ncsnr is not finite.
    """
    ncsnr = np.asarray(ncsnr, dtype=np.float64)
    inverse_k = float(np.mean(1.0 / np.asarray(counts, dtype=np.float64)))
    with np.errstate(invalid="ignore"):
        return np.sqrt(ncsnr**2 / (ncsnr**2 + inverse_k))


def split_half_ncsnr(reps: np.ndarray, counts: np.ndarray) -> np.ndarray | None:
    """ncsnr from the first two repetitions: ρ₁ = r(rep1, rep2), ncsnr = √(ρ₁ / (1 − ρ₁)), ρ₁ < 0 → 0.

    Parameters
    ----------
    reps : (max_reps, n_images, n_voxels) with NaN for missing repetitions
    counts : (n_images,)

    Returns
    -------
    ncsnr : (n_voxels,), or None when fewer than 3 images were shown twice.
    """
    twice = counts >= 2
    if reps is None or reps.shape[0] < 2 or twice.sum() < 3:
        return None
    rho = pearson(reps[0, twice], reps[1, twice])
    rho = np.clip(rho, 0.0, 1.0 - 1e-9)
    return np.sqrt(rho / (1.0 - rho))


def write_voxel_map(dataset, subject: str, values: np.ndarray, voxels: np.ndarray, path: str | Path) -> Path:
    """Write per-unit values (e.g. encoding r) as a NIfTI in the subject's functional space.

    Voxels outside the units are NaN; a voxel listed twice (in two regions) gets the mean.
    With the encoding metric::

        per_layer, keep = Encoding().unit_scores(features, responses)
        r = np.full(responses.n_units, np.nan); r[keep] = per_layer["layer07"]
        write_voxel_map(dataset, "subj01", r, responses.units["voxel"], "subj01_layer07_r.nii.gz")

    Parameters
    ----------
    values : (n_units,) float
    voxels : (n_units,) flat C-order voxel indices (``responses.units["voxel"]``)
    path : output file, ``.nii`` or ``.nii.gz``

    Returns
    -------
    The path written.
    """
    import nibabel as nib

    values = np.asarray(values, dtype=np.float64)
    voxels = np.asarray(voxels, dtype=np.int64)
    if values.shape != voxels.shape:
        raise BrainbenchError(f"{values.shape[0]} values for {voxels.shape[0]} voxels")
    shape, affine = dataset.volume_geometry(subject)
    finite = np.isfinite(values)
    sums = np.bincount(voxels[finite], values[finite], minlength=int(np.prod(shape)))
    counts = np.bincount(voxels[finite], minlength=int(np.prod(shape)))
    with np.errstate(invalid="ignore"):
        volume = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).reshape(shape)
    path = Path(path)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), str(path))
    return path

"""A miniature Natural Scenes Dataset tree in the real file formats, with its ground truth.

Real formats, tiny sizes:

- ``nsd_stimuli.hdf5``: ``imgBrick`` (1300, 16, 16, 3) uint8, image i filled so that its
  nsdId can be read back from its pixels (:func:`image_id`).
- ``nsd_expdesign.mat`` (MATLAB 5): ``masterordering`` (1, 30000) uint16 1-based,
  ``subjectim`` (8, 10000) int32 1-based, ``sharedix`` (1, 1000), ``basiccnt``,
  ``stimpattern``. The first two sessions (1500 trials) show 450 shared and 100
  subject-specific columns, each up to 3 times.
- ``HCP_MMP1.mgz.ctab`` (the 180 Glasser names, NSD's ``index name`` layout) and per
  subject ``lh.`` / ``rh.`` / combined ``HCP_MMP1.nii.gz``, ``nsdgeneral.nii.gz`` and
  ``prf-visualrois.nii.gz`` (−1 outside the brain, 0 unlabelled).
- betas: ``betas_sessionNN.nii.gz`` (X, Y, Z, 750) int16 and/or ``.hdf5`` (``betas``,
  750 × Z × Y × X), and ``ncsnr.nii.gz`` for the subjects listed.

Geometry: a (12, 10, 8) volume with 1.8 mm voxels. Each region of :data:`PLACED` is a
4 × 1 × 4 block in slab j = PLACED[name]: i in 1..4 (lh) or 7..10 (rh), k in 2..5. So a
region's centroid is known in closed form and its distance from V1 is 1.8·j mm.

Signal: the beta of voxel v on a trial showing image n in session s is
``offset[s, v] + scale[s, v] · (ncsnr[v] · signal[n, v] + noise)`` % signal change, with
signal and noise standard normal, ncsnr ~ U(0.5, 2) inside regions and 0 elsewhere;
0 outside the brain. Stored as round(300 · beta).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GLASSER = """V1 MST V6 V2 V3 V4 V8 4 3b FEF PEF 55b V3A RSC POS2 V7 IPS1 FFC V3B LO1 LO2 PIT MT A1 PSL SFL PCV
STV 7Pm 7m POS1 23d v23ab d23ab 31pv 5m 5mv 23c 5L 24dd 24dv 7AL SCEF 6ma 7Am 7PL 7PC LIPv VIP MIP
1 2 3a 6d 6mp 6v p24pr 33pr a24pr p32pr a24 d32 8BM p32 10r 47m 8Av 8Ad 9m 8BL 9p 10d 8C 44 45 47l
a47r 6r IFJa IFJp IFSp IFSa p9-46v 46 a9-46v 9-46d 9a 10v a10p 10pp 11l 13l OFC 47s LIPd 6a i6-8
s6-8 43 OP4 OP1 OP2-3 52 RI PFcm PoI2 TA2 FOP4 MI Pir AVI AAIC FOP1 FOP3 FOP2 PFt AIP EC PreS H
ProS PeEc STGa PBelt A5 PHA1 PHA3 STSda STSdp STSvp TGd TE1a TE1p TE2a TF TE2p PHT PH TPOJ1 TPOJ2
TPOJ3 DVT PGp IP2 IP1 IP0 PFop PF PFm PGi PGs V6A VMV1 VMV3 PHA2 V4t FST V3CD LO3 VMV2 31pd 31a VVC
25 s32 pOFC PoI1 Ig FOP5 p10p p47r TGv MBelt LBelt A4 STSva TE1m PI a32pr p24""".split()
assert len(GLASSER) == 180

SHAPE = (12, 10, 8)
VOXEL_MM = 1.8
AFFINE = np.array([[VOXEL_MM, 0, 0, -10.8], [0, VOXEL_MM, 0, -9.0], [0, 0, VOXEL_MM, -7.2], [0, 0, 0, 1]])
#: region → slab j (posterior to anterior)
PLACED = {"V1": 0, "V2": 1, "MT": 3, "VMV2": 4, "44": 6, "45": 7, "IFSa": 8, "IFSp": 9}
HEMI_I = {"lh": range(1, 5), "rh": range(7, 11)}
REGION_K = range(2, 6)
N_IMAGES, IMAGE_SIZE = 1300, 16
N_SHARED_USED, N_OWN_USED = 450, 100
TRIALS = 750


@dataclass
class MiniNSD:
    """The tree's root and the truth it was built from."""

    root: Path
    subjectim: np.ndarray  # (8, 10000) 1-based, as written
    masterordering: np.ndarray  # (30000,) 1-based, as written
    labels: dict[str, np.ndarray]  # hemisphere → (X, Y, Z) int16 label volume
    ncsnr: dict[str, np.ndarray] = field(default_factory=dict)  # subject → (X, Y, Z) true ncsnr
    betas: dict[str, np.ndarray] = field(default_factory=dict)  # subject → (n_trials, X, Y, Z) int16

    def trial_ids(self, subject: str, n_sessions: int) -> np.ndarray:
        """0-based nsdId of each trial, straight from the written arrays."""
        s = int(subject[-2:]) - 1
        return self.subjectim[s, self.masterordering[: n_sessions * TRIALS] - 1] - 1


def image_id(image: np.ndarray) -> int:
    """The nsdId encoded in a fixture image's first pixel."""
    r, g = int(image[0, 0, 0]), int(image[0, 0, 1])
    return r * 256 + g


def _images(rng) -> np.ndarray:
    images = rng.integers(0, 256, size=(N_IMAGES, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    ids = np.arange(N_IMAGES)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = ids // 256, ids % 256
    return images


def _design(rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """subjectim (8, 10000) and masterordering (30000,) (both 1-based), sharedix (1000,)."""
    perm = rng.permutation(N_IMAGES)
    shared = np.sort(perm[:1000])
    subjectim = np.empty((8, 10000), np.int64)
    subjectim[:, :1000] = shared
    for s in range(8):
        own = perm[1000 + 150 * (s % 2): 1000 + 150 * (s % 2 + 1)]
        subjectim[s, 1000:] = np.resize(own, 9000)  # columns past the used ones repeat (never shown here)
    used = np.r_[np.arange(N_SHARED_USED), 1000 + np.arange(N_OWN_USED)]
    trials = rng.permutation(np.repeat(used, 3))  # 1650 trials: the first 1500 fill two sessions
    rest = rng.integers(0, 10000, size=30000 - len(trials))
    return subjectim + 1, np.r_[trials, rest] + 1, shared + 1


def _label_volumes() -> dict[str, np.ndarray]:
    volumes = {}
    for hemisphere, irange in HEMI_I.items():
        vol = np.zeros(SHAPE, np.int16)
        vol[[0, -1]] = -1  # outside the brain
        vol[:, :, [0, -1]] = -1
        for name, j in PLACED.items():
            index = GLASSER.index(name) + 1
            for i in irange:
                vol[i, j, REGION_K.start:REGION_K.stop] = index
        volumes[hemisphere] = vol
    return volumes


def _save_nifti(path: Path, data: np.ndarray) -> None:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, AFFINE), str(path))


def _write_rois(root: Path, subject: str, labels: dict[str, np.ndarray]) -> None:
    folder = root / f"nsddata/ppdata/{subject}/func1pt8mm/roi"
    combined = np.where(labels["lh"] > 0, labels["lh"], labels["rh"])
    for prefix, vol in (("lh.", labels["lh"]), ("rh.", labels["rh"]), ("", combined)):
        _save_nifti(folder / f"{prefix}HCP_MMP1.nii.gz", vol)
        _save_nifti(folder / f"{prefix}nsdgeneral.nii.gz", np.where(vol > 0, 1, vol).astype(np.int16))
        v1 = np.where(vol == 1, 1, np.where(vol > 0, 0, vol)).astype(np.int16)
        _save_nifti(folder / f"{prefix}prf-visualrois.nii.gz", v1)


def _betas(rng, trial_ids: np.ndarray, ncsnr: np.ndarray, inside: np.ndarray, n_sessions: int) -> np.ndarray:
    """(n_trials, X, Y, Z) int16 betas following the module docstring's model."""
    n_vox = int(np.prod(SHAPE))
    signal = rng.normal(size=(N_IMAGES, n_vox))
    out = np.zeros((len(trial_ids), n_vox), np.int16)
    flat_ncsnr, flat_inside = ncsnr.ravel(), inside.ravel()
    for s in range(n_sessions):
        offset, scale = rng.uniform(-2, 2, n_vox), rng.uniform(0.8, 1.6, n_vox)
        t = slice(s * TRIALS, (s + 1) * TRIALS)
        beta = offset + scale * (flat_ncsnr * signal[trial_ids[t]] + rng.normal(size=(TRIALS, n_vox)))
        out[t] = np.where(flat_inside, np.rint(300 * beta), 0)
    return out.reshape(len(trial_ids), *SHAPE)


def _write_betas(root: Path, subject: str, betas: np.ndarray, formats: tuple[str, ...]) -> None:
    import h5py

    folder = root / f"nsddata_betas/ppdata/{subject}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(len(betas) // TRIALS):
        session = betas[s * TRIALS:(s + 1) * TRIALS]  # (750, X, Y, Z)
        if "nii" in formats:
            _save_nifti(folder / f"betas_session{s + 1:02d}.nii.gz", np.ascontiguousarray(session.transpose(1, 2, 3, 0)))
        if "hdf5" in formats:
            with h5py.File(folder / f"betas_session{s + 1:02d}.hdf5", "w") as f:
                f.create_dataset("betas", data=session.transpose(0, 3, 2, 1), chunks=(TRIALS, 1, 1, 1))


def build_mini_nsd(root: Path, subjects: dict[str, tuple[str, ...]] | None = None, n_sessions: int = 2,
                   with_ncsnr: tuple[str, ...] = ("subj01",), dead_voxel: tuple[int, int, int] | None = (2, 0, 3),
                   seed: int = 0) -> MiniNSD:
    """Write a miniature NSD tree under ``root``.

    Parameters
    ----------
    subjects : subject → beta formats written (``"nii"``, ``"hdf5"``); default subj01 both, subj02 HDF5.
    n_sessions : sessions written per subject (750 trials each).
    with_ncsnr : subjects that get ``ncsnr.nii.gz``.
    dead_voxel : (i, j, k) of an lh.V1 voxel whose betas are 0 throughout session 1 of subj01.
    """
    import h5py
    import scipy.io

    subjects = subjects or {"subj01": ("nii", "hdf5"), "subj02": ("hdf5",)}
    rng = np.random.default_rng(seed)
    root = Path(root)
    stim = root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
    stim.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(stim, "w") as f:
        f.create_dataset("imgBrick", data=_images(rng), chunks=(1, IMAGE_SIZE, IMAGE_SIZE, 3))
    subjectim, masterordering, sharedix = _design(rng)
    design = root / "nsddata/experiments/nsd/nsd_expdesign.mat"
    design.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(str(design), {
        "masterordering": masterordering[None].astype(np.uint16), "subjectim": subjectim.astype(np.int32),
        "sharedix": sharedix[None].astype(np.int32), "basiccnt": np.zeros((3, 40), np.uint16),
        "stimpattern": np.zeros((40, 12, 75), np.uint8)})
    table = root / "nsddata/freesurfer/fsaverage/label/HCP_MMP1.mgz.ctab"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text("".join(f"{i} {name}\n" for i, name in enumerate(["Unknown"] + GLASSER)))
    labels = _label_volumes()
    tree = MiniNSD(root, subjectim, masterordering, labels)
    inside = (labels["lh"] >= 0) & (labels["rh"] >= 0)
    in_region = (labels["lh"] > 0) | (labels["rh"] > 0)
    for subject, formats in subjects.items():
        _write_rois(root, subject, labels)
        ncsnr = np.where(in_region, rng.uniform(0.5, 2.0, SHAPE), 0.0)
        betas = _betas(rng, tree.trial_ids(subject, n_sessions), ncsnr, inside, n_sessions)
        if dead_voxel is not None and subject == "subj01":
            betas[:TRIALS][(slice(None), *dead_voxel)] = 0
        _write_betas(root, subject, betas, formats)
        if subject in with_ncsnr:
            _save_nifti(root / f"nsddata_betas/ppdata/{subject}/func1pt8mm/betas_fithrf_GLMdenoise_RR/ncsnr.nii.gz",
                        ncsnr.astype(np.float32))
        tree.ncsnr[subject], tree.betas[subject] = ncsnr, betas
    return tree

"""The Natural Scenes Dataset's files, read in the formats the NSD authors publish.

This module knows the tree (:class:`Layout`), reads each kind of file (experiment
design, label tables, label volumes, beta sessions) and validates a tree without
loading it (:func:`brainbench.plugins.datasets.nsd_check.check_tree`). Every failure is one sentence that names the file.
The dataset plugin itself (responses, geometry, noise ceiling) is in ``nsd.py``.

Keys below the root are those of the public bucket ``s3://natural-scenes-dataset``.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainbench.core.errors import BrainbenchError, MissingDataError

SUBJECTS = tuple(f"subj{i:02d}" for i in range(1, 9))
#: NSD sessions per subject
SUBJECT_SESSIONS = dict(zip(SUBJECTS, (40, 40, 32, 30, 40, 32, 40, 30)))
TRIALS_PER_SESSION = 750
N_TRIALS = 30000
N_COLUMNS = 10000  # images per subject (columns of subjectim)
N_SHARED = 1000  # the first 1000 columns are the images shared by all subjects
#: int16 betas / BETA_SCALE = percent signal change
BETA_SCALE = 300.0
BUCKET = "s3://natural-scenes-dataset"
#: label-volume name → (label-table file name, built-in names used when no table is found)
ATLASES = {
    "HCP_MMP1": ("HCP_MMP1.mgz.ctab", None),
    "prf-visualrois": ("prf-visualrois.mgz.ctab", {1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"}),
    "nsdgeneral": (None, {1: "nsdgeneral"}),
}
HEMISPHERES = ("lh", "rh")
FORMATS = {"nii": ".nii.gz", "hdf5": ".hdf5"}


def _where(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when below it (the bucket key), else as given."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Layout:
    """Paths of an NSD tree under ``root``, for one functional ``space`` and GLM version."""

    root: Path
    space: str = "func1pt8mm"
    betas_version: str = "betas_fithrf_GLMdenoise_RR"

    @property
    def stimuli(self) -> Path:
        return self.root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"

    @property
    def design(self) -> Path:
        return self.root / "nsddata/experiments/nsd/nsd_expdesign.mat"

    def label_tables(self, atlas: str, subject: str | None = None) -> list[Path]:
        """Candidate label tables of ``atlas``: fsaverage's first, then the subject's."""
        name = ATLASES[atlas][0]
        if name is None:
            return []
        places = ["fsaverage"] + ([subject] if subject else [])
        return [self.root / f"nsddata/freesurfer/{p}/label/{name}" for p in places]

    def roi(self, subject: str, atlas: str, hemisphere: str | None = None) -> Path:
        prefix = f"{hemisphere}." if hemisphere else ""
        return self.root / f"nsddata/ppdata/{subject}/{self.space}/roi/{prefix}{atlas}.nii.gz"

    def betas_dir(self, subject: str) -> Path:
        return self.root / f"nsddata_betas/ppdata/{subject}/{self.space}/{self.betas_version}"

    def session(self, subject: str, session: int, fmt: str) -> Path:
        return self.betas_dir(subject) / f"betas_session{session:02d}{FORMATS[fmt]}"

    def ncsnr(self, subject: str) -> Path:
        return self.betas_dir(subject) / "ncsnr.nii.gz"

    def where(self, path: Path) -> str:
        return _where(path, self.root)

    def missing(self, path: Path, what: str) -> MissingDataError:
        """The error for a missing file, saying where to get it."""
        key = self.where(path)
        return MissingDataError(f"NSD {what} {path} is missing; download {BUCKET}/{key} "
                                f"(see docs/nsd.md, or run `bench data check nsd`)")

    def present_subjects(self) -> list[str]:
        """Subjects whose betas folder exists."""
        return [s for s in SUBJECTS if self.betas_dir(s).is_dir()]

    def session_file(self, subject: str, session: int, betas_format: str = "auto") -> Path:
        """The file of one beta session (``auto``: HDF5 when present, else NIfTI); raises if absent."""
        formats = ("hdf5", "nii") if betas_format == "auto" else (betas_format,)
        for fmt in formats:
            path = self.session(subject, session, fmt)
            if path.is_file():
                return path
        raise self.missing(self.session(subject, session, formats[-1]),
                           f"beta session {session} of {subject}")


# ---------------------------------------------------------------- experiment design
@dataclass
class Design:
    """The NSD experiment design, 0-based.

    ``masterordering`` (30000,): column of ``subjectim`` shown on each trial;
    ``subjectim`` (8, 10000): nsdId of each subject's columns; ``shared`` (1000,): nsdIds
    of the shared images.
    """

    masterordering: np.ndarray
    subjectim: np.ndarray
    shared: np.ndarray

    def trial_images(self, subject: str, n_sessions: int) -> np.ndarray:
        """0-based nsdId of each of the subject's first ``n_sessions`` × 750 trials."""
        columns = self.masterordering[: n_sessions * TRIALS_PER_SESSION]
        return self.subjectim[SUBJECTS.index(subject), columns]


def read_design(path: Path) -> Design:
    """Read ``nsd_expdesign.mat`` (MATLAB 5) and convert it to 0-based indices."""
    import scipy.io

    if not path.is_file():
        raise MissingDataError(f"NSD experiment design {path} is missing; download "
                               f"{BUCKET}/nsddata/experiments/nsd/nsd_expdesign.mat")
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same problem for the user
        raise BrainbenchError(f"NSD experiment design {path} is not a readable MATLAB file ({exc})") from None
    for name in ("masterordering", "subjectim"):
        if name not in mat:
            raise BrainbenchError(f"NSD experiment design {path} has no '{name}' variable; "
                                  "is it the real nsd_expdesign.mat?")
    order = np.asarray(mat["masterordering"])
    subjectim = np.asarray(mat["subjectim"])
    if order.size != N_TRIALS:
        raise BrainbenchError(f"'masterordering' in {path} has shape {order.shape}, expected (1, {N_TRIALS})")
    if subjectim.shape != (len(SUBJECTS), N_COLUMNS):
        raise BrainbenchError(f"'subjectim' in {path} has shape {subjectim.shape}, "
                              f"expected ({len(SUBJECTS)}, {N_COLUMNS})")
    order = order.ravel().astype(np.int64)
    if order.min() < 1 or order.max() > N_COLUMNS:
        raise BrainbenchError(f"'masterordering' in {path} has values outside 1..{N_COLUMNS} (it is 1-based)")
    if subjectim.min() < 1:
        raise BrainbenchError(f"'subjectim' in {path} has values below 1 (nsdIds are 1-based there)")
    shared = np.asarray(mat["sharedix"]).ravel() if "sharedix" in mat else subjectim[0, :N_SHARED]
    return Design(order - 1, subjectim.astype(np.int64) - 1, shared.astype(np.int64) - 1)


# ---------------------------------------------------------------- label tables and volumes
def read_label_table(path: Path) -> dict[int, str]:
    """``index name [r g b a]`` lines → {index: name}; index 0 (Unknown) is left out."""
    if not path.is_file():
        raise MissingDataError(f"NSD label table {path} is missing")
    table = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            index = int(tokens[0])
            name = tokens[1]
        except (ValueError, IndexError):
            raise BrainbenchError(f"line {number} of label table {path} is not 'index name': {line!r}") from None
        if index > 0:
            table[index] = name
    if not table:
        raise BrainbenchError(f"label table {path} lists no labels")
    return table


def atlas_labels(layout: Layout, atlas: str, subject: str | None = None) -> dict[int, str]:
    """The label names of ``atlas``: from its table (fsaverage, then the subject's), else built in."""
    if atlas not in ATLASES:
        raise BrainbenchError(f"unknown NSD region set {atlas!r}; choose one of {', '.join(ATLASES)}")
    candidates = layout.label_tables(atlas, subject)
    for path in candidates:
        if path.is_file():
            return read_label_table(path)
    builtin = ATLASES[atlas][1]
    if builtin is None:
        raise layout.missing(candidates[0], "label table")
    return dict(builtin)


def read_label_volume(path: Path, layout: Layout | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A label volume (X, Y, Z) as int32 (NaN → −1) and its 4×4 voxel-to-mm affine."""
    import nibabel as nib

    if not path.is_file():
        raise (layout.missing(path, "region file") if layout else MissingDataError(f"NSD region file {path} is missing"))
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001
        raise BrainbenchError(f"NSD region file {path} is not a readable NIfTI volume ({exc})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise BrainbenchError(f"NSD region file {path} has shape {data.shape}, expected a 3-D volume")
    labels = np.where(np.isfinite(data), np.rint(np.nan_to_num(data, nan=-1)), -1).astype(np.int32)
    return labels, np.asarray(img.affine, dtype=np.float64)


def read_float_volume(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A 3-D float volume (e.g. ``ncsnr.nii.gz``) that must have ``shape``."""
    import nibabel as nib

    try:
        data = np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001
        raise BrainbenchError(f"{path} is not a readable NIfTI volume ({exc})") from None
    data = data.reshape(data.shape[:3]) if data.ndim == 4 and data.shape[3] == 1 else data
    if data.shape != tuple(shape):
        raise BrainbenchError(f"{path} has shape {data.shape} but the region volumes are {tuple(shape)}")
    return data


# ---------------------------------------------------------------- betas
def session_shape(path: Path) -> tuple[int, int, int, int]:
    """(X, Y, Z, trials) of a beta session, from its header only (the HDF5 is stored transposed)."""
    try:
        if path.name.endswith(".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                if "betas" not in f:
                    raise BrainbenchError(f"NSD beta file {path} has no 'betas' dataset")
                return tuple(reversed(f["betas"].shape))
        import nibabel as nib

        return tuple(nib.load(str(path)).shape)
    except BrainbenchError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise BrainbenchError(f"NSD beta file {path} cannot be read ({exc})") from None


def _check_session_shape(path: Path, shape: tuple[int, ...], volume_shape: tuple[int, ...]) -> None:
    if len(shape) != 4 or tuple(shape[:3]) != tuple(volume_shape):
        raise BrainbenchError(f"NSD beta file {path} has volume shape {tuple(shape)[:3]} but the region "
                              f"volumes are {tuple(volume_shape)}; are they from the same subject and space?")
    if shape[3] != TRIALS_PER_SESSION:
        raise BrainbenchError(f"NSD beta file {path} has {shape[3]} trials, expected {TRIALS_PER_SESSION}")


def read_session(path: Path, ijk: np.ndarray, volume_shape: tuple[int, int, int], chunk: int = 50) -> np.ndarray:
    """Betas of the voxels ``ijk`` (3, n) in one session, in percent signal change.

    Reads a NIfTI ``chunk`` trials at a time (≈ 70 MB for subj01 at 1.8 mm) and an HDF5 by the
    chunks of the wanted voxels only (see :func:`_read_hdf5`), so memory stays at one chunk plus
    the (750, n) result; never a whole session's volumes.

    Returns
    -------
    betas : float32 array of shape (750, n)
    """
    shape = session_shape(path)
    _check_session_shape(path, shape, volume_shape)
    try:
        raw = _read_hdf5(path, ijk) if path.name.endswith(".hdf5") else _read_nifti(path, ijk, chunk)
    except BrainbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt file
        raise BrainbenchError(f"NSD beta file {path} could not be read to the end ({exc})") from None
    return raw.astype(np.float32) / np.float32(BETA_SCALE)


def _read_nifti(path: Path, ijk: np.ndarray, chunk: int) -> np.ndarray:
    import nibabel as nib

    i, j, k = ijk
    out = np.empty((TRIALS_PER_SESSION, ijk.shape[1]), np.float32)
    opener = gzip.GzipFile if path.name.endswith(".gz") else None
    with open(path, "rb") as raw:
        stream = opener(fileobj=raw) if opener else raw
        holder = nib.FileHolder(fileobj=stream)
        img = nib.Nifti1Image.from_file_map({"header": holder, "image": holder})
        for t0 in range(0, TRIALS_PER_SESSION, chunk):  # forward only: cheap on a gzip stream
            block = np.asarray(img.dataobj[..., t0:t0 + chunk])
            out[t0:t0 + block.shape[3]] = block[i, j, k, :].T
    return out


def _read_hdf5(path: Path, ijk: np.ndarray) -> np.ndarray:
    """The (750, n) betas of voxels ``ijk``, reading as little of the file as its chunk layout allows.

    NSD's files are uncompressed with one chunk per voxel time series (chunks (750, 1, 1, 1)):
    each wanted chunk is read whole and alone (``read_direct_chunk``), nothing else is touched.
    Other per-voxel layouts (compressed) are read one row segment per (z, y) row of the region;
    any other layout one bounding box per z-slice.
    """
    import h5py

    i, j, k = ijk
    out = np.empty((TRIALS_PER_SESSION, ijk.shape[1]), np.float32)
    with h5py.File(path, "r") as f:
        betas = f["betas"]  # (750, Z, Y, X)
        chunks = betas.chunks
        per_voxel = chunks is not None and chunks[1:] == (1, 1, 1) and chunks[0] >= betas.shape[0]
        if per_voxel and not betas.compression and not betas.shuffle and not betas.fletcher32:
            dtype = betas.dtype
            for column, (x, y, z) in enumerate(zip(i.tolist(), j.tolist(), k.tolist())):
                _, raw = betas.id.read_direct_chunk((0, z, y, x))
                out[:, column] = np.frombuffer(raw, dtype=dtype, count=TRIALS_PER_SESSION)
        elif per_voxel:
            order = np.lexsort((i, j, k))
            rows = np.stack([k[order], j[order]])
            starts = np.flatnonzero(np.r_[True, (rows[:, 1:] != rows[:, :-1]).any(0)])
            for a, b in zip(starts, np.r_[starts[1:], len(order)]):
                sel = order[a:b]
                x0, x1 = i[sel].min(), i[sel].max() + 1
                block = betas[:, int(k[sel[0]]), int(j[sel[0]]), x0:x1]
                out[:, sel] = block[:, i[sel] - x0]
        else:
            for z in np.unique(k):
                sel = np.flatnonzero(k == z)
                y0, y1 = j[sel].min(), j[sel].max() + 1
                x0, x1 = i[sel].min(), i[sel].max() + 1
                block = betas[:, int(z), y0:y1, x0:x1]
                out[:, sel] = block[:, j[sel] - y0, i[sel] - x0]
    return out


# ---------------------------------------------------------------- validation

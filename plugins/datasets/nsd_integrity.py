"""Whether NSD's image file (``nsd_stimuli.hdf5``) can be read, checked without reading it all.

Both the ``nsd`` dataset (when it is built, before any activation is extracted) and
``bench data check nsd`` use :func:`check_stimuli_file`, so they find the same problems: a
file HDF5 cannot open (truncated, header overwritten), an ``imgBrick`` of the wrong type or
shape, fewer images than the nsdIds the design refers to, and images that cannot be read
(damaged chunks) among a sample spread over the file, its first and its last image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from brainbench.core.errors import BrainbenchError
from brainbench.core.failures import file_error

#: images read to check the file: spread evenly over the ids used, plus the file's last image
SAMPLES = 8
TODO = ("download it again from s3://natural-scenes-dataset/nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5 "
        "(run `bench data check nsd` for every problem)")
#: what h5py raises on a damaged file (OSError for most, the others for damaged metadata)
H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError)


def reading(path: Path, action: Callable, what: str = "NSD stimuli file"):
    """``action()``, with any h5py error turned into one sentence naming ``path``."""
    try:
        return action()
    except BrainbenchError:
        raise
    except H5_ERRORS as exc:
        raise file_error(path, what, exc, TODO) from None


def check_stimuli_file(path: Path, nsd_ids: Iterable[int] | None = None) -> int:
    """Raise a one-sentence :class:`BrainbenchError` if ``imgBrick`` in ``path`` is unusable; returns its length.

    ``nsd_ids``: 0-based nsdIds that must be present (default: only the file itself is checked).
    """
    import h5py

    ids = None if nsd_ids is None else np.asarray(list(nsd_ids), dtype=np.int64)

    def check() -> int:
        with h5py.File(path, "r") as f:
            if "imgBrick" not in f:
                raise BrainbenchError(f"NSD stimuli file {path} has no 'imgBrick' dataset; {TODO}")
            brick = f["imgBrick"]
            if brick.dtype != np.uint8 or brick.ndim != 4 or brick.shape[3] != 3:
                raise BrainbenchError(f"'imgBrick' in {path} is {brick.dtype} {brick.shape}, expected uint8 "
                                      f"(73000, 425, 425, 3); {TODO}")
            n = int(brick.shape[0])
            if ids is not None and len(ids) and ids.max() >= n:
                raise BrainbenchError(f"'imgBrick' in {path} holds {n} images but the design refers to nsdId "
                                      f"{int(ids.max()) + 1} (1-based); {TODO}")
            used = ids if ids is not None and len(ids) else np.arange(n)
            picks = np.unique(np.r_[used[np.linspace(0, len(used) - 1, SAMPLES).round().astype(int)], n - 1]) \
                if n else np.array([], np.int64)
            for index in picks:
                brick[int(index)]  # a damaged chunk fails here
            return n

    return reading(path, check)


def region_problems(layout, subjects: Iterable[str], atlas: str, regions: list[str], reference: str | None,
                    hemispheres: Iterable[str] = ("lh", "rh")) -> list[str]:
    """Requested regions without a voxel, and a missing reference region, per subject's label volume.

    The same facts ``bench run`` reports (a region left out, spatial refused), found from the
    label volumes alone. Unreadable volumes are left to :func:`~.nsd_files.check_tree`.
    """
    from brainbench.plugins.datasets.nsd_files import atlas_labels, read_label_volume
    from brainbench.plugins.datasets.nsd_options import split_region

    index = {name: value for value, name in atlas_labels(layout, atlas).items()}
    problems = []
    for subject in subjects:
        for hemisphere in dict.fromkeys([*(split_region(r)[0] for r in regions), *hemispheres]):
            path = layout.roi(subject, atlas, hemisphere)
            try:
                present = set(np.unique(read_label_volume(path, layout)[0]).tolist())
            except BrainbenchError:
                continue
            if not present - {0, -1}:
                continue  # no label at all: a broken volume, not a missing region (check_tree looks at its shape)
            mine = [r for r in regions if split_region(r)[0] == hemisphere]
            empty = [r for r in mine if index.get(split_region(r)[1]) not in present]
            if empty:
                problems.append(f"{path} has no voxel of the requested region{'s' * (len(empty) > 1)} "
                                f"{', '.join(empty)} ({subject}); {'they' if len(empty) > 1 else 'it'} would be "
                                "left out of every score")
            if reference and index.get(reference) not in present:
                problems.append(f"{path} has no voxel of {hemisphere}.{reference}, the region distances are measured "
                                f"from ({subject}); the spatial metric cannot be computed")
    return problems

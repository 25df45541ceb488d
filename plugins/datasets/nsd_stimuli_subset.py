"""Some of NSD's 73,000 images, copied out of the remote ``nsd_stimuli.hdf5`` without the other 36 GiB.

Local layout (read by the ``nsd`` plugin when the full ``nsd_stimuli.hdf5`` is absent):

    <root>/nsddata_stimuli/stimuli/nsd/nsd_stimuli_subset.hdf5
        imgBrick  (73000, 425, 425, 3) uint8, the full file's shape, chunked one image per chunk;
                  only the fetched images' chunks are stored (the others read as 0)
        fetched   (73000,) bool, True for every image present

So an image is read exactly as from the full file (``imgBrick[nsdId]``), and ``fetched``
says which are there. Fetching more subjects later adds their images to the same file.

Remote reads are ranged and chunk-aware: h5py opens the remote file through an s3fs file
object (small blocks, metadata only) to learn where each image's bytes lie — one chunk per
image, or a contiguous brick — then each image is one ranged GET of exactly its stored
bytes, written unchanged into the local chunk (``write_direct_chunk``), so a compressed
source stays compressed and nothing is decoded. Other chunk shapes fall back to reading
through h5py over the same file object.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.fetch import Bucket, s3_call

SUBSET = "nsddata_stimuli/stimuli/nsd/nsd_stimuli_subset.hdf5"
FULL = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
#: images fetched between two flushes of the local file (the unit of resumption)
BATCH = 64
#: s3fs block size for the HDF5 metadata reads (superblock, object headers, chunk index)
META_BLOCK = 4 << 10
FILTERS = ("compression", "compression_opts", "shuffle", "fletcher32", "scaleoffset")


def subset_path(root: Path) -> Path:
    return Path(root) / SUBSET


def fetched_ids(path: Path) -> np.ndarray:
    """Sorted nsdIds present in a local subset file (empty when it is absent or unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return np.flatnonzero(f["fetched"][:])
    except Exception:  # noqa: BLE001 - absent or damaged: nothing usable in it
        return np.zeros(0, np.int64)


def stimuli_file(root: Path, nsd_ids: np.ndarray, for_whom: str = "") -> Path:
    """The file to read images from: the full ``nsd_stimuli.hdf5``, else a subset holding every id.

    Raises
    ------
    MissingDataError
        Neither file, or a subset that lacks some of ``nsd_ids`` (how many, and the fetch to run).
    """
    full, subset = Path(root) / FULL, subset_path(root)
    if full.is_file() or not subset.is_file():
        return full
    have = fetched_ids(subset)
    lacking = np.setdiff1d(nsd_ids, have)
    if len(lacking):
        raise MissingDataError(f"{subset} holds {len(have):,} NSD images but {len(lacking):,} of the "
                               f"{len(nsd_ids):,} images of {for_whom or 'the subjects asked for'} are not among "
                               f"them (first nsdId {lacking[0]}); fetch them with `bench data fetch nsd --subjects "
                               "... --sessions ...` for those subjects, or get the full nsd_stimuli.hdf5")
    return subset


class RemoteBrick:
    """``imgBrick`` of a remote ``nsd_stimuli.hdf5``, opened for metadata through s3fs; see the module docstring."""

    def __init__(self, bucket: Bucket, key: str = FULL):
        import h5py

        self.bucket, self.key = bucket, key
        self._raw = s3_call(lambda: bucket.filesystem().open(f"{bucket.name}/{key}", "rb", block_size=META_BLOCK,
                                                              cache_type="blockcache"), bucket, key)
        try:
            self._file = h5py.File(self._raw, "r")
            self.brick = self._file["imgBrick"]
        except Exception as exc:  # noqa: BLE001
            self._raw.close()
            raise BrainbenchError(f"{bucket.url(key)} is not an HDF5 file with an 'imgBrick' dataset ({exc})") from None
        self.shape, self.dtype = self.brick.shape, self.brick.dtype
        if self.dtype != np.uint8 or len(self.shape) != 4 or self.shape[3] != 3:
            raise BrainbenchError(f"'imgBrick' in {bucket.url(key)} is {self.dtype} {self.shape}, "
                                  "expected uint8 (73000, 425, 425, 3)")
        self.image_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        chunks = self.brick.chunks
        if chunks is None:
            self.mode, self._offset = "contiguous", self.brick.id.get_offset()
        elif tuple(chunks) == (1, *self.shape[1:]):
            self.mode = "chunk"
        else:
            self.mode = "h5py"
        self.filters = {name: getattr(self.brick, name) for name in FILTERS}
        self.etag = None

    def ranges(self, ids: np.ndarray) -> list[tuple[int, int, int]]:
        """(byte offset, stored size, filter mask) of each image's bytes in the remote file."""
        if self.mode == "contiguous":
            return [(self._offset + int(i) * self.image_bytes, self.image_bytes, 0) for i in ids]
        if self.mode == "h5py":
            return [(-1, self.image_bytes, 0) for _ in ids]
        out = []
        for i in ids:
            info = self.brick.id.get_chunk_info_by_coord((int(i), 0, 0, 0))
            if info.byte_offset is None:
                raise BrainbenchError(f"image {i} of {self.bucket.url(self.key)} was never written (no stored chunk)")
            out.append((int(info.byte_offset), int(info.size), int(info.filter_mask)))
        return out

    def local_filters(self) -> dict:
        """Filters the local copy needs so that the remote chunks can be stored unchanged."""
        return self.filters if self.mode == "chunk" else {name: None for name in FILTERS} | {"shuffle": False,
                                                                                             "fletcher32": False}

    def close(self) -> None:
        self._file.close()
        self._raw.close()


def _open_local(path: Path, remote: RemoteBrick, say: Callable[[str], None]):
    """The local subset file in append mode, created (or re-created when damaged) to match ``remote``."""
    import h5py

    if path.is_file():
        try:
            f = h5py.File(path, "a")
        except Exception:  # noqa: BLE001 - a write was cut off: the file cannot be trusted
            f = None
        if f is not None and {"imgBrick", "fetched"} <= set(f):
            if f["imgBrick"].shape != remote.shape or f["fetched"].shape != remote.shape[:1]:
                f.close()
                raise BrainbenchError(f"{path} has an imgBrick of shape {remote.shape} unlike "
                                      f"{remote.bucket.url(remote.key)}; move it away and fetch again")
            return f
        if f is not None:
            f.close()
        say(f"{path} is damaged (an earlier fetch was interrupted while writing it); starting it again")
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    f = h5py.File(path, "w")
    f.create_dataset("imgBrick", shape=remote.shape, dtype=remote.dtype, chunks=(1, *remote.shape[1:]),
                     **{k: v for k, v in remote.local_filters().items() if v not in (None, False)})
    f.create_dataset("fetched", shape=remote.shape[:1], dtype=bool)
    f.attrs["source"] = remote.bucket.url(remote.key)
    return f


class ImageFetch:
    """Copy the images ``nsd_ids`` that a local subset lacks; a :class:`~brainbench.core.fetch.Step`'s work."""

    def __init__(self, bucket: Bucket, root: Path, nsd_ids: np.ndarray, workers: int = 8,
                 say: Callable[[str], None] = print):
        self.bucket, self.path, self.workers, self.say = bucket, subset_path(root), workers, say
        self.remote = RemoteBrick(bucket)
        if len(nsd_ids) and int(np.max(nsd_ids)) >= self.remote.shape[0]:
            raise BrainbenchError(f"nsdId {int(np.max(nsd_ids))} is beyond the {self.remote.shape[0]} images of "
                                  f"{bucket.url(FULL)}")
        self.wanted = np.unique(np.asarray(nsd_ids, dtype=np.int64))
        self.todo = np.setdiff1d(self.wanted, fetched_ids(self.path))
        self._ranges: list | None = None

    @property
    def ranges(self) -> list[tuple[int, int, int]]:
        """Where each image to fetch lies remotely (reads the chunk index once, when first needed)."""
        if self._ranges is None:
            self._ranges = self.remote.ranges(self.todo)
        return self._ranges

    @property
    def size(self) -> int:
        """Bytes the images still to fetch occupy in the remote file.

        Unfiltered (uncompressed) images occupy exactly their size, so the chunk index is only
        read for a compressed source.
        """
        if not any(v for v in self.remote.filters.values()):
            return len(self.todo) * self.remote.image_bytes
        return sum(n for _, n, _ in self.ranges)

    def describe(self) -> str:
        done = len(self.wanted) - len(self.todo)
        return (f"{len(self.todo):,} of the {len(self.wanted):,} images these subjects saw, read from "
                f"{self.bucket.url(FULL)} ({self.remote.mode} layout, ranged reads"
                f"{f'; {done:,} already here' if done else ''}) into {self.path}")

    def _get(self, client, start: int, length: int) -> bytes:
        ranged = {"Bucket": self.bucket.name, "Key": FULL, "Range": f"bytes={start}-{start + length - 1}"}
        return s3_call(lambda: client.get_object(**ranged)["Body"].read(), self.bucket, FULL)

    def run(self, progress: Callable[[int], None]) -> int:
        """Fetch, write and flush ``BATCH`` images at a time (an interruption loses one batch at most)."""
        received = 0
        if not len(self.todo):
            return 0
        f = _open_local(self.path, self.remote, self.say)
        try:
            local = f["imgBrick"]
            direct = self.remote.mode != "h5py" and all(
                getattr(local, k) == v for k, v in self.remote.local_filters().items())
            client = self.bucket.client(self.workers)
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for start in range(0, len(self.todo), BATCH):
                    ids = self.todo[start:start + BATCH]
                    spans = self.ranges[start:start + BATCH]
                    if direct:
                        blobs = list(pool.map(lambda s: self._get(client, s[0], s[1]), spans))
                        for i, blob, (_, _, mask) in zip(ids, blobs, spans):
                            local.id.write_direct_chunk((int(i), 0, 0, 0), blob, filter_mask=mask)
                            progress(len(blob))
                            received += len(blob)
                    else:  # decode through h5py (other chunk shapes, or a local copy with other filters)
                        local[ids.tolist()] = self.remote.brick[ids.tolist()]
                        progress(len(ids) * self.remote.image_bytes)
                        received += len(ids) * self.remote.image_bytes
                    f["fetched"][ids.tolist()] = True
                    f.flush()
        finally:
            f.close()
            self.remote.close()
        return received


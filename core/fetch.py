"""Downloading a dataset's files from a public S3 bucket: anonymous, parallel, resumable, checked.

The per-dataset key lists live next to each dataset plugin (``plugins/datasets/*_fetch.py``);
this module only moves bytes. What it guarantees:

- **Anonymous**: requests are unsigned (botocore ``UNSIGNED``); no credentials are read.
  ``endpoint_url`` (``--endpoint-url`` / ``BRAINBENCH_S3_ENDPOINT``) points it at a mirror or
  a local test server.
- **Resumable**: a file is written to ``<name>.part`` with ranged GETs (``Range: bytes=N-``,
  ``If-Match: <ETag>`` so that a changed object restarts from 0), renamed when complete; a
  complete file (same size as the listed object) is skipped, so a second fetch of the same
  request downloads nothing.
- **Checked**: a finished ``.part`` must have the listed size and, where the ETag is an MD5
  (single-part uploads, and multipart ETags whose part size can be inferred), the same digest;
  a mismatch (a corrupted ``.part``) deletes it and fetches the file again from the start.
- **Disk space** is checked before the first byte is written.

Progress is one tqdm bar in bytes (rate and ETA) over every file fetched in parallel.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .errors import BrainbenchError, MissingDataError

ENDPOINT_ENV = "BRAINBENCH_S3_ENDPOINT"
#: bytes per read from a response body (the unit of progress, and the most an interruption loses)
CHUNK = 1 << 16
#: free space kept on top of what a fetch needs
DISK_MARGIN = 64 << 20
#: multipart upload part sizes tried when checking a multipart ETag (MiB): the AWS CLI's and common tools'
PART_SIZES_MIB = (8, 16, 5, 15, 32, 50, 64, 100, 128, 256, 512, 1024)


def endpoint_url(option: str | None = None) -> str | None:
    """The S3 endpoint to use: the option, else ``BRAINBENCH_S3_ENDPOINT``, else AWS (None)."""
    return option or os.environ.get(ENDPOINT_ENV) or None


@dataclass(frozen=True)
class Bucket:
    """A public bucket: its name, AWS region and (for mirrors and tests) endpoint URL."""

    name: str
    region: str
    endpoint: str | None = None

    def url(self, key: str) -> str:
        return f"s3://{self.name}/{key}"

    def client(self, workers: int = 8):
        """A boto3 S3 client that signs nothing (anonymous access to public objects)."""
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config as BotoConfig

        config = BotoConfig(signature_version=UNSIGNED, max_pool_connections=max(10, workers + 2),
                            retries={"max_attempts": 5, "mode": "standard"})
        return boto3.session.Session().client("s3", region_name=self.region, endpoint_url=self.endpoint,
                                              config=config)

    def filesystem(self):
        """An anonymous s3fs filesystem on the same endpoint (for ranged reads through h5py)."""
        import s3fs

        kwargs = {"region_name": self.region}
        if self.endpoint:
            kwargs["endpoint_url"] = self.endpoint
        return s3fs.S3FileSystem(anon=True, client_kwargs=kwargs, skip_instance_cache=True)


@dataclass(frozen=True)
class RemoteFile:
    """One object to fetch: its key, size in bytes, ETag, and path below the local root."""

    key: str
    size: int
    etag: str
    dest: str


@dataclass
class Step:
    """Work other than whole files (e.g. reading some images out of a remote HDF5 file).

    ``size`` is the bytes it will transfer; ``run(progress)`` does it, calling ``progress(n)``
    for every n bytes received, and returns the bytes transferred.
    """

    description: str
    size: int
    run: Callable[[Callable[[int], None]], int]


@dataclass
class Plan:
    """Everything one fetch will transfer, known before anything is written."""

    bucket: Bucket
    root: Path
    files: list[RemoteFile] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: key → content already read into memory while planning (written out instead of fetched again)
    preloaded: dict[str, bytes] = field(default_factory=dict)

    def todo(self) -> list[tuple[RemoteFile, int]]:
        """Files not yet complete locally, with the bytes already in their ``.part``."""
        out = []
        for remote in self.files:
            dest = self.root / remote.dest
            if dest.is_file() and dest.stat().st_size == remote.size:
                continue
            part = part_path(dest)
            have = part.stat().st_size if part.is_file() else 0
            out.append((remote, have if have <= remote.size else 0))
        return out

    def bytes_to_transfer(self) -> int:
        """Bytes this fetch will download (assuming no ``.part`` turns out corrupted)."""
        return sum(r.size - have for r, have in self.todo()) + sum(s.size for s in self.steps)

    def listing(self) -> list[str]:
        """One line per file and step: size, key, and whether it is done, partial or to fetch."""
        todo = dict((r.key, have) for r, have in self.todo())
        lines = []
        for remote in self.files:
            if remote.key not in todo:
                state = "complete, skipped"
            elif todo[remote.key]:
                state = f"resumes at {human(todo[remote.key])}"
            else:
                state = "to fetch"
            lines.append(f"{human(remote.size):>10}  {self.bucket.url(remote.key)}  ({state})")
        lines += [f"{human(step.size):>10}  {step.description}" for step in self.steps]
        return lines


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def human(n: float) -> str:
    """Bytes as B, KiB, MiB, GiB or TiB with 3 significant digits."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def _client_error(exc, bucket: Bucket, key: str) -> BrainbenchError:
    """One sentence for a failed S3 request."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("404", "NoSuchKey", "NotFound"):
        return MissingDataError(f"{bucket.url(key)} does not exist in the bucket")
    if code in ("NoSuchBucket",):
        return MissingDataError(f"bucket {bucket.name!r} does not exist at "
                                f"{bucket.endpoint or 'AWS'}; check --endpoint-url / {ENDPOINT_ENV}")
    return BrainbenchError(f"S3 request for {bucket.url(key)} failed ({code or type(exc).__name__}: {exc})")


def s3_call(call, bucket: Bucket, key: str):
    """Run one S3 request; any failure becomes a one-sentence :class:`BrainbenchError`."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call()
    except ClientError as exc:
        raise _client_error(exc, bucket, key) from None
    except BotoCoreError as exc:
        raise BrainbenchError(f"cannot reach {bucket.endpoint or 'S3'} for {bucket.url(key)} ({exc})") from None
    except FileNotFoundError:  # s3fs' way of saying 404
        raise MissingDataError(f"{bucket.url(key)} does not exist in the bucket") from None
    except OSError as exc:  # s3fs wraps other failures (permissions, connection) as OSError
        raise BrainbenchError(f"S3 request for {bucket.url(key)} failed ({type(exc).__name__}: {exc})") from None


def head(client, bucket: Bucket, key: str, dest: str | None = None) -> RemoteFile:
    """The listed size and ETag of one object; raises :class:`MissingDataError` when absent."""
    meta = s3_call(lambda: client.head_object(Bucket=bucket.name, Key=key), bucket, key)
    return RemoteFile(key, int(meta["ContentLength"]), meta["ETag"].strip('"'), dest or key)


def list_prefix(client, bucket: Bucket, prefix: str) -> dict[str, RemoteFile]:
    """Every object under ``prefix`` (a folder, ending in ``/``): key → file (dest = key)."""
    out = {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket.name, Prefix=prefix)
    for page in s3_call(lambda: list(pages), bucket, prefix):
        for item in page.get("Contents", []):
            out[item["Key"]] = RemoteFile(item["Key"], int(item["Size"]), item["ETag"].strip('"'), item["Key"])
    return out


def read_object(client, bucket: Bucket, key: str) -> bytes:
    """A small object's whole content, in memory (nothing written)."""
    body = s3_call(lambda: client.get_object(Bucket=bucket.name, Key=key)["Body"], bucket, key)
    return body.read()


def check_disk(root: Path, needed: int) -> None:
    """Raise before starting when the file system of ``root`` has less than ``needed`` bytes free."""
    existing = Path(root).absolute()
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if needed + DISK_MARGIN > free:
        raise BrainbenchError(f"this fetch needs {human(needed)} but only {human(free)} are free on the disk of "
                              f"{root}; free some space or fetch less (fewer subjects, sessions or parts)")


# ------------------------------------------------------------------ integrity
def md5_matches(path: Path, etag: str, size: int, part_size: int | None = None) -> bool | None:
    """Whether ``path``'s content has the S3 ETag ``etag``: True, False, or None when undecidable.

    A single-part upload's ETag is the MD5 of the content; a multipart one is the MD5 of the
    parts' MD5s followed by ``-<parts>``. With ``part_size`` (from ``HEAD ?partNumber=1``) the
    answer is exact; without it the usual part sizes are tried, and no match is "undecidable".
    """
    etag = etag.strip('"')
    if "-" not in etag:
        if len(etag) != 32:
            return None
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK * 128), b""):
                digest.update(block)
        return digest.hexdigest() == etag
    head_, _, count = etag.partition("-")
    try:
        parts = int(count)
    except ValueError:
        return None
    if part_size:
        fitting = [part_size]
    else:
        guess = -(-size // parts)
        candidates = [m << 20 for m in PART_SIZES_MIB] + [-(-guess // (1 << 20)) << 20, guess]
        fitting = [p for p in dict.fromkeys(candidates) if p > 0 and -(-size // p) == parts]
    for size_tried in fitting:
        outer = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(size_tried), b""):
                outer.update(hashlib.md5(block, usedforsecurity=False).digest())
        if outer.hexdigest() == head_:
            return True
    return False if part_size else None


def first_part_size(client, bucket: Bucket, key: str) -> int | None:
    """The size of part 1 of a multipart object (``HEAD`` with ``PartNumber=1``); None if unavailable."""
    try:
        return int(client.head_object(Bucket=bucket.name, Key=key, PartNumber=1)["ContentLength"])
    except Exception:  # noqa: BLE001 - a server without part lookups: fall back to guessing
        return None


def verify(path: Path, remote: RemoteFile, part_size: int | None = None) -> str | None:
    """Why ``path`` is not a faithful copy of ``remote`` (None: it is, as far as size and ETag tell)."""
    size = path.stat().st_size
    if size != remote.size:
        return f"{size} bytes instead of {remote.size}"
    if md5_matches(path, remote.etag, remote.size, part_size) is False:
        return f"its MD5 differs from the ETag {remote.etag}"
    return None


# ------------------------------------------------------------------ transfer
class Progress:
    """A thread-safe byte counter with one tqdm bar (rate, ETA), shared by parallel downloads."""

    def __init__(self, total: int, enabled: bool = True, desc: str = "fetch"):
        from tqdm import tqdm

        self.bytes = 0
        self._lock = threading.Lock()
        self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True)

    def __call__(self, n: int) -> None:
        with self._lock:
            self.bytes += n
            self.bar.update(n)

    def write(self, message: str) -> None:
        self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _stream(client, bucket: Bucket, remote: RemoteFile, part: Path, start: int, progress: Progress,
            stop: threading.Event) -> None:
    """Append bytes ``start``… of ``remote`` to ``part`` (a ranged GET pinned to the listed ETag)."""
    kwargs = {"Bucket": bucket.name, "Key": remote.key, "IfMatch": f'"{remote.etag}"'}
    if start:
        kwargs["Range"] = f"bytes={start}-"
    body = s3_call(lambda: client.get_object(**kwargs)["Body"], bucket, remote.key)
    with open(part, "ab") as out:
        for block in body.iter_chunks(CHUNK):
            if stop.is_set():
                body.close()
                raise KeyboardInterrupt
            out.write(block)
            progress(len(block))


def fetch_file(client, bucket: Bucket, remote: RemoteFile, root: Path, progress: Progress,
               stop: threading.Event | None = None, content: bytes | None = None) -> None:
    """Download one object to ``root / remote.dest`` through its ``.part`` file (see the module docstring)."""
    stop = stop or threading.Event()
    dest = root / remote.dest
    if dest.is_file() and dest.stat().st_size == remote.size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    if content is not None and len(content) == remote.size:  # read while planning: write it, then check it
        part.write_bytes(content)
        progress(len(content))
    for attempt in range(2):
        have = part.stat().st_size if part.is_file() else 0
        if have > remote.size:
            part.unlink()
            have = 0
        try:
            if have < remote.size:
                _stream(client, bucket, remote, part, have, progress, stop)
        except BrainbenchError as exc:
            if "PreconditionFailed" not in str(exc):
                raise
            part.unlink(missing_ok=True)  # the object changed since it was listed: start again
            continue
        part_size = first_part_size(client, bucket, remote.key) if "-" in remote.etag else None
        problem = verify(part, remote, part_size) if part.is_file() else "nothing was received"
        if problem is None:
            os.replace(part, dest)
            return
        progress.write(f"{remote.dest}: the downloaded copy is corrupt ({problem}); fetching it again")
        part.unlink(missing_ok=True)
    raise BrainbenchError(f"{bucket.url(remote.key)} arrived corrupt twice ({problem}); check the connection "
                          "or the mirror, then run the fetch again")


def run_plan(plan: Plan, workers: int = 4, progress: bool = True) -> int:
    """Fetch every incomplete file (``workers`` at a time), then run the plan's steps; returns bytes received.

    Raises :class:`BrainbenchError` on a missing object or a corrupt download, and before anything
    is written when the disk is too small. Interrupted (Ctrl-C), it leaves the ``.part`` files for
    the next run to resume.
    """
    needed = plan.bytes_to_transfer()
    check_disk(plan.root, needed)
    todo = plan.todo()
    bar = Progress(needed, enabled=progress)
    stop = threading.Event()
    try:
        if todo:
            client = plan.bucket.client(workers)
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                futures = [pool.submit(fetch_file, client, plan.bucket, remote, plan.root, bar, stop,
                                       plan.preloaded.get(remote.key)) for remote, _ in todo]
                try:
                    for future in futures:
                        future.result()
                except BaseException:
                    stop.set()
                    raise
        for step in plan.steps:
            step.run(bar)
    finally:
        bar.close()
    return bar.bytes


def relative_dest(keys: Iterable[RemoteFile], strip: str) -> list[RemoteFile]:
    """The same files with ``strip`` (a key prefix such as ``ds004212/``) removed from their local paths."""
    return [RemoteFile(r.key, r.size, r.etag, r.key[len(strip):] if r.key.startswith(strip) else r.key)
            for r in keys]

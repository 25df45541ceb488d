"""``bench data fetch`` against a real local S3 server (moto, 127.0.0.1) seeded with miniature
NSD and THINGS-MEG trees in the buckets' real key layouts (tests/s3_fixture.py)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from brainbench.cli import main
from nsd_fixture import build_mini_nsd, image_id
from s3_fixture import CountingMotoServer, seed
from things_meg_fixture import build_things_meg

NSD_BUCKET, NSD_REGION = "natural-scenes-dataset", "us-east-2"
MEG_BUCKET = "openneuro.org"
STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
SUBSET = "nsddata_stimuli/stimuli/nsd/nsd_stimuli_subset.hdf5"
BETAS = "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def server():
    srv = CountingMotoServer()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def nsd_source(server, tmp_path_factory):
    tree = build_mini_nsd(tmp_path_factory.mktemp("nsd-source"))
    seed(server, NSD_BUCKET, NSD_REGION, tree.root)
    return tree


@pytest.fixture(scope="module")
def meg_source(server, tmp_path_factory):
    mini = build_things_meg(tmp_path_factory.mktemp("meg-source"), subjects=("P1", "P2"), n_channels=32,
                            split_size="2MB")
    seed(server, MEG_BUCKET, "us-east-1", mini.root, prefix="ds004212/")
    return mini


@pytest.fixture
def endpoint(server, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_S3_ENDPOINT", server.url)
    server.reset()
    return server


def bench(*args) -> "click.testing.Result":
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def number(pattern: str, text: str) -> int:
    return int(re.search(pattern, text).group(1).replace(",", ""))


def nsd_fetch(root, *extra):
    return bench("data", "fetch", "nsd", "--subjects", "1", "--sessions", "1-2", "--to", root, "-q", *extra)


def object_bytes(server, bucket) -> int:
    """Body bytes of object GETs (listings are GETs of the bucket itself, key '')."""
    return sum(r.sent for r in server.log if r.method == "GET" and r.bucket == bucket and r.key)


# ------------------------------------------------------------------ NSD end to end
@pytest.mark.slow
def test_fetch_nsd_then_check_and_run(nsd_source, endpoint, tmp_path):
    root = tmp_path / "nsd"
    dry = nsd_fetch(root, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert not root.exists()  # a dry run writes nothing
    planned = number(r"total: ([\d,]+) bytes", dry.output)
    assert f"s3://{NSD_BUCKET}/{BETAS}/betas_session02.hdf5" in dry.output
    assert "session03" not in dry.output and "subj02" not in dry.output
    endpoint.reset()

    refused = nsd_fetch(root)
    assert refused.exit_code != 0 and "--agree-nsd-terms" in refused.output and not root.exists()
    fetched = nsd_fetch(root, "--agree-nsd-terms")
    assert fetched.exit_code == 0, fetched.output
    transferred = number(r"transferred ([\d,]+) bytes", fetched.output)
    assert transferred == planned
    # what crossed the wire: each file once, exactly its size; the images, one ranged GET each
    files = [p for p in root.rglob("*") if p.is_file() and p.name != Path(SUBSET).name]
    for path in files:
        key = path.relative_to(root).as_posix()
        assert endpoint.sent(NSD_BUCKET, key) == path.stat().st_size == (nsd_source.root / key).stat().st_size
    wanted = np.unique(nsd_source.trial_ids("subj01", 2))  # the images subj01 saw in sessions 1-2
    image_gets = [r for r in endpoint.requests(NSD_BUCKET, STIMULI) if r.sent == 16 * 16 * 3]
    assert len(image_gets) == len(wanted) == 550
    assert sum(p.stat().st_size for p in files) + len(wanted) * 768 == transferred
    assert endpoint.sent(NSD_BUCKET, STIMULI) < 0.8 * (nsd_source.root / STIMULI).stat().st_size
    with h5py.File(root / SUBSET, "r") as f:
        present = np.flatnonzero(f["fetched"][:])
        np.testing.assert_array_equal(present, wanted)
        assert [image_id(f["imgBrick"][i]) for i in present[:: 50]] == list(present[:: 50])
    own_subj02 = np.setdiff1d(nsd_source.trial_ids("subj02", 2), nsd_source.subjectim[0] - 1)
    assert not np.isin(own_subj02, present).any()
    assert "nsd_terms_agreed = true" in Path(os.environ["BRAINBENCH_CONFIG"]).read_text()

    endpoint.reset()
    again = nsd_fetch(root)  # agreement remembered; everything complete
    assert again.exit_code == 0 and "nothing to transfer" in again.output
    assert object_bytes(endpoint, NSD_BUCKET) == 0

    check = bench("data", "check", "nsd", "--nsd-root", root)
    assert check.exit_code == 0, check.output
    assert "subj01: sessions 1–2 of 40 on disk; 1,500 trials, 550 images" in check.output
    assert "all files present and well-formed" in check.output

    run = bench("run", "-m", "dinov3-tiny@init", "-d", "nsd", "-x", "spatial", "--nsd-root", root,
                "--set", "dataset.subjects=subj01", "--set", "dataset.regions=V1,MT,45", "--set", "metric.folds=2",
                "--format", "json")
    assert run.exit_code == 0, run.output
    assert "subj01: sessions 1–2 of 40 on disk" in run.output
    assert '"metric": "spatial"' in run.output and '"subject": "subj01"' in run.output


@pytest.mark.slow
def test_killed_fetch_resumes_and_corrupt_part_is_refetched(nsd_source, endpoint, tmp_path):
    root = tmp_path / "nsd"
    slow = f"{BETAS}/betas_session02.hdf5"
    endpoint.slow[slow] = 0.05  # 64 KiB per 50 ms: the fetch can be killed in the middle of this file
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]),
           "BRAINBENCH_NSD_TERMS_AGREED": "true"}
    command = [sys.executable, "-m", "brainbench.cli", "data", "fetch", "nsd", "--subjects", "1,2", "--sessions",
               "1-2", "--to", str(root), "-q"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    part = root / f"{slow}.part"
    try:
        deadline = time.monotonic() + 120
        while not (part.is_file() and part.stat().st_size > 256 << 10):
            assert process.poll() is None, process.stdout.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
        endpoint.slow.clear()
    size = (nsd_source.root / slow).stat().st_size
    assert 0 < part.stat().st_size < size and not (root / slow).exists()

    resumed = bench("data", "fetch", "nsd", "--subjects", "1,2", "--sessions", "1-2", "--to", root, "-q",
                    "--agree-nsd-terms")
    assert resumed.exit_code == 0, resumed.output
    ranged = [r for r in endpoint.requests(NSD_BUCKET, slow) if r.range]
    assert ranged and ranged[-1].range.startswith("bytes=") and not ranged[-1].range.startswith("bytes=0-")
    assert (root / slow).read_bytes() == (nsd_source.root / slow).read_bytes()
    tree = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    # in all: the killed run's bytes (what reached the .part, and what was in flight when it died), the
    # resumed run's, and the images' HDF5 index reads
    assert endpoint.sent(NSD_BUCKET) < 1.1 * tree

    # a corrupted .part: resumed, found not to match the ETag, fetched again from the start
    target = root / f"{BETAS}/betas_session01.hdf5"
    original = target.read_bytes()
    target.unlink()
    Path(f"{target}.part").write_bytes(b"\xff" * (len(original) // 2))
    endpoint.reset()
    repaired = nsd_fetch(root)
    assert repaired.exit_code == 0, repaired.output
    assert "corrupt" in repaired.output
    assert target.read_bytes() == original and not Path(f"{target}.part").exists()
    assert [r.range for r in endpoint.requests(NSD_BUCKET, target.relative_to(root).as_posix())] == \
        [f"bytes={len(original) // 2}-", None]


def test_fetch_checks_disk_space_first(nsd_source, endpoint, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 20, 10 << 20, 1 << 20))
    result = bench("data", "fetch", "nsd", "--subjects", "1", "--sessions", "1", "--to", tmp_path / "nsd",
                   "--agree-nsd-terms", "-q")
    assert result.exit_code != 0 and "only 1 MiB are free" in result.output
    assert not any(p.is_file() for p in (tmp_path / "nsd").rglob("*"))


def test_fetch_options_are_checked_before_any_request(endpoint, tmp_path):
    for args, message in ((["--subjects", "9"], "'9' is not an NSD subject"),
                          (["--subjects", "1", "--sessions", "2-1"], "'2-1' is not a session number or range"),
                          (["--subjects", "1", "--what", "+maps"], "unknown part 'maps'")):
        result = bench("data", "fetch", "nsd", *args, "--to", tmp_path, "--dry-run")
        assert result.exit_code != 0 and message in result.output
    assert endpoint.log == []


# ------------------------------------------------------------------ THINGS-MEG
def test_fetch_things_meg_participant_with_split_epochs(meg_source, endpoint, tmp_path):
    from brainbench.plugins.datasets.things_meg import ThingsMEG

    root = tmp_path / "ds004212"
    source_parts = sorted(p.name for p in (meg_source.root / "derivatives/preprocessed").glob("preprocessed_P1-*"))
    assert len(source_parts) > 1  # MNE split the epochs
    dry = bench("data", "fetch", "things-meg", "--participants", "P1", "--to", root, "--dry-run")
    fetched = bench("data", "fetch", "things-meg", "--participants", "P1", "--to", root, "-q")
    assert fetched.exit_code == 0, fetched.output
    assert number(r"total: ([\d,]+) bytes", dry.output) == number(r"transferred ([\d,]+) bytes", fetched.output)
    assert sorted(p.name for p in (root / "derivatives/preprocessed").iterdir()) == source_parts
    assert (root / "sourcedata/sample_attributes_P1.csv").is_file()
    assert not list(root.rglob("*P2*"))
    dataset = ThingsMEG(root=str(root), images_root=str(meg_source.images_root))
    assert dataset.subjects == ["P1"]
    np.testing.assert_allclose(dataset.responses("P1").data.shape[0], 30)


def test_things_images_from_a_zip(meg_source, tmp_path):
    from brainbench.plugins.datasets.things_meg import resolve_image

    missing = bench("data", "fetch", "things-images", "--to", tmp_path)
    assert missing.exit_code != 0 and "https://osf.io/jum2f/" in missing.output
    archive = tmp_path / "images_THINGS.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in meg_source.images_root.rglob("*.jpg"):
            zf.write(path, f"object_images/{path.relative_to(meg_source.images_root)}")
    done = bench("data", "fetch", "things-images", "--zip", archive, "--to", tmp_path / "THINGS")
    assert done.exit_code == 0, done.output
    assert "unpacked 30 images" in done.output
    assert resolve_image(tmp_path / "THINGS" / "object_images", "images_meg/zebra/zebra_01b.jpg") is not None
    nested = tmp_path / "nested.zip"  # an archive of archives
    with zipfile.ZipFile(nested, "w") as zf:
        zf.write(archive, "object_images_A-Z.zip")
    inner = bench("data", "fetch", "things-images", "--zip", nested, "--to", tmp_path / "THINGS2")
    assert inner.exit_code == 0 and "unpacked 30 images" in inner.output, inner.output
    assert not list((tmp_path / "THINGS2").glob("*.zip"))
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:-200])
    bad = bench("data", "fetch", "things-images", "--zip", broken, "--to", tmp_path / "other")
    assert bad.exit_code != 0 and "broken.zip" in bad.output


# ------------------------------------------------------------------ remote image layouts
@pytest.mark.parametrize("layout", ["contiguous", "gzip", "blocks"])
def test_images_are_copied_from_every_hdf5_layout(server, layout, tmp_path, monkeypatch):
    """Contiguous and compressed one-image chunks are copied byte for byte; other chunk shapes through h5py."""
    from brainbench.core.fetch import Bucket
    from brainbench.plugins.datasets.nsd_stimuli_subset import ImageFetch, fetched_ids, stimuli_file

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(200, 8, 8, 3), dtype=np.uint8)
    images[:, :4] = 7  # compressible
    source = tmp_path / "source"
    (source / STIMULI).parent.mkdir(parents=True)
    options = {"contiguous": {}, "gzip": {"chunks": (1, 8, 8, 3), "compression": "gzip", "shuffle": True},
               "blocks": {"chunks": (10, 8, 8, 3)}}[layout]
    with h5py.File(source / STIMULI, "w") as f:
        f.create_dataset("imgBrick", data=images, **options)
    name = f"nsd-{layout}"
    seed(server, name, NSD_REGION, source)
    server.reset()
    root = tmp_path / "nsd"
    wanted = np.array([3, 50, 51, 199])
    fetch = ImageFetch(Bucket(name, NSD_REGION, server.url), root, wanted, workers=2, say=lambda m: None)
    assert fetch.remote.mode == {"contiguous": "contiguous", "gzip": "chunk", "blocks": "h5py"}[layout]
    planned = fetch.size
    received = fetch.run(lambda n: None)
    assert received == planned
    if layout != "blocks":  # one ranged GET of exactly each image's stored bytes
        gets = {(r.range, r.sent) for r in server.requests(name, STIMULI)}
        assert all((f"bytes={o}-{o + n - 1}", n) in gets for o, n, _ in fetch.ranges)
    np.testing.assert_array_equal(fetched_ids(root / SUBSET), wanted)
    with h5py.File(stimuli_file(root, wanted), "r") as f:
        np.testing.assert_array_equal(f["imgBrick"][wanted.tolist()], images[wanted])
        assert f["imgBrick"].compression == ("gzip" if layout == "gzip" else None)  # chunks stored as they came
    # more images later: only the new ones are fetched, into the same file
    more = ImageFetch(Bucket(name, NSD_REGION, server.url), root, np.array([3, 4]), workers=2, say=lambda m: None)
    np.testing.assert_array_equal(more.todo, [4])
    more.run(lambda n: None)
    np.testing.assert_array_equal(fetched_ids(root / SUBSET), [3, 4, 50, 51, 199])


def test_multipart_objects_are_checked_part_by_part(server, tmp_path):
    """A multipart upload's ETag (MD5 of the parts' MD5s) is checked with its real part size."""
    import boto3
    from boto3.s3.transfer import TransferConfig

    from brainbench.core.fetch import Bucket, Plan, head, run_plan

    blob = np.random.default_rng(2).bytes((11 << 20) + 123)
    source = tmp_path / "big.bin"
    source.write_bytes(blob)
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
    client.create_bucket(Bucket="multipart", ACL="public-read")
    client.upload_file(str(source), "multipart", "big.bin", ExtraArgs={"ACL": "public-read"},
                       Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    bucket = Bucket("multipart", "us-east-1", server.url)
    remote = head(bucket.client(), bucket, "big.bin", "big.bin")
    assert remote.etag.endswith("-3")
    root = tmp_path / "out"
    root.mkdir()
    (root / "big.bin.part").write_bytes(b"\0" * (6 << 20))  # a corrupt first half
    received = run_plan(Plan(bucket, root, [remote]), workers=1, progress=False)
    assert (root / "big.bin").read_bytes() == blob
    assert received == len(blob) - (6 << 20) + len(blob)  # the rest, then all of it again


def test_a_damaged_subset_file_is_started_again(nsd_source, endpoint, tmp_path):
    from brainbench.core.fetch import Bucket
    from brainbench.plugins.datasets.nsd_stimuli_subset import ImageFetch, fetched_ids

    root = tmp_path / "nsd"
    (root / SUBSET).parent.mkdir(parents=True)
    (root / SUBSET).write_bytes(b"\x89HDF\r\n" + b"\0" * 500)  # a write cut off after the signature
    said = []
    fetch = ImageFetch(Bucket(NSD_BUCKET, NSD_REGION, endpoint.url), root, np.array([5, 9]), say=said.append)
    assert list(fetch.todo) == [5, 9]
    fetch.run(lambda n: None)
    assert "is damaged" in said[0]
    np.testing.assert_array_equal(fetched_ids(root / SUBSET), [5, 9])

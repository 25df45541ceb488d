"""The extraction pipeline: DataLoader workers, the preprocessed-image cache, streamed and resumed layer files,
verified cache reuse, the content fingerprint of weights, and storage failures."""
import logging
import multiprocessing
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from brainbench.core.pipeline.activations import extract
from brainbench.core.content_hash import file_sha256
from brainbench.core.contract.data import ArrayStimulusSet
from brainbench.core.errors import BrainbenchError
from brainbench.core.pipeline.image_cache import CHUNK
from brainbench.core.compute.images import resize_uint8
from brainbench.core.pipeline.layer_store import LayerFiles, RowsOf, layer_file
from brainbench.plugins.models.dinov3_model import DINOv3
ROOT = Path(__file__).resolve().parents[1]


class CountingStimuli(ArrayStimulusSet):
    """Counts the images decoded (``load``), across worker processes too (shared memory)."""

    def __init__(self, images):
        super().__init__(images)
        self.decoded = multiprocessing.get_context("fork").Value("i", 0)

    def load(self, indices):
        with self.decoded.get_lock():
            self.decoded.value += len(indices)
        return super().load(indices)


def _images(n=12, size=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def _bare_forward(model, images):
    """Today's preprocessing (``model.preprocess``, on the main thread) and a plain forward."""
    model.load(torch.device("cpu"))
    with torch.inference_mode():
        return [t.float()[:, model.num_prefix_tokens:].mean(1).numpy()
                for t in model.iter_layers(model.preprocess(list(images)))]


def test_pipeline_gives_the_activations_of_todays_preprocessing():
    images = _images(n=9, size=52)
    model = DINOv3("dinov3-tiny", "init")
    expected = _bare_forward(model, images)
    for workers in (0, 1):  # in this process, and in a worker process
        got = extract(DINOv3("dinov3-tiny", "init"), ArrayStimulusSet(images), device="cpu", batch_size=4,
                      workers=workers, progress=False)
        for layer, reference in zip(got.layers.values(), expected):
            np.testing.assert_allclose(layer, reference, rtol=1e-5, atol=1e-5)


def test_uint8_resize_is_the_float_resize_rounded():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(61, 47, 3), dtype=np.uint8)  # portrait: resized, then centre-cropped
    t = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    resized = torch.nn.functional.interpolate(t, size=(42, 32), mode="bicubic", antialias=True,
                                              align_corners=False)[0].clamp(0, 1)
    top = (42 - 32) // 2
    reference = resized[:, top: top + 32] * 255
    ours = resize_uint8(image, 32)
    assert ours.dtype == torch.uint8 and ours.shape == (3, 32, 32)
    assert (ours.float() - reference).abs().max() <= 0.5 + 1e-4  # rounding only
    same = resize_uint8(image[:32, :32], 32)  # already at the resolution: unchanged
    assert torch.equal(same, torch.from_numpy(image[:32, :32]).permute(2, 0, 1))


def test_a_second_model_with_the_same_preprocessing_decodes_no_image(tmp_path):
    stimuli = CountingStimuli(_images(n=CHUNK + 5, size=20))  # one full chunk and a partial one
    tiny = dict(image_size=16)  # 1 patch: a fast forward
    first = extract(DINOv3("dinov3-tiny", "init", **tiny), stimuli, device="cpu", batch_size=64, cache_dir=tmp_path,
                    workers=1, progress=False)
    assert stimuli.decoded.value == len(stimuli)
    assert len(list((tmp_path / ".images").rglob("chunk-*.npy"))) == 2
    other = DINOv3("dinov3-tiny", "init", seed=1, **tiny)  # other weights, same resize
    second = extract(other, stimuli, device="cpu", batch_size=64, cache_dir=tmp_path, progress=False)
    assert stimuli.decoded.value == len(stimuli)  # nothing decoded again
    assert second.key != first.key and not second.from_cache
    fresh = extract(DINOv3("dinov3-tiny", "init", seed=1, **tiny), stimuli, device="cpu", batch_size=64,
                    progress=False)  # no cache: decoded
    for layer in fresh.layers:
        np.testing.assert_array_equal(second.layers[layer], fresh.layers[layer])
    # the resolution is part of the key: another resolution decodes again
    before = stimuli.decoded.value
    extract(DINOv3("dinov3-tiny", "init", image_size=32), stimuli, device="cpu", batch_size=64,
            cache_dir=tmp_path, progress=False)
    assert stimuli.decoded.value == before + len(stimuli)


def test_a_damaged_image_chunk_is_decoded_again(tmp_path, caplog):
    stimuli = CountingStimuli(_images(n=6))
    extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, workers=0, progress=False)
    chunk = next((tmp_path / ".images").rglob("chunk-*.npy"))
    with open(chunk, "r+b") as f:
        f.seek(-100, os.SEEK_END)
        f.write(b"\xff" * 100)
    with caplog.at_level(logging.WARNING, "brainbench.cache"):
        again = extract(DINOv3("dinov3-tiny", "init", seed=3), stimuli, device="cpu", cache_dir=tmp_path,
                        workers=0, progress=False)
    assert stimuli.decoded.value == 2 * len(stimuli)
    assert "is damaged" in caplog.text and chunk.name in caplog.text
    fresh = extract(DINOv3("dinov3-tiny", "init", seed=3), stimuli, device="cpu", progress=False)
    np.testing.assert_array_equal(again.layers["layer03"], fresh.layers["layer03"])


def test_cached_layers_come_back_memory_mapped_and_rows_are_taken_lazily(tmp_path):
    stimuli = ArrayStimulusSet(_images(n=6))
    result = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    assert isinstance(result.layers, LayerFiles)
    layer = result.layers["layer02"]
    assert isinstance(layer.base, np.memmap) or isinstance(getattr(layer.base, "base", None), np.memmap)
    rows = RowsOf(result.layers, np.array([5, 0, 5]))
    assert list(rows) == list(result.layers) and len(rows) == len(result.layers)
    np.testing.assert_array_equal(rows["layer02"], np.asarray(layer)[[5, 0, 5]])


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from brainbench.core.pipeline.activations import extract
    from brainbench.core.contract.data import ArrayStimulusSet
    from brainbench.plugins.models.dinov3_model import DINOv3
    class DiesAtBatch(DINOv3):
        batches = 0
        def iter_layers(self, pixels):
            DiesAtBatch.batches += 1
            if DiesAtBatch.batches == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
            yield from super().iter_layers(pixels)

    images = np.random.default_rng(0).integers(0, 256, size=(20, 40, 40, 3), dtype=np.uint8)
    extract(DiesAtBatch("dinov3-tiny", "init"), ArrayStimulusSet(images), device="cpu", batch_size=4,
            cache_dir=sys.argv[1], workers=0, progress=False)
""")


def test_a_killed_extraction_resumes_from_its_last_complete_batch(tmp_path, caplog):
    env = {**os.environ, "PYTHONPATH": str(ROOT.parent)}
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path), "4"], env=env, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not list(tmp_path.rglob("meta.json")) and list(tmp_path.rglob("progress.json"))

    class Counting(DINOv3):
        forwarded = 0

        def iter_layers(self, pixels):
            Counting.forwarded += len(pixels)
            yield from super().iter_layers(pixels)

    images = np.random.default_rng(0).integers(0, 256, size=(20, 40, 40, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, "brainbench.cache"):
        resumed = extract(Counting("dinov3-tiny", "init"), ArrayStimulusSet(images), device="cpu", batch_size=4,
                          cache_dir=tmp_path, workers=0, progress=False)
    assert Counting.forwarded == 20 - 3 * 4  # three batches were complete when it was killed
    assert "at image 12 of 20" in caplog.text
    assert not list(tmp_path.rglob("*.partial.npy")) and not list(tmp_path.rglob("progress.json"))
    fresh = extract(DINOv3("dinov3-tiny", "init"), ArrayStimulusSet(images), device="cpu", batch_size=4,
                    progress=False)
    for layer in fresh.layers:
        np.testing.assert_allclose(resumed.layers[layer], fresh.layers[layer], rtol=1e-6, atol=1e-6)


def _damage(kind, path):
    if kind == "truncated":
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size - 100)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "fewer rows":
        np.save(path, np.load(path)[:4])
    elif kind == "other values":
        a = np.load(path)
        np.save(path, np.random.default_rng(0).standard_normal(a.shape).astype(a.dtype))
    elif kind == "bytes overwritten":
        with open(path, "r+b") as f:
            f.seek(200)
            f.write(os.urandom(300))
    elif kind == "not an npy":
        path.write_text("hello")


@pytest.mark.parametrize("kind", ["truncated", "empty", "fewer rows", "other values", "bytes overwritten",
                                  "not an npy"])
def test_a_damaged_layer_file_is_reported_and_computed_again(tmp_path, caplog, kind):
    stimuli = ArrayStimulusSet(_images(n=6))
    first = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    expected = {layer: np.array(values) for layer, values in first.layers.items()}
    path = first.layers._files["layer02"]
    _damage(kind, path)
    with caplog.at_level(logging.WARNING, "brainbench.cache"):
        again = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    assert not again.from_cache
    assert f"{path} are damaged" in caplog.text
    for layer, values in expected.items():
        np.testing.assert_array_equal(again.layers[layer], values)
    third = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    assert third.from_cache  # repaired on disk


def test_a_cache_entry_without_its_metadata_is_computed_again(tmp_path):
    stimuli = ArrayStimulusSet(_images(n=4))
    first = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    meta = layer_file(first.layers._files["layer00"].parent, "x").with_name("meta.json")
    meta.unlink()
    assert not extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path,
                       progress=False).from_cache


def test_weights_fingerprint_follows_the_content_not_the_modification_time(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(100)}, str(path))
    stat = path.stat()
    from brainbench.plugins.models.weights import WeightSource

    old = WeightSource(path).fingerprint()
    replacement = tmp_path / "new.safetensors"
    save_file({"a": torch.ones(100)}, str(replacement))
    assert replacement.stat().st_size == stat.st_size
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, path)  # same path, size and mtime (cp -p / rsync -a)
    new = WeightSource(path).fingerprint()
    assert new != old and new["files"][0][2] == file_sha256(path)
    memo = list((Path(os.environ["BRAINBENCH_HOME"]) / "file-hashes").iterdir())  # remembered for the next run
    assert new["files"][0][2] in {p.read_text() for p in memo}


def test_an_unwritable_cache_folder_is_one_sentence_before_any_work(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o555)
    model = DINOv3("dinov3-tiny", "init")
    with pytest.raises(BrainbenchError, match=r"cannot write the activation cache in .*Permission denied"):
        extract(model, ArrayStimulusSet(_images(n=4)), device="cpu", cache_dir=cache, progress=False)
    assert model.network is None  # refused before the model was built


def test_an_unwritable_cache_folder_as_root(tmp_path):
    """The same check where the tests run as root: a file where the folder should be."""
    (tmp_path / "cache").write_text("not a folder")
    model = DINOv3("dinov3-tiny", "init")
    with pytest.raises(BrainbenchError, match=r"cannot write the activation cache in .*cache"):
        extract(model, ArrayStimulusSet(_images(n=4)), device="cpu", cache_dir=tmp_path / "cache", progress=False)
    assert model.network is None


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    yield disk
    subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_disk_is_found_at_the_first_batch(small_disk):
    (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))
    images = _images(n=200, size=16)
    model = DINOv3("dinov3-tiny", "init")
    forwarded = []
    original = model.iter_layers

    def counting(pixels):
        forwarded.append(len(pixels))
        yield from original(pixels)

    model.iter_layers = counting
    with pytest.raises(BrainbenchError, match="No space left on device; free some space"):
        extract(model, ArrayStimulusSet(images), device="cpu", batch_size=8, cache_dir=small_disk / "cache",
                workers=0, progress=False)
    assert forwarded == [8]  # preallocation failed after the first batch, not at the end
    assert not list(small_disk.rglob("*.partial.npy"))


def test_a_model_with_its_own_preprocess_keeps_it(tmp_path):
    from brainbench.core.contract.model import VisionModel

    class OwnPreprocess(VisionModel):
        image_size = 8

        @property
        def layer_names(self):
            return ["pixels"]

        def fingerprint(self):
            return {"own": 1}

        def load(self, device):
            pass

        def forward_layers(self, pixels):
            return [pixels.flatten(1)]

        def preprocess(self, images):  # a constant per image: its index in the batch is not used
            return torch.stack([torch.full((3, 2, 2), float(np.asarray(im).mean())) for im in images])

    images = _images(n=5, size=8)
    for workers in (0, 1):
        got = extract(OwnPreprocess("own", "init"), ArrayStimulusSet(images), device="cpu", batch_size=2,
                      workers=workers, cache_dir=tmp_path / str(workers), progress=False)
        np.testing.assert_allclose(got.layers["pixels"], np.repeat(images.mean((1, 2, 3))[:, None], 12, 1),
                                   rtol=1e-6)
        assert not (tmp_path / str(workers) / ".images").exists()  # its images are not the standard ones


def test_activations_follow_weights_replaced_with_the_same_size_and_mtime(tmp_path):
    from safetensors.torch import save_file
    from transformers import DINOv3ViTModel

    from brainbench.plugins.models.dinov3_model import dinov3_config
    def weights(seed, path):
        torch.manual_seed(seed)
        state = DINOv3ViTModel(dinov3_config("dinov3-tiny")).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))

    path = tmp_path / "ck.safetensors"
    weights(1, path)
    stimuli = ArrayStimulusSet(_images(n=4))
    old = extract(DINOv3("dinov3-tiny", "ck", weights=path), stimuli, device="cpu", cache_dir=tmp_path / "c",
                  progress=False)
    stat = path.stat()
    weights(99, tmp_path / "new.safetensors")
    os.utime(tmp_path / "new.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "new.safetensors", path)  # cp -p / rsync -a: same path, size and mtime
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    new = extract(DINOv3("dinov3-tiny", "ck", weights=path), stimuli, device="cpu", cache_dir=tmp_path / "c",
                  progress=False)
    assert not new.from_cache and new.key != old.key
    assert not np.allclose(new.layers["layer03"], old.layers["layer03"])

"""Layer-wise extraction, token pooling and the on-disk cache."""
import numpy as np
import pytest
import torch

from brainbench.core.pipeline.activations import (ALL_TOKENS_DIM, available_memory, cache_key, check_memory, extract,
                                         pool_tokens, resolve_device)
from brainbench.core.contract.data import ArrayStimulusSet
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.model import VisionModel
from brainbench.plugins.models.dinov3_model import DINOv3
@pytest.fixture
def tiny_model():
    return DINOv3("dinov3-tiny", "init")


@pytest.fixture
def stimuli():
    rng = np.random.default_rng(0)
    return ArrayStimulusSet(rng.integers(0, 256, size=(10, 48, 48, 3), dtype=np.uint8))


def test_pooling_known_values(tiny_model):
    # batch 1, tokens: CLS=1, four registers=2, patches 3 and 5
    tokens = torch.tensor([[[1.0], [2.0], [2.0], [2.0], [2.0], [3.0], [5.0]]])
    assert pool_tokens(tokens, tiny_model, "mean").item() == 4.0
    assert pool_tokens(tokens, tiny_model, "cls").item() == 1.0
    assert pool_tokens(tokens, tiny_model, "cls+mean").tolist() == [[1.0, 4.0]]
    assert pool_tokens(tokens, tiny_model, "all").shape == (1, 7)
    conv = torch.arange(8.0).view(1, 2, 2, 2)  # (batch, channels, h, w): spatial mean per channel
    assert pool_tokens(conv, tiny_model, "mean").tolist() == [[1.5, 5.5]]


def test_all_tokens_projection_is_fixed(tiny_model):
    big = torch.randn(2, 21, 400)  # 8400 features > 4096
    a, b = pool_tokens(big, tiny_model, "all"), pool_tokens(big, tiny_model, "all")
    assert a.shape == (2, 4096) and torch.equal(a, b)


def test_extract_shapes_and_cache(tmp_path, tiny_model, stimuli):
    first = extract(tiny_model, stimuli, device="cpu", cache_dir=tmp_path, batch_size=4, progress=False)
    assert not first.from_cache
    assert list(first.layers) == tiny_model.layer_names
    assert all(a.shape == (10, 64) and a.dtype == np.float32 for a in first.layers.values())
    second = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    assert second.from_cache and second.key == first.key
    for layer in first.layers:
        np.testing.assert_array_equal(first.layers[layer], second.layers[layer])
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files
    subset = extract(tiny_model, stimuli, layers=["layer02"], device="cpu", cache_dir=tmp_path, progress=False)
    assert subset.from_cache and list(subset.layers) == ["layer02"]


def test_batching_does_not_change_results(tiny_model, stimuli):
    a = extract(tiny_model, stimuli, device="cpu", batch_size=10, progress=False)
    b = extract(tiny_model, stimuli, device="cpu", batch_size=3, progress=False)
    for layer in a.layers:
        np.testing.assert_allclose(a.layers[layer], b.layers[layer], rtol=1e-4, atol=1e-5)


def test_cache_key_covers_everything_that_changes_activations(tiny_model, stimuli):
    base = cache_key(tiny_model, stimuli, "mean")
    assert cache_key(tiny_model, stimuli, "cls") != base
    other_seed = DINOv3("dinov3-tiny", "init", seed=1)
    assert cache_key(other_seed, stimuli, "mean") != base
    bigger = DINOv3("dinov3-tiny", "init")
    bigger.image_size = 96  # Brain-Score's stale-cache bug: image size missing from the key
    assert cache_key(bigger, stimuli, "mean") != base
    renormalised = DINOv3("dinov3-tiny", "init")
    renormalised.mean = (0.43, 0.411, 0.296)
    assert cache_key(renormalised, stimuli, "mean") != base
    changed = stimuli.images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert cache_key(tiny_model, ArrayStimulusSet(changed, stimuli.ids), "mean") != base


def test_bad_layer_and_pooling(tiny_model, stimuli):
    with pytest.raises(BrainbenchError, match="no layer 'layer99'"):
        extract(tiny_model, stimuli, layers=["layer99"], progress=False)
    with pytest.raises(BrainbenchError, match="unknown pooling"):
        extract(tiny_model, stimuli, pooling="max", progress=False)


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(BrainbenchError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(BrainbenchError, match="unknown device"):
        resolve_device("tpu7")


# -- precision, memory, batching -------------------------------------------------------------------

class MemoryBoundModel(VisionModel):
    """A real two-layer network that, like a GPU, runs out of memory above ``limit`` images per batch."""

    image_size = 32
    num_parameters = 8 * 3 * 9 + 8

    def __init__(self, limit: int):
        super().__init__("memory-bound", "init")
        self.limit = limit
        self.batches: list[int] = []

    @property
    def layer_names(self):
        return ["conv", "relu"]

    def fingerprint(self):
        return {"seed": 0}

    def load(self, device):
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3).to(device).eval()

    def forward_layers(self, pixels):
        self.batches.append(len(pixels))
        if len(pixels) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        a = self.conv(pixels)
        return [a, a.relu()]


def test_auto_batch_size_backs_off_when_memory_runs_out(stimuli):
    reference = extract(MemoryBoundModel(limit=100), stimuli, device="cpu", batch_size=1, progress=False)
    model = MemoryBoundModel(limit=3)
    auto = extract(model, stimuli, device="cpu", batch_size="auto", progress=False)
    assert model.batches[:3] == [10, 5, 2]  # all 10 (the cap), halved until a batch fits, then kept
    assert set(model.batches[3:]) <= {2}
    for layer in reference.layers:
        np.testing.assert_allclose(auto.layers[layer], reference.layers[layer], rtol=1e-5, atol=1e-6)
    assert auto.key == reference.key  # the batch size does not change activations


def test_fixed_batch_size_that_runs_out_of_memory_is_one_sentence(stimuli):
    with pytest.raises(BrainbenchError) as info:
        extract(MemoryBoundModel(limit=3), stimuli, device="cpu", batch_size=4, progress=False)
    message = str(info.value)
    assert "ran out of cpu memory with a batch of 4 images" in message and "--batch-size auto" in message
    assert "\n" not in message
    with pytest.raises(BrainbenchError, match="invalid batch size 0"):
        extract(MemoryBoundModel(limit=3), stimuli, device="cpu", batch_size=0, progress=False)


def test_auto_batch_size_follows_the_memory_estimate(stimuli):
    model = DINOv3("dinov3-tiny", "init")
    estimate = model.estimate_memory()
    assert estimate.weights == 4 * 249_920 and estimate.per_image > 0
    budget = estimate.weights + 3 * estimate.per_image
    assert check_memory(model, torch.device("cpu"), budget=budget) == 3
    with pytest.raises(BrainbenchError, match="dinov3-tiny does not fit in this machine's RAM"):
        check_memory(model, torch.device("cpu"), budget=estimate.weights)
    assert check_memory(MemoryBoundModel(1), torch.device("cpu"), budget=10**9) == 10**9 - 4 * 224  # no per-image
    model.set_precision("bf16")
    assert model.estimate_memory().weights == estimate.weights // 2


def test_available_memory_is_known_on_this_machine():
    free = available_memory(torch.device("cpu"))
    assert free is None or 0 < free < 2**50


def test_bf16_is_close_to_fp32_and_cached_apart(tmp_path, stimuli):
    full = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    model = DINOv3("dinov3-tiny", "init", precision="bf16")
    half = extract(model, stimuli, device="cpu", cache_dir=tmp_path, progress=False)
    assert not half.from_cache and half.key != full.key
    assert next(model.network.parameters()).dtype == torch.bfloat16
    assert model.network.rope_embeddings.inv_freq.dtype == torch.float32  # RoPE angles stay exact
    for layer in full.layers:
        a, b = full.layers[layer].ravel(), half.layers[layer].ravel()
        assert half.layers[layer].dtype == np.float32
        assert np.corrcoef(a, b)[0, 1] > 0.99
    again = extract(DINOv3("dinov3-tiny", "init"), stimuli, device="cpu", cache_dir=tmp_path, precision="bf16",
                    progress=False)
    assert again.from_cache and again.key == half.key
    with pytest.raises(BrainbenchError, match="unknown precision 'fp64'"):
        extract(model, stimuli, device="cpu", precision="fp64", progress=False)


def test_models_that_do_not_cast_themselves_run_under_autocast(stimuli):
    full = extract(MemoryBoundModel(100), stimuli, device="cpu", progress=False)
    half = extract(MemoryBoundModel(100), stimuli, device="cpu", precision="bf16", progress=False)
    for layer in full.layers:
        np.testing.assert_allclose(half.layers[layer], full.layers[layer], rtol=0.05, atol=0.05)
        assert not np.array_equal(half.layers[layer], full.layers[layer])  # bf16 did run


def test_layers_are_pooled_as_the_model_yields_them(stimuli):
    class Streaming(MemoryBoundModel):
        seen: list[int] = []

        def forward_layers(self, pixels):
            raise AssertionError("extract must use iter_layers")

        def iter_layers(self, pixels):
            a = self.conv(pixels)
            yield a
            self.seen.append(len(pixels))
            yield a.relu()

    result = extract(Streaming(100), stimuli, device="cpu", batch_size=4, progress=False)
    assert Streaming.seen == [4, 4, 2] and result.layers["relu"].shape == (10, 8)


def test_all_tokens_sketch_preserves_inner_products(tiny_model):
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((2, 201, 400))).float()  # 80 400 features
    sketch = pool_tokens(x, tiny_model, "all")
    assert sketch.shape == (2, ALL_TOKENS_DIM)
    flat = x.flatten(1)
    np.testing.assert_allclose(sketch.norm(dim=1), flat.norm(dim=1), rtol=0.05)
    cosine = torch.nn.functional.cosine_similarity
    assert abs(cosine(sketch[:1], sketch[1:]) - cosine(flat[:1], flat[1:])).item() < 0.05
    assert cache_key(tiny_model, ArrayStimulusSet(np.zeros((1, 8, 8, 3), np.uint8)), "all") != cache_key(
        tiny_model, ArrayStimulusSet(np.zeros((1, 8, 8, 3), np.uint8)), "mean")


def test_half_precision_on_the_cpu_still_needs_the_float32_build():
    model = DINOv3("dinov3-tiny", "init", precision="bf16")
    estimate = model.estimate_memory()
    assert estimate.staging == 2 * estimate.weights == 4 * 249_920
    with pytest.raises(BrainbenchError, match=r"is built in .* of float32 first"):
        check_memory(model, torch.device("cpu"), budget=estimate.weights + estimate.per_image)

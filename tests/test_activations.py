"""Layer-wise extraction, token pooling and the on-disk cache."""
import numpy as np
import pytest
import torch

from brainbench.core.activations import cache_key, extract, pool_tokens, resolve_device
from brainbench.core.data import ArrayStimulusSet
from brainbench.core.errors import BrainbenchError
from brainbench.plugins.models.dinov3 import DINOv3


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

"""The DINOv3 plugin: real transformers architectures, local weights only."""
import numpy as np
import pytest
import torch

from brainbench.core.pipeline.activations import extract
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.registry.specs import get_registry
from brainbench.plugins.models.dinov3 import _PARAMETERS, VARIANTS
from brainbench.plugins.models.dinov3_model import DINOv3, count_parameters

# Shapes and sizes from the DINOv3 release (ViT-S … 7B): hidden, blocks, heads, parameters (millions)
RELEASED = {
    "dinov3-small": (384, 12, 6, 21.6),
    "dinov3-small-plus": (384, 12, 6, 28.7),
    "dinov3-base": (768, 12, 12, 85.7),
    "dinov3-large": (1024, 24, 16, 303.1),
    "dinov3-huge-plus": (1280, 32, 20, 840.6),
    "dinov3-7b": (4096, 40, 32, 6716.0),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_config_matches_the_release(name):
    hidden, blocks, heads, millions = RELEASED[name]
    cfg = VARIANTS[name]["config"]
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"]) == (hidden, blocks, heads)
    counted = count_parameters(name)  # built on the meta device: no memory used
    assert counted == _PARAMETERS[name]
    assert counted / 1e6 == pytest.approx(millions, abs=0.1)


def test_registered_with_metadata():
    spec = get_registry().model("dinov3-large")
    assert spec.metadata["parameters"] == _PARAMETERS["dinov3-large"]
    assert spec.metadata["layers"] == 25
    assert "init" in spec.metadata["checkpoints"]


def test_tiny_forward_shapes():
    model = DINOv3("dinov3-tiny", "init")
    model.load(torch.device("cpu"))
    pixels = model.preprocess([np.zeros((50, 80, 3), np.uint8), np.full((64, 64, 3), 200, np.uint8)])
    assert pixels.shape == (2, 3, 64, 64)
    outputs = model.forward_layers(pixels)
    assert len(outputs) == len(model.layer_names) == 5
    # CLS + 4 registers + (64/16)² patches, hidden 64
    assert all(o.shape == (2, 1 + 4 + 16, 64) for o in outputs)


def test_init_is_deterministic_per_seed():
    a, b, c = (DINOv3("dinov3-tiny", "init", seed=s) for s in (0, 0, 1))
    for m in (a, b, c):
        m.load(torch.device("cpu"))
    wa, wb, wc = (next(m.network.parameters()).detach() for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_missing_weights_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingDataError) as info:
        DINOv3("dinov3-small", "pretrained")
    message = str(info.value)
    assert "dinov3-vits16-pretrain-lvd1689m" in message and "dinov3-small@init" in message
    assert "\n" not in message


def test_unknown_checkpoint():
    with pytest.raises(BrainbenchError, match="no checkpoint 'step-5'"):
        DINOv3("dinov3-tiny", "step-5")


def test_save_pretrained_folder_gives_identical_activations(tmp_path, monkeypatch, tiny_fmri):
    """Weights written in the Hugging Face layout load from BRAINBENCH_WEIGHTS and match the source model."""
    source = DINOv3("dinov3-tiny", "init", seed=3)
    source.load(torch.device("cpu"))
    folder = tmp_path / "tiny-weights"
    source.network.save_pretrained(folder)
    monkeypatch.setitem(VARIANTS["dinov3-tiny"], "hf", "tiny-weights")
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    loaded = DINOv3("dinov3-tiny", "pretrained")
    assert loaded.weights_path == folder
    expected = extract(source, tiny_fmri.stimuli, device="cpu", progress=False)
    got = extract(loaded, tiny_fmri.stimuli, device="cpu", progress=False)
    for layer in expected.layers:
        np.testing.assert_allclose(got.layers[layer], expected.layers[layer], rtol=1e-5, atol=1e-6)
    assert expected.key != got.key  # different weights identity, different cache entry


def test_weights_dir_option_and_config_file_setting(tmp_path, monkeypatch):
    """The weights root comes from the `weights_dir` option, else the `weights` setting (env or config file)."""
    source = DINOv3("dinov3-tiny", "init", seed=2)
    source.load(torch.device("cpu"))
    source.network.save_pretrained(tmp_path / "root" / "tiny-weights")
    monkeypatch.setitem(VARIANTS["dinov3-tiny"], "hf", "tiny-weights")
    assert DINOv3("dinov3-tiny", "pretrained", weights_dir=str(tmp_path / "root")).weights_path == \
        tmp_path / "root" / "tiny-weights"
    config = tmp_path / "config.toml"
    config.write_text(f'weights = "{tmp_path / "root"}"\n')
    monkeypatch.setenv("BRAINBENCH_CONFIG", str(config))
    loaded = DINOv3("dinov3-tiny", "pretrained")
    assert loaded.weights_path == tmp_path / "root" / "tiny-weights"
    loaded.load(torch.device("cpu"))
    assert torch.equal(next(loaded.network.parameters()), next(source.network.parameters()))

"""Models by name (timm:, hf:, torchvision:), --layers through forward hooks, and names with ':' everywhere.

Every model is a real library architecture at random init (or weights saved here by the library
itself); the activations are checked against the library's own forward pass.
"""
from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import brainbench
from brainbench.cli import main
from brainbench.core.pipeline.activations import cache_key, extract, model_folder
from brainbench.core.contract.data import ArrayStimulusSet
from brainbench.core.errors import BrainbenchError, MissingDataError, UnknownNameError
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry import ModelRef, get_registry, reset_registry
from conftest import TINY_DATASET


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return ArrayStimulusSet(rng.integers(0, 256, (3, 48, 56, 3), dtype=np.uint8), ids=["a", "b", "c"])


def build(name: str, checkpoint: str | None = "init", **options):
    return get_registry().model(name).factory(checkpoint, **options)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# -- timm ------------------------------------------------------------------------------------------

def test_timm_resnet18_init_is_timms_own_network(images):
    spec = get_registry().model("timm:resnet18")
    assert spec.metadata["parameters"] == 11_176_512  # timm's resnet18 without its 1000-class head (513,000)
    assert spec.metadata["family"] == "resnet" and spec.metadata["training_data"] == "ImageNet-1k"
    assert spec.metadata["source"] == "https://huggingface.co/timm/resnet18.a1_in1k"
    model = build("timm:resnet18")
    assert model.layer_names == ["act1", "layer1", "layer2", "layer3", "layer4"]  # timm's feature_info
    assert model.preprocessing()["timm_data_config"]["crop_pct"] == 0.95  # resolve_data_config
    acts = extract(model, images, device="cpu", progress=False, layers="layer3,layer4")
    assert list(acts.layers) == ["layer3", "layer4"]
    with torch.inference_mode():
        direct = model.network.forward_features(model.preprocess(images.load(range(3)))).mean(dim=(2, 3))
    np.testing.assert_allclose(acts.layers["layer4"], direct.numpy(), rtol=1e-4, atol=1e-5)


def test_timm_weights_from_the_weights_root_are_loaded_by_timm(images, tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(5)
    released = timm.create_model("resnet18").eval()  # with its classifier, as timm's files are
    (tmp_path / "resnet18.a1_in1k").mkdir()
    save_file(released.state_dict(), tmp_path / "resnet18.a1_in1k" / "model.safetensors")
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    model = build("timm:resnet18", None)
    acts = extract(model, images, device="cpu", progress=False, layers="layer4")
    with torch.inference_mode():
        direct = released.forward_features(model.preprocess(images.load(range(3)))).mean(dim=(2, 3))
    np.testing.assert_allclose(acts.layers["layer4"], direct.numpy(), rtol=1e-4, atol=1e-5)


def test_timm_vit_tokens_and_missing_weights(tmp_path, monkeypatch):
    model = build("timm:vit_tiny_patch16_224")
    assert (model.num_prefix_tokens, model.has_cls_token) == (1, True)
    assert model.layer_names[:2] == ["blocks.0", "blocks.1"]
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingDataError, match=r"put the Hugging Face folder timm/vit_tiny_patch16_224\.augreg_in21k_ft_in1k"
                                               r" .* in .*vit_tiny_patch16_224\.augreg_in21k_ft_in1k"):
        build("timm:vit_tiny_patch16_224", None)
    with pytest.raises(BrainbenchError, match="did you mean 'timm:resnet18'"):
        get_registry().model("timm:resnet1")


# -- torchvision ---------------------------------------------------------------------------------------

def test_torchvision_resnet18_init_stages_and_preprocessing(images, tmp_path, monkeypatch):
    model = build("torchvision:resnet18")
    assert model.layer_names == ["layer1", "layer2", "layer3", "layer4"]
    assert model.preprocessing()["torchvision_transforms"]["resize_size"] == [256]  # IMAGENET1K_V1.transforms()
    acts = extract(model, images, device="cpu", progress=False, layers="layer4")
    with torch.inference_mode():
        net = model.network
        x = model.preprocess(images.load(range(3)))
        x = net.layer4(net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(x))))))))
    np.testing.assert_allclose(acts.layers["layer4"], x.mean(dim=(2, 3)).numpy(), rtol=1e-4, atol=1e-5)
    # the preprocessing enters the cache key
    assert cache_key(build("torchvision:resnet18", image_size=160), images, "mean") != cache_key(model, images, "mean")
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    with pytest.raises(MissingDataError, match=r"put resnet18-f37072fd\.pth .* in .*torchvision/ or"):
        build("torchvision:resnet18", None)
    # weights saved where the message says are read, strictly
    torch.save(model.network.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    (tmp_path / "torchvision").mkdir()
    (tmp_path / "resnet18-f37072fd.pth").rename(tmp_path / "torchvision" / "resnet18-f37072fd.pth")
    loaded = build("torchvision:resnet18", None)
    assert loaded.checkpoint == "pretrained"
    again = extract(loaded, images, device="cpu", progress=False, layers="layer4")
    np.testing.assert_allclose(again.layers["layer4"], acts.layers["layer4"], rtol=1e-5, atol=1e-6)


# -- Hugging Face -----------------------------------------------------------------------------------

@pytest.fixture
def hf_root(tmp_path, monkeypatch):
    """Tiny real configs (and one set of weights) saved by transformers itself in a weights root."""
    from transformers import Dinov2Config, ViTConfig, ViTImageProcessor, ViTModel

    ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
              patch_size=8).save_pretrained(tmp_path / "lab" / "tiny-vit")
    ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3,
                      image_std=[0.25] * 3).save_pretrained(tmp_path / "lab" / "tiny-vit")
    Dinov2Config(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, mlp_ratio=2, image_size=32, patch_size=8,
                 num_register_tokens=2).save_pretrained(tmp_path / "lab" / "tiny-dinov2-reg")
    torch.manual_seed(3)
    ViTModel(ViTConfig.from_pretrained(tmp_path / "lab" / "tiny-vit"), add_pooling_layer=False).save_pretrained(
        tmp_path / "trained")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "trained")
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    return tmp_path


def test_hf_models_from_local_configs(hf_root, images):
    spec = get_registry().model("hf:lab/tiny-vit")
    assert spec.metadata["family"] == "vit" and spec.metadata["layers"] == 3
    model = build("hf:lab/tiny-vit")
    assert model.layer_names == ["hidden_states.0", "hidden_states.1", "hidden_states.2"]
    assert (model.mean, model.std, model.image_size) == ((0.5,) * 3, (0.25,) * 3, 32)  # the image processor's
    acts = extract(model, images, device="cpu", progress=False, pooling="cls")
    with torch.inference_mode():
        hidden = model.network(pixel_values=model.preprocess(images.load(range(3))), output_hidden_states=True)
    np.testing.assert_allclose(acts.layers["hidden_states.2"], hidden.hidden_states[2][:, 0].numpy(), rtol=1e-5)
    dinov2 = build("hf:lab/tiny-dinov2-reg")
    assert (dinov2.num_prefix_tokens, dinov2.has_cls_token) == (3, True)  # CLS + 2 registers, from the config
    assert len(dinov2.layer_names) == 4


def test_hf_weights_from_disk_only(hf_root, images):
    with pytest.raises(MissingDataError, match=r"no weights for hf:lab/tiny-vit: put the Hugging Face folder lab/tiny-vit"):
        build("hf:lab/tiny-vit", None)
    with pytest.raises(MissingDataError, match=r"no config for hf:facebook/dinov2-small: .* facebook/dinov2-small"):
        build("hf:facebook/dinov2-small")
    model = build("hf:lab/tiny-vit", None, weights=str(hf_root / "trained"))
    from transformers import ViTModel

    reference = ViTModel.from_pretrained(hf_root / "trained", add_pooling_layer=False).eval()
    acts = extract(model, images, device="cpu", progress=False)
    with torch.inference_mode():
        out = reference(pixel_values=model.preprocess(images.load(range(3))), output_hidden_states=True)
    np.testing.assert_allclose(acts.layers["hidden_states.2"], out.hidden_states[2][:, 1:].mean(1).numpy(), rtol=1e-4)


# -- --layers ---------------------------------------------------------------------------------------

def test_layers_glob_on_a_builtin_reads_submodules_with_hooks(images):
    model = build("dinov3-tiny")
    default = extract(model, images, device="cpu", progress=False, layers="layer02")
    # block 2's output (layer02) read by a hook on the module that computes it: the same numbers
    hooked = extract(build("dinov3-tiny"), images, device="cpu", progress=False, layers="model.layer.1,layer02")
    np.testing.assert_allclose(hooked.layers["model.layer.1"], default.layers["layer02"], rtol=1e-6)
    mlps = extract(build("dinov3-tiny"), images, device="cpu", progress=False, layers="model.layer.*.mlp")
    assert list(mlps.layers) == [f"model.layer.{i}.mlp" for i in range(4)]
    assert all(a.shape == (3, 64) for a in mlps.layers.values())
    # the selection enters the cache key (only when submodules are read)
    assert hooked.key != mlps.key and default.key == cache_key(build("dinov3-tiny"), images, "mean")
    with pytest.raises(BrainbenchError, match=r"--layers 'blocks\.\*' matches none .* `bench info dinov3-tiny --layers`"):
        extract(build("dinov3-tiny"), images, device="cpu", progress=False, layers="blocks.*")


def test_run_by_name_with_layers_and_info(tmp_path):
    sets = [a for k, v in TINY_DATASET.items() for a in ("--set", f"dataset.{k}={v}")]
    result = invoke("run", "-m", "timm:resnet18@init", "-d", "synthetic-fmri", "-q", "--layers", "layer3,layer4",
                    "--set", "metric.folds=3", *sets, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["model"] for r in rows} == {"timm:resnet18"} and len(rows) == 4
    assert all(np.isfinite(r["score"]) for r in rows)
    assert all(r["options"]["layers"] == "layer3,layer4" for r in rows)
    listing = invoke("info", "timm:resnet18", "--layers")
    assert listing.exit_code == 0 and "act1, layer1, layer2, layer3, layer4" in listing.output
    assert "layer1.0.conv1" in listing.output
    assert "timm:NAME" in invoke("list", "models").output


# -- the prefix mechanism and names with ':' -------------------------------------------------------------

def test_a_third_party_prefix_uses_the_same_hook():
    class Fixed(brainbench.VisionModel):
        layer_names = ["out"]

        def fingerprint(self):
            return {}

        def load(self, device):
            pass

        def forward_layers(self, pixels):
            return [pixels.mean(dim=(2, 3))]

    plugin = types.SimpleNamespace()

    @brainbench.hookimpl
    def register_model_prefixes(register):
        register("toy", lambda rest: (lambda checkpoint=None, **o: Fixed(f"toy:{rest}", checkpoint or "init"),
                                      f"toy {rest}", {"family": "toy", "layers": 1}))
        register("broken", lambda rest: {}[rest])

    plugin.register_model_prefixes = register_model_prefixes
    get_plugin_manager().register(plugin, name="toy-plugin")
    reset_registry()
    spec = get_registry().model("toy:Any/Name-1")
    assert (spec.name, spec.plugin, spec.metadata["family"]) == ("toy:Any/Name-1", "toy-plugin", "toy")
    with pytest.raises(BrainbenchError, match=r"plugin 'toy-plugin' could not resolve model 'broken:x' \(KeyError"):
        get_registry().model("broken:x")
    with pytest.raises(UnknownNameError, match=r"unknown model prefix 'nope' .* known prefixes: .*timm:"):
        get_registry().model("nope:x")


def test_names_with_a_colon_are_valid_everywhere(tmp_path):
    from brainbench.core.store.portable import file_name
    from brainbench.leaderboard.data import slug

    ref = ModelRef.parse("hf:facebook/dinov2-small@init")
    assert (ref.name, ref.checkpoint, str(ref)) == ("hf:facebook/dinov2-small", "init", "hf:facebook/dinov2-small@init")
    with pytest.raises(BrainbenchError, match="invalid model name"):
        ModelRef.parse("hf:facebook/dinov2 small")
    folder = model_folder(tmp_path, "hf:facebook/dinov2-small")
    assert folder.parent == tmp_path and ":" not in folder.name and "/" not in folder.name
    assert model_folder(tmp_path, "dinov3-small") == tmp_path / "dinov3-small"  # existing caches keep their place
    names = {slug("timm:resnet18"), slug("hf:facebook/dinov2-small"), slug("torchvision:resnet18")}
    assert len(names) == 3 and all(":" not in s and "/" not in s for s in names)
    document = {"model": "hf:facebook/dinov2-small", "checkpoint": "init", "dataset": "nsd", "metric": "spatial",
                "options": {}}
    path = file_name(document)
    assert path.parts[:2] == ("nsd", "spatial") and len(path.parts) == 3 and ":" not in path.name
    import re

    from brainbench.core.store.portable import SCHEMA_NAME, load_schema

    pattern = load_schema(SCHEMA_NAME)["properties"]["model"]["pattern"]
    assert all(re.match(pattern, n) for n in ("hf:facebook/dinov2-small", "timm:convnext_base.fb_in22k", "dinov3-small"))
    assert not re.match(pattern, "hf:") and not re.match(pattern, "Dinov3")

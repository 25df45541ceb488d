"""The model family: DINOv3 ViTs and ConvNeXts (transformers and timm), the seven generalization
models, weights in every on-disk format, and the registry's metadata.

Everything is built from the real configs; big networks only on the meta device.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.pipeline.activations import extract
from brainbench.core.contract.data import ArrayStimulusSet
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.registry.specs import get_registry
from brainbench.plugins.models import convnext, convnext_model, dinov3, dinov3_model
from brainbench.plugins.models.checkpoints import transformers_to_original
from brainbench.plugins.models.convnext_model import DINOv3ConvNeXt
from brainbench.plugins.models.dinov3 import SAT_MEAN, SAT_STD, VARIANTS
from brainbench.plugins.models.dinov3_model import DINOv3
from brainbench.plugins.models.generalization import MODELS
from brainbench.plugins.models.generalization_model import GeneralizationModel, build_network
EVERY_MODEL = [*VARIANTS, *convnext.VARIANTS, *MODELS]
CPU = torch.device("cpu")


@pytest.fixture
def registry():
    return get_registry()


@pytest.fixture
def no_hf_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def images(n: int = 2, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]


def run_layers(model, pictures=None) -> list[torch.Tensor]:
    model.load(CPU)
    with torch.inference_mode():
        return list(model.iter_layers(model.preprocess(pictures or images(size=model.image_size))))


def assert_same_layers(a: list[torch.Tensor], b: list[torch.Tensor], atol: float = 1e-5) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
        torch.testing.assert_close(x.float(), y.float(), rtol=1e-4, atol=atol)


# -- registry and metadata -----------------------------------------------------------------------

def test_every_variant_is_listed_with_parameters_and_training_data(registry):
    output = CliRunner().invoke(main, ["list", "models"]).output
    for name in EVERY_MODEL:
        spec = registry.model(name)
        meta = spec.metadata
        assert {"family", "parameters", "training_data", "objective", "source", "checkpoints", "layers"} <= set(meta)
        assert isinstance(meta["parameters"], int) and meta["parameters"] > 0
        json.dumps(meta)
        line = next(line for line in output.splitlines() if line.split()[:1] == [name])
        assert f"[{meta['parameters'] / 1e6:,.1f}M params]" in line
        assert "data: " + meta["training_data"].split(" (")[0].split(",")[0] in line


def test_dinov3_parameter_table_matches_meta_builds():
    # the released ones are checked against the release in tests/test_models.py
    for name in ("dinov3-giant", "dinov3-tiny"):
        assert dinov3_model.count_parameters(name) == dinov3._PARAMETERS[name], name
    for satellite, human in (("dinov3-large-sat493m", "dinov3-large"), ("dinov3-7b-sat493m", "dinov3-7b"),
                             ("dinov3-large-cellular", "dinov3-large")):
        assert VARIANTS[satellite]["config"] == VARIANTS[human]["config"]
        assert dinov3._PARAMETERS[satellite] == dinov3._PARAMETERS[human]


def test_timm_dinov3_architectures_match_transformers():
    """Same network in both libraries: timm's holds everything but the (unused) mask token."""
    from brainbench.plugins.models import timm_backend

    for name in VARIANTS:
        if "-sat" in name or "cell" in name:
            continue  # same network as dinov3-large / dinov3-7b
        config = dinov3_model.dinov3_config(name)
        model, kwargs = dinov3_model.timm_arguments(name, config.query_bias)
        network = timm_backend.create(model, meta=True, **kwargs)
        assert sum(p.numel() for p in network.parameters()) == dinov3._PARAMETERS[name] - config.hidden_size, name


def test_convnext_parameter_table_matches_both_backends():
    from transformers import DINOv3ConvNextModel

    from brainbench.plugins.models import timm_backend

    for name, variant in convnext.VARIANTS.items():
        with torch.device("meta"):
            hf = DINOv3ConvNextModel(convnext_model.convnext_config(name))
        tm = timm_backend.create(variant["timm"], meta=True, num_classes=0)
        assert sum(p.numel() for p in hf.parameters()) == sum(p.numel() for p in tm.parameters()) == variant["parameters"]


def test_generalization_models_build_from_their_real_configs():
    # Published sizes (millions): vision towers without projection, timm models without classifier.
    published = {"resnet50": 23.5, "convnext-large": 196.2, "vit-large": 303.3, "vit-mae-large": 303.3,
                 "clip-vit-large": 303.2, "siglip2-large": 316.0, "owlvit-base": 87.9}
    for name, spec in MODELS.items():
        network = build_network(name, meta=True)
        counted = sum(p.numel() for p in network.parameters())
        assert counted == spec["parameters"], name
        assert counted / 1e6 == pytest.approx(published[name], abs=0.1)


def test_giant_is_the_papers_vit_g_and_satellite_models_have_their_own_normalisation():
    cfg = dinov3_model.dinov3_config("dinov3-giant")
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.use_gated_mlp) == (1536, 40, 24, True)
    assert dinov3._PARAMETERS["dinov3-giant"] / 1e9 == pytest.approx(1.1, abs=0.05)
    sat = DINOv3("dinov3-large-sat493m", "init")
    assert (sat.mean, sat.std) == (SAT_MEAN, SAT_STD)
    assert DINOv3("dinov3-large", "init").mean == (0.485, 0.456, 0.406)
    with pytest.raises(MissingDataError, match="no released weights"):
        DINOv3("dinov3-large-cellular", "pretrained")


def test_options_are_checked(registry):
    factory = registry.model("dinov3-tiny").factory
    with pytest.raises(BrainbenchError, match="has no option 'seeed'; its options: seed"):
        factory("init", seeed=1)
    with pytest.raises(BrainbenchError, match="unknown backend 'jax'"):
        factory("init", backend="jax")
    with pytest.raises(BrainbenchError, match="unknown precision 'fp8'"):
        factory("init", precision="fp8")
    with pytest.raises(BrainbenchError, match="@init means random weights"):
        factory("init", weights="/somewhere.pth")


# -- DINOv3 ViT: layers, backends, weights ---------------------------------------------------------

def test_layers_are_the_library_hidden_states():
    model = DINOv3("dinov3-tiny", "init")
    pixels = model.preprocess(images())
    got = run_layers(model)
    with torch.inference_mode():
        expected = model.network(pixel_values=pixels, output_hidden_states=True).hidden_states
    assert_same_layers(got, list(expected), atol=0)


def meta_layers(model, size: int | None = None) -> list[torch.Tensor]:
    """Run ``model`` on two images on the meta device: shapes without memory or compute."""
    with torch.device("meta"):
        model.network = model.build().eval()
    size = size or model.image_size
    with torch.inference_mode():
        return list(model.iter_layers(torch.empty(2, 3, size, size, device="meta")))


def test_timm_and_transformers_backends_agree_on_layers_and_shapes():
    hf = DINOv3("dinov3-small", "init", image_size=64)
    tm = DINOv3("dinov3-small", "init", image_size=64, backend="timm")
    a, b = meta_layers(hf), meta_layers(tm)
    assert len(a) == len(b) == len(hf.layer_names) == len(tm.layer_names) == 13
    assert [x.shape for x in a] == [y.shape for y in b] == [torch.Size([2, 5 + 16, 384])] * 13
    assert hf.fingerprint() != tm.fingerprint()


# The 7B models are left out: they do not fit here (see the pre-flight test); their configs are tested.
# The satellite and cellular ViT-L share dinov3-large's network; timm is checked where its shapes differ.
META_CASES = ([(DINOv3, n, "transformers") for n in VARIANTS if "7b" not in n and "-sat" not in n and "cell" not in n]
              + [(DINOv3, n, "timm") for n in ("dinov3-small-plus", "dinov3-base", "dinov3-giant")]
              + [(DINOv3ConvNeXt, n, "transformers") for n in convnext.VARIANTS]
              + [(DINOv3ConvNeXt, n, "timm") for n in ("dinov3-convnext-tiny", "dinov3-convnext-large")]
              + [(GeneralizationModel, n, None) for n in MODELS if n != "siglip2-large"])  # NaFlex masks need data


@pytest.mark.parametrize("cls, name, backend", META_CASES, ids=[f"{n}-{b or 'default'}" for _, n, b in META_CASES])
def test_every_model_runs_at_its_own_resolution(cls, name, backend):
    model = cls(name, "init", **({"backend": backend} if backend else {}))
    outputs = meta_layers(model)
    assert len(outputs) == len(model.layer_names)
    side = model.image_size
    first, last = outputs[0].shape, outputs[-1].shape
    if outputs[0].ndim == 4:  # CNN: stride 4 stem, stride 32 at the end
        assert (first[0], first[2], last[2]) == (2, side // 4, side // 32)
    else:
        patch = model.config.patch_size if isinstance(model, DINOv3) else MODELS[name]["patch"]
        assert first == last and first[:2] == (2, model.num_prefix_tokens + (side // patch) ** 2)


@pytest.fixture
def tiny_swiglu(monkeypatch):
    """A test-sized SwiGLU variant (the MLP of S+, H+, 7B and the Giant)."""
    config = dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4, intermediate_size=192,
                  hidden_act="silu", use_gated_mlp=True)
    monkeypatch.setitem(VARIANTS, "dinov3-tiny-swiglu", dict(
        VARIANTS["dinov3-tiny"], config=config,
        timm=("vit_small_plus_patch16_dinov3", None, dict(embed_dim=64, depth=3, num_heads=4, mlp_ratio=3))))
    return "dinov3-tiny-swiglu"


def _original_checkpoint(name: str, path, seed: int = 3) -> list[torch.Tensor]:
    """Write a training checkpoint in the original DINOv3 naming from a random-init model; return its layers."""
    source = DINOv3(name, "init", seed=seed)
    source.load(CPU)
    state = source.network.state_dict()
    generator = torch.Generator().manual_seed(seed)
    for key in state:  # make biases, norms and LayerScales non-trivial so that a wrong mapping shows
        if key.endswith(("bias", "lambda1")) or ".norm" in key:
            state[key] = torch.randn(state[key].shape, generator=generator) * 0.3 + (1.0 if "weight" in key else 0)
    source.network.load_state_dict(state)
    original = transformers_to_original(state, source.config)
    # what DINOv3 training writes: garbage in the masked key part of the fused qkv bias
    hidden = source.config.hidden_size
    for key in [k for k in original if k.endswith("attn.qkv.bias")]:
        original[key][hidden:2 * hidden] = 5.0
    teacher = {"teacher": {**{f"backbone.{k}": v for k, v in original.items()},
                           "dino_head.mlp.0.weight": torch.zeros(2, 2)}, "iteration": torch.tensor(125000)}
    torch.save(teacher, path)
    return run_layers(source)


@pytest.mark.parametrize("variant", ["dinov3-tiny", "swiglu"])
def test_original_checkpoint_loads_identically_in_both_backends(variant, tmp_path, request):
    name = request.getfixturevalue("tiny_swiglu") if variant == "swiglu" else variant
    path = tmp_path / "teacher_checkpoint.pth"
    expected = _original_checkpoint(name, path)
    converted = DINOv3(name, "step-125000", weights=path)
    assert_same_layers(run_layers(converted), expected)
    # timm converts the same file with its own mapping: an independent check of ours
    assert_same_layers(run_layers(DINOv3(name, "step-125000", weights=path, backend="timm")), expected)


def test_named_checkpoints_are_found_under_the_weights_root(tmp_path, monkeypatch):
    (tmp_path / "dinov3-tiny").mkdir()
    expected = _original_checkpoint("dinov3-tiny", tmp_path / "dinov3-tiny" / "step-5.pth")
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    model = DINOv3("dinov3-tiny", "step-5")
    assert model.source.path == tmp_path / "dinov3-tiny" / "step-5.pth"
    assert_same_layers(run_layers(model), expected)
    with pytest.raises(MissingDataError) as info:
        DINOv3("dinov3-tiny", "step-6")
    message = str(info.value)
    assert "'step-6'" in message and str(tmp_path / "dinov3-tiny") in message and "\n" not in message


def test_safetensors_files_load_identically(tmp_path):
    from safetensors.torch import save_file

    source = DINOv3("dinov3-tiny", "init", seed=4)
    expected = run_layers(source)
    state = {k: v.contiguous() for k, v in source.network.state_dict().items()}
    save_file(state, tmp_path / "current.safetensors")
    legacy = {k.replace("model.layer.", "layer."): v for k, v in state.items()}  # transformers ≤ 4.57 names
    save_file(legacy, tmp_path / "legacy.safetensors")
    for file in ("current.safetensors", "legacy.safetensors"):
        loaded = DINOv3("dinov3-tiny", "mine", weights=tmp_path / file)
        assert_same_layers(run_layers(loaded), expected)
        assert loaded.fingerprint()["path"].endswith(file)
    timm_loaded = DINOv3("dinov3-tiny", "mine", weights=tmp_path / "current.safetensors", backend="timm")
    assert_same_layers(run_layers(timm_loaded), expected)


def test_weights_of_another_architecture_are_refused(tmp_path):
    source = DINOv3("dinov3-tiny", "init")
    source.load(CPU)
    source.network.save_pretrained(tmp_path / "tiny")
    with pytest.raises(BrainbenchError, match="not dinov3-small"):
        DINOv3("dinov3-small", "pretrained", weights=tmp_path / "tiny").load(CPU)
    original = transformers_to_original(source.network.state_dict(), source.config)
    torch.save(original, tmp_path / "tiny.pth")
    with pytest.raises(BrainbenchError, match="4 blocks of width 64.*expects 12 blocks of width 384"):
        DINOv3("dinov3-small", "other", weights=tmp_path / "tiny.pth").load(CPU)


def test_missing_weights_name_the_folder_for_every_family(tmp_path, monkeypatch, no_hf_cache):
    monkeypatch.setenv("BRAINBENCH_WEIGHTS", str(tmp_path))
    cases = [(lambda: DINOv3("dinov3-7b-sat493m", "pretrained"), "dinov3-vit7b16-pretrain-sat493m"),
             (lambda: DINOv3("dinov3-small", "pretrained", backend="timm"), "vit_small_patch16_dinov3.lvd1689m"),
             (lambda: DINOv3ConvNeXt("dinov3-convnext-large", "pretrained"), "dinov3-convnext-large-pretrain-lvd1689m"),
             (lambda: GeneralizationModel("clip-vit-large", "pretrained"), "clip-vit-large-patch14"),
             (lambda: GeneralizationModel("resnet50", "pretrained"), "resnet50.a1_in1k")]
    for build, folder in cases:
        with pytest.raises(MissingDataError) as info:
            build()
        message = str(info.value)
        assert str(tmp_path / folder) in message and "\n" not in message and "@init" in message
    with pytest.raises(MissingDataError, match="do not exist"):
        DINOv3("dinov3-tiny", "x", weights=tmp_path / "nowhere.pth")


def test_pickled_objects_are_not_loaded(tmp_path):
    import argparse

    torch.save({"model": {"cls_token": torch.zeros(1, 1, 64)}, "args": argparse.Namespace(lr=1e-3)},
               tmp_path / "bad.pth")
    with pytest.raises(BrainbenchError, match="weights_only=True"):
        DINOv3("dinov3-tiny", "x", weights=tmp_path / "bad.pth").load(CPU)


def test_preprocessing_comes_from_the_weights_folder(tmp_path):
    source = DINOv3("dinov3-tiny", "init")
    source.load(CPU)
    source.network.save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"size": {"height": 96, "width": 96}, "image_mean": [0.43, 0.411, 0.296], "image_std": [0.213, 0.156, 0.143]}))
    model = DINOv3("dinov3-tiny", "pretrained", weights=tmp_path)
    assert (model.image_size, model.mean, model.std) == (96, SAT_MEAN, SAT_STD)
    assert DINOv3("dinov3-tiny", "pretrained", weights=tmp_path, image_size=48).image_size == 48


# -- DINOv3 ConvNeXt ------------------------------------------------------------------------------

def test_convnext_layers_in_both_backends(tmp_path):
    hf = DINOv3ConvNeXt("dinov3-convnext-tiny", "init", image_size=32)
    a = run_layers(hf)
    assert len(a) == len(hf.layer_names) == 19
    assert a[0].shape == (2, 96, 8, 8) and a[-1].shape == (2, 768, 1, 1)
    with torch.inference_mode():  # the stage ends are the library's own hidden states
        stages = hf.network(pixel_values=hf.preprocess(images(size=32)), output_hidden_states=True).hidden_states
    for stage, index in zip(stages[1:], (3, 6, 15, 18)):
        torch.testing.assert_close(a[index], stage)
    tm = DINOv3ConvNeXt("dinov3-convnext-tiny", "init", image_size=32, backend="timm")
    assert [x.shape for x in meta_layers(tm)] == [x.shape for x in a]
    hf.network.save_pretrained(tmp_path / "cnx")
    assert_same_layers(run_layers(DINOv3ConvNeXt("dinov3-convnext-tiny", "pretrained", weights=tmp_path / "cnx",
                                                 image_size=32)), a)


# -- generalization models -------------------------------------------------------------------------

def test_small_generalization_models_run_at_their_real_size(tmp_path):
    from safetensors.torch import save_file

    resnet = GeneralizationModel("resnet50", "init", image_size=64)
    outputs = run_layers(resnet)
    assert len(outputs) == len(resnet.layer_names) == 17
    assert (outputs[0].shape, outputs[-1].shape) == ((2, 64, 16, 16), (2, 2048, 2, 2))
    # timm's files hold the classifier, which the headless network does not
    state = {k: v.contiguous() for k, v in resnet.network.state_dict().items()}
    state.update({"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)})
    save_file(state, tmp_path / "resnet50.safetensors")
    reloaded = GeneralizationModel("resnet50", "ft", weights=tmp_path / "resnet50.safetensors", image_size=64)
    assert_same_layers(run_layers(reloaded), outputs)


SHRUNK = {  # same classes and code paths as the real models, test-sized widths and depths
    "convnext-large": dict(config=dict(model="convnext_atto", depths=(1, 1, 1, 1)), layers=5),
    "vit-large": dict(config=dict(model="vit_tiny_patch16_224", depth=2, dynamic_img_size=True), layers=3),
    "vit-mae-large": dict(config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, patch_size=16, image_size=224, mask_ratio=0.0), layers=3),
    "clip-vit-large": dict(config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, patch_size=14, image_size=224), layers=3),
    "siglip2-large": dict(config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, patch_size=16, num_patches=256), layers=3),
}


@pytest.mark.parametrize("name", sorted(SHRUNK))
def test_large_generalization_models_run_on_test_sized_configs(name, monkeypatch, tmp_path):
    monkeypatch.setitem(MODELS, name, {**MODELS[name], **SHRUNK[name]})
    model = GeneralizationModel(name, "init", image_size=64)
    outputs = run_layers(model)
    assert len(outputs) == len(model.layer_names)
    if MODELS[name]["backend"] == "transformers":
        tokens = model.num_prefix_tokens + (64 // MODELS[name]["config"]["patch_size"]) ** 2
        assert all(o.shape == (2, tokens, 64) for o in outputs)
        model.network.save_pretrained(tmp_path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.network.state_dict().items()}, tmp_path / "model.safetensors")
    reloaded = GeneralizationModel(name, "pretrained", weights=tmp_path, image_size=64)
    assert_same_layers(run_layers(reloaded), outputs)


def _full_model(name: str):
    """The released kind of checkpoint: the whole model (text tower, detection or decoder heads included)."""
    import transformers as T

    tower = SHRUNK[name]["config"] if name in SHRUNK else dict(SHRUNK["clip-vit-large"]["config"], patch_size=32,
                                                                  image_size=768)
    small = {k: tower[k] for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")}
    if name == "vit-mae-large":
        return T.ViTMAEForPreTraining(T.ViTMAEConfig(**tower, decoder_hidden_size=32, decoder_num_hidden_layers=1,
                                                     decoder_num_attention_heads=4, decoder_intermediate_size=64)), tower
    cls, config = {"clip-vit-large": (T.CLIPModel, T.CLIPConfig), "siglip2-large": (T.Siglip2Model, T.Siglip2Config),
                   "owlvit-base": (T.OwlViTForObjectDetection, T.OwlViTConfig)}[name]
    return cls(config(vision_config=tower, text_config=small)), tower


@pytest.mark.parametrize("name", ["clip-vit-large", "siglip2-large", "owlvit-base", "vit-mae-large"])
def test_vision_towers_load_from_whole_released_models(name, monkeypatch, tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    full, tower = _full_model(name)
    monkeypatch.setitem(MODELS, name, {**MODELS[name], "config": tower, "layers": 3})
    full.save_pretrained(tmp_path / "folder")
    save_file({k: v.contiguous() for k, v in full.state_dict().items()}, tmp_path / "whole.safetensors")
    expected = full.state_dict()
    for weights in (tmp_path / "folder", tmp_path / "whole.safetensors"):
        model = GeneralizationModel(name, "pretrained", weights=weights, image_size=64)
        outputs = run_layers(model)  # every patch is there (ViT-MAE: mask_ratio 0 whatever the file says)
        assert [o.shape[1] for o in outputs] == [model.num_prefix_tokens + (64 // tower["patch_size"]) ** 2] * 3
        for key, value in model.network.state_dict().items():
            source = sorted((k for k in expected if k.endswith(key)), key=lambda k: "vision" not in k)[0]
            assert torch.equal(expected[source], value), key


def test_vit_mae_sees_every_patch_in_place(monkeypatch):
    monkeypatch.setitem(MODELS, "vit-mae-large", {**MODELS["vit-mae-large"], **SHRUNK["vit-mae-large"]})
    model = GeneralizationModel("vit-mae-large", "init", image_size=64)
    first = run_layers(model)[0]
    embeddings = model.network.embeddings
    with torch.inference_mode():
        pixels = model.preprocess(images())
        patches = embeddings.patch_embeddings(pixels)
        position = embeddings.interpolate_pos_encoding(patches, 64, 64)[:, 1:]
    torch.testing.assert_close(first[:, 1:], patches + position)


def test_siglip2_patches_match_its_image_processor(monkeypatch):
    from transformers.models.siglip2.image_processing_siglip2 import convert_image_to_patches

    monkeypatch.setitem(MODELS, "siglip2-large", {**MODELS["siglip2-large"], **SHRUNK["siglip2-large"]})
    model = GeneralizationModel("siglip2-large", "init", image_size=64)
    model.load(CPU)
    pixels = model.preprocess(images())
    expected_patches = torch.stack([convert_image_to_patches(p, 16) for p in pixels])
    shapes = torch.tensor([[4, 4], [4, 4]])
    with torch.inference_mode():
        expected = model.network(pixel_values=expected_patches, pixel_attention_mask=torch.ones(2, 16, dtype=torch.int32),
                                 spatial_shapes=shapes, output_hidden_states=True).hidden_states
        got = list(model.iter_layers(pixels))
    assert_same_layers(got, list(expected), atol=0)


# -- memory ----------------------------------------------------------------------------------------

def test_models_that_do_not_fit_are_refused_before_they_are_built():
    stimuli = ArrayStimulusSet(np.zeros((2, 32, 32, 3), np.uint8))
    for name in ("dinov3-7b", "dinov3-7b-sat493m"):
        model = DINOv3(name, "init")
        with pytest.raises(BrainbenchError) as info:
            extract(model, stimuli, device="cpu", progress=False, memory_budget=16 * 2**30)
        message = str(info.value)
        assert message.startswith(f"{name} does not fit in this machine's RAM: it needs about 25.0 GiB for its fp32 "
                                  "weights") and "--precision bf16" in message and "\n" not in message
        assert model.network is None  # refused before anything was allocated
    estimate = DINOv3("dinov3-7b", "init", precision="bf16").estimate_memory()
    assert estimate.weights == 2 * dinov3._PARAMETERS["dinov3-7b"]
    assert DINOv3("dinov3-7b", "init", image_size=448).estimate_memory().per_image > 4 * estimate.per_image

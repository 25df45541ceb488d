"""The paper's seven generalization models, through timm and transformers (vision towers only).

====================  ===========================================  =====================================
name                  weights (Hugging Face repository)            training
====================  ===========================================  =====================================
``resnet50``          ``timm/resnet50.a1_in1k``                    ImageNet-1k, supervised
``convnext-large``    ``timm/convnext_large.fb_in22k_ft_in1k``     ImageNet-22k → 1k, supervised
``vit-large``         ``timm/vit_large_patch16_224.augreg_in21k…`` ImageNet-21k → 1k, supervised
``vit-mae-large``     ``facebook/vit-mae-large``                   ImageNet-1k, masked autoencoding
``clip-vit-large``    ``openai/clip-vit-large-patch14``            WIT-400M image–text, contrastive
``siglip2-large``     ``google/siglip2-large-patch16-256``         WebLI image–text, sigmoid loss
``owlvit-base``       ``google/owlvit-base-patch32``               CLIP + detection fine-tuning
====================  ===========================================  =====================================

The paper does not say which checkpoints it used; these are the canonical ones, at ViT-L
scale where one exists. Rules as for DINOv3: ``pretrained`` from disk only
(``$BRAINBENCH_WEIGHTS/<repository name>`` or the Hugging Face cache), ``init`` from the
real config, other names from ``$BRAINBENCH_WEIGHTS/<model>/<checkpoint>``; options
``seed``, ``weights``, ``weights_dir``, ``precision``, ``image_size``, ``mean``, ``std``.

Layers: for transformers, the embedding output (``layer00``) then every block (the
library's ``hidden_states``); for the CNNs the stem then every residual / ConvNeXt block.
Classification heads, projections and the final norms are not layers; parameter counts
cover what is built (headless timm models, vision towers without projection). ViT-MAE runs
with ``mask_ratio=0`` and the identity patch order, so every patch is seen, in place.
Preprocessing follows each model's own processor (resolution, mean/std), as a whole-image
resize (no ``crop_pct`` crop: subjects saw the whole image).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch

import brainbench
from brainbench.core.errors import BrainbenchError

from . import timm_backend
from brainbench.plugins.models.base import FamilyModel, check_loading_info, conv_elements, make_factory, quiet_transformers, transformer_elements
from brainbench.plugins.models.checkpoints import unwrap
from brainbench.plugins.models.weights import WeightSource, read_state_dict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF = (0.5, 0.5, 0.5)
_L = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)

#: name → backend, network kind, repository, label, data, objective, preprocessing, config, exact parameters
MODELS: dict[str, dict] = {
    "resnet50": dict(backend="timm", kind="resnet", repo="timm/resnet50.a1_in1k", label="ResNet-50",
                     data="ImageNet-1k (1.28M labelled images)", objective="supervised classification",
                     config=dict(model="resnet50"), layers=17, largest=16,
                     parameters=23_508_032),
    "convnext-large": dict(backend="timm", kind="convnext", repo="timm/convnext_large.fb_in22k_ft_in1k",
                           label="ConvNeXt-L", data="ImageNet-22k (14M labelled images), fine-tuned on ImageNet-1k",
                           objective="supervised classification", config=dict(model="convnext_large"), layers=37,
                           largest=4 * 192 / 16, parameters=196_230_336),
    "vit-large": dict(backend="timm", kind="vit", repo="timm/vit_large_patch16_224.augreg_in21k_ft_in1k",
                      label="ViT-L/16", data="ImageNet-21k (14M labelled images), fine-tuned on ImageNet-1k",
                      objective="supervised classification", mean=HALF, std=HALF, prefix=1,
                      config=dict(model="vit_large_patch16_224", dynamic_img_size=True), layers=25, patch=16,
                      shape=(1024, 4096, 16), parameters=303_301_632),
    "vit-mae-large": dict(backend="transformers", kind="vit_mae", repo="facebook/vit-mae-large", label="ViT-MAE L/16",
                          data="ImageNet-1k (1.28M images, labels unused)", objective="masked autoencoding (MAE)",
                          prefix=1, config=dict(_L, patch_size=16, image_size=224, mask_ratio=0.0), layers=25,
                          patch=16, shape=(1024, 4096, 16), parameters=303_301_632),
    "clip-vit-large": dict(backend="transformers", kind="clip", repo="openai/clip-vit-large-patch14",
                           label="CLIP ViT-L/14", data="WIT-400M (400M image–text pairs)",
                           objective="image–text contrastive (CLIP)", mean=CLIP_MEAN, std=CLIP_STD, prefix=1,
                           config=dict(_L, patch_size=14, image_size=224, projection_dim=768, hidden_act="quick_gelu"),
                           layers=25, patch=14, shape=(1024, 4096, 16), parameters=303_179_776),
    "siglip2-large": dict(backend="transformers", kind="siglip2", repo="google/siglip2-large-patch16-256",
                          label="SigLIP2 ViT-L/16", data="WebLI (10B image–text pairs)",
                          objective="image–text sigmoid loss, captioning and self-distillation (SigLIP 2)",
                          mean=HALF, std=HALF, image_size=256, prefix=0,
                          config=dict(_L, patch_size=16, num_patches=256), layers=25, patch=16,
                          shape=(1024, 4096, 16), parameters=315_956_224),
    "owlvit-base": dict(backend="transformers", kind="owlvit", repo="google/owlvit-base-patch32",
                        label="OWL-ViT B/32", data="WIT-400M image–text pairs, then Objects365 + Visual Genome boxes",
                        objective="CLIP contrastive, then open-vocabulary detection", mean=CLIP_MEAN, std=CLIP_STD,
                        image_size=768, prefix=1,
                        config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                    num_attention_heads=12, patch_size=32, image_size=768),
                        layers=13, patch=32, shape=(768, 3072, 12), parameters=87_860_736),
}
_HF_CLASSES = {"vit_mae": ("ViTMAEConfig", "ViTMAEModel"), "clip": ("CLIPVisionConfig", "CLIPVisionModel"),
               "siglip2": ("Siglip2VisionConfig", "Siglip2VisionModel"),
               "owlvit": ("OwlViTVisionConfig", "OwlViTVisionModel")}


def hf_classes(kind: str):
    """The transformers config and model classes of a vision tower."""
    import transformers

    config_name, model_name = _HF_CLASSES[kind]
    return getattr(transformers, config_name), getattr(transformers, model_name)


def build_network(name: str, meta: bool = False) -> torch.nn.Module:
    """The network of ``name`` from its real config (random init, or on the meta device)."""
    spec = MODELS[name]
    if spec["backend"] == "timm":
        kwargs = {k: v for k, v in spec["config"].items() if k != "model"}
        return timm_backend.create(spec["config"]["model"], meta=meta, num_classes=0, **kwargs)
    config_class, model_class = hf_classes(spec["kind"])
    with torch.device("meta") if meta else contextlib.nullcontext():
        return model_class(config_class(**spec["config"]))


def _select(state: dict[str, torch.Tensor], wanted: set[str]) -> dict[str, torch.Tensor]:
    """The tensors of a sub-network held in a whole model's file.

    The sub-network's names sit under a prefix (``vision_model.`` in CLIP, ``owlvit.`` in
    OWL-ViT, ``vit.`` in ViT-MAE's pre-training model); the prefix that covers most of
    ``wanted`` wins, so that a text tower with the same inner names is not taken instead.
    """
    coverage: dict[str, int] = {}
    for key in state:
        for target in wanted:
            if key == target or key.endswith("." + target):
                prefix = key[: len(key) - len(target)]
                coverage[prefix] = coverage.get(prefix, 0) + 1
    if not coverage:
        return state
    best = max(coverage, key=lambda prefix: (coverage[prefix], "vision" in prefix, prefix == ""))
    return {k[len(best):]: v for k, v in state.items() if k.startswith(best) and k[len(best):] in wanted}


class GeneralizationModel(FamilyModel):
    """One of the paper's seven comparison models (see :data:`MODELS`)."""

    def __init__(self, name: str, checkpoint: str, **options):
        if name not in MODELS:
            raise BrainbenchError(f"unknown generalization model {name!r}; known: {', '.join(MODELS)}")
        spec = self.spec = MODELS[name]
        self.backend = spec["backend"]
        self.num_prefix_tokens = spec.get("prefix", 0)
        self.has_cls_token = self.num_prefix_tokens > 0
        release = spec["repo"].split("/", 1)[1]
        defaults = {k: spec[k] for k in ("image_size", "mean", "std") if k in spec}
        super().__init__(name, checkpoint, release=release, hub_id=spec["repo"], defaults=defaults, **options)
        self.num_parameters = spec["parameters"]

    @property
    def layer_names(self) -> list[str]:
        return [f"layer{i:02d}" for i in range(self.spec["layers"])]

    def architecture(self) -> str:
        return f"{self.spec['backend']}:{self.spec['kind']}:{sorted(self.spec['config'].items())}"

    def activation_elements(self) -> int:
        spec = self.spec
        if "shape" not in spec:  # CNN: the largest map scales with the image area
            return conv_elements(int(spec["largest"] * self.image_size**2))
        hidden, intermediate, heads = spec["shape"]
        tokens = self.num_prefix_tokens + (self.image_size // spec["patch"]) ** 2
        return transformer_elements(tokens, hidden, intermediate, heads)

    def build(self) -> torch.nn.Module:
        return build_network(self.name)

    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        spec = self.spec
        if spec["backend"] == "timm":
            skeleton = build_network(self.name, meta=True)
            state = unwrap(read_state_dict(source.weight_file()))
            state = timm_backend.drop_head(_select(state, set(skeleton.state_dict())), skeleton)
            kwargs = {k: v for k, v in spec["config"].items() if k != "model"}
            return timm_backend.load_into_meta(spec["config"]["model"], state, source.path, self.name,
                                               num_classes=0, **kwargs)
        config_class, model_class = hf_classes(spec["kind"])
        overrides = {"mask_ratio": 0.0} if spec["kind"] == "vit_mae" else {}
        with quiet_transformers():
            if source.folder_config():
                network, info = model_class.from_pretrained(source.path, local_files_only=True, dtype=torch.float32,
                                                            output_loading_info=True, **overrides)
            else:
                config = config_class(**spec["config"])
                with torch.device("meta"):
                    wanted = set(model_class(config).state_dict())
                state = _select(unwrap(read_state_dict(source.weight_file())), wanted)
                network, info = model_class.from_pretrained(None, config=config, state_dict=state,
                                                            dtype=torch.float32, output_loading_info=True)
        # a released folder holds the whole model (CLIP: the text tower too); a weights file was narrowed by _select
        check_loading_info(info, source.path, self.name, unexpected_ok=bool(source.folder_config()))
        return network

    def iter_layers(self, pixel_values: torch.Tensor) -> Iterator[torch.Tensor]:
        network, kind = self.network, self.spec["kind"]
        pixel_values = pixel_values.to(self.dtype)
        if kind == "resnet":
            yield from timm_backend.resnet_layers(network, pixel_values)
        elif kind == "convnext":
            yield from timm_backend.convnext_layers(network, pixel_values)
        elif kind == "vit":
            yield from timm_backend.vit_layers(network, pixel_values)
        else:
            yield from self._hf_hidden_states(pixel_values)

    def _hf_hidden_states(self, pixel_values: torch.Tensor):
        network, kind = self.network, self.spec["kind"]
        batch, _, height, width = pixel_values.shape
        if kind == "siglip2":  # NaFlex input: flattened (row, column, patch row, patch column, channel) patches
            p = network.config.patch_size
            rows, cols = height // p, width // p
            patches = pixel_values[:, :, : rows * p, : cols * p].reshape(batch, 3, rows, p, cols, p)
            patches = patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, rows * cols, p * p * 3)
            shapes = torch.tensor([[rows, cols]] * batch)  # on the CPU: read as Python ints
            mask = torch.ones(batch, rows * cols, dtype=torch.int32, device=pixel_values.device)
            out = network(pixel_values=patches, pixel_attention_mask=mask, spatial_shapes=shapes,
                          output_hidden_states=True)
        else:
            resize = (height, width) != (network.config.image_size,) * 2
            extra = {}
            if kind == "vit_mae":  # identity order: argsort of an increasing noise keeps every patch in place
                count = (height // network.config.patch_size) * (width // network.config.patch_size)
                extra["noise"] = torch.arange(count, device=pixel_values.device, dtype=torch.float32).expand(batch, -1)
            out = network(pixel_values=pixel_values, output_hidden_states=True, interpolate_pos_encoding=resize,
                          **extra)
        yield from out.hidden_states


@brainbench.hookimpl
def register_models(register):
    for name, spec in MODELS.items():
        register(
            name,
            make_factory(GeneralizationModel, name),
            description=f"{spec['label']} ({spec['backend']}, {spec['layers']} layers); data: {spec['data']}",
            family="generalization",
            architecture=spec["label"],
            parameters=spec["parameters"],
            layers=spec["layers"],
            training_data=spec["data"],
            objective=spec["objective"],
            image_size=spec.get("image_size", 224),
            checkpoints=["pretrained", "init", "<name> (weights on disk)"],
            source=spec["repo"],
            backends=[spec["backend"]],
        )

"""The model class of the paper's seven generalization models; their catalogue and registration
are in :mod:`brainbench.plugins.models.generalization`, which ``bench list`` reads without
importing torch."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from brainbench.core.errors import BrainbenchError
from brainbench.plugins.models import timm_backend
from brainbench.plugins.models.base import (FamilyModel, check_loading_info, conv_elements, quiet_transformers,
                                            transformer_elements)
from brainbench.plugins.models.checkpoints import unwrap
from brainbench.plugins.models.generalization import _HF_CLASSES, MODELS
from brainbench.plugins.models.weights import WeightSource, read_state_dict


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

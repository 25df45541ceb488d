"""The DINOv3 ViT model class (transformers or timm backend); its catalogue and registration are
in :mod:`brainbench.plugins.models.dinov3`, which ``bench list`` reads without importing torch."""
from __future__ import annotations

from typing import Iterator

import torch

from brainbench.core.contract.model import IMAGENET_MEAN, IMAGENET_STD
from brainbench.core.errors import BrainbenchError
from brainbench.plugins.models import timm_backend
from brainbench.plugins.models.base import (FamilyModel, check_loading_info, load_state, quiet_transformers,
                                            transformer_elements)
from brainbench.plugins.models.checkpoints import (detect_layout, original_to_transformers, rename_legacy,
                                                   transformers_to_original, unwrap)
from brainbench.plugins.models.dinov3 import _COMMON, _PARAMETERS, BACKENDS, OPTIONS, VARIANTS
from brainbench.plugins.models.weights import WeightSource, read_state_dict


def dinov3_config(name: str, **overrides):
    """The ``DINOv3ViTConfig`` of a variant (4 registers, patch 16, RoPE θ=100)."""
    from transformers import DINOv3ViTConfig

    return DINOv3ViTConfig(**{**_COMMON, **VARIANTS[name]["config"], **overrides})


def count_parameters(name: str) -> int:
    """Exact parameter count of the transformers architecture, built on the meta device."""
    from transformers import DINOv3ViTModel

    with torch.device("meta"):
        model = DINOv3ViTModel(dinov3_config(name))
    return sum(p.numel() for p in model.parameters())


def timm_arguments(name: str, qkv_bias: bool, layerscale: float | None = None) -> tuple[str, dict]:
    """timm model name and keyword arguments of a variant (``_qkvb`` when the attention has q/v biases)."""
    model, _tag, overrides = VARIANTS[name]["timm"]
    if qkv_bias and not model.startswith("vit_7b"):
        model += "_qkvb"
    kwargs = {"num_classes": 0, **overrides}
    if layerscale is not None:
        kwargs["init_values"] = layerscale
    return model, kwargs


def _bias_flags(state: dict) -> dict:
    """Which attention biases a transformers-layout state dict holds (config flags)."""
    return {f"{p}_bias": f"model.layer.0.attention.{p[0]}_proj.bias" in state for p in ("query", "key", "value")}


class DINOv3(FamilyModel):
    """A DINOv3 ViT variant (see :data:`VARIANTS`) through transformers or timm."""

    num_prefix_tokens = 5  # CLS + 4 registers
    has_cls_token = True
    OPTIONS = OPTIONS

    def __init__(self, name: str, checkpoint: str, *, backend: str = "transformers", layerscale: float | None = None,
                 **options):
        if name not in VARIANTS:
            raise BrainbenchError(f"unknown DINOv3 variant {name!r}; known: {', '.join(VARIANTS)}")
        if backend not in BACKENDS:
            raise BrainbenchError(f"unknown backend {backend!r} for {name}; choose one of {', '.join(BACKENDS)}")
        variant = VARIANTS[name]
        self.backend = backend
        self.layerscale = layerscale
        self.config = dinov3_config(name, **({} if layerscale is None else {"layerscale_value": layerscale}))
        timm_model, tag, _ = variant["timm"]
        if backend == "transformers":
            release = variant["hf"]
            hub_id = f"facebook/{release}" if release else None
        else:
            release = f"{timm_model}.{tag}" if tag else None
            hub_id = f"timm/{release}" if release else None
        defaults = {"image_size": variant.get("image_size", 224), "mean": variant.get("mean", IMAGENET_MEAN),
                    "std": variant.get("std", IMAGENET_STD)}
        super().__init__(name, checkpoint, release=release, hub_id=hub_id, defaults=defaults, **options)
        self.num_parameters = _PARAMETERS.get(name)
        self.weights_path = self.source.path if self.source is not None else None

    @property
    def layer_names(self) -> list[str]:
        return [f"layer{i:02d}" for i in range(self.config.num_hidden_layers + 1)]

    def architecture(self) -> str:
        if self.backend == "timm":
            model, kwargs = timm_arguments(self.name, self.config.query_bias, self.layerscale)
            return f"timm:{model}:{sorted(kwargs.items())}"
        return self.config.to_json_string(use_diff=False)

    def activation_elements(self) -> int:
        c = self.config
        tokens = self.num_prefix_tokens + (self.image_size // c.patch_size) ** 2
        return transformer_elements(tokens, c.hidden_size, c.intermediate_size, c.num_attention_heads, c.use_gated_mlp)

    def build(self) -> torch.nn.Module:
        if self.backend == "timm":
            model, kwargs = timm_arguments(self.name, self.config.query_bias, self.layerscale)
            return timm_backend.create(model, **kwargs)
        from transformers import DINOv3ViTModel

        return DINOv3ViTModel(self.config)

    # -- weights -------------------------------------------------------------------------------
    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        if self.backend == "transformers" and source.folder_config().get("model_type") == "dinov3_vit":
            return self._from_pretrained(source)
        state = unwrap(read_state_dict(source.weight_file()))
        layout = detect_layout(state)
        if self.backend == "timm":
            return self._timm_from_state(state, layout, source)
        if layout == "original":
            state, overrides = original_to_transformers(state, self.config)
            self.config = dinov3_config(self.name, **self._layerscale_override(), **overrides)
        elif layout == "transformers":
            state = rename_legacy(state)
            self.config = dinov3_config(self.name, **self._layerscale_override(), **_bias_flags(state))
        else:
            raise BrainbenchError(
                f"{source.path} holds {layout} weights, which the transformers backend of {self.name} cannot read; "
                f"{'use --set model.backend=timm' if layout == 'timm' else 'give an original DINOv3 or a transformers checkpoint'}"
            )
        from transformers import DINOv3ViTModel

        with quiet_transformers():
            network, info = DINOv3ViTModel.from_pretrained(None, config=self.config, state_dict=state,
                                                           dtype=torch.float32, output_loading_info=True)
        check_loading_info(info, source.path, self.name, ignore=("embeddings.mask_token",))
        return network

    def _layerscale_override(self) -> dict:
        return {} if self.layerscale is None else {"layerscale_value": self.layerscale}

    def _from_pretrained(self, source: WeightSource) -> torch.nn.Module:
        from transformers import DINOv3ViTModel

        with quiet_transformers():
            network, info = DINOv3ViTModel.from_pretrained(source.path, local_files_only=True, dtype=torch.float32,
                                                           output_loading_info=True)
        check_loading_info(info, source.path, self.name, ignore=("embeddings.mask_token",))
        c, want = network.config, self.config
        if (c.hidden_size, c.num_hidden_layers, c.use_gated_mlp) != (want.hidden_size, want.num_hidden_layers,
                                                                       want.use_gated_mlp):
            raise BrainbenchError(
                f"the weights in {source.path} are a {c.num_hidden_layers}-block ViT of width {c.hidden_size}, "
                f"not {self.name} ({want.num_hidden_layers} blocks of width {want.hidden_size})"
            )
        self.config = c
        return network

    def _timm_from_state(self, state: dict, layout: str, source: WeightSource) -> torch.nn.Module:
        from timm.models.eva import checkpoint_filter_fn

        if layout == "transformers":  # transformers → original → timm, both mappings are exact
            state = rename_legacy(state)
            state = transformers_to_original(state, dinov3_config(self.name, **_bias_flags(state)), bias_mask=False)
            layout = "original"
        if layout == "original":
            _converted, overrides = original_to_transformers(state, self.config)  # checks sizes and RoPE periods
            if overrides.get("key_bias"):
                raise BrainbenchError(f"the checkpoint {source.path} has a key bias, which timm's DINOv3 drops; "
                                      "use --set model.backend=transformers")
            qkv_bias = "blocks.0.attn.qkv.bias" in state
        elif layout == "timm":
            qkv_bias = "blocks.0.attn.q_bias" in state
        else:
            raise BrainbenchError(f"{source.path} holds no DINOv3 ViT weights that timm can read")
        model, kwargs = timm_arguments(self.name, qkv_bias, self.layerscale)
        network = timm_backend.create(model, meta=True, **kwargs)
        if layout == "original":
            state = checkpoint_filter_fn(state, network)
        load_state(network, state, source.path, self.name)
        return timm_backend.materialize(network)

    # -- forward ---------------------------------------------------------------------------------
    def iter_layers(self, pixel_values: torch.Tensor) -> Iterator[torch.Tensor]:
        network = self.network
        if self.backend == "timm":
            yield from timm_backend.vit_layers(network, pixel_values.to(self.dtype))
            return
        pixel_values = pixel_values.to(network.embeddings.patch_embeddings.weight.dtype)
        hidden = network.embeddings(pixel_values)
        position = network.rope_embeddings(pixel_values)
        yield hidden
        for block in network.model.layer:
            hidden = block(hidden, position_embeddings=position)
            yield hidden

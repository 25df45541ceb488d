"""DINOv3 ConvNeXts (distilled from ViT-7B), through ``transformers`` (default) or ``timm``.

``dinov3-convnext-{tiny,small,base,large}``: ``DINOv3ConvNextModel`` with the released
depths and widths, or timm's ``convnext_*`` with the ``dinov3_lvd1689m`` weights.
Checkpoints and options are those of :mod:`brainbench.plugins.models.dinov3` (``backend``,
``seed``, ``weights``, ``weights_dir``, ``precision``, ``image_size``, ``mean``, ``std``);
weights are a ``save_pretrained`` folder or a ``.safetensors`` file (transformers layout), or
timm's own files for ``backend=timm``.

Layers: ``layer00`` is the stem (4×4 patchify convolution + LayerNorm, stride 4), then one
layer per ConvNeXt block across the four stages (3+3+9+3 = 18 for Tiny, 3+3+27+3 = 36 for
the others), each a (batch, channels, h, w) map; pooling averages over space (no CLS token).
The final LayerNorm is not a layer, as for the ViTs.
"""
from __future__ import annotations

import os
from typing import Iterator

import torch

import brainbench
from brainbench.core.errors import BrainbenchError

from . import timm_backend
from brainbench.plugins.models.base import (COMMON_OPTIONS, FamilyModel, check_loading_info, conv_elements, make_factory,
                   quiet_transformers)
from brainbench.plugins.models.checkpoints import detect_layout, rename_legacy, unwrap
from brainbench.plugins.models.dinov3 import BACKENDS, OBJECTIVES, TRAINING_DATA
from brainbench.plugins.models.weights import WeightSource, read_state_dict

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_DEEP = [3, 3, 27, 3]
#: name → label, depths, hidden sizes, timm model, exact parameter count (transformers = timm, headless)
VARIANTS: dict[str, dict] = {
    "dinov3-convnext-tiny": dict(label="ConvNeXt-T", depths=[3, 3, 9, 3], hidden_sizes=[96, 192, 384, 768],
                                 timm="convnext_tiny", parameters=27_820_128),
    "dinov3-convnext-small": dict(label="ConvNeXt-S", depths=_DEEP, hidden_sizes=[96, 192, 384, 768],
                                  timm="convnext_small", parameters=49_454_688),
    "dinov3-convnext-base": dict(label="ConvNeXt-B", depths=_DEEP, hidden_sizes=[128, 256, 512, 1024],
                                 timm="convnext_base", parameters=87_566_464),
    "dinov3-convnext-large": dict(label="ConvNeXt-L", depths=_DEEP, hidden_sizes=[192, 384, 768, 1536],
                                  timm="convnext_large", parameters=196_230_336),
}
TIMM_TAG = "dinov3_lvd1689m"


def convnext_config(name: str):
    """The ``DINOv3ConvNextConfig`` of a variant."""
    from transformers import DINOv3ConvNextConfig

    variant = VARIANTS[name]
    return DINOv3ConvNextConfig(depths=list(variant["depths"]), hidden_sizes=list(variant["hidden_sizes"]))


def hub_folder(name: str) -> str:
    """The released Hugging Face folder, e.g. ``dinov3-convnext-tiny-pretrain-lvd1689m``."""
    return f"{name}-pretrain-lvd1689m"


class DINOv3ConvNeXt(FamilyModel):
    """A DINOv3 ConvNeXt through transformers or timm; one layer per block."""

    OPTIONS = COMMON_OPTIONS + ("backend",)

    def __init__(self, name: str, checkpoint: str, *, backend: str = "transformers", **options):
        if name not in VARIANTS:
            raise BrainbenchError(f"unknown DINOv3 ConvNeXt {name!r}; known: {', '.join(VARIANTS)}")
        if backend not in BACKENDS:
            raise BrainbenchError(f"unknown backend {backend!r} for {name}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.variant = VARIANTS[name]
        self.config = convnext_config(name)
        if backend == "transformers":
            release, hub_id = hub_folder(name), f"facebook/{hub_folder(name)}"
        else:
            release = f"{self.variant['timm']}.{TIMM_TAG}"
            hub_id = f"timm/{release}"
        super().__init__(name, checkpoint, release=release, hub_id=hub_id, **options)
        self.num_parameters = self.variant["parameters"]

    @property
    def layer_names(self) -> list[str]:
        return [f"layer{i:02d}" for i in range(sum(self.variant["depths"]) + 1)]

    def architecture(self) -> str:
        if self.backend == "timm":
            return f"timm:{self.variant['timm']}:num_classes=0"
        return self.config.to_json_string(use_diff=False)

    def activation_elements(self) -> int:
        positions = (self.image_size // 4) ** 2
        return conv_elements(4 * self.variant["hidden_sizes"][0] * positions)

    def build(self) -> torch.nn.Module:
        if self.backend == "timm":
            return timm_backend.create(self.variant["timm"], num_classes=0)
        from transformers import DINOv3ConvNextModel

        return DINOv3ConvNextModel(self.config)

    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        if self.backend == "timm":
            state = timm_backend.drop_head(unwrap(read_state_dict(source.weight_file())),
                                           timm_backend.create(self.variant["timm"], meta=True, num_classes=0))
            return timm_backend.load_into_meta(self.variant["timm"], state, source.path, self.name, num_classes=0)
        from transformers import DINOv3ConvNextModel

        with quiet_transformers():
            if source.folder_config().get("model_type") == "dinov3_convnext":
                network, info = DINOv3ConvNextModel.from_pretrained(source.path, local_files_only=True,
                                                                    dtype=torch.float32, output_loading_info=True)
            else:
                state = unwrap(read_state_dict(source.weight_file()))
                if detect_layout(state) != "transformers":
                    raise BrainbenchError(
                        f"{source.path} does not hold transformers DINOv3ConvNextModel weights; for timm's files use "
                        "--set model.backend=timm"
                    )
                network, info = DINOv3ConvNextModel.from_pretrained(None, config=self.config,
                                                                    state_dict=rename_legacy(state),
                                                                    dtype=torch.float32, output_loading_info=True)
        check_loading_info(info, source.path, self.name)
        if list(network.config.hidden_sizes) != list(self.variant["hidden_sizes"]):
            raise BrainbenchError(f"the weights in {source.path} are a ConvNeXt of widths "
                                  f"{network.config.hidden_sizes}, not {self.name}")
        return network

    def iter_layers(self, pixel_values: torch.Tensor) -> Iterator[torch.Tensor]:
        pixel_values = pixel_values.to(self.dtype)
        if self.backend == "timm":
            yield from timm_backend.convnext_layers(self.network, pixel_values)
            return
        x = pixel_values
        for index, stage in enumerate(self.network.model.stages):
            for layer in stage.downsample_layers:
                x = layer(x)
            if index == 0:
                yield x
            for block in stage.layers:
                x = block(x)
                yield x


@brainbench.hookimpl
def register_models(register):
    for name, variant in VARIANTS.items():
        register(
            name,
            make_factory(DINOv3ConvNeXt, name),
            description=f"DINOv3 {variant['label']} (distilled), stages {variant['depths']} × "
            f"{variant['hidden_sizes']}; data: LVD-1689M",
            family="dinov3",
            architecture=variant["label"],
            parameters=variant["parameters"],
            layers=sum(variant["depths"]) + 1,
            training_data=TRAINING_DATA["lvd"],
            objective=OBJECTIVES["distilled"],
            image_size=224,
            checkpoints=["pretrained", "init", "<name> (weights on disk)"],
            source=f"facebook/{hub_folder(name)}",
            backends=list(BACKENDS),
            timm_model=f"{variant['timm']}.{TIMM_TAG}",
        )

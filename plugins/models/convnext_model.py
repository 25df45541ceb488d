"""The DINOv3 ConvNeXt model class; its catalogue and registration are in
:mod:`brainbench.plugins.models.convnext`, which ``bench list`` reads without importing torch."""
from __future__ import annotations

from typing import Iterator

import torch

from brainbench.core.errors import BrainbenchError
from brainbench.plugins.models import timm_backend
from brainbench.plugins.models.base import FamilyModel, check_loading_info, conv_elements, quiet_transformers
from brainbench.plugins.models.checkpoints import detect_layout, rename_legacy, unwrap
from brainbench.plugins.models.convnext import BACKENDS, OPTIONS, TIMM_TAG, VARIANTS, hub_folder
from brainbench.plugins.models.weights import WeightSource, read_state_dict


def convnext_config(name: str):
    """The ``DINOv3ConvNextConfig`` of a variant."""
    from transformers import DINOv3ConvNextConfig

    variant = VARIANTS[name]
    return DINOv3ConvNextConfig(depths=list(variant["depths"]), hidden_sizes=list(variant["hidden_sizes"]))


class DINOv3ConvNeXt(FamilyModel):
    """A DINOv3 ConvNeXt through transformers or timm; one layer per block."""

    OPTIONS = OPTIONS

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

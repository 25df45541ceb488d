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

import brainbench
from brainbench.plugins.models.dinov3 import BACKENDS, OBJECTIVES, TRAINING_DATA
from brainbench.plugins.models.factory import COMMON_OPTIONS, make_factory, moved_names

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
#: options of every DINOv3 ConvNeXt (``--set model.OPTION=VALUE``)
OPTIONS = COMMON_OPTIONS + ("backend",)
#: the model class, in its own module: listing the models must not import torch
MODEL_CLASS = "brainbench.plugins.models.convnext_model:DINOv3ConvNeXt"


def hub_folder(name: str) -> str:
    """The released Hugging Face folder, e.g. ``dinov3-convnext-tiny-pretrain-lvd1689m``."""
    return f"{name}-pretrain-lvd1689m"


@brainbench.hookimpl
def register_models(register):
    for name, variant in VARIANTS.items():
        register(
            name,
            make_factory(MODEL_CLASS, name, options=OPTIONS),
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


# The model classes moved out of this torch-free hook module in 0.2; old imports still work until 0.3.
__getattr__ = moved_names(__name__, "brainbench.plugins.models.convnext_model",
                          ("DINOv3ConvNeXt", "convnext_config"))

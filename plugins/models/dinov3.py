"""DINOv3 vision transformers, through ``transformers`` (default) or ``timm``.

Variants (see :data:`VARIANTS`): the released ViT-S/16, S+/16, B/16, L/16, H+/16 and 7B/16
trained on LVD-1689M; the satellite ViT-L/16 and 7B/16 (SAT-493M, with their own
normalisation); ``dinov3-giant``, the paper's 1.1B "Giant", defined with the paper's ViT-g
shape (1536 wide, 40 blocks, 24 heads, SwiGLU MLP) and never released; a slot for the
paper's ViT-L trained on cellular images (ExtendedCHAMMI, not released); and
``dinov3-tiny``, a test-sized architecture; ``tiny-dino``, a small ViT that ``bench trajectory
make`` trains with DINO on CPU (:mod:`brainbench.plugins.models.training`), whose checkpoints form a real
training trajectory. The ConvNeXts are in
:mod:`brainbench.plugins.models.convnext`.

Checkpoints (``NAME@CHECKPOINT``, see :mod:`brainbench.plugins.models.weights`):
``pretrained`` (default; released weights from disk only: ``$BRAINBENCH_WEIGHTS/<hf-folder>``,
e.g. ``dinov3-vits16-pretrain-lvd1689m``, or the Hugging Face cache), ``init`` (the real
architecture with random weights: ``torch.manual_seed(seed)``, option ``seed``, default 0;
the published config's LayerScale is 1.0 while DINOv3 training starts it at 1e-5, option
``layerscale``), and any other name read from ``$BRAINBENCH_WEIGHTS/<model>/<checkpoint>.pth``
or ``--set model.weights=PATH``. Weights may be a ``save_pretrained`` folder, a
``.safetensors`` file or an original DINOv3 ``.pth`` (converted on load, see
:mod:`brainbench.plugins.models.checkpoints`).

Layers: ``layer00`` is the patch embedding output (CLS + 4 registers + patches), then
``layer01``… one per transformer block, before the final LayerNorm. Token pooling is done by
``brainbench.core.pipeline.activations`` (default: mean of patch tokens, registers excluded).

Options: ``backend`` (``transformers`` | ``timm``), ``seed``, ``layerscale``, ``weights``,
``weights_dir``, ``precision``, ``image_size``, ``mean``, ``std``.
"""
from __future__ import annotations

import os

import brainbench
from brainbench.core.contract.model import IMAGENET_MEAN, IMAGENET_STD
from brainbench.plugins.models.factory import COMMON_OPTIONS, make_factory, moved_names

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SAT_MEAN = (0.430, 0.411, 0.296)
SAT_STD = (0.213, 0.156, 0.143)
BACKENDS = ("transformers", "timm")
TRAINING_DATA = {
    "lvd": "LVD-1689M (1.7B curated web images, human-centric)",
    "sat": "SAT-493M (493M satellite images, 0.6 m resolution)",
    "cell": "ExtendedCHAMMI (cellular microscopy; the paper's own training, weights not released)",
    "paper": "LVD-1689M (the paper's own from-scratch training, weights not released)",
    "none": "none (test architecture)",
    "skimage": "scikit-image's bundled photographs (16 images, multi-crop; trained by `bench trajectory make`)",
}
OBJECTIVES = {
    "distilled": "self-supervised (DINOv3), distilled from ViT-7B",
    "ssl": "self-supervised (DINOv3: DINO + iBOT + KoLeo, Gram anchoring)",
    "dino": "self-supervised (DINO self-distillation: EMA teacher, multi-crop, centring + sharpening)",
    "none": "none",
}

_GELU = {"hidden_act": "gelu", "use_gated_mlp": False}
_SWIGLU = {"hidden_act": "silu", "use_gated_mlp": True}
_S = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536)
_L = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, **_GELU)
_7B = dict(hidden_size=4096, num_hidden_layers=40, num_attention_heads=32, intermediate_size=8192,
           query_bias=False, value_bias=False, **_SWIGLU)
#: name → hf (released folder, None: not released), label, timm (model, tag, overrides), data, objective, config
VARIANTS: dict[str, dict] = {
    "dinov3-small": dict(hf="dinov3-vits16-pretrain-lvd1689m", label="ViT-S/16", data="lvd", objective="distilled",
                         timm=("vit_small_patch16_dinov3", "lvd1689m", {}), config=dict(**_S, **_GELU)),
    "dinov3-small-plus": dict(hf="dinov3-vits16plus-pretrain-lvd1689m", label="ViT-S+/16", data="lvd",
                              objective="distilled", timm=("vit_small_plus_patch16_dinov3", "lvd1689m", {}),
                              config=dict(**_S, **_SWIGLU)),
    "dinov3-base": dict(hf="dinov3-vitb16-pretrain-lvd1689m", label="ViT-B/16", data="lvd", objective="distilled",
                        timm=("vit_base_patch16_dinov3", "lvd1689m", {}),
                        config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                    intermediate_size=3072, **_GELU)),
    "dinov3-large": dict(hf="dinov3-vitl16-pretrain-lvd1689m", label="ViT-L/16", data="lvd", objective="distilled",
                         timm=("vit_large_patch16_dinov3", "lvd1689m", {}), config=dict(_L)),
    "dinov3-huge-plus": dict(hf="dinov3-vith16plus-pretrain-lvd1689m", label="ViT-H+/16", data="lvd",
                             objective="distilled", timm=("vit_huge_plus_patch16_dinov3", "lvd1689m", {}),
                             config=dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=20,
                                         intermediate_size=5120, **_SWIGLU)),
    "dinov3-7b": dict(hf="dinov3-vit7b16-pretrain-lvd1689m", label="ViT-7B/16", data="lvd", objective="ssl",
                      timm=("vit_7b_patch16_dinov3", "lvd1689m", {}), config=dict(_7B)),
    # The paper's 1.1B "Giant": DINOv2's ViT-g shape; DINOv3 released no such model.
    "dinov3-giant": dict(hf=None, label="ViT-g/16 (the paper's Giant)", data="paper", objective="ssl",
                         timm=("vit_huge_plus_patch16_dinov3", None,
                               dict(embed_dim=1536, depth=40, num_heads=24, mlp_ratio=8 / 3)),
                         config=dict(hidden_size=1536, num_hidden_layers=40, num_attention_heads=24,
                                     intermediate_size=4096, **_SWIGLU)),
    "dinov3-large-sat493m": dict(hf="dinov3-vitl16-pretrain-sat493m", label="ViT-L/16 satellite", data="sat",
                                 objective="distilled", mean=SAT_MEAN, std=SAT_STD,
                                 timm=("vit_large_patch16_dinov3", "sat493m", {}), config=dict(_L)),
    "dinov3-7b-sat493m": dict(hf="dinov3-vit7b16-pretrain-sat493m", label="ViT-7B/16 satellite", data="sat",
                              objective="ssl", mean=SAT_MEAN, std=SAT_STD,
                              timm=("vit_7b_patch16_dinov3", "sat493m", {}), config=dict(_7B)),
    # Slot for the paper's ViT-L trained on cellular images; normalisation: ImageNet unless given.
    "dinov3-large-cellular": dict(hf=None, label="ViT-L/16 cellular", data="cell", objective="ssl",
                                  timm=("vit_large_patch16_dinov3", None, {}), config=dict(_L)),
    # A test-sized architecture (real DINOv3 classes, tiny shapes) for fast tests and smoke runs.
    "dinov3-tiny": dict(hf=None, label="ViT-tiny/16 (test size)", image_size=64, data="none", objective="none",
                        timm=("vit_small_patch16_dinov3", None, dict(embed_dim=64, depth=4, num_heads=4)),
                        config=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                                    intermediate_size=256, **_GELU)),
    # A tiny DINO trained here on CPU, so that trajectories run on real learning (brainbench.plugins.models.training).
    "tiny-dino": dict(hf=None, label="ViT-tiny/16 trained by brainbench (DINO)", image_size=64, data="skimage",
                      objective="dino",
                      timm=("vit_small_patch16_dinov3", None, dict(embed_dim=96, depth=6, num_heads=3)),
                      config=dict(hidden_size=96, num_hidden_layers=6, num_attention_heads=3,
                                  intermediate_size=384, **_GELU)),
}
_COMMON = dict(patch_size=16, num_register_tokens=4, rope_theta=100.0, layer_norm_eps=1e-5)
#: options of every DINOv3 ViT (``--set model.OPTION=VALUE``)
OPTIONS = COMMON_OPTIONS + ("backend", "layerscale")
#: the model class, in its own module: listing the models must not import torch
MODEL_CLASS = "brainbench.plugins.models.dinov3_model:DINOv3"


def _timm_label(timm: tuple) -> str:
    model, tag, overrides = timm
    label = model + (f".{tag}" if tag else "")
    return label + (f" with {', '.join(f'{k}={v:.4g}' for k, v in overrides.items())}" if overrides else "")


@brainbench.hookimpl
def register_models(register):
    for name, variant in VARIANTS.items():
        cfg = variant["config"]
        data = TRAINING_DATA[variant["data"]]
        released = variant["hf"] is not None
        register(
            name,
            make_factory(MODEL_CLASS, name, options=OPTIONS),
            description=f"DINOv3 {variant['label']}, {cfg['num_hidden_layers']} blocks × {cfg['hidden_size']} "
            f"({'SwiGLU' if cfg['use_gated_mlp'] else 'GELU'} MLP), 4 registers; data: {data.split(' (')[0]}"
            + ("" if released else "; no released weights"),
            family="dinov3",
            architecture=variant["label"],
            parameters=_PARAMETERS[name],
            layers=cfg["num_hidden_layers"] + 1,
            training_data=data,
            objective=OBJECTIVES[variant["objective"]],
            image_size=variant.get("image_size", 224),
            mean=list(variant.get("mean", IMAGENET_MEAN)),
            std=list(variant.get("std", IMAGENET_STD)),
            checkpoints=["pretrained", "init", "<name> (weights on disk)"] if released
            else ["init", "<name> (weights on disk)"],
            source=f"facebook/{variant['hf']}" if released else "brainbench (transformers DINOv3ViTConfig)",
            backends=list(BACKENDS),
            timm_model=_timm_label(variant["timm"]),
        )


# Exact counts of the transformers architectures (computed once on the meta device by
# dinov3_model.count_parameters; tests/test_models.py recomputes them).
_PARAMETERS = {
    "dinov3-small": 21_596_544,
    "dinov3-small-plus": 28_692_864,
    "dinov3-base": 85_660_416,
    "dinov3-large": 303_129_600,
    "dinov3-huge-plus": 840_592_640,
    "dinov3-7b": 6_716_035_072,
    "dinov3-giant": 1_134_597_632,
    "dinov3-large-sat493m": 303_129_600,
    "dinov3-7b-sat493m": 6_716_035_072,
    "dinov3-large-cellular": 303_129_600,
    "dinov3-tiny": 249_920,
    "tiny-dino": 746_208,
}


# The model classes moved out of this torch-free hook module in 0.2; old imports still work until 0.3.
__getattr__ = moved_names(__name__, "brainbench.plugins.models.dinov3_model",
                          ("DINOv3", "dinov3_config", "timm_arguments"))

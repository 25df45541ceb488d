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

import os

import brainbench
from brainbench.plugins.models.factory import COMMON_OPTIONS, make_factory, moved_names

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
#: the model class, in its own module: listing the models must not import torch
MODEL_CLASS = "brainbench.plugins.models.generalization_model:GeneralizationModel"


@brainbench.hookimpl
def register_models(register):
    for name, spec in MODELS.items():
        register(
            name,
            make_factory(MODEL_CLASS, name, options=COMMON_OPTIONS),
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


# The model classes moved out of this torch-free hook module in 0.2; old imports still work until 0.3.
__getattr__ = moved_names(__name__, "brainbench.plugins.models.generalization_model",
                          ("GeneralizationModel", "build_network", "hf_classes"))

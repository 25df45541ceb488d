"""``timm:NAME[.TAG]``: any timm model, built by ``timm.create_model``.

- Names are checked with ``timm.is_model``; a name without a tag gets timm's default tag
  (``timm:resnet18`` is ``resnet18.a1_in1k``), as ``timm.create_model`` does.
- Weights (``pretrained``): the Hugging Face folder of ``pretrained_cfg.hf_hub_id``
  (``timm/NAME.TAG``) in ``$BRAINBENCH_WEIGHTS/NAME.TAG`` or in the Hugging Face cache, or
  ``--set model.weights=PATH``; loaded by timm itself (``pretrained_cfg_overlay=dict(file=…)``),
  so its own checkpoint filters apply.
- Preprocessing: ``timm.data.resolve_data_config`` and ``timm.data.create_transform`` (eval
  transform: resize by ``crop_pct``, centre crop, the model's mean/std); the resolved config
  enters the cache key.
- The network is headless (``num_classes=0``: the classifier is not built, and timm leaves it out
  when it loads weights), as for the built-in timm models.
- Layers: the modules of ``model.feature_info`` (e.g. ``act1, layer1…layer4`` for a ResNet,
  ``blocks.0…`` for a ViT, ``stages.0…`` for a ConvNeXt), read with forward hooks while
  ``forward_features`` runs. Prefix tokens (CLS, registers) from ``model.num_prefix_tokens``.
"""
from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import torch

from brainbench.core.errors import BrainbenchError

from .base import COMMON_OPTIONS
from .named_model import NamedModel, count_parameters, named_factory
from .weights import WeightSource

#: timm tag fragments → the training data they name (timm states data only through its tags)
TAG_DATA = (("in22k", "ImageNet-22k"), ("in21k", "ImageNet-21k"), ("in12k", "ImageNet-12k (timm's subset of 22k)"),
            ("in1k", "ImageNet-1k"), ("laion2b", "LAION-2B"), ("laion400m", "LAION-400M"),
            ("openai", "OpenAI CLIP WIT-400M"), ("lvd1689m", "LVD-1689M"), ("lvd142m", "LVD-142M"),
            ("sat493m", "SAT-493M"), ("jft", "JFT"), ("webli", "WebLI"), ("datacomp", "DataComp"))
TAG_OBJECTIVE = (("clip", "contrastive image-text (CLIP)"), ("siglip", "sigmoid image-text (SigLIP)"),
                 ("dino", "self-supervised (DINO family)"), ("mae", "masked autoencoding (MAE)"),
                 ("in1k", "supervised classification"), ("in21k", "supervised classification"),
                 ("in22k", "supervised classification"), ("in12k", "supervised classification"))


def _from_tag(tag: str, table: tuple) -> str | None:
    found = [label for key, label in table if key in (tag or "")]
    return ", then ".join(dict.fromkeys(found)) if found else None


def _meta_network(name: str) -> torch.nn.Module:
    import timm

    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, num_classes=0)


def _layers(network: torch.nn.Module) -> list[str]:
    info = getattr(network, "feature_info", None)
    names = [f["module"] for f in info] if info else []
    if not names:  # no feature_info: the top-level children that hold parameters
        names = [n for n, m in network.named_children() if any(True for _ in m.parameters())]
    return names


class TimmModel(NamedModel):
    """A timm model by name (see the module docstring)."""

    backend = "timm"
    OPTIONS = COMMON_OPTIONS

    def __init__(self, name: str, checkpoint: str, *, timm_name: str, **options):
        import timm

        self.timm_name = timm_name
        meta = _meta_network(timm_name)
        self.layers = _layers(meta)
        self.num_parameters = count_parameters(meta)
        self.num_prefix_tokens = int(getattr(meta, "num_prefix_tokens", 0) or 0)
        self.has_cls_token = getattr(meta, "cls_token", None) is not None
        self.data_config = timm.data.resolve_data_config({}, model=meta)
        hub_id = meta.pretrained_cfg.get("hf_hub_id")
        super().__init__(name, checkpoint, release=timm_name, hub_id=hub_id,
                         defaults={"image_size": self.data_config["input_size"][-1], "mean": self.data_config["mean"],
                                   "std": self.data_config["std"]}, **options)
        # --set model.image_size/mean/std (or a weights folder's config) override timm's own values
        size = self.image_size
        self.data_config.update(input_size=(3, size, size), mean=self.mean, std=self.std)
        self.transform = timm.data.create_transform(**self.data_config, is_training=False)

    def architecture(self) -> str:
        return f"timm:{self.timm_name}"

    def build(self) -> torch.nn.Module:
        import timm

        return timm.create_model(self.timm_name, pretrained=False, num_classes=0)

    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        import timm

        try:
            return timm.create_model(self.timm_name, pretrained=True, num_classes=0,
                                     pretrained_cfg_overlay=dict(file=str(source.weight_file())))
        except RuntimeError as exc:
            detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line or "Missing" in line),
                          str(exc).splitlines()[0])
            raise BrainbenchError(f"the weights in {source.path} do not fit {self.name}: {detail.rstrip('.')}") from None

    def preprocessing(self) -> dict[str, Any]:
        return {"timm_data_config": {k: list(v) if isinstance(v, tuple) else v for k, v in self.data_config.items()}}

    def preprocess(self, images) -> torch.Tensor:
        from PIL import Image

        out = []
        for image in images:
            image = np.asarray(image)
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            out.append(self.transform(Image.fromarray(np.ascontiguousarray(image[:, :, :3]))))
        return torch.stack(out)

    def run(self, pixel_values: torch.Tensor) -> None:
        self.network.forward_features(pixel_values)


def resolve(rest: str) -> tuple:
    """``timm:REST`` → (factory, description, metadata), or a one-sentence error for an unknown name."""
    import timm
    from timm.models import get_arch_name, get_pretrained_cfg, model_entrypoint

    if not timm.is_model(rest):
        close = difflib.get_close_matches(rest, timm.list_models(pretrained=True) + timm.list_models(), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(f'timm:{c}') for c in close)}?" if close else \
            " (see timm.list_models())"
        raise BrainbenchError(f"timm {timm.__version__} has no model {rest!r}{hint}")
    cfg = get_pretrained_cfg(rest)
    tag = cfg.tag if cfg is not None else None
    full = f"{get_arch_name(rest)}.{tag}" if tag else rest
    meta = _meta_network(full)
    family = model_entrypoint(get_arch_name(rest)).__module__.rsplit(".", 1)[-1]
    name = f"timm:{rest}"
    metadata = dict(
        family=family, architecture=get_arch_name(rest), parameters=count_parameters(meta), layers=len(_layers(meta)),
        training_data=_from_tag(tag, TAG_DATA) or f"not stated by timm (tag {tag or 'none'})",
        objective=_from_tag(tag, TAG_OBJECTIVE) or f"not stated by timm (tag {tag or 'none'})",
        source=f"https://huggingface.co/{cfg.hf_hub_id}" if cfg is not None and cfg.hf_hub_id else "timm",
        image_size=int(meta.pretrained_cfg.get("input_size", (3, 224, 224))[-1]),
        checkpoints=["pretrained", "init"], library="timm", timm_model=full,
    )
    return named_factory(TimmModel, name, timm_name=full), f"timm {full} ({family})", metadata

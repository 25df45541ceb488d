"""``torchvision:NAME[.WEIGHTS]``: any torchvision classification model, built by ``torchvision.models.get_model``.

- Names are those of ``torchvision.models.list_models(module=torchvision.models)``; ``.WEIGHTS``
  picks a member of the model's weights enum (``torchvision:resnet50.IMAGENET1K_V2``), default ``DEFAULT``.
- Weights (``pretrained``): the enum's file (``resnet18-f37072fd.pth``, the last part of its URL) in
  ``$BRAINBENCH_WEIGHTS/torchvision/`` or torch's own hub cache (``~/.cache/torch/hub/checkpoints/``,
  where ``torchvision`` downloads it), or ``--set model.weights=PATH``; read with ``weights_only=True``.
- Preprocessing: the enum's ``transforms()`` (resize, centre crop, mean/std, interpolation), which
  enter the cache key; ``@init`` uses the same transforms.
- Layers: the model's stages: ``layer1…layer4`` for ResNets, else the children of its largest
  ``Sequential``/``ModuleList`` within two levels that hold parameters (``features.N`` for VGG,
  ConvNeXt, EfficientNet, MobileNet; ``encoder.layers.encoder_layer_N`` for ViT), read with
  forward hooks. A ViT's class token is recognised (``class_token``).
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import torch

from brainbench.core.errors import BrainbenchError, MissingDataError

from .base import COMMON_OPTIONS, load_state
from .named_model import NamedModel, count_parameters, named_factory, prefix_tokens
from .checkpoints import unwrap
from .weights import WeightSource, read_state_dict, weights_root


def _split(rest: str) -> tuple[str, str | None]:
    name, dot, tag = rest.partition(".")
    return name, tag if dot else None


def _weights_enum(name: str, tag: str | None):
    from torchvision.models import get_model_weights

    enum = get_model_weights(name)
    if tag is None:
        return enum.DEFAULT
    try:
        return enum[tag]
    except KeyError:
        raise BrainbenchError(f"torchvision model {name!r} has no weights {tag!r}; its weights: "
                              f"{', '.join(w.name for w in enum)}") from None


def _meta_network(name: str) -> torch.nn.Module:
    from torchvision.models import get_model

    with torch.device("meta"):
        return get_model(name, weights=None)


_HEADS = ("classifier", "head", "heads", "fc")


def stages(network: torch.nn.Module) -> list[str]:
    """The submodules that are the model's stages (see the module docstring)."""
    children = dict(network.named_children())
    resnet = [n for n in ("layer1", "layer2", "layer3", "layer4") if n in children]
    if len(resnet) == 4:
        return resnet
    containers = [(name, module) for name, module in network.named_modules()
                  if name and name.count(".") <= 1 and isinstance(module, (torch.nn.Sequential, torch.nn.ModuleList))
                  and name.split(".")[0] not in _HEADS]
    if not containers:
        return [n for n, m in children.items() if any(True for _ in m.parameters())]
    name, best = max(containers, key=lambda item: count_parameters(item[1]))
    return [f"{name}.{n}" for n, m in best.named_children() if any(True for _ in m.parameters())]


def weight_file(weights, weights_dir=None) -> Path | None:
    """The enum's file in ``$BRAINBENCH_WEIGHTS/torchvision/`` (or the weights root) or torch's hub cache."""
    file = Path(weights.url).name
    root = weights_root(weights_dir)
    candidates = [root / "torchvision" / file, root / file] if root is not None else []
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / file)
    return next((c for c in candidates if c.is_file()), None)


class TorchvisionModel(NamedModel):
    """A torchvision classification model by name (see the module docstring)."""

    backend = "torchvision"
    OPTIONS = COMMON_OPTIONS

    def __init__(self, name: str, checkpoint: str, *, arch: str, tag: str | None, weights=None, weights_dir=None,
                 **options):
        self.arch = arch
        self.weights_enum = _weights_enum(arch, tag)
        meta = _meta_network(arch)
        self.layers = stages(meta)
        self.num_parameters = count_parameters(meta)
        self.num_prefix_tokens, self.has_cls_token = prefix_tokens(meta)
        if checkpoint == "pretrained" and weights is None:
            weights = weight_file(self.weights_enum, weights_dir)
            if weights is None:
                root = weights_root(weights_dir)
                where = root / "torchvision" if root is not None else "$BRAINBENCH_WEIGHTS/torchvision"
                raise MissingDataError(
                    f"no weights for {name}: put {Path(self.weights_enum.url).name} (from {self.weights_enum.url}) in "
                    f"{where}/ or {Path(torch.hub.get_dir()) / 'checkpoints'}/, or use {name}@init for random weights")
        self.transform = self.weights_enum.transforms()
        t = self.transform
        super().__init__(name, checkpoint, weights=weights, weights_dir=weights_dir,
                         defaults={"image_size": t.crop_size[0], "mean": t.mean, "std": t.std}, **options)
        t.crop_size, t.mean, t.std = [self.image_size], list(self.mean), list(self.std)

    def library_versions(self) -> dict[str, str]:
        import torchvision

        return {"torchvision": torchvision.__version__}

    def architecture(self) -> str:
        return f"torchvision:{self.arch}"

    def build(self) -> torch.nn.Module:
        from torchvision.models import get_model

        return get_model(self.arch, weights=None)

    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        with torch.device("meta"):
            network = self.build()
        load_state(network, unwrap(read_state_dict(source.weight_file())), source.path, self.name)
        return network

    def preprocessing(self) -> dict[str, Any]:
        t = self.transform
        return {"torchvision_transforms": {"crop_size": list(t.crop_size), "resize_size": list(t.resize_size),
                                           "mean": list(t.mean), "std": list(t.std),
                                           "interpolation": t.interpolation.value, "antialias": t.antialias}}

    def preprocess(self, images) -> torch.Tensor:
        import numpy as np

        out = []
        for image in images:
            image = np.asarray(image)
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            out.append(self.transform(torch.from_numpy(np.ascontiguousarray(image[:, :, :3])).permute(2, 0, 1)))
        return torch.stack(out)


def resolve(rest: str) -> tuple:
    """``torchvision:NAME[.WEIGHTS]`` → (factory, description, metadata), or a one-sentence error."""
    import torchvision
    from torchvision.models import list_models

    arch, tag = _split(rest)
    known = list_models(module=torchvision.models)
    if arch not in known:
        close = difflib.get_close_matches(arch, known, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(f'torchvision:{c}') for c in close)}?" if close else ""
        raise BrainbenchError(f"torchvision {torchvision.__version__} has no classification model {arch!r}{hint}")
    weights = _weights_enum(arch, tag)
    meta = _meta_network(arch)
    datasets = list(weights.meta.get("_metrics", {}))
    name = f"torchvision:{rest}"
    metadata = dict(family=arch.rstrip("0123456789_").split("_")[0] or arch, architecture=arch,
                    parameters=count_parameters(meta), layers=len(stages(meta)),
                    training_data=f"{', '.join(datasets) or 'not stated'} (torchvision weights {weights.name})",
                    objective="supervised classification", source=weights.url,
                    image_size=int(weights.transforms().crop_size[0]), checkpoints=["pretrained", "init"],
                    library="torchvision")
    return named_factory(TorchvisionModel, name, arch=arch, tag=tag), f"torchvision {arch} ({weights.name})", metadata

"""timm networks: building on the meta device, loading weights, and running them block by block.

The layer generators yield exactly what ``forward_features`` computes, one block at a time:

- ViTs (timm ``VisionTransformer`` and ``Eva``, which holds the DINOv3 ViTs): the tokens after
  the patch embedding, position embedding and prefix tokens (layer 0), then every block;
- ConvNeXt: the stem, then every block of every stage;
- ResNet: the stem (conv, norm, ReLU, max-pool), then every bottleneck block.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from brainbench.core.errors import BrainbenchError

from brainbench.plugins.models.base import load_state


def create(name: str, *, meta: bool = False, **kwargs) -> torch.nn.Module:
    """``timm.create_model(name, pretrained=False, **kwargs)``, on the meta device when ``meta``."""
    import timm

    with torch.device("meta") if meta else contextlib.nullcontext():
        return timm.create_model(name, pretrained=False, **kwargs)


def materialize(model: torch.nn.Module) -> torch.nn.Module:
    """Give buffers left on the meta device (computed, non-persistent ones) CPU storage and recompute them."""
    from timm.models._manipulate import reinit_non_persistent_buffers

    for module in model.modules():
        for key, buffer in list(module._buffers.items()):
            if buffer is not None and buffer.is_meta:
                module._buffers[key] = torch.empty_like(buffer, device="cpu")
    reinit_non_persistent_buffers(model)
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:
        raise BrainbenchError(f"the weights leave {len(left)} tensors of the network unset (e.g. {left[0]})")
    return model


def load_into_meta(name: str, state: dict[str, torch.Tensor], where, label: str, **kwargs) -> torch.nn.Module:
    """Build ``name`` on the meta device and give it ``state`` (checked strictly)."""
    model = create(name, meta=True, **kwargs)
    load_state(model, state, where, label)
    return materialize(model)


def vit_layers(model: torch.nn.Module, pixels: torch.Tensor) -> Iterator[torch.Tensor]:
    """Tokens after the embedding, then after every block (timm ``VisionTransformer`` or ``Eva``)."""
    x = model.patch_embed(pixels)
    rope = None
    if hasattr(model, "rope"):  # Eva: rotary position embedding shared by every block
        x, rope = model._pos_embed(x)
    else:
        x = model.patch_drop(model._pos_embed(x))
    x = model.norm_pre(x)
    yield x
    for block in model.blocks:
        x = block(x, rope=rope) if rope is not None else block(x)
        yield x


def convnext_layers(model: torch.nn.Module, pixels: torch.Tensor) -> Iterator[torch.Tensor]:
    """The stem, then every block of every stage (timm ``ConvNeXt``)."""
    x = model.stem(pixels)
    yield x
    for stage in model.stages:
        x = stage.downsample(x)
        for block in stage.blocks:
            x = block(x)
            yield x


def resnet_layers(model: torch.nn.Module, pixels: torch.Tensor) -> Iterator[torch.Tensor]:
    """The stem, then every residual block (timm ``ResNet``)."""
    x = model.maxpool(model.act1(model.bn1(model.conv1(pixels))))
    yield x
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        for block in stage:
            x = block(x)
            yield x


def drop_head(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Remove classifier tensors (``head.*``, ``fc.*``) that a headless model does not hold."""
    names = set(model.state_dict())
    return {k: v for k, v in state.items() if k in names or not k.startswith(("head.", "fc.", "head_dist."))}

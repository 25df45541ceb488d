"""What the by-name models (``timm:``, ``hf:``, ``torchvision:``) share: a model whose layers are
named submodules read by forward hooks, and its registry factory. The prefixes are registered
in :mod:`brainbench.plugins.models.by_name`."""
from __future__ import annotations

from typing import Any, Callable, Iterator

import torch

from brainbench.core.contract.layers import output_catcher
from brainbench.core.errors import BrainbenchError
from brainbench.plugins.models.base import FamilyModel
from brainbench.plugins.models.factory import make_factory


def count_parameters(network: torch.nn.Module) -> int:
    """Exact number of parameters (works on the meta device)."""
    return sum(p.numel() for p in network.parameters())


def prefix_tokens(network: torch.nn.Module, registers: int = 0) -> tuple[int, bool]:
    """(tokens before the patch tokens, whether token 0 is a CLS token), from the network's own parameters.

    A CLS token is a parameter called ``cls_token``, ``class_token`` or ``class_embedding``; a
    distillation token (DeiT) counts as one more prefix token; ``registers`` are added (from the config).
    """
    names = {name.rsplit(".", 1)[-1] for name, _ in network.named_parameters()}
    has_cls = bool(names & {"cls_token", "class_token", "class_embedding"})
    distilled = "distillation_token" in names or "dist_token" in names
    return int(has_cls) + int(distilled) + registers, has_cls


def catch_outputs(network: torch.nn.Module, names: list[str], run: Callable[[], Any]) -> list[torch.Tensor]:
    """Run ``run()`` with forward hooks on the submodules ``names``; their outputs, in the order of ``names``."""
    caught: dict[str, torch.Tensor] = {}

    handles = [network.get_submodule(name).register_forward_hook(output_catcher(caught, name)) for name in names]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    missing = [name for name in names if name not in caught]
    if missing:
        raise BrainbenchError(f"module {missing[0]!r} was not run by the model's forward pass, so it has no output")
    return [caught[name] for name in names]


class NamedModel(FamilyModel):
    """A model built by its library from a name; its layers are named submodules read by forward hooks.

    Subclasses set :attr:`layers` (submodule names in depth order, as the library lists its
    blocks or stages), :attr:`num_parameters`, the token layout, and implement ``build``,
    ``load_weights``, ``architecture`` and :meth:`run` (the library's own forward pass).
    """

    layers: list[str] = []

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    def activation_elements(self) -> int:
        # unknown architectures: a generous bound from the input (64 feature maps of the input's size)
        return 64 * 3 * self.image_size**2

    def run(self, pixel_values: torch.Tensor) -> None:
        """The library's forward pass (its outputs are caught by the hooks)."""
        self.network(pixel_values)

    def iter_layers(self, pixel_values: torch.Tensor) -> Iterator[torch.Tensor]:
        pixel_values = pixel_values.to(self.dtype)
        yield from catch_outputs(self.network, self.layer_names, lambda: self.run(pixel_values))


def named_factory(cls: type, name: str, **fixed) -> Callable:
    """The registry factory of a by-name model (default checkpoint ``pretrained``)."""
    return make_factory(cls, name, "pretrained", **fixed)

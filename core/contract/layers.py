"""Layers picked by name: a model's own layers, or any named submodule, caught with a forward hook.

``--layers`` takes a comma-separated list of names and shell-style globs (``'blocks.*'``,
``'layer.*.mlp,layer11'``). Each item is matched first against the model's own layer names
(:attr:`VisionModel.layer_names`, e.g. ``layer00``… for the built-in DINOv3s), then against the
names of the network's submodules (``torch.nn.Module.named_modules``, e.g. ``layer.3.mlp`` inside
a DINOv3 block, ``blocks.3.attn`` in a timm ViT). Submodules are read with forward hooks
(:class:`HookedModel`) while the model runs its own forward pass, so any module the forward pass
calls can be scored; the selection then enters the activation cache key
(:attr:`HookedModel.layer_selection`).

A model exposes its network as a ``network`` attribute (``None`` until :meth:`VisionModel.load`);
when it is not loaded yet, the names are read from ``build()`` on the meta device (no memory, no
weights). Models without a network (precomputed features) only offer their own layers.
"""
from __future__ import annotations

import fnmatch
from typing import Any, Iterator, Sequence

import torch

from ..errors import BrainbenchError
from ..contract.model import MemoryEstimate, VisionModel


def split_selection(layers: str | Sequence[str]) -> list[str]:
    """``"a,b*"`` or ``["a", "b*"]`` → ``["a", "b*"]`` (blanks dropped)."""
    items = layers.split(",") if isinstance(layers, str) else [p for item in layers for p in str(item).split(",")]
    return [item.strip() for item in items if item.strip()]


def _network(model: VisionModel) -> torch.nn.Module | None:
    """The model's network: the loaded one, else its architecture built on the meta device, else None."""
    network = getattr(model, "network", None)
    if isinstance(network, torch.nn.Module):
        return network
    build = getattr(model, "build", None)
    if not callable(build):
        return None
    with torch.device("meta"):
        try:
            return build()
        except NotImplementedError:
            return None


def module_names(model: VisionModel) -> list[tuple[str, str]]:
    """(name, class name) of every named submodule of the model's network, in definition order.

    Empty when the model has no network (e.g. imported features).
    """
    network = _network(model)
    if network is None:
        return []
    return [(name, type(module).__name__) for name, module in network.named_modules() if name]


def select_layers(model: VisionModel, layers: str | Sequence[str]) -> list[str]:
    """The layer and module names that ``layers`` (names and globs, comma-separated) selects, in order.

    Raises
    ------
    BrainbenchError
        When an item matches nothing; the sentence names the item and says how to list candidates.
    """
    own = list(model.layer_names)
    modules: list[str] | None = None
    chosen: list[str] = []
    items = split_selection(layers)
    if not items:
        raise BrainbenchError("--layers is empty; give layer or module names, or globs such as 'blocks.*'")
    for item in items:
        found = [name for name in own if fnmatch.fnmatchcase(name, item)]
        if not found:
            if modules is None:
                modules = [name for name, _ in module_names(model)]
            found = [name for name in modules if fnmatch.fnmatchcase(name, item)]
        if not found and not any(c in item for c in "*?["):
            raise BrainbenchError(f"model {model.name!r} has no layer {item!r} (nor a submodule of that name); its "
                                  f"layers: {', '.join(own)}; `bench info {model.name} --layers` lists the submodules")
        if not found:
            where = "its layers or submodules" if modules else "its layers"
            raise BrainbenchError(f"--layers {item!r} matches none of {where} of {model.name}; "
                                  f"`bench info {model.name} --layers` lists them")
        chosen += [name for name in found if name not in chosen]
    return chosen


def with_layers(model: VisionModel, layers: str | Sequence[str] | None) -> tuple[VisionModel, list[str] | None]:
    """``model`` and the selected names; a :class:`HookedModel` when some are submodules, not layers."""
    if layers is None:
        return model, None
    chosen = select_layers(model, layers)
    if all(name in model.layer_names for name in chosen):
        return model, chosen
    hooked = HookedModel(model, chosen)
    return hooked, chosen


def output_catcher(caught: dict[str, torch.Tensor], name: str):
    """A forward hook that stores the submodule's output tensor (:func:`first_tensor`) in ``caught[name]``."""
    def hook(module, inputs, output):
        tensor = first_tensor(output)
        if tensor is not None:
            caught[name] = tensor
    return hook


def first_tensor(output: Any) -> torch.Tensor | None:
    """A module's output as one tensor: the tensor itself, or the first tensor of a tuple or ModelOutput."""
    if isinstance(output, torch.Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output if isinstance(output, (tuple, list)) else ()
    return next((v for v in values if isinstance(v, torch.Tensor)), None)


def _delegate(attribute: str) -> property:
    return property(lambda self: getattr(self.inner, attribute))


class HookedModel(VisionModel):
    """``inner`` whose layers are ``selection``: its own layers and/or submodules read by forward hooks.

    Everything else (weights, preprocessing, precision, token layout) is the inner model's. The
    inner model's forward pass runs as usual and stops as soon as every selected output is caught.
    """

    image_size = _delegate("image_size")
    mean = _delegate("mean")
    std = _delegate("std")
    num_prefix_tokens = _delegate("num_prefix_tokens")
    has_cls_token = _delegate("has_cls_token")
    num_parameters = _delegate("num_parameters")
    precision = _delegate("precision")
    handles_precision = _delegate("handles_precision")

    def __init__(self, inner: VisionModel, selection: Sequence[str]):
        super().__init__(inner.name, inner.checkpoint)
        self.inner = inner
        self.selection = list(selection)
        self.hooked = [name for name in self.selection if name not in inner.layer_names]

    @property
    def layer_names(self) -> list[str]:
        return list(self.selection)

    @property
    def layer_selection(self) -> list[str]:
        """The selection, for the activation cache key."""
        return list(self.selection)

    @property
    def network(self):
        return getattr(self.inner, "network", None)

    def fingerprint(self) -> dict[str, Any]:
        return self.inner.fingerprint()

    def preprocessing(self) -> dict[str, Any]:
        return self.inner.preprocessing()

    def preprocess(self, images):
        return self.inner.preprocess(images)

    def set_precision(self, precision: str) -> None:
        self.inner.set_precision(precision)

    def estimate_memory(self) -> MemoryEstimate | None:
        return self.inner.estimate_memory()

    def load(self, device: torch.device) -> None:
        self.inner.load(device)
        network = self.network
        if not isinstance(network, torch.nn.Module):
            raise BrainbenchError(f"{self.name} exposes no network, so --layers can only pick among its layers: "
                                  f"{', '.join(self.inner.layer_names)}")

    def forward_layers(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return list(self.iter_layers(pixel_values))

    def iter_layers(self, pixel_values: torch.Tensor) -> Iterator[torch.Tensor]:
        caught: dict[str, torch.Tensor] = {}
        wanted = set(self.selection)

        handles = [self.network.get_submodule(name).register_forward_hook(output_catcher(caught, name))
                   for name in self.hooked]
        try:
            outputs = self.inner.iter_layers(pixel_values)
            for name, output in zip(self.inner.layer_names, outputs):
                if name in wanted:
                    caught[name] = output
                if wanted.issubset(caught):
                    break  # every selected output is caught: skip the rest of the network
            if hasattr(outputs, "close"):
                outputs.close()
        finally:
            for handle in handles:
                handle.remove()
        for name in self.selection:
            if name not in caught:
                raise BrainbenchError(f"module {name!r} of {self.name} was not run by its forward pass "
                                      "(it is outside the layers the model computes), so it has no output to score")
            yield caught.pop(name)

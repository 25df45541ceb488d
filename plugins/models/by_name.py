"""Any vision model by name: ``timm:NAME``, ``hf:ORG/NAME`` and ``torchvision:NAME``.

These prefixes are registered through the ``register_model_prefixes`` hook, as a third-party
plugin would register its own. Each resolver checks the name against its library, then returns
a factory and the model's metadata (parameters counted on the meta device, layers, family,
training data and source as far as the library states them). The models themselves are in
:mod:`.timm_by_name`, :mod:`.hf_by_name` and :mod:`.torchvision_by_name`; what they share is
:class:`~.named_model.NamedModel`. This module only registers the prefixes, and imports
no library until a name is resolved.

Checkpoints: ``pretrained`` (default: the library's released weights, read from disk only) and
``init`` (the same architecture with random weights, ``torch.manual_seed(seed)``). Options:
those of every built-in model (``seed``, ``weights``, ``weights_dir``, ``precision``,
``image_size``, ``mean``, ``std``). See docs/models.md.
"""
from __future__ import annotations

from typing import Callable

import brainbench
from brainbench.plugins.models.factory import moved_names


def _resolver(module: str) -> Callable[[str], tuple]:
    def resolve(rest: str) -> tuple:
        import importlib

        return importlib.import_module(f"{__package__}.{module}").resolve(rest)
    return resolve


@brainbench.hookimpl
def register_model_prefixes(register):
    register("timm", _resolver("timm_by_name"),
             description="any timm model: timm:NAME[.TAG], e.g. timm:convnext_base.fb_in22k")
    register("hf", _resolver("hf_by_name"),
             description="any Hugging Face transformers vision model: hf:ORG/NAME, e.g. hf:facebook/dinov2-small")
    register("torchvision", _resolver("torchvision_by_name"),
             description="any torchvision classification model: torchvision:NAME[.WEIGHTS], e.g. torchvision:resnet18")


# The model classes moved out of this torch-free hook module in 0.2; old imports still work until 0.3.
__getattr__ = moved_names(__name__, "brainbench.plugins.models.named_model",
                          ("NamedModel", "count_parameters", "prefix_tokens", "catch_outputs", "named_factory"))

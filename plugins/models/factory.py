"""Registry factories of the built-in models, and the options they declare — without torch.

A model plugin's hook module registers names, metadata and a factory; the model class, and
with it torch, transformers or timm, is imported only when the factory is called. So
``bench list``, ``bench info`` and option checks run without importing torch (≈2 s).
"""
from __future__ import annotations

import importlib
import warnings
from typing import Callable

from brainbench.core.contract.model import PRECISIONS, VisionModel
from brainbench.core.contract.options import Choice, Float, Floats, Int, PathOption
from brainbench.core.errors import BrainbenchError

#: options every built-in model accepts (``--set model.OPTION=VALUE``)
COMMON_OPTIONS = ("seed", "weights", "weights_dir", "precision", "image_size", "mean", "std")
#: declared type and range of every built-in model option (see brainbench.core.contract.options)
OPTION_TYPES = {
    "seed": Int(0, minimum=0, help="seed of the random initialisation (init)"),
    "weights": PathOption(help="an explicit weights file or folder"),
    "weights_dir": PathOption(help="root of local weights"),
    "precision": Choice(*PRECISIONS, default="fp32"),
    "image_size": Int(minimum=16, help="input resolution in pixels"),
    "mean": Floats(length=3, help="per-channel (R, G, B) normalisation mean"),
    "std": Floats(length=3, above=0, help="per-channel (R, G, B) normalisation s.d."),
    "backend": Choice("transformers", "timm", default="transformers"),
    "layerscale": Float(above=0, nullable=True, help="LayerScale initial value (init)"),
}


def make_factory(cls: type | str, name: str, default_checkpoint: str = "pretrained", *,
                 options: tuple[str, ...] | None = None, **fixed) -> Callable[..., VisionModel]:
    """A registry factory ``(checkpoint=None, **options) → cls(name, checkpoint, **options)``.

    ``cls`` is a model class, or ``"package.module:Class"``, imported at the first call; then
    ``options`` names the options the class accepts (its ``OPTIONS``), so that they can be listed
    and checked before the class is imported. Unknown options are refused in one sentence that
    lists the known ones (:class:`~brainbench.core.errors.BrainbenchError`).
    """
    if isinstance(cls, str):
        if options is None:
            raise TypeError("make_factory with a class path needs options=")
    else:
        options = tuple(cls.OPTIONS) if options is None else options

    def build(checkpoint: str | None = None, **given) -> VisionModel:
        unknown = sorted(set(given) - set(options))
        if unknown:
            raise BrainbenchError(f"model {name!r} has no option {unknown[0]!r}; its options: {', '.join(options)}")
        return _resolve(cls)(name, checkpoint or default_checkpoint, **fixed, **given)

    build.__doc__ = f"Build {name} (checkpoint default: {default_checkpoint})."
    build.option_types = {n: OPTION_TYPES[n] for n in options if n in OPTION_TYPES}
    return build


def _resolve(cls: type | str) -> type:
    if not isinstance(cls, str):
        return cls
    module, _, attribute = cls.partition(":")
    return getattr(importlib.import_module(module), attribute)


def moved_names(module: str, target: str, names: tuple[str, ...]) -> Callable[[str], object]:
    """A module ``__getattr__`` that forwards ``names``, moved from ``module`` to ``target`` in 0.2,
    with a ``DeprecationWarning`` naming the new place (until 0.3, as ``core/_moved.py`` does).

    The target is imported by name when such an attribute is first asked for, so that the hook
    module stays free of torch and the two modules do not import each other.
    """
    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(f"{module}.{name} moved to {target}.{name}; import it from there", DeprecationWarning,
                      stacklevel=2)
        return getattr(importlib.import_module(target), name)
    return __getattr__

"""brainbench: how brain-like are a vision model's representations?

A plugin author needs only this module::

    import brainbench

    @brainbench.hookimpl
    def register_models(register):
        register("my-model", build_my_model, description="...", parameters=21_000_000)

The names below are the public API (``docs/api.md``). They load on first use, so that
``import brainbench`` and ``bench --help`` do not import torch.
"""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version as _version
from typing import TYPE_CHECKING

from .core._lazy import lazy_exports

try:
    __version__ = _version("brainbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "hookimpl": ".core.contract.hookspecs",
    "VisionModel": ".core.contract.model",
    "StimulusSet": ".core.contract.data",
    "ArrayStimulusSet": ".core.contract.data",
    "Dataset": ".core.contract.data",
    "Responses": ".core.contract.data",
    "Metric": ".core.contract.metric",
    "Score": ".core.contract.metric",
    "BrainbenchError": ".core.errors",
    "MissingDataError": ".core.errors",
    # the notebook API (docs/notebook-api.md)
    "score": ".api",
    "results": ".api",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what type checkers and IDEs see
    from .core.contract.data import ArrayStimulusSet, Dataset, Responses, StimulusSet
    from .core.contract.hookspecs import hookimpl
    from .core.contract.metric import Metric, Score
    from .core.contract.model import VisionModel
    from .core.errors import BrainbenchError, MissingDataError

__all__ = [*_EXPORTS, "__version__"]

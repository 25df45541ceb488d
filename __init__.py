"""brainbench: how brain-like are a vision model's representations?

A plugin author needs only this module::

    import brainbench

    @brainbench.hookimpl
    def register_models(register):
        register("my-model", build_my_model, description="...", parameters=21_000_000)
"""
from importlib.metadata import PackageNotFoundError, version as _version

from .core.contract.hookspecs import hookimpl
from .core.contract.model import VisionModel
from .core.contract.data import ArrayStimulusSet, Dataset, Responses, StimulusSet
from .core.contract.metric import Metric, Score

try:
    __version__ = _version("brainbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "hookimpl",
    "VisionModel",
    "StimulusSet",
    "ArrayStimulusSet",
    "Dataset",
    "Responses",
    "Metric",
    "Score",
    "__version__",
]

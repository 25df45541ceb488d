"""brainbench: how brain-like are a vision model's representations?

A plugin author needs only this module::

    import brainbench

    @brainbench.hookimpl
    def register_models(register):
        register("my-model", build_my_model, description="...", parameters=21_000_000)
"""
from importlib.metadata import PackageNotFoundError, version as _version

from .core.hookspecs import hookimpl
from .core.model import VisionModel
from .core.data import ArrayStimulusSet, Dataset, Responses, StimulusSet
from .core.metric import Metric, Score

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
    "score",
    "results",
    "__version__",
]


def __getattr__(name: str):
    # the notebook API (brainbench/api.py), loaded on first use
    if name in ("score", "results"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'brainbench' has no attribute {name!r}")

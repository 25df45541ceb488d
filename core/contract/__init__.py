"""What a plugin implements and may rely on: hooks, VisionModel, StimulusSet/Dataset/Responses,
Metric/Score, plugin metadata, and checkpoint names and series on disk."""
from .._lazy import lazy_exports

_EXPORTS = {
    "hookimpl": ".hookspecs",
    "hookspec": ".hookspecs",
    "VisionModel": ".model",
    "MemoryEstimate": ".model",
    "IMAGENET_MEAN": ".model",
    "IMAGENET_STD": ".model",
    "resolve_precision": ".model",
    "StimulusSet": ".data",
    "ArrayStimulusSet": ".data",
    "Dataset": ".data",
    "Responses": ".data",
    "Metric": ".metric",
    "Score": ".metric",
    "SCHEMA": ".metadata",
    "Field": ".metadata",
    "metadata_problems": ".metadata",
    "Checkpoint": ".checkpoints",
    "MANIFEST": ".checkpoints",
    "WEIGHT_SUFFIXES": ".checkpoints",
    "checkpoint_sort_key": ".checkpoints",
    "describe": ".checkpoints",
    "discover": ".checkpoints",
    "find_step": ".checkpoints",
    "select": ".checkpoints",
    "series": ".checkpoints",
    "step_name": ".checkpoints",
    "step_of": ".checkpoints",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

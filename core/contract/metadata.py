"""The metadata schema of registered models, datasets and metrics.

Types are checked when a plugin registers (``core/registry/specs.py``); ``bench check`` also
requires the required fields. The leaderboard's filters read them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_TYPES = {"text": "a non-empty string", "count": "a positive integer", "flag": "true or false",
          "texts": "a list of strings"}


@dataclass(frozen=True)
class Field:
    """One metadata field: its type (``text``, ``count``, ``flag``, ``texts``), whether required, its meaning."""

    name: str
    type: str
    required: bool
    meaning: str


#: kind → metadata fields (the leaderboard filters on the required model fields)
SCHEMA: dict[str, tuple[Field, ...]] = {
    "models": (
        Field("family", "text", True, "model family, e.g. `dinov3`, `resnet`, `vit`"),
        Field("parameters", "count", True, "exact number of parameters"),
        Field("layers", "count", True, "number of layers the model yields (`len(layer_names)`)"),
        Field("training_data", "text", True, "what the weights were trained on; `none` for random weights only"),
        Field("objective", "text", True, "training objective, e.g. `supervised classification`; `none`"),
        Field("source", "text", True, "where the weights come from: a Hugging Face repository, URL or paper"),
        Field("architecture", "text", False, "architecture label, e.g. `ViT-S/16`"),
        Field("checkpoints", "texts", False, "checkpoint names accepted after `@`"),
        Field("image_size", "count", False, "input resolution in pixels"),
    ),
    "datasets": (
        Field("modality", "text", True, "`fmri` or `meg`: which metrics apply"),
        Field("citation", "text", True, "the paper or source to cite"),
        Field("spatial", "flag", False, "true when the dataset gives region positions (spatial score)"),
        Field("subjects", "texts", False, "subject identifiers"),
        Field("options", "texts", False, "option names (`--set dataset.OPTION=VALUE`)"),
    ),
    "metrics": (
        Field("modality", "text", True, "modalities it applies to, comma-separated: `fmri, meg`"),
        Field("options", "texts", False, "option names (`--set metric.OPTION=VALUE`)"),
    ),
}


def _well_typed(value: Any, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str) and bool(value.strip())
    if kind == "count":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if kind == "flag":
        return isinstance(value, bool)
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def metadata_problems(kind: str, metadata: dict[str, Any], *, complete: bool = True) -> list[str]:
    """Every way ``metadata`` breaks :data:`SCHEMA` for ``kind``, one phrase each.

    Parameters
    ----------
    kind : ``models``, ``datasets`` or ``metrics``
    metadata : the keyword arguments given to ``register`` besides ``description``
    complete : also report missing required fields (registration checks types only)

    Returns
    -------
    list of str
        Phrases such as ``"metadata field 'parameters' = '21M', which should be a positive
        integer (exact number of parameters)"``; empty when the metadata is valid.
    """
    problems = []
    for f in SCHEMA.get(kind, ()):
        if f.name not in metadata:
            if complete and f.required:
                problems.append(f"no metadata field {f.name!r} ({f.meaning})")
        elif not _well_typed(metadata[f.name], f.type):
            problems.append(f"metadata field {f.name!r} = {metadata[f.name]!r}, which should be "
                            f"{_TYPES[f.type]} ({f.meaning})")
    return problems

"""Which models (and checkpoints), datasets and metrics a grid covers, and the ``--set`` options they get.

Patterns are globs over registered names (``dinov3-*``) or exact names (a typo gets a
suggestion). Models take ``NAME_GLOB[@CHECKPOINT_GLOB]``; without ``@`` every checkpoint a model
declares in its ``checkpoints`` metadata, plus every checkpoint found on disk under
``<weights>/<model>/`` (``step-1000.pth``, ``step-2000/``, …), is selected.
"""
from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import BrainbenchError
from ..contract.options import TARGETS, PluginOptions, parse_sets
from ..registry.specs import ModelRef, get_registry
from ..contract.checkpoints import WEIGHT_SUFFIXES, checkpoint_sort_key

#: suffixes of weight files under ``<weights>/<model>/`` (the layout the built-in models read)
_CHECKPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def split_patterns(patterns: Sequence[str]) -> list[str]:
    """Patterns given repeatedly or comma-separated, as one list."""
    return [p.strip() for item in patterns for p in item.split(",") if p.strip()]


def select(kind: str, patterns: Sequence[str]) -> list[str]:
    """Registered names of ``kind`` matching any pattern (globs or exact names; empty = all)."""
    registry = get_registry()
    names = registry.names(kind)
    if not patterns:
        return names
    out: list[str] = []
    for pattern in split_patterns(patterns):
        if _has_glob(pattern):
            hits = fnmatch.filter(names, pattern)
            if not hits:
                raise BrainbenchError(f"no registered {kind[:-1]} matches {pattern!r}; "
                                      f"registered {kind}: {', '.join(names) or 'none'}")
        else:
            hits = [registry.get(kind, pattern).name]
        out += [h for h in hits if h not in out]
    return out


def candidate_checkpoints(spec, weights_root: Path | None) -> list[str | None]:
    """Checkpoints a model declares (``checkpoints`` metadata) plus those on disk under ``<weights>/<name>/``.

    None stands for the plugin's default checkpoint, used when the model declares none.
    """
    from ..contract.checkpoints import discover

    found = [c for c in spec.metadata.get("checkpoints", []) if isinstance(c, str) and _CHECKPOINT.match(c)]
    folder = weights_root / spec.name if weights_root is not None else None
    if folder is not None and folder.is_dir():
        # a training series is named by step (model_0000299.pth → step-300), as `bench run NAME@all` names it
        by_step = {c.path.name: c.name for c in discover(folder, spec.metadata.get("checkpoint_patterns"))}
        for entry in folder.iterdir():
            name = entry.name if entry.is_dir() else (entry.stem if entry.suffix in WEIGHT_SUFFIXES else "")
            name = by_step.get(entry.name, name)
            if name and _CHECKPOINT.match(name) and name not in found:
                found.append(name)
    return sorted(found, key=checkpoint_sort_key) if found else [None]


def select_models(patterns: Sequence[str], weights_root: Path | None) -> list[tuple[Any, str | None]]:
    """(spec, checkpoint) pairs for ``NAME_GLOB[@CHECKPOINT_GLOB]`` patterns (empty: every model, every checkpoint)."""
    registry = get_registry()
    out: list[tuple[Any, str | None]] = []
    for pattern in split_patterns(patterns) or ["*"]:
        name_pattern, at, checkpoint_pattern = pattern.partition("@")
        if at and not _has_glob(name_pattern + checkpoint_pattern):
            ModelRef.parse(pattern)
        for name in select("models", [name_pattern]):
            spec = registry.model(name)
            if at and not _has_glob(checkpoint_pattern):
                checkpoints: list[str | None] = [checkpoint_pattern]
            else:
                checkpoints = [c for c in candidate_checkpoints(spec, weights_root)
                               if not at or (c is not None and fnmatch.fnmatchcase(c, checkpoint_pattern))]
            out += [(spec, c) for c in checkpoints if (spec, c) not in out]
    return out

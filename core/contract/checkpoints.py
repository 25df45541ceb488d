"""Training trajectories: a model's checkpoints on disk, in step order.

A *checkpoint series* is every checkpoint of one model found in its folder,
``<weights>/<model>/`` (the ``weights`` setting, ``$BRAINBENCH_WEIGHTS``; or the folder given
as ``--set model.weights=FOLDER``), ordered by training step. Each file or sub-folder whose
name matches one of the patterns below is one checkpoint:

==================================  ===================================================
name on disk                        training step
==================================  ===================================================
``model_0012499.pth``               12500: ``model_N`` is written after iteration N,
                                    counted from 0 (DINOv2/fvcore's ``PeriodicCheckpointer``),
                                    so after N + 1 optimizer steps
``step-12500.pth`` / ``step-12500/``  12500
``checkpoint-12500/``               12500 (the Hugging Face ``Trainer``'s folders)
==================================  ===================================================

Weight files end in ``.pth``, ``.pt``, ``.bin`` or ``.safetensors``. Other names can be
declared in a ``trajectory.json`` manifest in the folder (``{"patterns": ["ckpt_(?P<step>\\d+)"]}``:
regular expressions matched against the whole name without suffix, with a named group
``step``, or ``iteration`` for a 0-based iteration index, step = iteration + 1), by a model
plugin's ``checkpoint_patterns`` metadata, or passed to :func:`discover`.

Every checkpoint is named ``step-N`` wherever brainbench shows or stores it (``bench run
--model tiny-dino@step-300``, result rows, the leaderboard's curves), whatever its file is
called: :func:`find_step` resolves ``step-N`` back to the file. Step 0 is a ``step-0``
checkpoint when one is on disk, else the model's ``init`` (random weights; for ``tiny-dino``
exactly the weights its training started from).

Selections (``NAME@all``, ``--checkpoints``): ``all``; a comma-separated list of ``init``,
``first`` (the series' first checkpoint, step 0), ``last``, ``step-N``, a plain step number,
or a glob over the names (``step-1*``). See :func:`select`.
"""
from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import BrainbenchError, MissingDataError

#: patterns tried when neither the caller, the plugin nor the folder's manifest gives any
DEFAULT_PATTERNS = (r"model_(?P<iteration>\d+)", r"step-(?P<step>\d+)", r"checkpoint-(?P<step>\d+)")
#: suffixes of weight files (model plugins and the grid's checkpoint listing use this one copy)
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
#: the optional manifest in a checkpoint folder (``bench trajectory make`` writes one)
MANIFEST = "trajectory.json"
_STEP_NAME = re.compile(r"^step-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    """One point of a trajectory: its training step, its name (``init`` or ``step-N``) and its weights."""

    step: int
    name: str
    path: Path | None = None

    def to_json(self) -> dict:
        return {"step": self.step, "name": self.name, "path": None if self.path is None else str(self.path)}


def checkpoint_sort_key(checkpoint: str | None) -> tuple:
    """``init``, then ``pretrained``, then other names, then ``step-N`` by N."""
    if checkpoint is None:
        return (0, 0, "")
    step = _STEP_NAME.match(checkpoint)
    if step:
        return (3, int(step.group(1)), checkpoint)
    return ({"init": 1, "pretrained": 2}.get(checkpoint, 2.5), 0, checkpoint)


def step_name(step: int) -> str:
    """The canonical checkpoint name of a training step: ``step-N``."""
    return f"step-{int(step)}"


def step_of(name: str | None) -> int | None:
    """The training step of ``step-N`` (N) or ``init`` (0); None for any other name."""
    if name == "init":
        return 0
    match = _STEP_NAME.match(name or "")
    return int(match.group(1)) if match else None


def read_manifest(folder: Path) -> dict:
    """The folder's ``trajectory.json`` (empty when absent); a malformed one is an error."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BrainbenchError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BrainbenchError(f"{path} must hold a JSON object")
    return data


def compile_patterns(patterns: Sequence[str] | None, folder: Path | None = None) -> list[re.Pattern]:
    """Patterns to match checkpoint names: ``patterns``, else the folder manifest's, else the defaults.

    Each must have a named group ``step`` or ``iteration``.
    """
    chosen = list(patterns or []) or list((read_manifest(folder) if folder else {}).get("patterns") or []) \
        or list(DEFAULT_PATTERNS)
    compiled = []
    for text in chosen:
        try:
            pattern = re.compile(text)
        except (re.error, TypeError) as exc:
            raise BrainbenchError(f"invalid checkpoint pattern {text!r} ({exc})") from None
        if not {"step", "iteration"} & set(pattern.groupindex):
            raise BrainbenchError(f"checkpoint pattern {text!r} needs a named group (?P<step>...) or "
                                  "(?P<iteration>...)")
        compiled.append(pattern)
    return compiled


def _entry_name(entry: Path) -> str | None:
    """The checkpoint name of a folder entry (file stem for weight files), or None when it is not one."""
    if entry.is_dir():
        return entry.name
    if entry.is_file() and entry.suffix in WEIGHT_SUFFIXES:
        return entry.stem
    return None


def parse_step(name: str, patterns: Sequence[re.Pattern]) -> int | None:
    """The training step a checkpoint name encodes under ``patterns`` (first full match), or None."""
    for pattern in patterns:
        match = pattern.fullmatch(name)
        if match:
            groups = match.groupdict()
            if groups.get("step") is not None:
                return int(groups["step"])
            return int(groups["iteration"]) + 1
    return None


def discover(folder: str | Path, patterns: Sequence[str] | None = None) -> list[Checkpoint]:
    """Every checkpoint in ``folder`` whose name matches a pattern, by step (no ``init``).

    Parameters
    ----------
    folder
        A model's checkpoint folder; a missing folder has no checkpoints.
    patterns
        Regular expressions (see :func:`compile_patterns`); default: the folder's manifest, else
        :data:`DEFAULT_PATTERNS`.

    Raises
    ------
    BrainbenchError
        When two entries encode the same step (``model_0000099.pth`` and ``step-100/``).
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return []
    compiled = compile_patterns(patterns, folder)
    found: dict[int, Checkpoint] = {}
    for entry in sorted(folder.iterdir()):
        name = _entry_name(entry)
        step = parse_step(name, compiled) if name else None
        if step is None:
            continue
        if step in found:
            raise BrainbenchError(f"{found[step].path.name} and {entry.name} in {folder} are both step {step}; "
                                  "keep one of them")
        found[step] = Checkpoint(step, step_name(step), entry)
    return [found[step] for step in sorted(found)]


def find_step(folder: str | Path, step: int, patterns: Sequence[str] | None = None) -> Path | None:
    """The file or folder in ``folder`` that holds training step ``step`` (None when there is none)."""
    return next((c.path for c in discover(folder, patterns) if c.step == step), None)


def series(model: str, folder: str | Path | None, *, patterns: Sequence[str] | None = None,
           declared: Sequence[str] = (), include_init: bool = True) -> list[Checkpoint]:
    """A model's whole checkpoint series, by step: step 0 (``init`` unless ``step-0`` is on disk), then the rest.

    Parameters
    ----------
    model
        The registered name (for messages).
    folder
        Its checkpoint folder (``<weights>/<model>``); None when no weights root is set.
    patterns
        Checkpoint-name patterns (see :func:`compile_patterns`).
    declared
        ``step-N`` names a plugin declares (its ``checkpoints`` metadata), used when the folder has none.
    include_init
        Whether step 0 falls back to the model's ``init``.

    Raises
    ------
    MissingDataError
        When no trained checkpoint is found.
    """
    found = discover(folder, patterns) if folder is not None else []
    if not found:
        found = sorted((Checkpoint(s, step_name(s)) for s in {step_of(n) for n in declared} - {None, 0}),
                       key=lambda c: c.step)
    if not found:
        # with no weights folder set, say so rather than print an unset variable as if it were a path
        where = folder if folder is not None else (f"{model}/ of a weights folder (none is set: give --weights "
                                                   "or set BRAINBENCH_WEIGHTS)")
        hint = "; `bench trajectory make` trains it" if model == "tiny-dino" else ""
        raise MissingDataError(f"{model} has no training checkpoints in {where} (files such as model_0012499.pth, "
                               f"step-12500.pth or step-12500/){hint}")
    if include_init and found[0].step != 0:
        found.insert(0, Checkpoint(0, "init"))
    return found


def select(checkpoints: Sequence[Checkpoint], selection: str | None) -> list[Checkpoint]:
    """The checkpoints a selection names, in step order, without duplicates.

    ``selection`` is ``all`` (or None), or comma-separated items: ``init``, ``first``, ``last``,
    ``step-N``, a step number ``N``, or a glob over the names. An item that matches nothing is an
    error listing what is there.
    """
    if selection is None or selection.strip() in ("", "all"):
        return list(checkpoints)
    chosen: list[Checkpoint] = []
    by_step = {c.step: c for c in checkpoints}
    for item in (part.strip() for part in selection.split(",")):
        if not item:
            continue
        if item == "all":
            hits = list(checkpoints)
        elif item == "first":
            hits = list(checkpoints[:1])
        elif item == "last":
            hits = list(checkpoints[-1:])
        elif item.isdigit() or step_of(item) is not None:
            step = int(item) if item.isdigit() else step_of(item)
            hits = [by_step[step]] if step in by_step else []
        else:
            hits = [c for c in checkpoints if fnmatch.fnmatchcase(c.name, item)]
        if not hits:
            names = ", ".join(c.name for c in checkpoints)
            raise BrainbenchError(f"no checkpoint matches {item!r}; the series has {names}")
        chosen += [c for c in hits if c not in chosen]
    return sorted(chosen, key=lambda c: c.step)


def describe(checkpoints: Sequence[Checkpoint]) -> list[dict]:
    """JSON-able rows for ``bench list checkpoints``: step, name, file, and % of the last step."""
    last = max((c.step for c in checkpoints), default=0) or 1
    return [{**c.to_json(), "percent": 100.0 * c.step / last} for c in checkpoints]

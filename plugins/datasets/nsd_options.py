"""Parsing and checking the ``nsd`` dataset's options (root, subjects, regions, …)."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Sequence

from brainbench.core.config import Config
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.plugins.datasets.nsd_files import HEMISPHERES, SUBJECTS, Layout

#: default HCP-MMP1 regions: early visual, dorsal, ventral, parietal and the paper's frontal ones
DEFAULT_REGIONS = ("V1", "V2", "V3", "V4", "V3A", "LO2", "MT", "MST", "FFC", "VMV2", "PH", "IPS1",
                   "44", "45", "IFSa", "IFSp")
#: where the root can be set, for messages
ROOT_HINT = "pass --nsd-root, set BRAINBENCH_NSD_ROOT, or nsd_root in the config file"
#: other names accepted for Glasser regions
ALIASES = {"BA44": "44", "BA45": "45"}


def resolve_root(root: str | None) -> Path:
    """The NSD root: the ``root`` option, else the ``nsd_root`` setting (env, config file)."""
    path = Path(root).expanduser() if root else Config().path("nsd_root")
    if path is None:
        raise MissingDataError(f"no NSD root is set; {ROOT_HINT} (see docs/nsd.md)")
    return path


def choice(option: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` if it is one of ``allowed``, else a one-sentence error."""
    if value not in allowed:
        raise BrainbenchError(f"nsd option {option}={value!r} is not one of {', '.join(allowed)}")
    return value


def positive_int(option: str, value) -> int | None:
    """None for "not given" (None, "", "all"), else a whole number ≥ 1."""
    if value is None or value == "" or value == "all":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise BrainbenchError(f"nsd option {option}={value!r} must be a positive whole number")
    return number


def flag(value) -> bool:
    """A boolean option given as a bool or as text ("false", "0", "no", "off" are False)."""
    return value if isinstance(value, bool) else str(value).lower() not in ("0", "false", "no", "off")


def as_list(value) -> list[str]:
    """``"a, b"``, ``["a", "b"]`` or a single value (``--set`` reads ``44`` as a number) → stripped strings."""
    items = value.split(",") if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def parse_subjects(value, layout: Layout) -> list[str]:
    """Subjects named (``subj01`` or ``1``), or, when None, those whose betas folder exists."""
    if value is None:
        found = layout.present_subjects()
        if not found:
            raise MissingDataError(f"no NSD subject's betas were found under {layout.root / 'nsddata_betas/ppdata'}; "
                                   f"expected e.g. {layout.betas_dir('subj01')}")
        return found
    subjects = [f"subj{int(s):02d}" if s.isdigit() else s for s in as_list(value)]
    for subject in subjects:
        if subject not in SUBJECTS:
            raise BrainbenchError(f"{subject!r} is not an NSD subject; subjects are {', '.join(SUBJECTS)}")
    return subjects


def split_region(region: str) -> tuple[str, str]:
    """``"lh.MT"`` → ``("lh", "MT")``; ``"MT"`` → ``("", "MT")``."""
    head, dot, tail = region.partition(".")
    return (head, tail) if dot and head in HEMISPHERES else ("", region)


def resolve_regions(regions, labels: dict[int, str], hemispheres: Sequence[str], atlas: str) -> list[str]:
    """Requested region names → ``"<hemisphere>.<name>"`` list, checked against the label table."""
    names = list(labels.values())
    if regions is None:
        wanted = list(DEFAULT_REGIONS) if atlas == "HCP_MMP1" else names
    elif regions == "all":
        wanted = names
    else:
        wanted = as_list(regions)
    resolved = []
    for item in wanted:
        hemisphere, name = split_region(item)
        name = ALIASES.get(name, name)
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (regions are the names in the {atlas} label table)"
            raise BrainbenchError(f"NSD region {item!r} is not in the {atlas} region set{hint}")
        resolved += [f"{h}.{name}" for h in ([hemisphere] if hemisphere else hemispheres)]
    if not resolved:
        raise BrainbenchError("nsd option regions selects no region")
    return list(dict.fromkeys(resolved))

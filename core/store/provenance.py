"""Provenance of scores: who produced them, on what machine, from which data.

A portable result file (:mod:`brainbench.core.store.portable`) carries a ``provenance`` object:

- ``contributor`` and ``lab``: from ``--contributor``/``--lab`` or ``BRAINBENCH_CONTRIBUTOR``/``BRAINBENCH_LAB``;
- ``machine``: :func:`machine_summary` (platform, Python, torch, CUDA device, CPU count);
- ``data_fingerprints``: the stored ``data_hash`` plus whatever the dataset plugin's optional
  ``fingerprints()`` method returns (hashes of its design file, region atlas, response-file
  headers — never the data itself), see :func:`data_fingerprints`;
- ``exported_at``, ``exported_with``: when, and by which brainbench, the file was written.

:func:`scoring_provenance` gives what can be known when a row is scored (machine and data
fingerprints); a runner that stores it in the row's ``provenance`` makes exports record the
machine that computed the scores rather than the one that exported them.
"""
from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any

from ..errors import BrainbenchError

CONTRIBUTOR_ENV = "BRAINBENCH_CONTRIBUTOR"
LAB_ENV = "BRAINBENCH_LAB"


def contributor(name: str | None = None, lab: str | None = None) -> dict[str, str]:
    """``{"contributor": …, "lab": …}`` from the arguments, else the environment; a contributor is required.

    Raises
    ------
    BrainbenchError
        When neither ``name`` nor ``$BRAINBENCH_CONTRIBUTOR`` names anyone.
    """
    name = (name or os.environ.get(CONTRIBUTOR_ENV) or "").strip()
    if not name:
        raise BrainbenchError(f"result files must say who produced them: give --contributor NAME or set "
                              f"{CONTRIBUTOR_ENV}")
    out = {"contributor": name}
    lab = (lab or os.environ.get(LAB_ENV) or "").strip()
    if lab:
        out["lab"] = lab
    return out


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def machine_summary() -> dict[str, Any]:
    """Platform, Python and torch versions, the first CUDA device's name (None without one) and the CPU count."""
    cuda = None
    try:
        import torch

        if torch.cuda.is_available():
            cuda = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a summary, never a failure
        pass
    return {"platform": platform.platform(), "python": sys.version.split()[0], "torch": _version("torch"),
            "cuda_device": cuda, "cpu_count": os.cpu_count()}


def dataset_fingerprints(dataset) -> dict[str, str]:
    """The extra hashes a built dataset exposes through an optional ``fingerprints()`` method ({} without one).

    A dataset plugin may define ``fingerprints() -> dict[str, str]``, e.g. ``{"design": sha256 of
    the design file, "atlas": sha256 of the region atlas, "response_headers": sha256 of the
    response files' headers}``: hashes that let another lab check it holds the same data, never
    the data itself.
    """
    method = getattr(dataset, "fingerprints", None)
    if not callable(method):
        return {}
    values = method()
    if not isinstance(values, dict):
        raise BrainbenchError(f"dataset {getattr(dataset, 'name', '?')!r}: fingerprints() returned "
                              f"{type(values).__name__}, not a dict of names to hashes")
    return {str(k): str(v) for k, v in values.items() if k != "data_hash"}


def scoring_provenance(dataset, data_hash: str | None = None) -> dict[str, Any]:
    """What a row can record when it is scored: the machine, and the data fingerprints of ``dataset``.

    Parameters
    ----------
    dataset
        The built dataset the rows are scored on.
    data_hash
        Its ``fingerprint()``, when already computed.
    """
    data_hash = dataset.fingerprint() if data_hash is None else data_hash
    return {"machine": machine_summary(),
            "data_fingerprints": {"data_hash": data_hash, **dataset_fingerprints(dataset)}}


def data_fingerprints(dataset: str, dataset_options: dict[str, Any], data_hash: str,
                      recorded: dict[str, Any] | None = None, *, build: bool = True,
                      registry=None) -> tuple[dict[str, str], str | None]:
    """The data fingerprints of rows of ``dataset`` with ``data_hash``, and a note when extras are missing.

    Parameters
    ----------
    dataset, dataset_options
        The rows' dataset name and the dataset options they were computed with.
    data_hash
        The rows' stored data hash; always part of the result.
    recorded
        Fingerprints stored with the rows when they were scored (used as they are when given).
    build
        Build the dataset to ask its ``fingerprints()`` when nothing was recorded. Only datasets
        whose class defines ``fingerprints`` are built, and their extras are kept only when the
        data's fingerprint still equals ``data_hash`` (the data did not change since scoring).
    registry
        Where the dataset is looked up (default: the plugins installed here).

    Returns
    -------
    fingerprints : dict
        ``{"data_hash": data_hash, ...extras}``.
    note : str or None
        Why extras that the dataset could give are missing (data absent, data changed), else None.
    """
    out = {"data_hash": data_hash}
    if recorded:
        out.update({str(k): str(v) for k, v in recorded.items() if k != "data_hash"})
        return out, None
    if not build:
        return out, None
    from ..registry.guards import build as build_plugin
    from ..registry.specs import get_registry

    spec = (registry or get_registry()).specs["datasets"].get(dataset)
    if spec is None or not callable(getattr(spec.factory, "fingerprints", None)):
        return out, None
    try:
        built = build_plugin(spec, **dataset_options)
        if built.fingerprint() != data_hash:
            return out, f"the {dataset} data here differ from the data the rows were scored on"
        out.update(dataset_fingerprints(built))
    except BrainbenchError as exc:
        return out, f"cannot open the {dataset} data here ({exc})"
    return out, None

"""``features:NAME``: features computed elsewhere (THINGSvision, Net2Brain, a lab's own code), scored like a model.

``bench features import DIR --name NAME`` (:func:`import_features`) reads one array per layer,
checks them, hashes their files and writes a manifest to ``<home>/features/NAME.json``; the
arrays stay where they are and are read (and their sizes and times checked) when scored.

Accepted layouts of DIR (every array has one row per stimulus; more dimensions are pooled as a
model's outputs are: ``(n, channels, h, w)`` maps by a spatial mean, ``(n, tokens, dim)`` by a
token mean):

- ``LAYER.npy`` files: one layer each, named after the file (``ids.npy`` / ``stimulus_ids.npy``: the ids);
- ``.npz`` files: one layer per key (``FILE.KEY`` when there are several files);
- ``.h5``/``.hdf5`` files: one layer per numeric dataset (its path, ``FILE.PATH`` with several files);
- THINGSvision's output: ``file_names.txt`` (written by ``thingsvision.utils.data.ImageDataset``,
  one image path per line, in row order) and, per extracted module, a folder ``MODULE/`` holding
  the ``features.npy`` / ``features.hdf5`` / ``features.txt`` that ``thingsvision.utils.storing.
  save_features`` writes (or one ``features.*`` in DIR itself: layer ``features``).

Stimulus ids, in row order, from (first found): ``--ids FILE`` (one id per line, or a CSV with a
``stimulus_id``, ``id``, ``image`` or ``file_name`` column, else its first column), an
``ids``/``stimulus_ids``/``file_names`` array in an ``.npz``/``.h5``, ``file_names.txt``,
``stimulus_ids.txt`` or ``ids.txt`` in DIR, or ``--dataset NAME`` alone (the rows follow that
dataset's stimulus order). An id that is not one of the dataset's ids is matched by its file
stem (``aardvark/aardvark_01b.jpg`` → ``aardvark_01b``, the THINGS id).

When scored on a dataset, rows are matched to its stimuli by id: reordered rows are put in the
dataset's order (and said so), rows of other stimuli are left out (and said so), and missing
stimuli stop the run with one sentence. The rows' provenance records every file's SHA-256.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

import brainbench
from brainbench.core.config import Config
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.contract.model import VisionModel

if TYPE_CHECKING:  # listing the models must not import torch
    import torch

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
ID_ARRAYS = ("ids", "stimulus_ids", "file_names")
ID_FILES = ("file_names.txt", "stimulus_ids.txt", "ids.txt")
ID_COLUMNS = ("stimulus_id", "id", "image", "file_name", "filename")
THINGSVISION_FILES = ("features.npy", "features.hdf5", "features.h5", "features.txt", "features.npz")


def store_folder() -> Path:
    """Where manifests are kept: ``<home>/features``."""
    return Config().home / "features"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- reading arrays -------------------------------------------------------------------------------

def _h5_arrays(path: Path) -> dict[str, Any]:
    """Dataset path → ``(path, dataset)`` for every dataset of an HDF5 file (read later)."""
    import h5py

    found: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as f:
            def visit(name, obj):  # returns None, so that h5py visits every item
                if isinstance(obj, h5py.Dataset):
                    found[name] = obj.dtype.kind

            f.visititems(visit)
    except OSError as exc:
        raise BrainbenchError(f"{path} is not a readable HDF5 file ({exc})") from None
    return found


def _read(entry: dict[str, Any]) -> np.ndarray:
    """The array of one manifest entry: ``{"file", "format", "key"}``."""
    path, fmt, key = Path(entry["file"]), entry["format"], entry.get("key")
    try:
        if fmt == "npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if fmt == "npz":
            with np.load(path, allow_pickle=False) as archive:
                return archive[key]
        if fmt == "h5":
            import h5py

            with h5py.File(path, "r") as f:
                return f[key][()]
        if fmt == "txt":
            return np.loadtxt(path, ndmin=2)
    except (OSError, ValueError, KeyError) as exc:
        raise BrainbenchError(f"cannot read the features in {path}{f' ({key})' if key else ''}: {exc}") from None
    raise BrainbenchError(f"unknown features format {fmt!r} for {path}")


def _as_ids(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]


def _file_entries(path: Path, prefix: str | None) -> tuple[dict[str, dict], list[str] | None]:
    """Layer → entry for one file, and the ids it holds (an ``ids`` array), if any."""
    suffix = path.suffix.lower()
    name = (lambda key: key if prefix is None else f"{prefix}.{key}")
    if suffix == ".npy":
        return {path.stem: {"file": str(path), "format": "npy"}}, None
    if suffix == ".txt":
        return {path.stem: {"file": str(path), "format": "txt"}}, None
    layers, ids = {}, None
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                keys = {k: archive[k].dtype.kind for k in archive.files}
                ids_key = next((k for k in ID_ARRAYS if k in keys), None)
                ids = _as_ids(archive[ids_key]) if ids_key else None
        except (OSError, ValueError) as exc:
            raise BrainbenchError(f"{path} is not a readable .npz file ({exc})") from None
        fmt = "npz"
    else:
        keys = _h5_arrays(path)
        ids_key = next((k for k in ID_ARRAYS if k in keys), None)
        if ids_key:
            import h5py

            with h5py.File(path, "r") as f:
                ids = _as_ids(f[ids_key][()])
        fmt = "h5"
    for key, kind in keys.items():
        if key not in ID_ARRAYS and kind in "fiub":
            layers[name(key)] = {"file": str(path), "format": fmt, "key": key}
    return layers, ids


def find_layers(folder: Path) -> tuple[dict[str, dict], list[str] | None]:
    """Every layer in ``folder`` (see the module docstring) and the ids found in an array, if any."""
    if not folder.is_dir():
        raise MissingDataError(f"{folder} is not a folder of features")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".npy", ".npz", ".h5", ".hdf5")
                   and p.stem not in ("ids", "stimulus_ids"))
    containers = [p for p in files if p.suffix.lower() != ".npy"]
    layers: dict[str, dict] = {}
    ids_file = next((folder / f"{stem}.npy" for stem in ("stimulus_ids", "ids") if (folder / f"{stem}.npy").is_file()),
                    None)
    ids = _as_ids(np.load(ids_file, allow_pickle=False)) if ids_file is not None else None
    for path in files:
        found, file_ids = _file_entries(path, path.stem if len(containers) > 1 and path.suffix != ".npy" else None)
        layers.update(found)
        ids = ids or file_ids
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):  # THINGSvision: MODULE/features.*
        saved = next((sub / f for f in THINGSVISION_FILES if (sub / f).is_file()), None)
        if saved is not None:
            found, file_ids = _file_entries(saved, None)
            entry = next(iter(found.values()))
            layers[sub.name] = entry
            ids = ids or file_ids
    if not layers:
        raise MissingDataError(
            f"{folder} holds no features: give LAYER.npy files, .npz or .h5 files (one array per layer), or "
            "THINGSvision's output (MODULE/features.npy folders and file_names.txt)")
    return layers, ids


def read_ids(path: Path) -> list[str]:
    """Stimulus ids, one per line, or a CSV column (``stimulus_id``, ``id``, ``image``, ``file_name``, else the first)."""
    if not path.is_file():
        raise MissingDataError(f"the stimulus ids file {path} does not exist")
    text = path.read_text()
    if path.suffix.lower() in (".csv", ".tsv"):
        rows = list(csv.reader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ","))
        if not rows:
            raise BrainbenchError(f"{path} is empty; it should list one stimulus id per row")
        header = [h.strip().lower() for h in rows[0]]
        column = next((header.index(c) for c in ID_COLUMNS if c in header), None)
        body = rows[1:] if column is not None else rows
        return [row[column or 0].strip() for row in body if row]
    return [line.strip() for line in text.splitlines() if line.strip()]


# -- matching ids to a dataset's stimuli ---------------------------------------------------------

def match_rows(ids: Sequence[str], stimulus_ids: Sequence[str], label: str, dataset: str) -> tuple[np.ndarray, list[str]]:
    """Row of each stimulus of the dataset, and notes (reordered rows, rows left out).

    Raises
    ------
    BrainbenchError
        When a stimulus has no row (the sentence counts them and names a few).
    """
    wanted = set(stimulus_ids)
    keys = [i if i in wanted else Path(i).stem for i in ids]
    position: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key in position:
            raise BrainbenchError(f"{label} lists stimulus {key!r} twice (rows {position[key]} and {row})")
        position[key] = row
    missing = [s for s in stimulus_ids if s not in position]
    if missing:
        raise BrainbenchError(
            f"{label} has no features for {len(missing)} of the {len(stimulus_ids)} stimuli of {dataset} "
            f"(e.g. {', '.join(missing[:3])}); import features for every stimulus the dataset shows")
    order = np.array([position[s] for s in stimulus_ids], dtype=np.int64)
    notes = []
    extra = len(keys) - len(order)
    if extra:
        unused = [k for k in keys if k not in wanted][:3]
        notes.append(f"{label}: {extra} rows belong to no stimulus of {dataset} (e.g. {', '.join(unused)}) "
                     "and are left out")
    if not np.array_equal(order, np.arange(len(order))):
        notes.append(f"{label}: rows are put in the stimulus order of {dataset}, by their ids")
    return order, notes


# -- import -------------------------------------------------------------------------------------

def import_features(folder: str | Path, name: str, *, ids: str | Path | None = None, dataset: str | None = None,
                    dataset_options: dict | None = None, description: str | None = None,
                    source: str | None = None) -> tuple[dict, list[str]]:
    """Check and register the features in ``folder`` as ``features:NAME``; returns the manifest and notes.

    Raises
    ------
    BrainbenchError
        A bad name, an unreadable file, layers of different lengths, ids that do not fit.
    """
    if not _NAME.match(name or ""):
        raise BrainbenchError(f"invalid features name {name!r}: use lower-case letters, digits and '-._' "
                              "(it is scored as features:NAME)")
    folder = Path(folder).expanduser().resolve()
    layers, array_ids = find_layers(folder)
    counts = {}
    for layer, entry in layers.items():
        array = _read(entry)
        if array.ndim < 2 or array.dtype.kind not in "fiub":
            raise BrainbenchError(f"the features of layer {layer!r} in {entry['file']} are {array.dtype} of shape "
                                  f"{array.shape}; give a numeric array with one row per stimulus")
        if not np.all(np.isfinite(np.asarray(array[: min(len(array), 64)], dtype=np.float64))):
            raise BrainbenchError(f"the features of layer {layer!r} in {entry['file']} hold NaN or infinite values")
        entry["shape"] = list(array.shape)
        counts[layer] = array.shape[0]
    if len(set(counts.values())) > 1:
        raise BrainbenchError(f"the layers in {folder} have different numbers of rows: "
                              + ", ".join(f"{k} {v}" for k, v in counts.items()))
    n_rows = next(iter(counts.values()))
    id_list, ids_from = None, None
    if ids is not None:
        id_list, ids_from = read_ids(Path(ids).expanduser()), str(Path(ids).expanduser().resolve())
    elif array_ids is not None:
        id_list, ids_from = array_ids, "an ids array next to the features"
    else:
        found = next((folder / f for f in ID_FILES if (folder / f).is_file()), None)
        if found is not None:
            id_list, ids_from = read_ids(found), str(found)
    notes: list[str] = []
    built = None
    if dataset is not None:
        from brainbench.core.registry.guards import build
        from brainbench.core.registry import get_registry

        built = build(get_registry().dataset(dataset), **(dataset_options or {}))
        if id_list is None:
            if n_rows != len(built.stimuli):
                raise BrainbenchError(f"{folder} has {n_rows} rows but {dataset} shows {len(built.stimuli)} stimuli, "
                                      "so the rows cannot be in its stimulus order; give their ids with --ids FILE")
            id_list, ids_from = list(built.stimuli.ids), f"the stimulus order of {dataset}"
    if id_list is None:
        raise BrainbenchError(
            f"which stimulus is each row of {folder}? give --ids FILE (one id per line, or a CSV with a stimulus_id "
            "column), put THINGSvision's file_names.txt in the folder, or give --dataset NAME when the rows follow "
            "that dataset's stimulus order")
    if len(id_list) != n_rows:
        raise BrainbenchError(f"{ids_from} lists {len(id_list)} stimulus ids but the features have {n_rows} rows")
    if built is not None:
        _order, notes = match_rows(id_list, built.stimuli.ids, f"features:{name}", dataset)
    files = sorted({entry["file"] for entry in layers.values()} | ({ids_from} if Path(ids_from).is_file() else set()))
    manifest = {
        "name": name, "folder": str(folder), "layers": layers, "ids": id_list, "ids_from": ids_from,
        "files": {f: {"sha256": sha256(Path(f)), "size": Path(f).stat().st_size,
                      "mtime_ns": Path(f).stat().st_mtime_ns} for f in files},
        "description": description or f"features imported from {folder}", "source": source or str(folder),
        "checked_against": dataset, "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "brainbench_version": brainbench.__version__,
    }
    store = store_folder()
    store.mkdir(parents=True, exist_ok=True)
    target = store / f"{name}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(target)
    return manifest, notes


def load_manifest(name: str) -> dict:
    path = store_folder() / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in store_folder().glob("*.json")) if store_folder().is_dir() else []
        listing = f" (imported: {', '.join(f'features:{k}' for k in known)})" if known else ""
        raise MissingDataError(f"no imported features are called {name!r}{listing}; import them with "
                               f"`bench features import DIR --name {name}`")
    return json.loads(path.read_text())


# -- the model --------------------------------------------------------------------------------

class ImportedFeatures(VisionModel):
    """Precomputed features seen as a model: its layers are the imported arrays; nothing runs.

    ``brainbench.core.pipeline.activations.extract`` asks :meth:`features_for` instead of running a network.
    """

    def __init__(self, name: str, manifest: dict, prefix_tokens: int = 0):
        super().__init__(name, "imported")
        self.manifest = manifest
        self.num_prefix_tokens = int(prefix_tokens)

    @property
    def layer_names(self) -> list[str]:
        return list(self.manifest["layers"])

    def fingerprint(self) -> dict[str, Any]:
        return {"features": {f: v["sha256"] for f, v in self.manifest["files"].items()}}

    def preprocessing(self) -> dict[str, Any]:
        return {"imported": self.manifest["source"]}

    def provenance(self) -> dict[str, Any]:
        """What the rows record of these features: the folder, where the ids came from, every file's SHA-256."""
        folder = Path(self.manifest["folder"])
        files = {(str(Path(f).relative_to(folder)) if Path(f).is_relative_to(folder) else f): v["sha256"]
                 for f, v in self.manifest["files"].items()}
        return {"features": {"folder": str(folder), "ids_from": self.manifest["ids_from"], "files": files}}

    def _check_files(self) -> None:
        """Refuse files that changed since the import (size or time changed and the SHA-256 differs)."""
        for file, recorded in self.manifest["files"].items():
            path = Path(file)
            if not path.is_file():
                raise MissingDataError(f"{path}, imported as part of {self.name}, is gone; put it back or import again")
            stat = path.stat()
            if (stat.st_size, stat.st_mtime_ns) != (recorded["size"], recorded["mtime_ns"]) and \
                    sha256(path) != recorded["sha256"]:
                raise BrainbenchError(f"{path} changed since it was imported as {self.name}; run `bench features "
                                      f"import` again to score the new features")

    def features_for(self, stimuli, layers: Sequence[str], dataset: str = "the dataset scored") -> dict[str, np.ndarray]:
        """Layer → (n_stimuli, …) rows for ``stimuli``, matched by id (see :func:`match_rows`)."""
        self._check_files()
        order, notes = match_rows(self.manifest["ids"], list(stimuli.ids), self.name, dataset)
        for note in notes:
            log.warning(note)
        return {layer: np.asarray(_read(self.manifest["layers"][layer])[order], dtype=np.float32) for layer in layers}

    def load(self, device: torch.device) -> None:
        pass  # nothing to build: extract() reads features_for()

    def forward_layers(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        raise BrainbenchError(f"{self.name} holds precomputed features for known stimuli; it cannot run on images")


def resolve(rest: str) -> tuple:
    """``features:NAME`` → (factory, description, metadata) from the manifest."""
    manifest = load_manifest(rest)
    name = f"features:{rest}"

    def factory(checkpoint: str | None = None, prefix_tokens: int = 0, **options) -> ImportedFeatures:
        if checkpoint not in (None, "imported"):
            raise BrainbenchError(f"{name} is a set of imported features without checkpoints; drop @{checkpoint}")
        if options:
            raise BrainbenchError(f"{name} has no option {sorted(options)[0]!r}; its options: prefix_tokens")
        return ImportedFeatures(name, load_manifest(rest), prefix_tokens)  # re-read: it may be imported again

    metadata = dict(family="imported features", layers=len(manifest["layers"]),
                    training_data="not stated (features computed elsewhere)",
                    objective="not stated (features computed elsewhere)", source=manifest["source"],
                    checkpoints=["imported"], n_stimuli=len(manifest["ids"]), imported_at=manifest["imported_at"])
    return factory, manifest["description"], metadata


@brainbench.hookimpl
def register_model_prefixes(register):
    register("features", resolve, description="features computed elsewhere: features:NAME after "
                                              "`bench features import DIR --name NAME`")

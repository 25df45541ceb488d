"""Where a model's weights come from: files on disk, never the network.

A checkpoint name resolves to a :class:`WeightSource` (or None for ``init``):

1. the ``weights`` option (``--set model.weights=PATH``): a ``save_pretrained`` folder, a
   ``.safetensors`` file, a ``.pth``/``.pt``/``.bin`` state dict (an original DINOv3
   checkpoint included), or a folder holding ``<checkpoint>.pth`` / ``<checkpoint>.safetensors``
   / ``<checkpoint>/``;
2. ``pretrained``: the released weights in ``<weights root>/<release folder>`` (the Hugging
   Face repository's name, e.g. ``dinov3-vits16-pretrain-lvd1689m``), else the Hugging Face
   cache (``local_files_only``);
3. any other name (a training step, say): ``<weights root>/<model>/<checkpoint>`` with one
   of the suffixes above, or a folder of that name; ``step-N`` also finds a checkpoint named
   otherwise for step N (``model_<N-1>.pth``, see :mod:`brainbench.core.contract.checkpoints`).

The weights root is the ``weights_dir`` option, else the ``weights`` setting
(``$BRAINBENCH_WEIGHTS`` or the config file, see ``bench config``), else ``<home>/weights`` when
that folder exists. A miss is one sentence
naming the folder to fill. ``torch.load`` is only ever called with ``weights_only=True``.
"""
from __future__ import annotations

import json
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from brainbench.core.config import Config, weights_root  # noqa: F401 - weights_root is used below and by old callers
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.failures import file_error

if TYPE_CHECKING:  # torch is imported when weights are read, not when models are listed
    import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: file suffixes read as weights
from brainbench.core.contract.checkpoints import WEIGHT_SUFFIXES  # noqa: E402
_FINGERPRINTED = (".safetensors", ".pth", ".pt", ".bin", ".json")


@dataclass(frozen=True)
class WeightSource:
    """Weights on disk: a folder (``save_pretrained`` or timm hub layout) or a single file."""

    path: Path

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir()

    def files(self) -> list[Path]:
        """The weight and config files that identify these weights."""
        if not self.is_folder:
            return [self.path]
        return sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix in _FINGERPRINTED)

    def weight_file(self) -> Path:
        """The single weight file (the file itself, or the folder's one weight file)."""
        if not self.is_folder:
            return self.path
        for name in ("model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors"):
            if (self.path / name).is_file():
                return self.path / name
        found = [p for p in self.files() if p.suffix in WEIGHT_SUFFIXES]
        if len(found) != 1:
            raise BrainbenchError(
                f"{self.path} holds {len(found)} weight files; keep exactly one (or a model.safetensors)"
            )
        return found[0]

    def folder_config(self) -> dict:
        """The folder's ``config.json`` (empty for a file or a folder without one)."""
        path = self.path / "config.json"
        return json.loads(path.read_text()) if self.is_folder and path.is_file() else {}

    def fingerprint(self) -> dict:
        """Path, sizes and content hashes (SHA-256): changes whenever the weights change.

        The content is hashed once per file identity (path, size, mtime, inode, ctime) and
        remembered (:mod:`brainbench.core.content_hash`), so a file replaced by other weights of
        the same size and modification time is still told apart.
        """
        from brainbench.core.content_hash import file_sha256

        try:
            files = [[p.name, p.stat().st_size, file_sha256(p)] for p in self.files()]
        except OSError as exc:
            raise BrainbenchError(f"cannot read the weights {exc.filename or self.path}: {exc.strerror or exc}") from None
        return {"path": str(self.path.resolve()), "files": files}


def _as_source(path: Path) -> WeightSource | None:
    if path.is_file() and path.suffix in WEIGHT_SUFFIXES:
        return WeightSource(path)
    if path.is_dir() and ((path / "config.json").is_file() or any(
            p.suffix in WEIGHT_SUFFIXES for p in path.iterdir() if p.is_file())):
        return WeightSource(path)
    return None


def _named_in(folder: Path, checkpoint: str) -> WeightSource | None:
    for candidate in [folder / checkpoint] + [folder / f"{checkpoint}{s}" for s in WEIGHT_SUFFIXES]:
        source = _as_source(candidate)
        if source is not None:
            return source
    from brainbench.core.contract.checkpoints import find_step, step_of

    step = step_of(checkpoint) if checkpoint != "init" else None
    path = find_step(folder, step) if step is not None else None  # step-N saved as model_<N-1>.pth, …
    return _as_source(path) if path is not None else None


def _hub_cache(hub_id: str) -> WeightSource | None:
    try:
        from huggingface_hub import snapshot_download

        return _as_source(Path(snapshot_download(hub_id, local_files_only=True)))
    except Exception:  # noqa: BLE001 - any miss means "not in the cache"
        return None


def find_weights(model: str, checkpoint: str, *, weights: str | os.PathLike | None = None,
                 weights_dir: str | os.PathLike | None = None, release: str | None = None,
                 hub_id: str | None = None) -> WeightSource | None:
    """Resolve ``model@checkpoint`` to weights on disk (None for ``init``).

    Parameters
    ----------
    model, checkpoint
        The registered name and the checkpoint (``init``, ``pretrained`` or any other name).
    weights
        An explicit file or folder (the ``weights`` option); wins over everything else.
    weights_dir
        The weights root (default: the ``weights`` setting).
    release
        Folder name of the released weights under the root (None: nothing released).
    hub_id
        Hugging Face repository looked up in the local cache for ``pretrained``.

    Raises
    ------
    MissingDataError
        When nothing is found; the message names the folder or file to provide.
    """
    if checkpoint == "init":
        if weights is not None:
            raise BrainbenchError(
                f"{model}@init means random weights, so model.weights={weights} is not used; "
                f"drop it or name a checkpoint such as {model}@pretrained"
            )
        return None
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.exists():
            raise MissingDataError(f"the weights {path} given for {model}@{checkpoint} do not exist")
        source = _as_source(path) or (_named_in(path, checkpoint) if path.is_dir() else None)
        if source is None:
            raise MissingDataError(
                f"{path} holds no weights for {model}@{checkpoint}: give a save_pretrained folder, a "
                f".safetensors or .pth file, or a folder with {checkpoint}.pth in it"
            )
        return source
    root = weights_root(weights_dir)
    if checkpoint == "pretrained":
        if release is None:
            raise MissingDataError(
                f"{model} has no released weights: point --set model.weights=PATH at a checkpoint "
                f"(.pth, .safetensors or a save_pretrained folder), or use {model}@init for random weights"
            )
        if root is not None and (source := _as_source(root / release)) is not None:
            return source
        if hub_id is not None and (source := _hub_cache(hub_id)) is not None:
            return source
        where = root / release if root is not None else f"$BRAINBENCH_WEIGHTS/{release}"
        raise MissingDataError(
            f"no weights for {model}: put the Hugging Face folder {hub_id or release} (config.json + "
            f"model.safetensors) in {where} or in the Hugging Face cache, or use {model}@init for random weights"
        )
    if root is not None and (source := _named_in(root / model, checkpoint)) is not None:
        return source
    where = root / model if root is not None else f"$BRAINBENCH_WEIGHTS/{model}"
    raise MissingDataError(
        f"{model} has no checkpoint {checkpoint!r} on disk: put {checkpoint}.pth (e.g. an original DINOv3 "
        f"checkpoint), {checkpoint}.safetensors or a save_pretrained folder {checkpoint}/ in {where}, "
        f"or pass --set model.weights=PATH"
    )


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file or a ``.pth``/``.pt``/``.bin`` file (``weights_only=True``).

    Nested training checkpoints are returned as stored; see
    :func:`brainbench.plugins.models.checkpoints.unwrap`.
    """
    try:
        return _read_state_dict(path)
    except (BrainbenchError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors, torch.load and zipfile each raise their own
        raise file_error(path, "weights file", exc, "it is truncated, damaged or not a checkpoint; download or "
                         "save it again") from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # files from the legacy (non-zip) format cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise BrainbenchError(
            f"{path} holds Python objects besides tensors, which brainbench does not unpickle "
            "(torch.load weights_only=True); save the model's state dict alone"
        ) from None

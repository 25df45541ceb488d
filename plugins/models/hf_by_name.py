"""``hf:ORG/NAME``: any Hugging Face transformers vision model, built by ``AutoModel``.

- Config and weights come from disk only: ``--set model.weights=FOLDER`` (a ``save_pretrained``
  folder), ``$BRAINBENCH_WEIGHTS/ORG/NAME``, or the Hugging Face cache (``huggingface-cli download
  ORG/NAME`` on a machine with internet). ``@init`` needs only the folder's ``config.json``.
- Image-text models (CLIP, SigLIP, …: a config with a ``vision_config``) are scored through
  their vision tower (``model.vision_model``).
- Preprocessing: the folder's image processor (``AutoImageProcessor``: its resize, crop,
  rescale and mean/std), whose settings enter the cache key; without a
  ``preprocessor_config.json``, the config's ``image_size`` and ImageNet mean/std.
- Layers: ``hidden_states.0`` (the embeddings) … ``hidden_states.N`` (after block N), what the
  model returns with ``output_hidden_states=True``. Prefix tokens: a CLS token when the
  embeddings have one (``cls_token``, ``class_embedding``), a DeiT distillation token, and
  ``num_register_tokens`` from the config (DINOv2 with registers).
- Metadata: parameters (counted on the meta device), family (``model_type``), and training data
  from the model card's ``datasets:`` when the folder has a README.md.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from brainbench.core.errors import BrainbenchError, MissingDataError

from .base import COMMON_OPTIONS, check_loading_info, quiet_transformers
from .named_model import NamedModel, count_parameters, named_factory, prefix_tokens
from .weights import WEIGHT_SUFFIXES, WeightSource, weights_root

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def find_folder(repo: str, weights=None, weights_dir=None) -> Path | None:
    """The local folder of ``repo`` holding its ``config.json``: ``weights``, the weights root, the HF cache."""
    if weights is not None:
        path = Path(weights).expanduser()
        return path if (path / "config.json").is_file() else None
    root = weights_root(weights_dir)
    if root is not None and (root / repo / "config.json").is_file():
        return root / repo
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo, "config.json")
    except Exception:  # noqa: BLE001 - a malformed id or cache means "not in the cache"
        cached = None
    return Path(cached).parent if isinstance(cached, str) else None


def _missing(repo: str, what: str, weights_dir=None) -> MissingDataError:
    root = weights_root(weights_dir)
    where = root / repo if root is not None else f"$BRAINBENCH_WEIGHTS/{repo}"
    return MissingDataError(
        f"no {what} for hf:{repo}: put the Hugging Face folder {repo} (config.json, preprocessor_config.json and "
        f"model.safetensors) in {where} or in the Hugging Face cache, or pass --set model.weights=FOLDER"
    )


def _config(folder: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True)
    except (ValueError, OSError, json.JSONDecodeError) as exc:
        raise BrainbenchError(f"{folder / 'config.json'} is not a transformers config transformers can read "
                              f"({str(exc).splitlines()[0]})") from None


def _vision(network: torch.nn.Module) -> torch.nn.Module:
    """The vision tower of an image-text model, else the model."""
    return getattr(network, "vision_model", network)


def _meta_network(config) -> torch.nn.Module:
    from transformers import AutoModel

    with torch.device("meta"), quiet_transformers():
        try:
            return _vision(AutoModel.from_config(config))
        except ValueError as exc:
            raise BrainbenchError(f"transformers has no model class for config type {config.model_type!r} "
                                  f"({str(exc).splitlines()[0]})") from None


def _vision_config(config):
    return getattr(config, "vision_config", None) or config


def _n_hidden_states(network: torch.nn.Module, config, image_size: int) -> int:
    """How many hidden states the model returns: run on the meta device, else ``num_hidden_layers + 1``."""
    try:
        with torch.no_grad():
            out = network(pixel_values=torch.empty(1, getattr(_vision_config(config), "num_channels", 3), image_size,
                                                   image_size, device="meta"), output_hidden_states=True)
        return len(out.hidden_states)
    except Exception:  # noqa: BLE001 - some models cannot run on the meta device
        layers = getattr(_vision_config(config), "num_hidden_layers", None)
        if layers is None:
            raise BrainbenchError(f"cannot tell how many hidden states a {config.model_type} model returns") from None
        return int(layers) + 1


def _image_size(config) -> int:
    size = getattr(_vision_config(config), "image_size", 224)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def _card_datasets(folder: Path | None) -> list[str]:
    readme = folder / "README.md" if folder is not None else None
    if readme is None or not readme.is_file():
        return []
    try:
        from huggingface_hub import ModelCard

        datasets = ModelCard.load(readme).data.to_dict().get("datasets") or []
    except Exception:  # noqa: BLE001 - a malformed card only loses the training data
        return []
    return [str(d) for d in (datasets if isinstance(datasets, list) else [datasets])]


def _processor_settings(processor) -> dict:
    """Resolution and mean/std of an image processor (for the model's own description and the memory estimate)."""
    if processor is None:
        return {}
    found: dict = {}
    size = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    size = size or getattr(processor, "size", None)
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge")
    if isinstance(size, int):
        found["image_size"] = size
    for key in ("mean", "std"):
        value = getattr(processor, f"image_{key}", None)
        if value is not None:
            found[key] = list(value)
    return found


class HFModel(NamedModel):
    """A transformers vision model by name (see the module docstring)."""

    OPTIONS = COMMON_OPTIONS

    def __init__(self, name: str, checkpoint: str, *, repo: str, weights=None, weights_dir=None, **options):
        self.repo = repo
        if checkpoint not in ("init", "pretrained") and weights is None:
            raise MissingDataError(f"{name} has no checkpoint {checkpoint!r} on disk: pass --set model.weights=FOLDER "
                                   f"(a save_pretrained folder of that checkpoint), or use {name} or {name}@init")
        self.folder = find_folder(repo, weights, weights_dir)
        if self.folder is None:
            if weights is not None:
                raise MissingDataError(f"{weights} holds no config.json for {name}; give a save_pretrained folder")
            raise _missing(repo, "config" if checkpoint == "init" else "weights", weights_dir)
        if checkpoint == "pretrained" and not any(p.suffix in WEIGHT_SUFFIXES for p in self.folder.iterdir()):
            raise _missing(repo, "weights", weights_dir)
        self.config = _config(self.folder)
        meta = _meta_network(self.config)
        registers = int(getattr(_vision_config(self.config), "num_register_tokens", 0) or 0)
        self.num_prefix_tokens, self.has_cls_token = prefix_tokens(meta, registers)
        self.num_parameters = count_parameters(meta)
        self.processor = self._processor()
        defaults = {"image_size": _image_size(self.config), **_processor_settings(self.processor)}
        super().__init__(name, checkpoint, weights=self.folder if checkpoint != "init" else None,
                         weights_dir=weights_dir, defaults=defaults, **options)
        if self.processor is not None:  # --set model.mean/std/image_size reach the processor too
            self.processor.image_mean, self.processor.image_std = list(self.mean), list(self.std)
        self.layers = [f"hidden_states.{i}" for i in range(_n_hidden_states(meta, self.config, self.image_size))]

    def _processor(self):
        if not (self.folder / "preprocessor_config.json").is_file():
            return None
        from transformers import AutoImageProcessor

        with quiet_transformers():
            return AutoImageProcessor.from_pretrained(self.folder, local_files_only=True)

    def architecture(self) -> str:
        return self.config.to_json_string(use_diff=False)

    def build(self) -> torch.nn.Module:
        from transformers import AutoModel

        with quiet_transformers():
            return _vision(AutoModel.from_config(self.config))

    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        from transformers import AutoModel

        with quiet_transformers():
            network, info = AutoModel.from_pretrained(source.path, local_files_only=True, dtype=torch.float32,
                                                      output_loading_info=True)
        # the pooler is not among the hidden states, and many released backbones ship without one
        check_loading_info(info, source.path, self.name, ignore=("pooler.", "embeddings.mask_token"))
        return _vision(network)

    def preprocessing(self) -> dict[str, Any]:
        if self.processor is None:
            return super().preprocessing()
        settings = self.processor.to_dict()
        return {"image_processor": json.loads(json.dumps(settings, default=str, sort_keys=True))}

    def preprocess(self, images) -> torch.Tensor:
        if self.processor is None:
            return super().preprocess(images)
        import numpy as np

        arrays = [np.repeat(np.asarray(i)[:, :, None], 3, axis=2) if np.asarray(i).ndim == 2 else np.asarray(i)[:, :, :3]
                  for i in images]
        return self.processor(images=arrays, return_tensors="pt")["pixel_values"]

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    def iter_layers(self, pixel_values: torch.Tensor):
        out = self.network(pixel_values=pixel_values.to(self.dtype), output_hidden_states=True)
        yield from out.hidden_states


def resolve(rest: str) -> tuple:
    """``hf:ORG/NAME`` → (factory, description, metadata); metadata from the local folder when there is one."""
    if not _REPO.match(rest):
        raise BrainbenchError(f"hf:{rest} is not a Hugging Face repository id; use hf:ORG/NAME, "
                              "e.g. hf:facebook/dinov2-small")
    name = f"hf:{rest}"
    metadata: dict[str, Any] = dict(source=f"https://huggingface.co/{rest}", checkpoints=["pretrained", "init"],
                                    library="transformers")
    folder = find_folder(rest)
    description = f"Hugging Face {rest}"
    if folder is not None:
        config = _config(folder)
        meta = _meta_network(config)
        datasets = _card_datasets(folder)
        metadata.update(family=config.model_type, architecture=type(meta).__name__, parameters=count_parameters(meta),
                        layers=_n_hidden_states(meta, config, _image_size(config)), image_size=_image_size(config),
                        training_data=", ".join(datasets) if datasets else "not stated in the model card",
                        objective="not stated by transformers")
        description += f" ({config.model_type})"
    else:
        description += " (not on disk here: metadata unknown)"
    return named_factory(HFModel, name, repo=rest), description, metadata

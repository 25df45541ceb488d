"""What every built-in model shares: checkpoints, weights on disk, precision, memory estimates.

:class:`FamilyModel` is a :class:`~brainbench.core.contract.model.VisionModel` whose subclasses only
say how to build their network (:meth:`~FamilyModel.build`), how to load weights into it
(:meth:`~FamilyModel.load_weights`) and how to run it block by block
(:meth:`~FamilyModel.iter_layers`). Checkpoints: ``init`` (the real architecture with random
weights, ``torch.manual_seed(seed)`` then the library's own initialisation, always on the CPU
so that the weights do not depend on the device), ``pretrained`` (released weights) and any
other name (weights on disk, see :mod:`brainbench.plugins.models.weights`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any, Sequence

import torch

from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.model import IMAGENET_MEAN, IMAGENET_STD, MemoryEstimate, VisionModel

from brainbench.plugins.models.factory import COMMON_OPTIONS
from brainbench.plugins.models.weights import WeightSource, find_weights

#: extra working memory allowed over the activation count (allocator slack, temporaries)
SAFETY = 1.5


def transformer_elements(tokens: int, hidden: int, intermediate: int, heads: int, gated: bool = False) -> int:
    """Activation elements alive while one transformer block runs on one image.

    Residual stream, normalised input, q/k/v and attention output (``6·T·D``), the MLP's
    hidden layer (two or, gated, three ``T·I`` tensors), and attention scores and
    probabilities (``2·H·T²``, materialised by the CPU's attention kernel).
    """
    return tokens * (6 * hidden + (3 if gated else 2) * intermediate) + 2 * heads * tokens**2


def conv_elements(largest_map: int) -> int:
    """Activation elements of a convolutional block whose largest tensor has ``largest_map`` elements."""
    return 8 * largest_map


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' progress bars and load reports while it loads weights."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _first(names: Sequence[str], n: int = 3) -> str:
    """``a, b, c`` (and how many more) for a message."""
    names = sorted(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def check_loading_info(info: dict, where: Any, name: str, ignore: Sequence[str] = (),
                       unexpected_ok: bool = False) -> None:
    """Refuse weights that left tensors of ``name`` uninitialised, did not fit, or held tensors ``name``
    does not have (extra keys, extra blocks of a deeper checkpoint) — transformers' load report.

    ``unexpected_ok``: the file is a whole released model of which ``name`` is one part (CLIP's vision tower).
    """
    missing = sorted(k for k in info.get("missing_keys", ()) if not any(k.startswith(i) for i in ignore))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ()))
    unexpected = [] if unexpected_ok else sorted(str(k) for k in info.get("unexpected_keys", ()))
    if missing or mismatched or unexpected:
        what = (f"{len(missing)} tensors missing (e.g. {missing[0]})" if missing
                else f"{len(mismatched)} tensors of the wrong shape (e.g. {mismatched[0]})" if mismatched
                else f"{len(unexpected)} unexpected tensors ({_first(unexpected)})")
        raise BrainbenchError(f"the weights in {where} do not fit {name}: {what}")


def load_state(network: torch.nn.Module, state: dict[str, torch.Tensor], where: Any, name: str,
               ignore: Sequence[str] = ()) -> None:
    """``load_state_dict`` that reports a mismatch in one sentence (``ignore``: key prefixes that may be absent)."""
    try:
        result = network.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise BrainbenchError(f"the weights in {where} do not fit {name}: {detail.rstrip('.')}") from None
    missing = [k for k in result.missing_keys if not any(k.startswith(i) for i in ignore)]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        what = (f"{len(missing)} tensors missing (e.g. {missing[0]})" if missing
                else f"{len(unexpected)} unexpected tensors ({_first(unexpected)})")
        raise BrainbenchError(f"the weights in {where} do not fit {name}: {what}")


def _keep_fp32(name: str) -> bool:
    return name.endswith("inv_freq")


def cast_network(network: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """Move to ``device`` and cast to ``dtype``, keeping RoPE frequencies (``inv_freq``) in float32."""
    keep = {n: b.detach().float() for n, b in network.named_buffers() if _keep_fp32(n)}
    network.to(device=device, dtype=dtype)
    for name, value in keep.items():
        owner, _, leaf = name.rpartition(".")
        network.get_submodule(owner)._buffers[leaf] = value.to(device)
    return network


class FamilyModel(VisionModel):
    """A built-in model: real architecture, local weights, precision and memory estimate.

    Parameters
    ----------
    name, checkpoint
        Registered name and checkpoint (``init``, ``pretrained`` or another name on disk).
    seed
        Seed of the random initialisation (``init`` only).
    weights, weights_dir
        An explicit weights file/folder; the root of local weights (default: the ``weights`` setting).
    precision
        ``fp32`` (default), ``bf16`` or ``fp16``.
    image_size, mean, std
        Override the preprocessing (default: the variant's, or the weights folder's own config).
    release, hub_id
        Folder name and Hugging Face repository of the released weights (subclasses pass them).
    defaults
        The variant's preprocessing: ``image_size``, ``mean``, ``std``.
    """

    handles_precision = True
    #: option names the factory accepts (besides the checkpoint)
    OPTIONS: tuple[str, ...] = COMMON_OPTIONS
    backend = "transformers"

    def __init__(self, name: str, checkpoint: str, *, seed: int = 0, weights=None, weights_dir=None,
                 precision: str = "fp32", image_size: int | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, release: str | None = None, hub_id: str | None = None,
                 defaults: dict | None = None):
        super().__init__(name, checkpoint)
        self.seed = int(seed)
        self.set_precision(precision)
        self.network: torch.nn.Module | None = None
        self.source: WeightSource | None = find_weights(name, checkpoint, weights=weights, weights_dir=weights_dir,
                                                        release=release, hub_id=hub_id)
        settings = {"image_size": 224, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, **(defaults or {})}
        settings.update(self._preprocessing_from_source())
        for key, value in (("image_size", image_size), ("mean", mean), ("std", std)):
            if value is not None:
                settings[key] = value
        self.image_size = int(settings["image_size"])
        self.mean = tuple(float(v) for v in settings["mean"])
        self.std = tuple(float(v) for v in settings["std"])
        if len(self.mean) != 3 or len(self.std) != 3:
            raise BrainbenchError(f"mean and std of {name} need three values (R, G, B), got {self.mean} and {self.std}")

    # -- what subclasses provide ---------------------------------------------------------
    def architecture(self) -> str:
        """A string that identifies the random-init architecture (enters the fingerprint)."""
        raise NotImplementedError

    def library_versions(self) -> dict[str, str]:
        """Versions of the library that builds the network, per ``backend`` (they enter the init fingerprint)."""
        if self.backend == "timm":
            import timm

            return {"timm": timm.__version__}
        import transformers

        return {"transformers": transformers.__version__}

    def build(self) -> torch.nn.Module:
        """The network with random weights (the seed is already set)."""
        raise NotImplementedError

    def load_weights(self, source: WeightSource) -> torch.nn.Module:
        """The network with the weights of ``source``."""
        raise NotImplementedError

    def activation_elements(self) -> int:
        """Working activation elements per image (see :func:`transformer_elements`)."""
        raise NotImplementedError

    # -- shared behaviour ------------------------------------------------------------------
    def _preprocessing_from_source(self) -> dict:
        """Resolution and mean/std from the weights folder's own config, when it has one."""
        if self.source is None or not self.source.is_folder:
            return {}
        found: dict = {}
        processor = self.source.path / "preprocessor_config.json"
        if processor.is_file():
            config = json.loads(processor.read_text())
            size = config.get("crop_size") if config.get("do_center_crop") else config.get("size")
            if isinstance(size, dict):
                size = size.get("height") or size.get("shortest_edge")
            if isinstance(size, int):
                found["image_size"] = size
            found.update({k: config[f"image_{k}"] for k in ("mean", "std") if config.get(f"image_{k}")})
        pretrained_cfg = self.source.folder_config().get("pretrained_cfg", {})  # timm hub layout
        found.update({k: pretrained_cfg[k] for k in ("mean", "std") if pretrained_cfg.get(k)})
        return found

    def fingerprint(self) -> dict:
        if self.source is None:
            digest = hashlib.sha256(self.architecture().encode()).hexdigest()[:16]
            return {"init_seed": self.seed, "config": digest, "torch": torch.__version__, **self.library_versions()}
        identity = self.source.fingerprint()
        return identity if self.backend == "transformers" else {"backend": self.backend, **identity}

    def load(self, device: torch.device) -> None:
        if self.network is None:
            if self.source is None:
                torch.manual_seed(self.seed)
                with torch.device("cpu"):
                    network = self.build()
            else:
                network = self.load_weights(self.source)
            self.network = network.eval()
        cast_network(self.network, device, self.dtype)

    def forward_layers(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        return list(self.iter_layers(pixel_values))

    def estimate_memory(self) -> MemoryEstimate | None:
        if self.num_parameters is None:
            return None
        itemsize = self.dtype.itemsize
        pixels = 3 * self.image_size**2 * 4
        per_image = int(SAFETY * self.activation_elements() * itemsize) + pixels
        # weights are built (init) or read (from_pretrained, dtype float32) in float32, then cast
        return MemoryEstimate(weights=self.num_parameters * itemsize, per_image=per_image,
                              staging=self.num_parameters * 4)

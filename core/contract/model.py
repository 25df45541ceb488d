"""The contract a model plugin's factory fulfils: :class:`VisionModel`.

A subclass describes its inputs with class attributes (``image_size``, ``mean``, ``std``,
``num_prefix_tokens``, ``has_cls_token``) and implements :attr:`~VisionModel.layer_names`,
:meth:`~VisionModel.fingerprint`, :meth:`~VisionModel.load` and
:meth:`~VisionModel.forward_layers`. Everything else is optional:

- :attr:`~VisionModel.num_parameters` and :meth:`~VisionModel.estimate_memory` feed the
  pre-flight memory check of ``brainbench.core.pipeline.activations.extract``;
- :meth:`~VisionModel.iter_layers` yields layers one at a time, so each layer is pooled and
  moved to the CPU as soon as it is produced (the default yields from ``forward_layers``);
- :attr:`~VisionModel.handles_precision`: the model casts its own weights to
  :attr:`~VisionModel.dtype` in ``load``; otherwise half precision runs under ``torch.autocast``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from ..errors import BrainbenchError

if TYPE_CHECKING:  # torch is imported where a model runs, not where one is listed
    import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: ``--precision`` names and the names of the torch floating-point types they select. Names, not
#: dtypes: this module is imported by ``bench list``, which must not import torch.
PRECISIONS: dict[str, str] = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_precision(precision: str) -> torch.dtype:
    """``"fp32"`` / ``"bf16"`` / ``"fp16"`` → the torch dtype, or a one-sentence error."""
    try:
        name = PRECISIONS[precision]
    except (KeyError, TypeError):
        raise BrainbenchError(
            f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}"
        ) from None
    import torch

    return getattr(torch, name)


@dataclass(frozen=True)
class MemoryEstimate:
    """What running a model needs, in bytes: its weights, and the working memory per image.

    ``per_image`` covers one forward pass of one image (inputs, the largest layer's
    intermediate tensors, attention scores when they are materialised) with a safety margin;
    it is an estimate, not a measurement. ``staging`` is the host RAM used while loading.
    """

    weights: int
    per_image: int
    #: host RAM needed while the weights are built or read, before they reach the device
    #: (e.g. a float32 random init that is then cast to bf16 and moved to the GPU)
    staging: int = 0


class VisionModel(abc.ABC):
    """A vision model seen as a stack of layers.

    Subclasses set the class attributes that describe their inputs and outputs and
    implement :meth:`layer_names`, :meth:`fingerprint`, :meth:`load` and
    :meth:`forward_layers`. Everything else (batching, devices, token pooling,
    caching) is done by ``brainbench.core.pipeline.activations``.
    """

    #: square input resolution in pixels
    image_size: int = 224
    #: per-channel normalisation applied after scaling pixels to [0, 1]
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    #: tokens before the patch tokens in (batch, tokens, dim) outputs (CLS + registers)
    num_prefix_tokens: int = 0
    #: whether token 0 is a CLS token (enables ``--pooling cls``)
    has_cls_token: bool = False
    #: exact number of parameters when known (used by the pre-flight memory estimate)
    num_parameters: int | None = None
    #: the precision the model runs in: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"``
    precision: str = "fp32"
    #: True when :meth:`load` casts the weights to :attr:`dtype` itself
    handles_precision: bool = False

    def __init__(self, name: str, checkpoint: str):
        self.name = name
        self.checkpoint = checkpoint

    @property
    @abc.abstractmethod
    def layer_names(self) -> list[str]:
        """Layer names in depth order (the order of :meth:`forward_layers`' outputs)."""

    @abc.abstractmethod
    def fingerprint(self) -> dict[str, Any]:
        """JSON-able identity of the weights: a file hash/mtime, or the seed and config of a random init.

        It enters the activation cache key, so anything that changes the weights must change it.
        """

    @abc.abstractmethod
    def load(self, device: torch.device) -> None:
        """Build the network and put it on ``device`` in eval mode (called once, lazily)."""

    @abc.abstractmethod
    def forward_layers(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """Run a preprocessed batch (batch, 3, H, W); return one tensor per layer.

        Each tensor is (batch, tokens, dim) for transformers, (batch, channels, h, w) for
        convolutional stages, or (batch, dim) for already-pooled outputs.
        """

    @property
    def dtype(self) -> torch.dtype:
        """The torch dtype of :attr:`precision`."""
        return resolve_precision(self.precision)

    def set_precision(self, precision: str) -> None:
        """Choose the precision before :meth:`load` (``fp32``, ``bf16`` or ``fp16``)."""
        resolve_precision(precision)
        self.precision = precision

    def iter_layers(self, pixel_values: torch.Tensor) -> Iterator[torch.Tensor]:
        """Yield one output per layer, in depth order (same tensors as :meth:`forward_layers`).

        Override it to run the network block by block, so that each layer can be pooled and
        moved off the device before the next one is computed.
        """
        yield from self.forward_layers(pixel_values)

    def estimate_memory(self) -> MemoryEstimate | None:
        """Bytes for the weights and per image, or None when unknown.

        The default knows the weights from :attr:`num_parameters` and nothing per image.
        """
        if self.num_parameters is None:
            return None
        return MemoryEstimate(weights=self.num_parameters * self.dtype.itemsize, per_image=0)

    def preprocessing(self) -> dict[str, Any]:
        """What :meth:`preprocess` does, for the cache key."""
        return {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": "shorter-side-bicubic-antialias+center-crop+uint8",
        }

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (H, W, 3) images → normalised float tensor (batch, 3, S, S).

        The shorter side is resized to ``image_size`` (bicubic, antialiased), the centre square
        is cropped (square stimuli, NSD and THINGS, are only resized) and rounded to uint8, then
        normalised by ``mean`` and ``std``. Extraction runs the same two steps apart
        (:mod:`brainbench.core.pipeline.input_pipeline`): the resize in worker processes, the
        normalisation on the device.
        """
        import torch

        from ..compute.images import normalise, resize_uint8

        batch = torch.stack([resize_uint8(image, self.image_size) for image in images])
        return normalise(batch, self.mean, self.std, torch.device("cpu"))

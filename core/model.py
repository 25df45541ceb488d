"""The contract a model plugin's factory fulfils: :class:`VisionModel`."""
from __future__ import annotations

import abc
from typing import Any, Sequence

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VisionModel(abc.ABC):
    """A vision model seen as a stack of layers.

    Subclasses set the class attributes that describe their inputs and outputs and
    implement :meth:`layer_names`, :meth:`fingerprint`, :meth:`load` and
    :meth:`forward_layers`. Everything else (batching, devices, token pooling,
    caching) is done by ``brainbench.core.activations``.
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

    def preprocessing(self) -> dict[str, Any]:
        """What :meth:`preprocess` does, for the cache key."""
        return {
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "resize": "shorter-side-bicubic-antialias+center-crop",
        }

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """uint8 (H, W, 3) images → normalised float tensor (batch, 3, S, S).

        The shorter side is resized to ``image_size`` (bicubic, antialiased), then the
        centre square is cropped: square stimuli (NSD, THINGS) are only resized.
        """
        size = self.image_size
        mean = torch.tensor(self.mean, dtype=torch.float32).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(3, 1, 1)
        out = []
        for image in images:
            image = np.asarray(image)
            if image.ndim == 2:
                image = np.repeat(image[:, :, None], 3, axis=2)
            t = torch.from_numpy(np.ascontiguousarray(image[:, :, :3])).permute(2, 0, 1).float() / 255.0
            h, w = t.shape[1:]
            scale = size / min(h, w)
            new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
            t = torch.nn.functional.interpolate(
                t[None], size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
            )[0].clamp_(0, 1)
            top, left = (new_h - size) // 2, (new_w - size) // 2
            t = t[:, top : top + size, left : left + size]
            out.append((t - mean) / std)
        return torch.stack(out)

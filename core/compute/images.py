"""The two steps of the standard image preprocessing, apart so that workers and the device can each run one.

``resize_uint8`` (shorter side to the model's resolution, bicubic and antialiased, centre crop,
rounded to uint8) runs in the input pipeline's worker processes; ``normalise`` (mean/std) runs
on the device. :meth:`brainbench.core.contract.model.VisionModel.preprocess` runs both in turn.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

def resize_uint8(image: np.ndarray, size: int) -> torch.Tensor:
    """One uint8 (H, W, 3) (or (H, W)) image → uint8 (3, size, size) tensor.

    The shorter side is resized to ``size`` (bicubic, antialiased, in float on [0, 1]), the
    centre square is cropped and the result is rounded to 8 bits (at most half a grey level,
    1/510, from the unrounded resize).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    t = torch.from_numpy(np.ascontiguousarray(image[:, :, :3])).permute(2, 0, 1).float().div_(255.0)
    h, w = t.shape[1:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    if (new_h, new_w) != (h, w):
        t = torch.nn.functional.interpolate(
            t[None], size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
        )[0]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    t = t[:, top: top + size, left: left + size]
    return t.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8)


def normalise(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float], device: torch.device) -> torch.Tensor:
    """uint8 (batch, 3, S, S) → float32 ((x / 255) - mean) / std on ``device`` (copied without blocking)."""
    pixels = batch.to(device, non_blocking=True).float().div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return pixels.sub_(mean_t).div_(std_t)

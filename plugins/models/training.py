"""Train ``tiny-dino`` on CPU with DINO self-distillation, and save its checkpoints as DINOv3 does.

It exists so that trajectories (:mod:`brainbench.core.contract.checkpoints`) and the half-time metric
run on real learning, not on fabricated weights. Small and honest, not a reproduction of
DINOv3 (no iBOT, KoLeo or Gram anchoring, no schedule on the teacher temperature or the
weight decay):

- **network**: the ``tiny-dino`` variant of :mod:`brainbench.plugins.models.dinov3`, a real
  ``transformers`` ``DINOv3ViTModel`` (96 wide, 6 blocks, 3 heads, patch 16, 4 registers, RoPE),
  built after ``torch.manual_seed(seed)`` exactly as ``tiny-dino@init`` is, so step 0 of the
  trajectory *is* ``tiny-dino@init`` (same ``seed``);
- **data**: the 16 photographs scikit-image ships (those of the synthetic datasets), resized
  to 160 px squares; every step draws ``batch_size`` of them and cuts 2 global crops (64 px,
  25–100 % of the area, :data:`GLOBAL_SCALE`) and ``local_crops`` local crops (32 px, 5–25 %,
  :data:`LOCAL_SCALE`), with flips, colour jitter and greyscale, batched through
  ``torchvision.ops.roi_align``;
- **objective**: DINO (Caron et al. 2021). A 3-layer MLP head (hidden 256, bottleneck 64) and
  a weight-normalised prototype layer (``out_dim`` 512) on the CLS token after the final norm;
  the teacher's softmax of the *centred* outputs at temperature 0.04 (sharpening; the centre is
  an EMA, momentum 0.9, of the teacher's batch means) is the target of the student's softmax
  at temperature 0.1, by cross-entropy, for every (teacher global view, other student view)
  pair. The teacher is an EMA of the student, momentum 0.99 → 1 on a cosine schedule; AdamW
  (peak learning rate 5e-4, weight decay 0.04, none on biases and norms), linear warm-up over
  10 % of the steps then cosine decay to 1 %, gradient norm clipped at 3. The student runs in
  training mode, so transformers' DINOv3 applies DINOv3's RoPE rescaling augmentation;
- **checkpoints**: the teacher, as DINOv3 training writes it: ``model_<iteration:07d>.pth``
  after iteration ``iteration`` (0-based; step = iteration + 1), a dict ``{"teacher":
  {"backbone.<original DINOv3 names>": …, "dino_head.…": …}, "iteration": …}`` (names from
  :func:`brainbench.plugins.models.checkpoints.transformers_to_original`), at ``checkpoints``
  log-spaced steps ending at ``steps``. A ``trajectory.json`` manifest records the options,
  the loss of every step, the steps saved, the time taken and, at step 0 and every checkpoint,
  two learning signals of the teacher on a fixed probe set of crops (:func:`probe`): *crop
  invariance*, the mean cosine similarity of crops of the same photo minus that of crops of
  different photos, which DINO's objective rewards (0.28 at init → 0.54 after the default 300
  steps, measured), and the nearest-neighbour accuracy at telling the 16 photos apart (0.49 at
  init, 0.42–0.48 later: a random ViT already tells the photos apart by their colours, and the
  colour invariance DINO learns does not help with that).

Measured on the 2-core test machine (one torch thread, shared): 300 steps (batch 32) take
80–110 s on a quiet machine; the default 1000 steps, 350 s of CPU time (37 min of wall time
with seven other jobs on the two cores); the tests' 12 steps (batch 8) about 4 s. The default
is 1000 steps with 16 log-spaced checkpoints because on 300 the developmental datasets show no
per-region order (docs/trajectories.md, "What training does on them").
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from brainbench.core.errors import BrainbenchError
from brainbench.core.files import atomic_write
from brainbench.core.contract.model import IMAGENET_MEAN, IMAGENET_STD
from brainbench.core.contract.checkpoints import MANIFEST, discover

MODEL = "tiny-dino"
PHOTO_SIZE = 160
GLOBAL_SCALE = (0.25, 1.0)
LOCAL_SCALE = (0.05, 0.25)


@dataclass
class TrainingOptions:
    """What ``bench trajectory make`` can set (defaults: about 6 minutes of CPU time, one thread)."""

    steps: int = 1000
    batch_size: int = 32
    checkpoints: int = 16
    local_crops: int = 4
    lr: float = 5e-4
    out_dim: int = 512
    teacher_momentum: float = 0.99
    seed: int = 0
    threads: int | None = None

    def check(self) -> None:
        for name in ("steps", "batch_size", "checkpoints"):
            if int(getattr(self, name)) < 1:
                raise BrainbenchError(f"training option {name} must be a positive integer, got {getattr(self, name)}")
        if not 0 <= self.teacher_momentum < 1:
            raise BrainbenchError(f"teacher_momentum must be in [0, 1), got {self.teacher_momentum}")


def save_steps(steps: int, count: int) -> list[int]:
    """``count`` log-spaced training steps from 1 to ``steps`` (fewer when they coincide), ending at ``steps``."""
    return sorted({int(s) for s in np.round(np.geomspace(1, steps, max(count, 1)))} | {steps})


def load_photos(size: int = PHOTO_SIZE) -> torch.Tensor:
    """scikit-image's photographs (:data:`~brainbench.plugins.datasets.synthetic.PHOTOS`):
    (16, 3, size, size) in [0, 1].

    Shorter side resized to ``size`` (bicubic), centre square kept; greyscale photos get three channels.
    """
    import skimage.data
    from PIL import Image

    from brainbench.plugins.datasets.synthetic import PHOTOS

    out = []
    for name in PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        photo = Image.fromarray(np.ascontiguousarray(image[:, :, :3]))
        scale = size / min(photo.size)
        photo = photo.resize((max(size, round(photo.size[0] * scale)), max(size, round(photo.size[1] * scale))),
                             Image.BICUBIC)
        left, top = (photo.size[0] - size) // 2, (photo.size[1] - size) // 2
        photo = photo.crop((left, top, left + size, top + size))
        out.append(torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def random_crops(photos: torch.Tensor, index: torch.Tensor, size: int, scale: tuple[float, float],
                 generator: torch.Generator) -> torch.Tensor:
    """One augmented, normalised crop of each ``photos[index[i]]``: (len(index), 3, size, size).

    Random-resized crops (area fraction in ``scale``, aspect ratio 3/4–4/3), horizontal flips
    (p 0.5), colour jitter (p 0.8: brightness and contrast ×0.6–1.4, saturation ×0.8–1.2) and
    greyscale (p 0.2), then ImageNet normalisation.
    """
    from torchvision.ops import roi_align

    n, side = len(index), photos.shape[-1]
    uniform = lambda low, high: low + (high - low) * torch.rand(n, generator=generator)  # noqa: E731
    area = uniform(*scale) * side * side
    ratio = torch.exp(uniform(math.log(3 / 4), math.log(4 / 3)))
    width = torch.sqrt(area * ratio).clamp(max=side)
    height = torch.sqrt(area / ratio).clamp(max=side)
    left = uniform(0, 1) * (side - width)
    top = uniform(0, 1) * (side - height)
    boxes = torch.stack([index.float(), left, top, left + width, top + height], dim=1)
    crops = roi_align(photos, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)
    flip = torch.rand(n, generator=generator) < 0.5
    crops = torch.where(flip[:, None, None, None], crops.flip(-1), crops)
    grey = (crops * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    jitter = (torch.rand(n, generator=generator) < 0.8).float().view(n, 1, 1, 1)
    brightness = 1 + jitter * (uniform(0.6, 1.4).view(n, 1, 1, 1) - 1)
    contrast = 1 + jitter * (uniform(0.6, 1.4).view(n, 1, 1, 1) - 1)
    saturation = 1 + jitter * (uniform(0.8, 1.2).view(n, 1, 1, 1) - 1)
    mean_grey = grey.mean(dim=(2, 3), keepdim=True)
    crops = grey + saturation * (crops - grey)
    crops = mean_grey + contrast * (crops * brightness - mean_grey)
    to_grey = (torch.rand(n, generator=generator) < 0.2).view(n, 1, 1, 1)
    crops = torch.where(to_grey, crops.mean(1, keepdim=True).expand_as(crops), crops).clamp(0, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (crops - mean) / std


class DINOHead(torch.nn.Module):
    """DINO's projection head: MLP → L2-normalised bottleneck → weight-normalised prototypes (norm fixed at 1)."""

    def __init__(self, in_dim: int, out_dim: int = 512, hidden: int = 256, bottleneck: int = 64):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.GELU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.GELU(),
                                       torch.nn.Linear(hidden, bottleneck))
        last = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(bottleneck, out_dim, bias=False))
        last.parametrizations.weight.original0.data.fill_(1.0)
        last.parametrizations.weight.original0.requires_grad = False
        self.last_layer = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(torch.nn.functional.normalize(self.mlp(x), dim=-1))


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """Mean cross-entropy between sharpened, centred teacher views and every *other* student view.

    ``student``: logits of every view (the global views first, in the teacher's order); ``teacher``:
    logits of the global views.
    """
    targets = [torch.softmax((t - center) / teacher_temp, dim=-1) for t in teacher]
    log_probs = [torch.log_softmax(s / student_temp, dim=-1) for s in student]
    total, terms = 0.0, 0
    for i, target in enumerate(targets):
        for j, log_p in enumerate(log_probs):
            if i != j:
                total = total + (-(target * log_p).sum(-1)).mean()
                terms += 1
    return total / terms


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))


def _checkpoint(teacher, head, config, iteration: int) -> dict:
    from brainbench.plugins.models.checkpoints import transformers_to_original

    backbone = transformers_to_original({k: v.detach().clone() for k, v in teacher.state_dict().items()}, config)
    state = {f"backbone.{k}": v for k, v in backbone.items()}
    state.update({f"dino_head.{k}": v.detach().clone() for k, v in head.state_dict().items()})
    return {"teacher": state, "iteration": iteration}


def probe_set(photos: torch.Tensor, size: int, per_photo: int = 8,
              seed: int = 12345) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed set of ``per_photo`` global crops of every photo, and each crop's photo index."""
    labels = torch.arange(len(photos)).repeat(per_photo)
    return random_crops(photos, labels, size, GLOBAL_SCALE, torch.Generator().manual_seed(seed)), labels


@torch.no_grad()
def probe(network, crops: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Learning signals on a fixed probe set (cosine similarity of the CLS token after the final norm).

    ``invariance``: mean similarity between crops of the same photo minus that between crops of
    different photos (what DINO's objective rewards); ``nn_accuracy``: leave-one-out
    nearest-neighbour accuracy at telling which photo a crop comes from (chance: 1 / photos).
    """
    was_training = network.training
    features = torch.nn.functional.normalize(network.eval()(pixel_values=crops).pooler_output, dim=-1)
    network.train(was_training)
    similarity = features @ features.T
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~torch.eye(len(labels), dtype=torch.bool)
    invariance = similarity[same & off_diagonal].mean() - similarity[~same].mean()
    similarity.fill_diagonal_(-2.0)
    accuracy = (labels[similarity.argmax(1)] == labels).float().mean()
    return {"invariance": round(float(invariance), 4), "nn_accuracy": round(float(accuracy), 4)}


def prepare_folder(folder: Path, force: bool) -> None:
    """Create ``folder``; refuse to mix trajectories unless ``force``, which removes the previous one."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = discover(folder)
    if previous and not force:
        raise BrainbenchError(f"{folder} already holds {len(previous)} checkpoints of a trajectory; "
                              "use --force to replace them")
    for checkpoint in previous:
        if checkpoint.path.is_file():
            checkpoint.path.unlink()
    (folder / MANIFEST).unlink(missing_ok=True)


def initial_network(seed: int = 0):
    """The network training starts from: ``torch.manual_seed(seed)``, then a ``DINOv3ViTModel`` of the
    ``tiny-dino`` config built on the CPU — what ``tiny-dino@init`` (option ``seed``) builds."""
    from transformers import DINOv3ViTModel

    from brainbench.plugins.models.dinov3_model import dinov3_config
    torch.manual_seed(seed)
    with torch.device("cpu"):
        return DINOv3ViTModel(dinov3_config(MODEL))


def train(folder: str | Path, options: TrainingOptions | None = None, *, force: bool = False,
          echo: Callable[[str], None] = lambda message: None) -> dict:
    """Train ``tiny-dino`` and write its checkpoints and manifest to ``folder``.

    Parameters
    ----------
    folder
        Where the checkpoints go (``<weights>/tiny-dino`` for ``bench run -m tiny-dino@all``).
    options
        Steps, batch size, number of checkpoints, seed… (:class:`TrainingOptions`).
    force
        Replace a trajectory already in ``folder``.
    echo
        Progress messages.

    Returns
    -------
    dict
        The manifest (also written to ``folder/trajectory.json``); ``"teacher"`` is not in it, but
        :func:`train` leaves the final teacher in ``manifest["_teacher"]`` for callers that need it.
    """
    from brainbench.plugins.models.dinov3 import VARIANTS

    options = options or TrainingOptions()
    options.check()
    folder = Path(folder).expanduser()
    prepare_folder(folder, force)
    if options.threads:
        torch.set_num_threads(int(options.threads))
    student = initial_network(options.seed)
    config = student.config
    head = DINOHead(config.hidden_size, options.out_dim)
    teacher, teacher_head = copy.deepcopy(student).eval(), copy.deepcopy(head)
    for p in [*teacher.parameters(), *teacher_head.parameters()]:
        p.requires_grad_(False)
    student.train()
    params = [p for p in [*student.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim > 1], "weight_decay": 0.04},
                                   {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}],
                                  lr=options.lr)
    size = VARIANTS[MODEL]["image_size"]
    photos = load_photos()
    probe_crops = probe_set(photos, size)
    generator = torch.Generator().manual_seed(options.seed)
    center = torch.zeros(options.out_dim)
    warmup = max(1, options.steps // 10)
    wanted = save_steps(options.steps, options.checkpoints)
    manifest = {"model": MODEL, "objective": "DINO self-distillation (brainbench.plugins.models.training)",
                "data": "scikit-image's 16 bundled photographs (brainbench.plugins.datasets.synthetic.PHOTOS)",
                "options": asdict(options), "saved_steps": [], "loss": [], "elapsed_s": 0.0,
                "probe": {"0": probe(teacher, *probe_crops)}, "probe_chance": 1 / len(photos),
                "init": f"{MODEL}@init with seed {options.seed} is step 0 (the weights training started from)",
                "naming": "model_<iteration:07d>.pth after iteration <iteration> (0-based): step = iteration + 1; "
                          "teacher backbone in the original DINOv3 tensor names",
                "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    started = time.perf_counter()
    for step in range(1, options.steps + 1):
        fraction = (step - 1) / max(options.steps - 1, 1)
        lr = options.lr * step / warmup if step <= warmup else _cosine(options.lr, options.lr * 0.01,
                                                                       (step - warmup) / max(options.steps - warmup, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        index = torch.randint(0, len(photos), (options.batch_size,), generator=generator)
        globals_ = [random_crops(photos, index, size, GLOBAL_SCALE, generator) for _ in range(2)]
        locals_ = random_crops(photos, index.repeat(options.local_crops), size // 2, LOCAL_SCALE,
                               generator)
        with torch.no_grad():
            teacher_out = teacher_head(teacher(pixel_values=torch.cat(globals_)).pooler_output).chunk(2)
        student_global = head(student(pixel_values=torch.cat(globals_)).pooler_output).chunk(2)
        student_local = head(student(pixel_values=locals_).pooler_output).chunk(options.local_crops)
        loss = dino_loss([*student_global, *student_local], list(teacher_out), center)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 3.0)
        optimizer.step()
        with torch.no_grad():
            momentum = _cosine(options.teacher_momentum, 1.0, fraction)
            for source, target in ((student, teacher), (head, teacher_head)):
                for p_s, p_t in zip(source.parameters(), target.parameters()):
                    p_t.mul_(momentum).add_(p_s.detach(), alpha=1 - momentum)
            center.mul_(0.9).add_(torch.cat(teacher_out).mean(0), alpha=0.1)
        manifest["loss"].append(round(loss.item(), 5))
        if step in wanted:
            path = folder / f"model_{step - 1:07d}.pth"
            with atomic_write(path, "wb") as f:
                torch.save(_checkpoint(teacher, teacher_head, config, step - 1), f)
            manifest["saved_steps"].append(step)
            manifest["probe"][str(step)] = probe(teacher, *probe_crops)
            manifest["elapsed_s"] = round(time.perf_counter() - started, 2)
            with atomic_write(folder / MANIFEST) as f:
                f.write(json.dumps(manifest, indent=1))
            echo(f"step {step}/{options.steps}: loss {loss.item():.4f}, crop invariance "
                 f"{manifest['probe'][str(step)]['invariance']:.3f}, saved {path.name} ({manifest['elapsed_s']:.1f} s)")
    manifest["_teacher"] = teacher
    return manifest

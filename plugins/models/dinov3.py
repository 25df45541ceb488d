"""DINOv3 vision transformers through ``transformers``' ``DINOv3ViTModel``.

Checkpoints (``NAME@CHECKPOINT``):

- ``pretrained`` (default): released weights, read from disk only — a folder in the
  ``save_pretrained`` layout under ``$BRAINBENCH_WEIGHTS/<hf-folder>`` (e.g.
  ``$BRAINBENCH_WEIGHTS/dinov3-vits16-pretrain-lvd1689m``), else the Hugging Face cache.
  Nothing is downloaded (``HF_HUB_OFFLINE=1``).
- ``init``: the real architecture with random weights (``torch.manual_seed(seed)``, option
  ``seed``, default 0). The config is the published one, whose ``layerscale_value`` is 1.0;
  DINOv3 training itself starts LayerScale at 1e-5 (option ``layerscale``).

Layers: ``layer00`` is the patch embedding output (CLS + 4 registers + patches), then
``layer01``… one per transformer block, before the final LayerNorm. Token pooling is done
by ``brainbench.core.activations`` (default: mean of patch tokens, registers excluded).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

import brainbench
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.model import VisionModel

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_GELU = {"hidden_act": "gelu", "use_gated_mlp": False}
_SWIGLU = {"hidden_act": "silu", "use_gated_mlp": True}
VARIANTS: dict[str, dict] = {
    "dinov3-small": dict(hf="dinov3-vits16-pretrain-lvd1689m", label="ViT-S/16",
                         config=dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, **_GELU)),
    "dinov3-small-plus": dict(hf="dinov3-vits16plus-pretrain-lvd1689m", label="ViT-S+/16",
                              config=dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, **_SWIGLU)),
    "dinov3-base": dict(hf="dinov3-vitb16-pretrain-lvd1689m", label="ViT-B/16",
                        config=dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, **_GELU)),
    "dinov3-large": dict(hf="dinov3-vitl16-pretrain-lvd1689m", label="ViT-L/16",
                         config=dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, **_GELU)),
    "dinov3-huge-plus": dict(hf="dinov3-vith16plus-pretrain-lvd1689m", label="ViT-H+/16",
                             config=dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=20, intermediate_size=5120, **_SWIGLU)),
    "dinov3-7b": dict(hf="dinov3-vit7b16-pretrain-lvd1689m", label="ViT-7B/16",
                      config=dict(hidden_size=4096, num_hidden_layers=40, num_attention_heads=32, intermediate_size=8192,
                                  query_bias=False, value_bias=False, **_SWIGLU)),
    # A test-sized architecture (real DINOv3 classes, tiny shapes) for fast tests and smoke runs.
    "dinov3-tiny": dict(hf=None, label="ViT-tiny/16 (test size)", image_size=64,
                        config=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=4, intermediate_size=256, **_GELU)),
}
_COMMON = dict(patch_size=16, num_register_tokens=4, rope_theta=100.0)


def dinov3_config(name: str, **overrides):
    """The ``DINOv3ViTConfig`` of a variant (4 registers, patch 16, RoPE θ=100)."""
    from transformers import DINOv3ViTConfig

    return DINOv3ViTConfig(**{**_COMMON, **VARIANTS[name]["config"], **overrides})


def _count_parameters(name: str) -> int:
    from transformers import DINOv3ViTModel

    with torch.device("meta"):
        model = DINOv3ViTModel(dinov3_config(name))
    return sum(p.numel() for p in model.parameters())


class DINOv3(VisionModel):
    num_prefix_tokens = 5  # CLS + 4 registers
    has_cls_token = True

    def __init__(self, name: str, checkpoint: str, *, seed: int = 0, layerscale: float | None = None,
                 weights_dir: str | None = None):
        super().__init__(name, checkpoint)
        variant = VARIANTS[name]
        self.image_size = variant.get("image_size", 224)
        self.seed = seed
        overrides = {} if layerscale is None else {"layerscale_value": layerscale}
        self.config = dinov3_config(name, **overrides)
        self.network = None
        self.weights_path: Path | None = None
        if checkpoint == "pretrained":
            self.weights_path = self._find_weights(weights_dir)
        elif checkpoint != "init":
            raise BrainbenchError(
                f"model {name!r} has no checkpoint {checkpoint!r}; available: 'pretrained' (local weights) and 'init'"
            )

    def _find_weights(self, weights_dir: str | None) -> Path:
        folder = VARIANTS[self.name]["hf"]
        if folder is None:
            raise MissingDataError(f"{self.name} is a test architecture without released weights; use {self.name}@init")
        root = weights_dir or os.environ.get("BRAINBENCH_WEIGHTS")
        if root and (Path(root).expanduser() / folder / "config.json").is_file():
            return Path(root).expanduser() / folder
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(f"facebook/{folder}", local_files_only=True))
        except Exception:  # noqa: BLE001 - any miss means "not on disk"
            where = f"$BRAINBENCH_WEIGHTS/{folder}" if not root else f"{Path(root).expanduser() / folder}"
            raise MissingDataError(
                f"no weights for {self.name}: put the Hugging Face folder facebook/{folder} (config.json + "
                f"model.safetensors) in {where} or in the Hugging Face cache, or use {self.name}@init for random weights"
            ) from None

    @property
    def layer_names(self) -> list[str]:
        return [f"layer{i:02d}" for i in range(self.config.num_hidden_layers + 1)]

    def fingerprint(self) -> dict:
        if self.weights_path is None:
            import transformers

            config_hash = hashlib.sha256(self.config.to_json_string(use_diff=False).encode()).hexdigest()[:16]
            return {"init_seed": self.seed, "config": config_hash, "torch": torch.__version__,
                    "transformers": transformers.__version__}
        files = sorted(p for p in self.weights_path.iterdir() if p.suffix in (".safetensors", ".bin", ".json"))
        return {"path": str(self.weights_path.resolve()),
                "files": [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in files]}

    def load(self, device: torch.device) -> None:
        if self.network is not None:
            self.network.to(device)
            return
        from transformers import DINOv3ViTModel

        if self.weights_path is None:
            torch.manual_seed(self.seed)
            network = DINOv3ViTModel(self.config)
        else:
            network = DINOv3ViTModel.from_pretrained(self.weights_path, local_files_only=True)
            self.config = network.config
        self.network = network.eval().to(device)

    def forward_layers(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        out = self.network(pixel_values=pixel_values, output_hidden_states=True)
        return list(out.hidden_states)


def _factory(name: str):
    def build(checkpoint: str | None = None, **options) -> DINOv3:
        return DINOv3(name, checkpoint or "pretrained", **options)

    return build


@brainbench.hookimpl
def register_models(register):
    for name, variant in VARIANTS.items():
        cfg = variant["config"]
        register(
            name,
            _factory(name),
            description=f"DINOv3 {variant['label']}, {cfg['num_hidden_layers']} blocks × {cfg['hidden_size']} "
            f"({'SwiGLU' if cfg['use_gated_mlp'] else 'GELU'} MLP), 4 registers",
            family="dinov3",
            architecture=variant["label"],
            parameters=_PARAMETERS.get(name),
            layers=cfg["num_hidden_layers"] + 1,
            training_data="LVD-1689M (human-centric web images)" if variant["hf"] else "none (test architecture)",
            checkpoints=["pretrained", "init"] if variant["hf"] else ["init"],
            source=f"facebook/{variant['hf']}" if variant["hf"] else "brainbench",
        )


# Exact counts of the transformers architectures (computed once on the meta device;
# see tests/test_models.py, which recomputes them).
_PARAMETERS = {
    "dinov3-small": 21_596_544,
    "dinov3-small-plus": 28_692_864,
    "dinov3-base": 85_660_416,
    "dinov3-large": 303_129_600,
    "dinov3-huge-plus": 840_592_640,
    "dinov3-7b": 6_716_035_072,
    "dinov3-tiny": 249_920,
}

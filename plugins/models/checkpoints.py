"""Original DINOv3 checkpoints ↔ the ``transformers`` ``DINOv3ViTModel`` layout.

The facebookresearch/dinov3 ``DinoVisionTransformer`` names its tensors differently from
``transformers``. :func:`original_to_transformers` converts on load; the inverse,
:func:`transformers_to_original`, writes the original naming (used by the tests, and to hand
weights back to the original code). Per block ``i``:

=====================================  ==================================================
original                               transformers
=====================================  ==================================================
``cls_token`` (1, 1, D)                ``embeddings.cls_token``
``storage_tokens`` (1, R, D)           ``embeddings.register_tokens``
``mask_token`` (1, D)                  ``embeddings.mask_token`` (1, 1, D)
``patch_embed.proj.{weight,bias}``     ``embeddings.patch_embeddings.{weight,bias}``
``blocks.i.norm1`` / ``norm2``         ``model.layer.i.norm1`` / ``norm2``
``blocks.i.attn.qkv.weight`` (3D, D)   ``…attention.{q,k,v}_proj.weight`` (rows split in 3)
``blocks.i.attn.qkv.bias`` (3D)        ``…attention.q_proj.bias``, ``v_proj.bias`` (times
                                       ``qkv.bias_mask`` when present; the key bias must
                                       then be masked or zero, else ``key_bias`` is enabled)
``blocks.i.attn.proj``                 ``…attention.o_proj``
``blocks.i.ls1.gamma`` / ``ls2.gamma`` ``…layer_scale1.lambda1`` / ``layer_scale2.lambda1``
``blocks.i.mlp.fc1`` / ``fc2`` (GELU)  ``…mlp.up_proj`` / ``down_proj``
``blocks.i.mlp.w1`` / ``w2`` / ``w3``  ``…mlp.gate_proj`` / ``up_proj`` / ``down_proj``
(SwiGLU: ``w3(silu(w1 x) * w2 x)``)
``norm``                               ``norm``
``rope_embed.periods``                 checked against ``1 / rope_embeddings.inv_freq``, dropped
``local_cls_norm``                     dropped (training only)
=====================================  ==================================================

Training checkpoints wrap the backbone: ``{"teacher": {"backbone.cls_token": …, "dino_head.…"}}``
(also ``model``, ``state_dict``, ``module``; prefixes ``module.``, ``_orig_mod.`` from DDP and
``torch.compile``); :func:`unwrap` keeps the backbone. ``cls_norm`` (untied CLS norm) has no
``transformers`` counterpart and is refused.
"""
from __future__ import annotations

import re

import torch

from brainbench.core.errors import BrainbenchError

_WRAPPERS = ("teacher", "model_ema", "model", "state_dict", "module")
_STRIP = ("module.", "_orig_mod.")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_BLOCK_RENAMES = {
    "norm1.": "norm1.", "norm2.": "norm2.", "attn.proj.": "attention.o_proj.",
    "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1",
    "mlp.fc1.": "mlp.up_proj.", "mlp.fc2.": "mlp.down_proj.",
    "mlp.w1.": "mlp.gate_proj.", "mlp.w2.": "mlp.up_proj.", "mlp.w3.": "mlp.down_proj.",
}
_TOP_RENAMES = {
    "cls_token": "embeddings.cls_token", "storage_tokens": "embeddings.register_tokens",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.bias",
    "norm.weight": "norm.weight", "norm.bias": "norm.bias",
}
# transformers ≤ 4.57 saved the encoder blocks as ``layer.i`` (now ``model.layer.i``)
_LEGACY = (re.compile(r"^layer\."), "model.layer.")


def unwrap(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The backbone state dict inside a training checkpoint (or the state dict itself)."""
    state = checkpoint
    while isinstance(state, dict) and (inner := next(
            (state[k] for k in _WRAPPERS if isinstance(state.get(k), dict)), None)) is not None:
        state = inner
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(list(state)[:8]) if isinstance(state, dict) else type(state).__name__
        raise BrainbenchError(
            f"the checkpoint holds no tensors at its top level nor under {', '.join(_WRAPPERS)} (it has: {keys})"
        )
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    out = {}
    for key, value in state.items():
        for prefix in _STRIP:
            key = key[len(prefix):] if key.startswith(prefix) else key
        out[key] = value
    if any(k.startswith("backbone.") for k in out):
        out = {k[len("backbone."):]: v for k, v in out.items() if k.startswith("backbone.")}
    return out


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """``original`` (facebookresearch/dinov3), ``transformers``, ``timm`` or ``unknown``."""
    keys = set(state)
    if "blocks.0.ls1.gamma" in keys or "storage_tokens" in keys or "blocks.0.attn.qkv.bias_mask" in keys:
        return "original"
    if any(k.startswith(("embeddings.", "model.layer.", "model.stages.", "stages.0.downsample_layers")) for k in keys):
        return "transformers"
    if "reg_token" in keys or "blocks.0.gamma_1" in keys or any(k.startswith("stem.") for k in keys):
        return "timm"
    if "cls_token" in keys and "blocks.0.attn.qkv.weight" in keys:
        return "original"
    if any(_LEGACY[0].match(k) for k in keys):
        return "transformers"
    return "unknown"


def rename_legacy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Older ``transformers`` names (``layer.i``, ``stages.i``) → the current ``model.`` ones."""
    out = {}
    for key, value in state.items():
        key = _LEGACY[0].sub(_LEGACY[1], key)
        key = re.sub(r"^stages\.", "model.stages.", key)
        out[key] = value
    return out


def original_to_transformers(state: dict[str, torch.Tensor], config) -> tuple[dict[str, torch.Tensor], dict]:
    """Convert an original DINOv3 ViT state dict to ``DINOv3ViTModel`` names.

    Parameters
    ----------
    state
        The backbone's tensors (after :func:`unwrap`).
    config
        The ``DINOv3ViTConfig`` the weights are meant for; shapes are checked against it.

    Returns
    -------
    tuple
        The converted state dict, and config overrides the checkpoint implies (its
        query/key/value biases: present or not).
    """
    if any(k.startswith("cls_norm.") for k in state):
        raise BrainbenchError("the checkpoint unties the CLS-token norm (cls_norm), which transformers' DINOv3ViTModel cannot hold")
    _check_structure(state, config)
    hidden = config.hidden_size
    out: dict[str, torch.Tensor] = {}
    overrides: dict = {}
    for key, value in state.items():
        if key in _TOP_RENAMES:
            out[_TOP_RENAMES[key]] = value
        elif key == "mask_token":
            out["embeddings.mask_token"] = value.reshape(1, 1, -1)
        elif key == "rope_embed.periods":
            _check_periods(value, config)
        elif key.startswith(("local_cls_norm.", "head.")):
            continue
        elif (match := _BLOCK.match(key)) is not None:
            index, rest = match.groups()
            prefix = f"model.layer.{index}."
            if rest == "attn.qkv.weight":
                q, k, v = value.reshape(3, hidden, -1).unbind(0)
                out.update({prefix + "attention.q_proj.weight": q, prefix + "attention.k_proj.weight": k,
                            prefix + "attention.v_proj.weight": v})
            elif rest == "attn.qkv.bias":
                mask = state.get(f"blocks.{index}.attn.qkv.bias_mask")
                bias = value * mask.to(value.dtype) if mask is not None else value
                q, k, v = bias.reshape(3, hidden).unbind(0)
                out[prefix + "attention.q_proj.bias"] = q
                out[prefix + "attention.v_proj.bias"] = v
                overrides.update(query_bias=True, value_bias=True)
                if torch.count_nonzero(k):
                    out[prefix + "attention.k_proj.bias"] = k
                    overrides["key_bias"] = True
            elif rest == "attn.qkv.bias_mask":
                continue
            else:
                new = next((rest.replace(old, repl, 1) for old, repl in _BLOCK_RENAMES.items()
                            if rest.startswith(old)), None)
                if new is None:
                    raise BrainbenchError(f"unknown tensor {key!r} in the original DINOv3 checkpoint")
                out[prefix + new] = value
        else:
            raise BrainbenchError(f"unknown tensor {key!r} in the original DINOv3 checkpoint")
    if "blocks.0.attn.qkv.bias" not in state:
        overrides.update(query_bias=False, value_bias=False)
    if "key_bias" not in overrides and config.key_bias:
        overrides["key_bias"] = False
    return out, overrides


def transformers_to_original(state: dict[str, torch.Tensor], config, *, bias_mask: bool = True) -> dict[str, torch.Tensor]:
    """The inverse of :func:`original_to_transformers`: ``DINOv3ViTModel`` names → original ones.

    With ``bias_mask`` (what DINOv3 training writes), the fused ``qkv.bias`` gets a
    ``bias_mask`` that zeroes its key part; without a key bias the key part is zero.
    ``rope_embed.periods`` is written from the config.
    """
    hidden = config.hidden_size
    top = {v: k for k, v in _TOP_RENAMES.items()}
    block_names = {}
    for old, new in _BLOCK_RENAMES.items():
        if old.startswith("mlp.fc") and config.use_gated_mlp or old.startswith("mlp.w") and not config.use_gated_mlp:
            continue
        block_names[new] = old
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
        elif key == "embeddings.mask_token":
            out["mask_token"] = value.reshape(1, -1)
        elif (match := re.match(r"^model\.layer\.(\d+)\.(.+)$", key)) is not None:
            index, rest = match.groups()
            prefix = f"blocks.{index}."
            if rest.startswith("attention.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                continue  # fused below
            new = next((rest.replace(n, o, 1) for n, o in block_names.items() if rest.startswith(n)), None)
            if new is None:
                raise BrainbenchError(f"no original name for {key!r}")
            out[prefix + new] = value
        else:
            out[key] = value  # not a DINOv3 tensor: kept, so that loading refuses it by name
    for index in range(config.num_hidden_layers):
        attention = f"model.layer.{index}.attention."
        out[f"blocks.{index}.attn.qkv.weight"] = torch.cat(
            [state[attention + f"{p}_proj.weight"] for p in "qkv"], dim=0)
        if config.query_bias or config.value_bias:
            zeros = torch.zeros(hidden, dtype=state[attention + "q_proj.weight"].dtype)
            parts = [state.get(attention + f"{p}_proj.bias", zeros) for p in "qkv"]
            out[f"blocks.{index}.attn.qkv.bias"] = torch.cat(parts)
            if bias_mask:
                mask = torch.ones(3 * hidden, dtype=parts[0].dtype)
                mask[hidden:2 * hidden] = 0
                out[f"blocks.{index}.attn.qkv.bias_mask"] = mask
    head_dim = hidden // config.num_attention_heads
    out["rope_embed.periods"] = config.rope_theta ** (2 * torch.arange(head_dim // 4) / (head_dim // 2))
    return out


def _check_periods(periods: torch.Tensor, config) -> None:
    head_dim = config.hidden_size // config.num_attention_heads
    expected = config.rope_theta ** (2 * torch.arange(head_dim // 4, dtype=torch.float64) / (head_dim // 2))
    if periods.shape != expected.shape or not torch.allclose(periods.double(), expected, rtol=1e-3):
        raise BrainbenchError(
            f"the checkpoint's RoPE periods are not those of base {config.rope_theta} with head size {head_dim}; "
            "transformers' DINOv3ViTModel cannot reproduce them"
        )


def _check_structure(state: dict[str, torch.Tensor], config) -> None:
    """Refuse, in one sentence, an original checkpoint of another size than ``config``."""
    blocks = {int(m.group(1)) for k in state if (m := _BLOCK.match(k))}
    width = state["cls_token"].shape[-1] if "cls_token" in state else None
    registers = state["storage_tokens"].shape[1] if "storage_tokens" in state else 0
    gated = "blocks.0.mlp.w1.weight" in state
    found = (len(blocks), width, registers, gated)
    wanted = (config.num_hidden_layers, config.hidden_size, config.num_register_tokens, config.use_gated_mlp)
    if found != wanted:
        raise BrainbenchError(
            f"the checkpoint is a ViT with {found[0]} blocks of width {found[1]}, {found[2]} registers and "
            f"{'a SwiGLU' if gated else 'a GELU'} MLP, but the model expects {wanted[0]} blocks of width {wanted[1]}, "
            f"{wanted[2]} registers and {'a SwiGLU' if wanted[3] else 'a GELU'} MLP"
        )

"""``bench info MODEL --layers``: the layers and submodules a ``--layers`` selection can name."""
from __future__ import annotations

import json

from ..errors import BrainbenchError
from ..registry.guards import build
from ..contract.layers import module_names
from ..registry.specs import ModelRef, get_registry


def layer_listing(text: str, *, as_json: bool = False) -> str:
    """The model's own layers (the default selection), then every named submodule with its class.

    The model is built at ``@init`` unless a checkpoint is given (no weights are read: the names
    come from the architecture, built on the meta device).
    """
    ref = ModelRef.parse(text)
    spec = get_registry().model(ref.name)
    try:
        model = build(spec, ref.checkpoint or "init")
    except BrainbenchError:
        if ref.checkpoint is not None:
            raise
        model = build(spec, None)  # models without an init (imported features)
    own = list(model.layer_names)
    modules = module_names(model)
    if as_json:
        return json.dumps({"model": spec.name, "layers": own,
                           "modules": [{"name": n, "class": c} for n, c in modules]}, indent=2)
    lines = [f"{spec.name}: {len(own)} layers (the default; names or globs for --layers):", "  " + ", ".join(own)]
    if modules:
        lines += [f"submodules ({len(modules)}; --layers reads them with forward hooks):"]
        lines += [f"  {name:<48} {cls}" for name, cls in modules]
    else:
        lines += ["no submodules: --layers can only pick among the layers above"]
    return "\n".join(lines)

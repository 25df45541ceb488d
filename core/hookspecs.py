"""The whole plugin contract.

A plugin is any module or object with functions decorated by ``brainbench.hookimpl``
whose names match the specs below. Built-in plugins and third-party packages (found
through the ``brainbench`` entry-point group) use exactly these hooks.

Each hook receives a ``register`` callback::

    register(name, factory, description="one line", **metadata)

``factory`` is called lazily, only when the name is used:

- models:   ``factory(checkpoint: str, **options) -> brainbench.VisionModel``
- datasets: ``factory(**options) -> brainbench.Dataset``
- metrics:  ``factory(**options) -> brainbench.Metric``

``metadata`` is free-form JSON-serialisable information shown by ``bench info`` and
the leaderboard (for models: ``family``, ``parameters``, ``training_data``,
``checkpoints``; for datasets: ``modality``, ``citation``; for metrics: ``modality``).
"""
import pluggy

hookspec = pluggy.HookspecMarker("brainbench")
hookimpl = pluggy.HookimplMarker("brainbench")


@hookspec
def register_models(register):
    """Register vision models: ``register(name, factory, description=..., **metadata)``."""


@hookspec
def register_datasets(register):
    """Register datasets (stimuli + brain responses): ``register(name, factory, description=..., **metadata)``."""


@hookspec
def register_metrics(register):
    """Register metrics that score activations against responses: ``register(name, factory, description=..., **metadata)``."""

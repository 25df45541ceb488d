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

``metadata`` is JSON-serialisable information shown by ``bench info`` and used by the
leaderboard's filters. The fields of ``brainbench.core.authoring.conformance.SCHEMA`` (tables below)
are type-checked when a plugin registers; ``bench check`` also requires the required ones.
Other keys are free-form.
"""
import pluggy

hookspec = pluggy.HookspecMarker("brainbench")
hookimpl = pluggy.HookimplMarker("brainbench")


@hookspec
def register_models(register):
    """Register vision models.

    Parameters
    ----------
    register : callable
        ``register(name, factory, description="one line", **metadata)``, once per model.
        ``factory(checkpoint, **options)`` returns a ``brainbench.VisionModel``; ``checkpoint``
        is what follows ``@`` in ``NAME@CHECKPOINT`` (None without it) and ``options`` come from
        ``--set model.OPTION=VALUE``.

    Examples
    --------
    ::

        @brainbench.hookimpl
        def register_models(register):
            register("my-cnn", lambda checkpoint=None, **options: MyCNN("my-cnn", checkpoint or "init"),
                     description="A two-layer CNN", family="cnn", parameters=1_392, layers=3,
                     training_data="none", objective="none", source="https://example.org/my-cnn")
    """


@hookspec
def register_datasets(register):
    """Register datasets: stimuli, and the brain responses of several subjects to them.

    Parameters
    ----------
    register : callable
        ``register(name, factory, description="one line", **metadata)``, once per dataset.
        ``factory(**options)`` returns a ``brainbench.Dataset``; ``options`` come from
        ``--set dataset.OPTION=VALUE``. A ``check(**options) -> list[str]`` attribute of the
        factory (a classmethod of the dataset class) lists missing or malformed files without
        loading them (``bench data check``, and the first step of ``bench check``).
    """


@hookspec
def register_metrics(register):
    """Register metrics that score layer activations against one subject's responses.

    Parameters
    ----------
    register : callable
        ``register(name, factory, description="one line", **metadata)``, once per metric.
        ``factory(**options)`` returns a ``brainbench.Metric``; ``options`` come from
        ``--set metric.OPTION=VALUE`` and must be checked against the metric's ``defaults``.
    """


@hookspec
def register_model_prefixes(register):
    """Register model-name prefixes: families of models built on demand from ``PREFIX:NAME``.

    Parameters
    ----------
    register : callable
        ``register(prefix, resolve, description="one line")``, once per prefix. When a model
        called ``PREFIX:REST`` is first asked for (``bench run -m timm:resnet18@init``),
        ``resolve(REST)`` returns ``(factory, description, metadata)``, exactly what
        ``register_models``' ``register`` takes for one model, or raises a
        ``brainbench.BrainbenchError`` that says, in one sentence, why ``REST`` is not a model.
        ``REST`` may hold upper-case letters and ``/`` (``hf:facebook/dinov2-small``). The
        built-in ``timm:``, ``hf:``, ``torchvision:`` and ``features:`` prefixes use this hook.

    Examples
    --------
    ::

        @brainbench.hookimpl
        def register_model_prefixes(register):
            def resolve(rest):
                factory = lambda checkpoint=None, **options: MyNet(f"mynet:{rest}", checkpoint or "init", rest)
                return factory, f"MyNet variant {rest}", {"family": "mynet"}

            register("mynet", resolve, description="any MyNet variant by name")
    """

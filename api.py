"""The notebook API: score models and read stored results as pandas DataFrames.

::

    import brainbench
    scores = brainbench.score("dinov3-small@init", "synthetic-fmri", "encoding")
    regions = brainbench.results(model="dinov3-small@init", detail="regions")

:func:`score` runs exactly what ``bench run`` runs (the same rows, activation cache and results
database); :func:`results` reads the database as ``bench results`` does. Both return the tables
of :mod:`brainbench.core.store.tables`, whose columns are listed in ``docs/notebook-api.md``.
"""
from __future__ import annotations

from typing import Any, Iterable

#: keyword options of :func:`score` that set a ``bench run`` flag (RunOptions fields)
RUN_OPTIONS = ("pooling", "device", "batch_size", "precision", "model_options", "dataset_options",
               "metric_options", "checkpoints", "force", "progress")
#: keyword options that point plugins at data and weights (the ``--nsd-root``… flags)
ROOT_OPTIONS = ("weights", "nsd_root", "things_meg_root", "things_images_root")


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _split_model(model: str | None) -> tuple[str | None, str | None]:
    """``dinov3-small@init`` → ("dinov3-small", "init"); globs are kept as they are."""
    if model is None or "@" not in model:
        return model, None
    name, _, checkpoint = model.partition("@")
    return name, checkpoint or None


def score(models: str | Iterable[str] | None = None, datasets: str | Iterable[str] | None = None,
          metrics: str | Iterable[str] | None = None, *, subjects: str | Iterable[str] | None = None,
          db: str | None = None, detail: str | None = None, **options: Any):
    """Score models on datasets with metrics, store the rows, and return them as a DataFrame.

    The same run as ``bench run -m … -d … -x …``: rows are saved to the results database as they
    are computed, activations come from (and go to) the cache, and a checkpoint series
    (``NAME@all``) is expanded and its half-times computed.

    Parameters
    ----------
    models, datasets, metrics
        A name or a list of names (``bench run``'s defaults when None: ``dinov3-small@init``,
        ``synthetic-fmri`` (both synthetic datasets for ``halftime``), ``encoding``).
    subjects
        Subjects to score (default: all of each dataset's).
    db
        Results database (default: ``<home>/results.db``, as ``bench config`` shows).
    detail
        None for one row per result, or ``"layers"``, ``"regions"``, ``"times"``, ``"halftimes"``
        (see :func:`results`).
    **options
        ``bench run``'s other settings: ``pooling`` ("mean"), ``device`` ("auto"), ``batch_size`` (32
        or "auto"), ``precision``, ``model_options`` / ``dataset_options`` / ``metric_options``
        (dicts, as ``--set``), ``checkpoints``, ``force``, ``progress`` (False: no progress bars);
        and data roots ``weights``, ``nsd_root``, ``things_meg_root``, ``things_images_root``.

    Returns
    -------
    pandas.DataFrame
        The rows this run saved (each subject's and the ``subject == "all"`` aggregate), with the
        columns of ``detail``'s table.

    Raises
    ------
    BrainbenchError
        An unknown name, option or subject (one sentence, before any work), or a plugin failure.
    """
    from .core.commands.run import DEFAULT_DATASET, DEFAULT_METRIC, DEFAULT_MODEL
    from .core.config import Config, set_flags
    from .core.errors import BrainbenchError
    from .core.store.results import ResultStore
    from .core.pipeline.runner import RunOptions, default_datasets, run
    from .core.store.tables import check_detail, frame

    check_detail(detail)
    unknown = sorted(set(options) - set(RUN_OPTIONS) - set(ROOT_OPTIONS))
    if unknown:
        raise BrainbenchError(f"score() has no option {unknown[0]!r}; options: "
                              f"{', '.join(RUN_OPTIONS + ROOT_OPTIONS)}")
    set_flags(**{k: options.pop(k) for k in ROOT_OPTIONS if k in options})
    config = Config(db=db, device=options.pop("device", None))
    run_options = RunOptions(subjects=_names(subjects) or None, device=config.get("device"),
                             **{"progress": False, **options})
    metrics = _names(metrics) or [DEFAULT_METRIC]
    datasets = _names(datasets) or default_datasets(metrics) or [DEFAULT_DATASET]
    with ResultStore(config.db_path) as store:
        rows = run(_names(models) or [DEFAULT_MODEL], datasets, metrics, store=store, config=config,
                   options=run_options)
    return frame(rows, detail)


def results(db: str | None = None, *, detail: str | None = None, model: str | None = None,
            checkpoint: str | None = None, dataset: str | None = None, metric: str | None = None,
            subject: str | None = None):
    """Stored results as a DataFrame, one row per result or per layer, region, time or half-time.

    Parameters
    ----------
    db
        Results database (default: ``<home>/results.db``).
    detail
        None: one row per stored result (columns ``RESULT_COLUMNS``: score, error, chosen layer,
        noise ceiling, ceiled score, p-value, provenance…). ``"layers"``: per result × layer
        (encoding r of every layer, temporal T_max). ``"regions"``: per result × region (encoding
        r, p-value, noise ceiling; spatial best layer, depth, distance from V1 in mm). ``"times"``:
        per result × layer × MEG time point (ms). ``"halftimes"``: per half-time row × target
        (the score, each region, each MEG window).
    model, checkpoint, dataset, metric, subject
        Filters; ``*`` and ``?`` are wildcards, ``subject="all"`` keeps the aggregates.
        ``model="dinov3-small@init"`` filters on the checkpoint too.

    Returns
    -------
    pandas.DataFrame
        With exactly the columns of ``brainbench.core.store.tables.COLUMNS[detail]``, in that order
        (listed in ``docs/notebook-api.md``); empty, with those columns, when nothing matches.

    Raises
    ------
    BrainbenchError
        No database at ``db`` yet, or an unknown ``detail``.
    """
    from .core.config import Config
    from .core.errors import BrainbenchError
    from .core.store.results import ResultStore
    from .core.store.tables import check_detail, frame

    check_detail(detail)
    model, at = _split_model(model)
    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run brainbench.score() or `bench run` "
                              "first")
    with ResultStore(config.db_path) as store:
        rows = store.query(model=model, checkpoint=checkpoint or at, dataset=dataset, metric=metric, subject=subject)
    return frame(rows, detail)


def use_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin defined in this session (a module, class or object with ``@brainbench.hookimpl``s).

    What an installed package's entry point does, for code written in a notebook cell: its models,
    datasets and metrics are available to :func:`score` at once. Registering a name again replaces
    the earlier registration.

    Raises
    ------
    BrainbenchError
        ``plugin`` implements no brainbench hook.
    """
    from .core.errors import BrainbenchError
    from .core.registry.discovery import get_plugin_manager
    from .core.registry.specs import reset_registry

    manager = get_plugin_manager()
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    hooks = ("register_models", "register_datasets", "register_metrics")
    if not any(callable(getattr(plugin, hook, None)) for hook in hooks):
        raise BrainbenchError(f"{name!r} implements none of {', '.join(hooks)}; decorate them with "
                              "@brainbench.hookimpl")
    if manager.has_plugin(name):
        manager.unregister(name=name)
    manager.register(plugin, name=name)
    reset_registry()

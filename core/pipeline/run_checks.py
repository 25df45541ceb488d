"""What ``bench run`` checks before it builds a model or extracts an activation.

- every ``--set`` option, against the declarations of the plugins it goes to
  (:func:`brainbench.core.registry.options.validate`);
- flags that contradict each other (``-m NAME@CHECKPOINT --checkpoints …``);
- that the home folder (activation cache, default database) can be written.

The results database itself is checked when it is opened (:class:`~brainbench.core.store.checks.CheckedStore`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..config import Config
from ..errors import BrainbenchError
from ..failures import writable_folder
from ..contract.options import OptionError, PluginOptions, parse_sets
from ..registry.options import validate
from ..registry.specs import ModelRef, get_registry


def metrics_taking_options(metrics: Sequence[str]) -> list:
    """The registry specs ``--set metric.X`` goes to: the metrics selected and, with a trajectory metric
    (``halftime``), every metric, since its base metrics take their options from the same ``--set``."""
    from .trajectories import is_trajectory_metric

    registry = get_registry()
    specs = [registry.metric(n) for n in metrics]
    if any(is_trajectory_metric(s) for s in specs):
        specs += [registry.metric(n) for n in registry.names("metrics") if n not in metrics]
    return specs


def run_selection(models: Sequence[str], datasets: Sequence[str], metrics: Sequence[str]) -> dict[str, list]:
    """Kind → the registry specs a run uses (see :func:`metrics_taking_options` for the metrics)."""
    registry = get_registry()
    return {"model": [registry.model(ModelRef.parse(m).name) for m in models],
            "dataset": [registry.dataset(n) for n in datasets], "metric": metrics_taking_options(metrics)}


def flatten(options: PluginOptions, named: dict[str, list[str]]) -> dict[str, dict]:
    """One option dict per kind for ``bench run``: general options, plus ``KIND:NAME`` ones of the plugin it runs.

    ``named``: kind → the names given on the command line. A ``KIND:NAME`` option must name one of
    them, and be the only one of its kind (``bench grid`` gives each plugin its own options).
    """
    out = {kind: dict(values) for kind, values in options.general.items()}
    for (kind, name), values in options.scoped.items():
        given = named[kind]
        if name not in given:
            raise OptionError(f"--set {kind}:{name}.… names a {kind} this run does not use "
                              f"({', '.join(given)}); give -{kind[0] if kind != 'metric' else 'x'} {name} or drop it")
        if len(given) > 1:
            raise OptionError(f"--set {kind}:{name}.… with several {kind}s: bench run gives every {kind} the same "
                              f"options; use {kind}.OPTION, or bench grid for per-{kind} options")
        out[kind].update(values)
    return out


def check_checkpoints(models: Sequence[str], checkpoints: str | None, echo: Callable[[str], None]) -> None:
    """``--checkpoints`` applies to models given without ``@``; refuse it when every model names one checkpoint."""
    if checkpoints is None:
        return
    fixed = [m for m in models if ModelRef.parse(m).checkpoint not in (None, "all")]
    if fixed and len(fixed) == len(models):
        raise BrainbenchError(f"--checkpoints selects checkpoints of models given without @CHECKPOINT, but "
                              f"{', '.join(fixed)} names one; drop --checkpoints, or give "
                              f"{ModelRef.parse(fixed[0]).name} without @")
    if fixed:
        echo(f"note: --checkpoints does not apply to {', '.join(fixed)} (a checkpoint is named)")


def check_run(models: Sequence[str], datasets: Sequence[str], metrics: Sequence[str], sets: Sequence[str],
              config: Config, checkpoints: str | None = None,
              echo: Callable[[str], None] = lambda message: None) -> dict[str, dict[str, Any]]:
    """Everything ``bench run`` checks up front (see the module docstring); returns kind → ``--set`` options."""
    options = parse_sets(sets)
    selection = run_selection(models, datasets, metrics)
    validate(options, selection)
    named = {"model": [ModelRef.parse(m).name for m in models], "dataset": list(datasets), "metric": list(metrics)}
    flat = flatten(options, named)
    check_checkpoints(models, checkpoints, echo)
    writable_folder(config.home, "brainbench home folder (BRAINBENCH_HOME)")
    return flat

"""Run-time guards on what plugins return: one sentence naming the plugin and the field.

The runner, the grid's executors and ``bench check`` call a plugin's factory through
:func:`build` and pass its results through the ``expect_*`` functions, so a malformed
plugin fails with a sentence such as "plugin 'x' (dist 0.1): the score() of metric 'm'
returned float, not a brainbench.Score" instead of a traceback deep in brainbench.
"""
from __future__ import annotations

import difflib
import inspect
import json
import math
import re
from typing import Any

import numpy as np

from ..contract.data import Dataset, Responses
from ..errors import BrainbenchError
from ..contract.metric import Metric, Score
from ..contract.model import VisionModel
from ..contract.options import coerce
from .specs import Spec

#: what each kind's factory must return
PRODUCTS = {"models": VisionModel, "datasets": Dataset, "metrics": Metric}
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def accepted_options(factory) -> list[str]:
    """Keyword options a factory names in its signature (its class's ``__init__`` chain for a class)."""
    functions = [c.__init__ for c in inspect.getmro(factory) if "__init__" in vars(c)] \
        if inspect.isclass(factory) else [factory]
    names = []
    for function in functions:
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            continue
        names += [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                  and p.name not in ("self", "checkpoint", "name") and p.name not in names]
    return names


def build(spec: Spec, *args: Any, **options: Any) -> Any:
    """Call ``spec``'s factory; an unknown option, a value its declaration refuses (see
    :mod:`brainbench.core.contract.options`) or a wrong product type is one sentence."""
    options = coerce(spec, options)
    try:
        product = spec.factory(*args, **options)
    except TypeError as exc:
        match = _UNEXPECTED.search(str(exc))
        if not match or match.group(1) not in options:
            raise
        known = accepted_options(spec.factory)
        close = difflib.get_close_matches(match.group(1), known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (f"; its options: {', '.join(known)}" if known else "")
        raise BrainbenchError(f"{spec.kind[:-1]} {spec.name!r} has no option {match.group(1)!r}{hint}") from None
    return expect_instance(product, PRODUCTS[spec.kind], spec)


def score_problem(score: Any, strict: bool = True) -> str | None:
    """What is malformed in a metric's ``Score``, as a phrase naming the field; None when it is well-formed.

    ``strict=False`` (run time, and a noise model's score) accepts a NaN value or error and
    ``n_units == 0``: only what cannot be stored is a problem.
    """
    if not isinstance(score, Score):
        return f"score() returned {type(score).__name__}, not a brainbench.Score"
    for key in ("value", "error"):
        value = getattr(score, key)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            return f"Score.{key} is {type(value).__name__}, not a number"
    if strict and not math.isfinite(score.value):
        return f"Score.value is {score.value}"
    if strict and not math.isfinite(score.error):
        return "Score.error is NaN; give the standard error of the score"
    if not (math.isnan(score.error) or score.error >= 0):
        return f"Score.error is {score.error}, not a standard error (≥ 0)"
    if isinstance(score.n_units, bool) or not isinstance(score.n_units, (int, np.integer)) \
            or score.n_units < (1 if strict else 0):
        return f"Score.n_units is {score.n_units!r}, not a {'positive' if strict else 'non-negative'} integer"
    if not isinstance(score.detail, dict):
        return f"Score.detail is {type(score.detail).__name__}, not a dict"
    try:
        json.dumps(score.detail, allow_nan=True)
    except (TypeError, ValueError) as exc:
        return f"Score.detail is not JSON-serialisable ({exc}); convert numpy values with float() or .tolist()"
    return None


def _plugin_says(spec: Spec, what: str) -> str:
    return f"plugin {spec.plugin!r} ({spec.source}): the {what} of {spec.kind[:-1]} {spec.name!r}"


def expect_instance(value: Any, expected: type, spec: Spec, what: str = "factory") -> Any:
    """``value`` when it is an ``expected``; else a one-sentence error naming the plugin and what it returned.

    Parameters
    ----------
    value : what the plugin returned
    expected : e.g. ``brainbench.VisionModel``
    spec : the registered entry whose code returned it
    what : the call, e.g. ``"factory"`` or ``"responses('sub-01')"``
    """
    if not isinstance(value, expected):
        raise BrainbenchError(f"{_plugin_says(spec, what)} returned {type(value).__name__}, "
                              f"not a brainbench.{expected.__name__}")
    return value


def expect_score(score: Any, spec: Spec, what: str = "score()") -> Score:
    """``score`` when it can be stored (see :func:`score_problem` with ``strict=False``); else a one-sentence error."""
    expect_instance(score, Score, spec, what)
    problem = score_problem(score, strict=False)
    if problem:
        raise BrainbenchError(f"{_plugin_says(spec, what)} is malformed: {problem}")
    return score


def expect_responses(responses: Any, spec: Spec, subject: str, n_stimuli: int) -> Responses:
    """``responses`` when it is a ``Responses`` whose stimulus indices point into the stimuli; else an error."""
    what = f"responses({subject!r})"
    expect_instance(responses, Responses, spec, what)
    index = responses.stimulus_index
    if len(index) and (index.min() < 0 or index.max() >= n_stimuli):
        bad = int(index.min() if index.min() < 0 else index.max())
        raise BrainbenchError(f"{_plugin_says(spec, what)} is malformed: stimulus_index holds {bad}, but there are "
                              f"{n_stimuli} stimuli")
    return responses

"""Stored result rows as tidy pandas DataFrames: one row per result, or per layer, region, time or half-time.

The nested ``detail`` of a row (see the README's JSON table) is unfolded into long tables with
fixed, documented columns (``docs/notebook-api.md``). A column a row has no value for is NaN (or
``None`` for text), never 0. Every table keeps the key of the row it came from (model, checkpoint,
dataset, subject, metric, options), so tables can be merged on it.

=============  ===========================================================================
``detail``     one row per
=============  ===========================================================================
``None``       result row (subject rows and the ``subject == "all"`` aggregate)
``"layers"``   result row × layer: encoding r of every layer, and temporal T_max, peak r, onset
``"regions"``  result row × region: encoding r, p-value and noise ceiling; spatial best layer,
               depth and distance from V1
``"times"``    result row × layer × MEG time point: the temporal layer × time r matrix, and the
               encoding r per time point at the chosen layer
``"halftimes"``half-time row × target: the score's half-time, and each region's and MEG window's
=============  ===========================================================================

Sources: Raugel et al. 2026 for the quantities; :mod:`brainbench.plugins.metrics` for how each is
computed.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence

from ..compute.cortical import parcel_name
from ..errors import BrainbenchError
from .formatting import base_metric
from .results import ResultRow

KEY_COLUMNS = ("model", "checkpoint", "dataset", "subject", "metric", "options")

#: ``detail=None``: one row per stored result
RESULT_COLUMNS = ("model", "checkpoint", "dataset", "subject", "metric", "base", "score", "error", "n_units",
                  "n_subjects", "layer", "noise_ceiling", "ceiled_score", "p_value", "options", "benchmark_version",
                  "brainbench_version", "data_hash", "activations_key", "seed", "elapsed_s", "created_at",
                  "updated_at")
LAYER_COLUMNS = (*KEY_COLUMNS, "layer", "layer_index", "depth", "r", "chosen", "t_max_ms", "peak_r", "onset_ms")
REGION_COLUMNS = (*KEY_COLUMNS, "region", "hemisphere", "parcel", "r", "p_value", "noise_ceiling", "layer",
                  "best_layer", "depth", "distance_mm", "n_units")
TIME_COLUMNS = (*KEY_COLUMNS, "layer", "layer_index", "depth", "time_ms", "r", "p_value", "t_max_ms")
HALFTIME_COLUMNS = (*KEY_COLUMNS, "base", "target_kind", "target", "half_time_step", "half_time_percent",
                    "threshold", "final", "ci_low_percent", "ci_high_percent", "distance_mm", "time_ms", "used",
                    "reason")

#: ``detail`` value → the columns of its table
COLUMNS = {None: RESULT_COLUMNS, "layers": LAYER_COLUMNS, "regions": REGION_COLUMNS, "times": TIME_COLUMNS,
           "halftimes": HALFTIME_COLUMNS}
DETAILS = tuple(k for k in COLUMNS if k is not None)


def _num(value: Any) -> float:
    """A finite float, or NaN (for None, text, booleans, infinities)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return math.nan
    return float(value)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _key(row: ResultRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in KEY_COLUMNS}


def _depths(layers: Sequence[str]) -> dict[str, tuple[int, float]]:
    """Layer → (index, normalised depth index / (L − 1)), in the model's order."""
    n = len(layers)
    return {layer: (i, i / (n - 1) if n > 1 else 0.0) for i, layer in enumerate(layers)}


def result_record(row: ResultRow) -> dict[str, Any]:
    """One row of the ``detail=None`` table."""
    d = row.detail
    subjects = d.get("subjects")
    return {
        "model": row.model, "checkpoint": row.checkpoint, "dataset": row.dataset, "subject": row.subject,
        "metric": row.metric, "base": base_metric(row), "score": _num(row.score), "error": _num(row.error),
        "n_units": row.n_units, "n_subjects": len(subjects) if isinstance(subjects, dict) else
        (math.nan if row.subject == "all" else 1),
        "layer": d.get("layer") if isinstance(d.get("layer"), str) else None,
        "noise_ceiling": _num(d.get("noise_ceiling")), "ceiled_score": _num(d.get("ceiled_score")),
        "p_value": _num(d.get("p_value")), "options": row.options, "benchmark_version": row.benchmark_version,
        "brainbench_version": row.brainbench_version, "data_hash": row.data_hash,
        "activations_key": row.activations_key, "seed": row.seed, "elapsed_s": _num(row.elapsed_s),
        "created_at": row.created_at, "updated_at": row.updated_at,
    }


def layer_records(row: ResultRow) -> Iterable[dict[str, Any]]:
    """Rows of the ``"layers"`` table for one result (encoding's ``per_layer``, temporal's per-layer fields)."""
    d = row.detail
    if isinstance(d.get("per_layer"), dict):
        depths = _depths(list(d["per_layer"]))
        for layer, value in d["per_layer"].items():
            yield {**_key(row), "layer": layer, "layer_index": depths[layer][0], "depth": depths[layer][1],
                   "r": _num(value), "chosen": layer == d.get("layer"), "t_max_ms": math.nan, "peak_r": math.nan,
                   "onset_ms": math.nan}
    elif row.metric == "temporal" or isinstance(d.get("t_max"), dict):
        layers = d.get("layers") or list(_dict(d.get("t_max")))
        depths = _depths(layers)
        for layer in layers:
            peak = _num(_dict(d.get("peak_r")).get(layer))
            yield {**_key(row), "layer": layer, "layer_index": depths[layer][0], "depth": depths[layer][1],
                   "r": peak, "chosen": False, "t_max_ms": _num(_dict(d.get("t_max")).get(layer)), "peak_r": peak,
                   "onset_ms": _num(_dict(d.get("onset")).get(layer))}


def region_records(row: ResultRow) -> Iterable[dict[str, Any]]:
    """Rows of the ``"regions"`` table for one result (encoding's ``per_region``, spatial's ``regions``)."""
    d = row.detail

    def base(region: str) -> dict[str, Any]:
        hemisphere, parcel = parcel_name(region)
        return {**_key(row), "region": region, "hemisphere": hemisphere, "parcel": parcel, "r": math.nan,
                "p_value": math.nan, "noise_ceiling": math.nan, "layer": None, "best_layer": None,
                "depth": math.nan, "distance_mm": math.nan, "n_units": math.nan}

    if isinstance(d.get("per_region"), dict):
        p_values, ceilings = _dict(d.get("p_per_region")), _dict(d.get("per_region_noise_ceiling"))
        for region, value in d["per_region"].items():
            yield {**base(region), "r": _num(value), "p_value": _num(p_values.get(region)),
                   "noise_ceiling": _num(ceilings.get(region)),
                   "layer": d.get("layer") if isinstance(d.get("layer"), str) else None}
    elif isinstance(d.get("regions"), dict) and row.metric != "halftime":
        layers = list(d.get("layers") or [])
        for region, info in d["regions"].items():
            info = _dict(info)
            best = info.get("best_layer")
            depth = _num(info.get("depth"))
            if best is None and layers and math.isfinite(depth):  # the aggregate keeps the subjects' mean depth
                best = layers[int(round(depth * (len(layers) - 1)))]
            yield {**base(region), "best_layer": best, "depth": depth, "distance_mm": _num(info.get("distance_mm")),
                   "n_units": _num(info.get("n_units"))}


def time_records(row: ResultRow) -> Iterable[dict[str, Any]]:
    """Rows of the ``"times"`` table for one result (temporal's ``r_time``, encoding's ``per_time``)."""
    d = row.detail
    if isinstance(d.get("r_time"), dict) and isinstance(d.get("times"), list):
        layers = d.get("layers") or list(d["r_time"])
        depths = _depths(layers)
        t_max = _dict(d.get("t_max"))
        for layer in layers:
            for time, value in zip(d["times"], d["r_time"].get(layer, [])):
                yield {**_key(row), "layer": layer, "layer_index": depths[layer][0], "depth": depths[layer][1],
                       "time_ms": _num(time), "r": _num(value), "p_value": math.nan,
                       "t_max_ms": _num(t_max.get(layer))}
    elif isinstance(d.get("per_time"), dict):
        layers = list(_dict(d.get("per_layer")))
        depths = _depths(layers)
        layer = d.get("layer") if isinstance(d.get("layer"), str) else None
        index, depth = depths.get(layer, (math.nan, math.nan))
        p_values = _dict(d.get("p_per_time"))
        for time, value in d["per_time"].items():
            yield {**_key(row), "layer": layer, "layer_index": index, "depth": depth, "time_ms": _num(_float(time)),
                   "r": _num(value), "p_value": _num(p_values.get(time)), "t_max_ms": math.nan}


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def halftime_records(row: ResultRow) -> Iterable[dict[str, Any]]:
    """Rows of the ``"halftimes"`` table for one half-time result: the score's, then per region and window."""
    if row.metric != "halftime" and "half_time_percent" not in row.detail and "percent" not in row.detail:
        return
    d = row.detail
    base = d.get("base") or base_metric(row)
    ci = _dict(d.get("bootstrap")).get("ci_percent") or d.get("ci_percent") or [None, None]
    step = d.get("half_time_step", d.get("step"))
    percent = d.get("half_time_percent", d.get("percent"))
    common = {**_key(row), "base": base}
    yield {**common, "target_kind": "score", "target": base, "half_time_step": _num(step),
           "half_time_percent": _num(percent), "threshold": _num(d.get("threshold")), "final": _num(d.get("final")),
           "ci_low_percent": _num(ci[0]), "ci_high_percent": _num(ci[1]), "distance_mm": math.nan,
           "time_ms": math.nan, "used": math.isfinite(_num(percent)), "reason": d.get("reason")}
    for kind, position in (("region", "distance_mm"), ("window", "time_ms")):
        skipped = _dict(d.get(f"skipped_{kind}s"))
        for target, info in _dict(d.get(f"{kind}s")).items():
            info = _dict(info)
            yield {**common, "target_kind": kind, "target": target, "half_time_step": _num(info.get("step")),
                   "half_time_percent": _num(info.get("percent")), "threshold": _num(info.get("threshold")),
                   "final": _num(info.get("final")), "ci_low_percent": math.nan, "ci_high_percent": math.nan,
                   "distance_mm": _num(info.get("distance_mm")), "time_ms": _num(info.get("time_ms")),
                   "used": target not in skipped, "reason": skipped.get(target) or info.get("reason")}


RECORDS = {"layers": layer_records, "regions": region_records, "times": time_records,
           "halftimes": halftime_records}


def check_detail(detail: str | None) -> None:
    """Raise :class:`BrainbenchError` (one sentence) unless ``detail`` is None or one of :data:`DETAILS`."""
    if detail is not None and detail not in DETAILS:
        raise BrainbenchError(f"detail must be one of {', '.join(DETAILS)} (or None), got {detail!r}")


def records(rows: Iterable[ResultRow], detail: str | None = None) -> list[dict[str, Any]]:
    """The table's rows as dicts (keys: ``COLUMNS[detail]``, in order); see the module docstring."""
    check_detail(detail)
    if detail is None:
        return [result_record(row) for row in rows]
    return [record for row in rows for record in RECORDS[detail](row)]


def frame(rows: Iterable[ResultRow], detail: str | None = None):
    """A pandas DataFrame of ``rows`` at the level ``detail``, with exactly the columns ``COLUMNS[detail]``.

    Raises
    ------
    BrainbenchError
        ``detail`` is not None, "layers", "regions", "times" or "halftimes".
    """
    import pandas as pd

    return pd.DataFrame(records(rows, detail), columns=list(COLUMNS[detail]))


def render_detail(rows: Iterable[ResultRow], detail: str, fmt: str) -> str:
    """``bench results --detail``: the table as CSV, JSON (a list of objects, NaN as null) or aligned text."""
    table = frame(rows, detail)
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n").rstrip("\n")
    if fmt == "json":
        from .results import json_safe

        return json.dumps(json_safe(table.astype(object).where(table.notna(), None).to_dict("records")), indent=2,
                          allow_nan=False)
    if table.empty:
        return "no rows"
    return table.drop(columns=["options"]).to_string(index=False, na_rep="-")

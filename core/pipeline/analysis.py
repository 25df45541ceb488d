"""Analyses of stored results: the per-region values that ``bench analyze cortical-maps`` correlates."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..compute.cortical import _read_csv
from ..config import Config
from ..errors import BrainbenchError
from ..store.results import ResultStore


def stored_region_values(model, checkpoint, dataset, metric, base, key, db) -> tuple[dict, str]:
    """A stored row's per-region table (``detail[key]``) and a label saying where it came from.

    The newest aggregate row (subject ``all``) of ``model@checkpoint`` × ``dataset`` × ``metric``; for
    ``halftime``, the row whose base metric is ``base``. Raises :class:`BrainbenchError` when there is
    no database, no such row, or no such table.
    """
    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run `bench run` first")
    with ResultStore(config.db_path) as store:
        rows = store.query(model=model, checkpoint=checkpoint, dataset=dataset, metric=metric, subject="all")
    if metric == "halftime":
        rows = [r for r in rows if json.loads(r.options).get("metric", {}).get("base") == base]
    if not rows:
        raise BrainbenchError(f"no stored {metric} row for {model}@{checkpoint} on {dataset}; "
                              f"run `bench run -m {model}@{checkpoint} -d {dataset} -x {metric}` first")
    row = max(rows, key=lambda r: r.updated_at)
    key = key or ("per_region_half_time" if metric == "halftime" else "per_region")
    table = row.detail.get(key)
    if not isinstance(table, dict) or not table:
        raise BrainbenchError(f"the stored {metric} row of {model}@{checkpoint} on {dataset} has no per-region table "
                              f"{key!r}")
    values = {k: (v if isinstance(v, (int, float)) else math.nan) for k, v in table.items() if v is not None}
    return values, f"{model}@{checkpoint} × {dataset} × {metric}{f'({base})' if metric == 'halftime' else ''}: {key}"


def region_values_file(path: str) -> tuple[dict, str]:
    """Per-region values from a CSV (``region,value``; blanks and NaN skipped) and its path as the label."""
    header, rows = _read_csv(Path(path))
    if len(header) < 2:
        raise BrainbenchError(f"{path} needs two columns: region, value")
    return {row[0]: float(row[1]) for row in rows if len(row) > 1 and row[1] not in ("", "nan", "NaN")}, path

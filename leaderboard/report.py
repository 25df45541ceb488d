"""``bench report``: the paper's figures for what is stored, as PNG and SVG, and one HTML page.

For each model (``NAME`` = every stored checkpoint, ``NAME@CHECKPOINT`` = one), from the stored
aggregate rows (``subject == "all"``):

1. encoding r per region on the cortex (fMRI encoding rows with ``per_region``);
2. best layer against distance from V1, with the least-squares line and the pooled r (spatial rows);
3. MEG layer × time r, with each layer's T_max (temporal rows);
4. scores along training with the half-times marked (halftime rows: their ``steps`` and ``curve``);
5. per-region half-time on the cortex, and against distance from V1 (halftime rows of encoding on fMRI);
6. per-region half-time against each shipped cortical map, with r and the spin-test p
   (:func:`brainbench.core.compute.cortical.correlate_maps`);
7. a table of this run's numbers beside the paper's (Raugel et al. 2026).

Figures 1–3 are drawn for every checkpoint that is not a training step, and for the last step.
What cannot be drawn for lack of rows is listed on the page with the command that would compute
it. When a (model, checkpoint, dataset, metric) has rows under several option sets, the most
recently updated is drawn, and the page says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import brainbench
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.formatting import base_metric
from brainbench.core.store.results import AGGREGATE_SUBJECT, ResultRow, ResultStore

from . import plots
from .data import finite, slug, step_of

HERE = Path(__file__).resolve().parent
FORMATS = ("png", "svg")
#: the paper's numbers (Raugel et al. 2026; see docs/notebook-api.md and the shared reference)
PAPER = {
    "encoding": "≈ 0.03 untrained; 0.096 (Small) … 0.107 (Giant) trained, mean voxel r on NSD",
    "spatial": "R = 0.38 (p < 1e-6)",
    "temporal": "R = 0.96",
    "order": "temporal (~0.7 %) → encoding (~2 %) → spatial (~4 %)",
    "distance": "R = 0.91",
    "window": "R = 0.84",
}
#: shipped map → (the paper's r, what differs between the shipped map and the paper's)
PAPER_MAPS = {
    "expansion": (0.88, "the paper: developmental expansion (Hill 2010); shipped: evolutionary expansion"),
    "thickness_mm": (0.77, "cortical thickness (HCP S1200), as the paper"),
    "timescale_tau_ms": (0.71, "the paper: MEG timescales (Shafiei 2022); shipped: ECoG (Gao 2020)"),
    "myelin_t1t2": (-0.85, "T1w/T2w myelin, as the paper"),
}


@dataclass
class Figure:
    number: int
    stem: str  # file name without suffix
    caption: str


@dataclass
class Missing:
    number: int
    what: str
    why: str
    command: str


@dataclass
class ModelReport:
    model: str
    figures: list[Figure] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    numbers: list[tuple[str, str, str]] = field(default_factory=list)  # quantity, this run, the paper
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    """What :func:`write_report` wrote."""

    out: Path
    models: list[ModelReport]

    @property
    def files(self) -> list[Path]:
        return [self.out / f"{f.stem}.{fmt}" for m in self.models for f in m.figures for fmt in FORMATS]


def _latest(rows: Sequence[ResultRow], notes: list[str]) -> list[ResultRow]:
    """One aggregate row per (checkpoint, dataset, metric, base): the most recently updated option set."""
    chosen: dict[tuple, list[ResultRow]] = {}
    for row in rows:
        if row.subject == AGGREGATE_SUBJECT:
            chosen.setdefault((row.checkpoint, row.dataset, row.metric, base_metric(row)), []).append(row)
    out = []
    for (checkpoint, dataset, metric, base), group in chosen.items():
        group.sort(key=lambda r: r.updated_at)
        if len(group) > 1:
            notes.append(f"{metric}{f'({base})' if base else ''} on {dataset} at {checkpoint}: {len(group)} option "
                         "sets stored; the most recently updated is drawn")
        out.append(group[-1])
    return out


def _shown_checkpoints(rows: Sequence[ResultRow]) -> list[str]:
    """Checkpoints drawn in figures 1–3: every one that is not a training step, and the last step."""
    names = list(dict.fromkeys(r.checkpoint for r in rows if r.metric != "halftime"))
    steps = [c for c in names if step_of(c) is not None]
    last = max(steps, key=step_of) if steps else None
    return [c for c in names if step_of(c) is None or c == last]


def _model_report(model: str, rows: Sequence[ResultRow], out: Path) -> ModelReport:
    from . import cortex

    report = ModelReport(model)
    rows = _latest(rows, report.notes)
    name = rows[0].model if rows else model.partition("@")[0]
    prefix = slug(model.replace("@", "_"))

    def draw(number: int, kind: str, figure, caption: str) -> bool:
        if figure is None:
            return False
        stem = f"{prefix}--{number}-{kind}"
        plots.save(figure, out / f"{stem}.png", FORMATS)
        report.figures.append(Figure(number, stem, caption))
        return True

    def missing(number: int, what: str, why: str, command: str) -> None:
        report.missing.append(Missing(number, what, why, command))

    checkpoints = _shown_checkpoints(rows)
    by = lambda metric, checkpoint=None: [r for r in rows if r.metric == metric  # noqa: E731
                                          and (checkpoint is None or r.checkpoint == checkpoint)]
    # 1. encoding r per region on the cortex
    drawn = False
    for row in by("encoding"):
        if row.checkpoint in checkpoints and isinstance(row.detail.get("per_region"), dict):
            at = f" at {row.detail['layer']}" if isinstance(row.detail.get("layer"), str) else ""
            drawn |= draw(1, f"cortex-encoding-{slug(row.dataset)}-{slug(row.checkpoint)}",
                          cortex.cortical_map(row.detail["per_region"], "encoding r (mean over subjects)",
                                              f"{name}@{row.checkpoint}: encoding r per region, {row.dataset}{at}"),
                          f"Encoding r per Glasser region on the inflated cortex ({row.dataset}, {name}@{row.checkpoint}"
                          f"{at}).")
    if not drawn:
        missing(1, "encoding r per region on the cortex",
                "no stored fMRI encoding row whose regions are Glasser (HCP-MMP1) parcels",
                f"bench run -m {model} -d nsd -x encoding")
    # 2. best layer vs distance from V1
    drawn = False
    for row in by("spatial"):
        if row.checkpoint in checkpoints and isinstance(row.detail.get("regions"), dict):
            pooled = row.detail.get("pooled") if isinstance(row.detail.get("pooled"), dict) else {}
            r = finite(pooled.get("pearson_r")) if pooled else finite(row.score)
            drawn |= draw(2, f"layer-distance-{slug(row.dataset)}-{slug(row.checkpoint)}",
                          plots.layer_distance(row.detail["regions"], row.detail.get("layers", []),
                                               f"{name}@{row.checkpoint}: best layer vs distance from V1, {row.dataset}",
                                               pearson=r),
                          f"Each region's best-predicting layer against its distance from V1, with the least-squares "
                          f"line; r = {_text(r)} across regions (subjects' means); spatial score "
                          f"{_text(finite(row.score))} (mean of the subjects' r).")
    if not drawn:
        missing(2, "best layer vs distance from V1", "no stored spatial row",
                f"bench run -m {model} -d synthetic-fmri -x spatial")
    # 3. MEG layer × time
    drawn = False
    for row in by("temporal"):
        d = row.detail
        if row.checkpoint in checkpoints and isinstance(d.get("r_time"), dict) and isinstance(d.get("times"), list):
            drawn |= draw(3, f"layer-time-{slug(row.dataset)}-{slug(row.checkpoint)}",
                          plots.layer_time(d["r_time"], d["times"],
                                           f"{name}@{row.checkpoint}: MEG r per layer and time, {row.dataset}",
                                           t_max=d.get("t_max") if isinstance(d.get("t_max"), dict) else None),
                          f"Encoding r (mean over sensors) per layer and time; dots: each layer's T_max. Temporal "
                          f"score {_text(finite(row.score))}.")
    if not drawn:
        missing(3, "MEG layer × time r with T_max", "no stored temporal row",
                f"bench run -m {model} -d synthetic-meg -x temporal")
    # 4–6. the trajectory
    halftimes = by("halftime")
    series = f"bench run -m {name}@all -x halftime"
    if halftimes:
        curves, marks = {}, {}
        for row in halftimes:
            d = row.detail
            label = f"{base_metric(row) or d.get('base')} · {row.dataset}"
            points = [(s, v) for s, v in zip(d.get("steps", []), d.get("curve", [])) if finite(v) is not None]
            if len(points) >= 2:
                curves[label] = points
                marks[label] = finite(d.get("half_time_step"))
        if not draw(4, "training", plots.training_curves(curves, marks, f"{name}: scores along training", log=True),
                    "Each score against the training step (step 0 = initialisation); dashed: its half-time, the "
                    "first step at which it reaches half its final value."):
            missing(4, "scores along training", "the half-time rows hold fewer than two checkpoints", series)
    else:
        missing(4, "scores along training with half-times", "no stored half-time rows", series)
    regional = [r for r in halftimes if isinstance(r.detail.get("regions"), dict) and r.detail["regions"]]
    if regional:
        row = regional[0]
        values = {k: v for k, v in row.detail.get("per_region_half_time", {}).items() if finite(v) is not None}
        if not draw(5, "cortex-halftime", cortex.cortical_map(values, "half-time (% of training)",
                                                             f"{name}: half-time of encoding r per region, {row.dataset}",
                                                             cmap="magma_r"),
                    "Half-time of each region's encoding r (% of training) on the inflated cortex."):
            missing(5, "per-region half-time on the cortex", "no region with a half-time is a Glasser parcel",
                    f"bench run -m {name}@all -d nsd -x halftime")
        stats = row.detail.get("distance_correlation", {}) or {}
        points = {k: (row.detail["regions"][k].get("distance_mm"), v) for k, v in values.items()}
        draw(5, "halftime-distance", plots.labelled_scatter(points, "distance from V1 (mm)", "half-time (% of training)",
                                                            f"{name}: half-time vs distance from V1, {row.dataset}",
                                                            r=finite(stats.get("pearson_r")),
                                                            p=finite(stats.get("p_value"))),
             "Each region's half-time against its distance from V1 (permutation p, regions exchangeable).")
        map_stats = _maps_figure(name, values, draw, missing)
    else:
        missing(5, "per-region half-time (cortex, distance)", "no stored half-time row of encoding on fMRI with regions",
                series)
        missing(6, "half-time against cortical maps", "no per-region half-times", series)
        map_stats = {}
    report.numbers = _numbers(rows, regional, map_stats)
    return report


def _maps_figure(name, values, draw, missing) -> dict:
    """Figure 6; returns map → its correlation (``correlate_maps``' dicts), {} when too few parcels."""
    from brainbench.core.compute.cortical import correlate_maps, load_maps, parcel_values

    maps = load_maps()
    per_parcel = parcel_values(values, maps.parcels)
    if len(per_parcel) < 3:
        missing(6, "half-time against cortical maps", f"{len(per_parcel)} region(s) with a half-time are Glasser "
                "parcels; 3 are needed", f"bench run -m {name}@all -d nsd -x halftime")
        return {}
    stats = {s["map"]: s for s in correlate_maps(values, maps, permutations=1000)}
    tables = {m: dict(zip(maps.parcels, v.tolist())) for m, v in maps.maps.items()}
    draw(6, "halftime-maps", plots.map_scatters(per_parcel, tables, stats, "half-time (%)",
                                                f"{name}: per-region half-time vs cortical maps"),
         "Per-parcel half-time against each shipped cortical map; r with the spin-test p (1000 rotations).")
    return stats


def _text(value: float | None, digits: int = 2, none: str = "—") -> str:
    return none if value is None else f"{value:.{digits}f}"


def _numbers(rows: Sequence[ResultRow], regional: Sequence[ResultRow], stats: dict) -> list[tuple[str, str, str]]:
    """The rows of table 7: quantity, this run's value(s), the paper's."""
    shown = _shown_checkpoints(rows)

    def listing(metric: str) -> str:
        found = [f"{_text(finite(r.score), 3)} ({r.dataset}, {r.checkpoint})" for r in rows
                 if r.metric == metric and r.checkpoint in shown and finite(r.score) is not None]
        return "; ".join(found) or "not computed"

    out = [("encoding (mean r)", listing("encoding"), PAPER["encoding"]),
           ("spatial score", listing("spatial"), PAPER["spatial"]),
           ("temporal score", listing("temporal"), PAPER["temporal"])]
    halftimes = [r for r in rows if r.metric == "halftime" and finite(r.score) is not None]
    order = " → ".join(f"{base_metric(r)} {r.score:.1f} % ({r.dataset})" for r in sorted(halftimes, key=lambda r: r.score))
    out.append(("half-time order", order or "not computed", PAPER["order"]))
    distance = next((finite(r.detail.get("distance_correlation", {}).get("pearson_r")) for r in regional), None)
    out.append(("half-time vs distance from V1 (r)", _text(distance, none="not computed"), PAPER["distance"]))
    window = next((finite((r.detail.get("time_correlation") or {}).get("pearson_r")) for r in rows
                   if r.metric == "halftime" and isinstance(r.detail.get("time_correlation"), dict)), None)
    out.append(("half-time vs MEG window time (r)", _text(window, none="not computed"), PAPER["window"]))
    for name, (paper, note) in PAPER_MAPS.items():
        s = stats.get(name, {})
        mine = "not computed" if not s else f"{_text(finite(s.get('r')))} (spin p = {_text(finite(s.get('p_value')), 3)}, " \
                                             f"{s.get('n')} parcels)"
        out.append((f"half-time vs {name} (r)", mine, f"R = {paper:+.2f}; {note}"))
    return out


def write_report(models: Sequence[str], out: str | Path, db: str | Path) -> Report:
    """Draw the report of ``models`` from the results database ``db`` into the folder ``out``.

    Parameters
    ----------
    models
        ``NAME`` (every stored checkpoint) or ``NAME@CHECKPOINT``.
    out
        Folder for ``index.html`` and the figures (``<model>--<n>-<kind>.png`` and ``.svg``); created.
    db
        The results database.

    Raises
    ------
    BrainbenchError
        No database, or a model with no stored rows at all (naming the models that have some).
    """
    import matplotlib

    db, out = Path(db).expanduser(), Path(out).expanduser()
    if not db.exists():
        raise BrainbenchError(f"no results database at {db} yet; run `bench run` first")
    if out.exists() and not out.is_dir():
        raise BrainbenchError(f"{out} is a file; give --out a folder")
    with ResultStore(db) as store:
        selected = []
        for model in models:
            name, _, checkpoint = model.partition("@")
            rows = store.query(model=name, checkpoint=(checkpoint or None) if checkpoint != "all" else None)
            if checkpoint and checkpoint != "all":  # the model's half-times belong to its series
                rows += [r for r in store.query(model=name, metric="halftime") if r not in rows]
            if not rows:
                known = sorted({f"{r.model}@{r.checkpoint}" for r in store.query(subject=AGGREGATE_SUBJECT)})
                raise BrainbenchError(f"no stored rows for {model!r} in {db}; stored: {', '.join(known[:12]) or 'none'}"
                                      f"{' …' if len(known) > 12 else ''}")
            selected.append((model, rows))
    out.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "brainbench", "font.size": 9}):
        reports = [_model_report(model, rows, out) for model, rows in selected]
    _write_html(reports, out, db)
    return Report(out, reports)


def _write_html(reports: Sequence[ModelReport], out: Path, db: Path) -> None:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    (out / "index.html").write_text(env.get_template("report.html").render(
        reports=reports, db=str(db), version=brainbench.__version__,
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds")))

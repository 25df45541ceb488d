"""Render the static leaderboard site from results databases and portable result files.

The site is plain files: HTML from Jinja2 templates (every string autoescaped, so a model
named ``<script>`` shows as text), one stylesheet, one small script for sorting and filtering
(the tables are complete and ranked without it), SVG plots drawn by matplotlib, and the data as
CSV and JSON. Links are relative, nothing is fetched at run time and nothing comes from a CDN,
so it works from ``file://`` and from any static host.

Layout of ``out/``::

    index.html  benchmarks.html  downloads.html  compare.html
    models/<model>.html  benchmarks/<dataset>--<metric>.html  provenance/<dataset>--<metric>.html
    plots/<model>/<benchmark>--<checkpoint>--<kind>.svg
    data/results.{csv,json}  data/leaderboard.{csv,json}  data/regions.js (the compare page's values)
    static/style.css  static/leaderboard.js  static/compare.js

A benchmark past version 1 has ``--v<N>`` after its name. Every score links to its section
of its benchmark's provenance page (who produced it, versions, machine, data fingerprints).
"""
from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import brainbench
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.formatting import render
from brainbench.core.store.results import json_safe

from . import citations, plots
from .data import Leaderboard, anchor, build_leaderboard, finite, half_time, half_time_metrics, slug, step_of
from .sources import collect_rows

HERE = Path(__file__).resolve().parent
MARKER = ".brainbench-site"
SUBFOLDERS = ("models", "benchmarks", "provenance", "plots", "data", "static")
FILTERS = (("family", "Family"), ("size", "Size"), ("training", "Training data"), ("checkpoint", "Checkpoint"))
SHOWN_METADATA = ("architecture", "objective", "layers", "image_size", "source")


@dataclass
class Plot:
    path: str  # relative to the site root
    caption: str
    group: str  # the section it is shown in: a checkpoint, or "training"


@dataclass
class SiteReport:
    """What :func:`build_site` wrote."""

    out: Path
    rows: int
    pages: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)


def format_parameters(value: Any) -> str:
    number = finite(value)
    if number is None:
        return "unknown"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if number >= limit:
            return f"{number / limit:,.1f}{suffix}"
    return f"{number:,.0f}"


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(["html"], default_for_string=True, default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["params"] = format_parameters
    env.filters["finite"] = finite
    env.globals["anchor"] = anchor
    return env


def _prepare(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BrainbenchError(f"{out} is a file; give --out a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise BrainbenchError(f"{out} is not empty and was not built by `bench leaderboard build`; "
                              "give --out a new or empty folder")
    for name in SUBFOLDERS:
        shutil.rmtree(out / name, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("built by `bench leaderboard build`; the folder is rewritten on each build\n")


def _write_data(board: Leaderboard, out: Path, half_columns: list[str]) -> None:
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(json_safe([r.to_json() for r in board.rows]), indent=1,
                                                    allow_nan=False))
    (folder / "results.csv").write_text(render(board.rows, "csv") + "\n")
    table = []
    for e in board.entries:
        scores = {}
        for b in board.benchmarks:
            cell = e.cells[b.slug]
            scores[b.label] = {
                "score": cell.score, "error": cell.error, "n_subjects": cell.n_subjects or None,
                "benchmark_id": b.benchmark_id, "benchmark_version": b.version,
                "brainbench_version": cell.row.brainbench_version if cell.row else None,
                "data_hash": cell.row.data_hash if cell.row else None,
                "contributor": cell.row.provenance.get("contributor") if cell.row else None,
                "provenance": f"{b.provenance_page}#{anchor(cell.row)}" if cell.row else None}
        table.append({"model": e.model, "checkpoint": e.checkpoint, "family": e.family, "parameters": e.parameters,
                      "training_data": e.training_data, "scores": scores,
                      "half_times": {m: e.half_times.get(m) for m in half_columns}})
    (folder / "leaderboard.json").write_text(json.dumps(json_safe(table), indent=1, allow_nan=False))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["model", "checkpoint", "family", "parameters", "training_data"]
    for b in board.benchmarks:
        header += [f"{b.label} {x}" for x in ("score", "error", "n_subjects")]
    writer.writerow(header + [f"half_time {m}" for m in half_columns])
    for item in table:
        line = [item["model"], item["checkpoint"], item["family"], item["parameters"], item["training_data"]]
        for cell in item["scores"].values():
            line += [cell["score"], cell["error"], cell["n_subjects"]]  # the CSV keeps the table's numbers
        writer.writerow(["" if v is None else v for v in line + [item["half_times"][m] for m in half_columns]])
    (folder / "leaderboard.csv").write_text(buffer.getvalue())


def _plotted_entries(board: Leaderboard, model: str):
    """Checkpoints drawn in detail: every non-step checkpoint and the last training step."""
    entries = board.entries_of(model)
    steps = [e for e in entries if step_of(e.checkpoint) is not None]
    last = max(steps, key=lambda e: step_of(e.checkpoint)) if steps else None
    return [e for e in entries if e not in steps or e is last]


def _model_plots(board: Leaderboard, model: str, out: Path) -> list[Plot]:
    made: list[Plot] = []
    folder = f"plots/{slug(model)}"

    def add(draw, name: str, caption: str, group: str, *args, **kwargs) -> None:
        path = f"{folder}/{name}.svg"
        figure = draw(*args, caption, **kwargs)
        if figure is not None:
            plots.save(figure, out / path)
            made.append(Plot(path, caption, group))

    curves = board.curves(model)
    if curves:
        labelled = {b.title: curves[b.slug] for b in board.benchmarks if b.slug in curves}
        add(plots.training_curves, "training", f"{model}: score over training steps (dashed: half-times)",
            "training steps", labelled, {b.title: board.half_time(model, b) for b in board.benchmarks
                                         if b.slug in curves})

    for entry in _plotted_entries(board, model):
        for b in board.benchmarks:
            row = entry.cells[b.slug].row
            if row is None:
                continue
            d, stem, who = row.detail, f"{b.slug}--{slug(entry.checkpoint)}", f"{model}@{entry.checkpoint}"
            group = f"checkpoint {entry.checkpoint}"
            at_layer = f" (best layer {d['layer']})" if isinstance(d.get("layer"), str) else ""
            if d.get("layer_selection") == "nested":
                at_layer = " (layer chosen per outer fold)"
            if isinstance(d.get("per_region"), dict):
                add(plots.region_bars, f"{stem}--regions", f"{who}: {b.metric} r per region on {b.dataset}{at_layer}",
                    group, d["per_region"])
            if isinstance(d.get("per_layer"), dict):
                add(plots.layer_profile, f"{stem}--layers", f"{who}: {b.metric} r per layer on {b.dataset}", group,
                    d["per_layer"], best=d.get("layer"))
            if isinstance(d.get("regions"), dict):
                pooled = d.get("pooled", {}) if isinstance(d.get("pooled"), dict) else {}
                r = finite(pooled.get("pearson_r")) if pooled else finite(row.score)
                add(plots.layer_distance, f"{stem}--distance", f"{who}: best layer vs distance from V1 on {b.dataset}",
                    group, d["regions"], d.get("layers", []), pearson=r)
            if isinstance(d.get("r_time"), dict) and isinstance(d.get("times"), list):
                add(plots.layer_time, f"{stem}--layer-time", f"{who}: {b.metric} r per layer and time on {b.dataset}",
                    group, d["r_time"], d["times"], t_max=d.get("t_max") if isinstance(d.get("t_max"), dict) else None)
    made += _cortex_plots(board, model, out, folder)
    return made


def _region_half_times(board: Leaderboard, model: str, bench) -> dict[str, float | None]:
    """Region → half-time (steps) of ``model``'s per-region scores over its ``step-N`` checkpoints."""
    regions: dict[str, list[tuple[int, float]]] = {}
    for e in board.entries_of(model):
        row = e.cells[bench.slug].row
        if step_of(e.checkpoint) is None or row is None or not isinstance(row.detail.get("per_region"), dict):
            continue
        for region, value in row.detail["per_region"].items():
            if finite(value) is not None:
                regions.setdefault(region, []).append((step_of(e.checkpoint), value))
    return {region: half_time(points) for region, points in regions.items()}


def _cortex_plots(board: Leaderboard, model: str, out: Path, folder: str) -> list[Plot]:
    """The cortical map of encoding r (the last plotted checkpoint with regions), and of half-time with steps."""
    from . import cortex

    made = []
    for b in board.benchmarks:
        if b.metric != "encoding":
            continue
        entries = [e for e in _plotted_entries(board, model)
                   if e.cells[b.slug].row is not None and isinstance(e.cells[b.slug].row.detail.get("per_region"), dict)]
        if entries:
            entry = entries[-1]
            caption = f"{model}@{entry.checkpoint}: encoding r per Glasser region on the cortex, {b.dataset}"
            figure = cortex.cortical_map(entry.cells[b.slug].row.detail["per_region"], "encoding r", caption)
            if figure is not None:
                path = f"{folder}/{b.slug}--cortex.svg"
                plots.save(figure, out / path)
                made.append(Plot(path, caption, "cortex"))
        half = {k: v for k, v in _region_half_times(board, model, b).items() if v is not None}
        if half:
            caption = f"{model}: half-time (steps) of encoding r per Glasser region, {b.dataset}"
            figure = cortex.cortical_map(half, "half-time (training steps)", caption, cmap="magma_r")
            if figure is not None:
                path = f"{folder}/{b.slug}--cortex-half-time.svg"
                plots.save(figure, out / path)
                made.append(Plot(path, caption, "cortex"))
    return made


def _region_data(board: Leaderboard) -> dict:
    """``data/regions.js``: per benchmark with regions, model@checkpoint → region → value (the compare page)."""
    out = {}
    for b in board.benchmarks:
        per_entry = {}
        for e in board.entries:
            row = e.cells[b.slug].row
            table = row.detail.get("per_region") if row is not None else None
            if table is None and row is not None and isinstance(row.detail.get("regions"), dict):
                table = {k: v.get("depth") for k, v in row.detail["regions"].items() if isinstance(v, dict)}
            if isinstance(table, dict) and table:
                per_entry[f"{e.model}@{e.checkpoint}"] = {k: finite(v) for k, v in table.items()}
        if per_entry:
            quantity = "encoding r" if b.metric == "encoding" else "best-layer depth" if b.metric == "spatial" \
                else f"{b.metric} per region"
            out[b.slug] = {"title": b.title, "quantity": quantity, "values": per_entry}
    return out


def _grouped(made: list[Plot]) -> list[tuple[str, list[Plot]]]:
    groups: dict[str, list[Plot]] = {}
    for plot in made:
        groups.setdefault(plot.group, []).append(plot)
    return list(groups.items())


def _half_time_rows(board: Leaderboard, model: str) -> list[tuple[str, float | None]]:
    """Half-time per benchmark with a curve, and per region of the fMRI encoding benchmarks."""
    rows = []
    steps = [e for e in board.entries_of(model) if step_of(e.checkpoint) is not None]
    for b in board.benchmarks:
        curve = board.curves(model).get(b.slug)
        if not curve:
            continue
        rows.append((b.title, board.half_time(model, b)))
        stored = board.half_time_row(model, b)
        if stored is not None and isinstance(stored.detail.get("regions"), dict):
            rows += [(f"{b.title} · {region}", finite(value.get("step")) if isinstance(value, dict) else None)
                     for region, value in stored.detail["regions"].items()]
            continue
        regions: dict[str, list[tuple[int, float]]] = {}
        for e in steps:
            row = e.cells[b.slug].row
            per_region = row.detail.get("per_region") if row is not None else None
            for region, value in (per_region or {}).items():
                if finite(value) is not None:
                    regions.setdefault(region, []).append((step_of(e.checkpoint), value))
        rows += [(f"{b.title} · {region}", half_time(points)) for region, points in regions.items()]
    return rows


def build_site(sources: str | Path | Sequence[str | Path], out: str | Path, *,
               title: str = "brainbench leaderboard", registry=None) -> SiteReport:
    """Render the site for the results in ``sources`` into the folder ``out`` (rewritten on each build).

    Parameters
    ----------
    sources
        One results database (a path), or a list of results databases, portable result files
        and folders of them, merged as :func:`brainbench.leaderboard.sources.collect_rows` says.
    out
        The site folder; it must be new, empty, or a previous build.
    title
        Shown in the header and the page titles.
    registry
        Where model, dataset and metric metadata come from (default: the plugins installed here).
    """
    import matplotlib

    from brainbench.core.registry.specs import get_registry

    registry = registry if registry is not None else get_registry()
    if isinstance(sources, (str, Path)):
        if not Path(sources).expanduser().exists():
            raise BrainbenchError(f"no results database at {Path(sources).expanduser()} yet; run `bench grid` first")
        sources = [sources]
    if not sources:
        raise BrainbenchError("no sources to build from; give --from a results folder, file or database")
    rows, _ = collect_rows(sources, registry)
    rows.sort(key=lambda r: (r.dataset, r.metric, r.model, r.checkpoint, r.subject, r.options, r.benchmark_version))
    out = Path(out).expanduser()
    board = build_leaderboard(rows, registry)
    _prepare(out)
    report = SiteReport(out, len(rows))
    env = _environment()
    model_slugs = {m: slug(m) for m in board.models}
    half_columns = half_time_metrics(board)
    common = dict(site_title=title, version=brainbench.__version__, n_rows=len(rows), model_slugs=model_slugs,
                  generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  benchmarks=board.benchmarks)

    def page(template: str, path: str, **context) -> None:
        root = "../" * path.count("/")
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(env.get_template(template).render(**common, root=root, **context))
        report.pages.append(path)

    first = board.benchmarks[0].slug if board.benchmarks else None
    ranks, rank = [], 0
    for e in board.entries:
        has = first is not None and e.cells[first].score is not None
        rank += has
        ranks.append(rank if has else "—")
    groups = []
    for b in board.benchmarks:
        if groups and groups[-1]["metric"] == b.metric:
            groups[-1]["span"] += 1
        else:
            groups.append({"metric": b.metric, "label": b.metric.capitalize(), "span": 1})
    filters = [(key, label, sorted({getattr(e, attribute) for e in board.entries}))
               for (key, label), attribute in zip(FILTERS, ("family", "size", "training_data", "checkpoint_kind"))]
    page("index.html", "index.html", entries=board.entries, ranks=ranks, groups=groups, filters=filters,
         half_columns=half_columns)
    page("benchmarks.html", "benchmarks.html")
    page("downloads.html", "downloads.html")
    regions = _region_data(board)
    page("compare.html", "compare.html", entries=board.entries, region_benchmarks=regions)
    (out / "data").mkdir(parents=True, exist_ok=True)
    # a script file, not fetched JSON: file:// pages may not fetch(); read by static/compare.js
    (out / "data" / "regions.js").write_text(
        "window.BRAINBENCH_REGIONS = " + json.dumps(json_safe(regions), allow_nan=False).replace("</", "<\\/") + ";\n")
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "brainbench", "font.size": 9}):
        for model in board.models:
            made = _model_plots(board, model, out)
            report.plots += [p.path for p in made]
            metadata = board.metadata.get(model, {})
            extra = [(k, metadata[k]) for k in SHOWN_METADATA if metadata.get(k) not in (None, "", [])]
            page("model.html", f"models/{model_slugs[model]}.html", model=model, entries=board.entries_of(model),
                 metadata=metadata, extra_metadata=extra, description=board.descriptions.get(model, ""),
                 plot_groups=_grouped(made), half_times=_half_time_rows(board, model))
    for b in board.benchmarks:
        cells = {(e.model, e.checkpoint): e.cells[b.slug] for e in board.entries}
        ranking, rank = [], 0
        for row in b.rows:
            rank += finite(row.score) is not None
            ranking.append((row, cells[(row.model, row.checkpoint)], rank if finite(row.score) is not None else "—"))
        specs = registry.specs
        page("benchmark.html", f"benchmarks/{b.slug}.html", bench=b, ranking=ranking,
             bibtex=citations.bibtex(b.dataset, b.metric,
                                     specs["datasets"][b.dataset].metadata if b.dataset in specs["datasets"] else None,
                                     specs["metrics"][b.metric].metadata if b.metric in specs["metrics"] else None))
        page("provenance.html", b.provenance_page, bench=b,
             entries=[(row, board.subject_rows(row)) for row in [*b.rows, *b.other_rows]])
    shutil.copytree(HERE / "static", out / "static")
    _write_data(board, out, half_columns)
    return report

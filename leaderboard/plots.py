"""Plots of a model's results, drawn by matplotlib: the leaderboard's, the report's and a notebook's.

Each function returns a :class:`matplotlib.figure.Figure` (shown inline by Jupyter), or None
when its input holds too little to draw; saving is the caller's choice (:func:`save`). Figures
are built with :class:`matplotlib.figure.Figure` (no pyplot, no GUI backend). The leaderboard
saves them as SVG with text kept as paths, so plugin-provided strings cannot inject markup; the
pages show them with ``<img>``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .data import finite

WIDTH, HEIGHT = 6.4, 3.6
COLOR = "#2b6cb0"
ACCENT = "#c05621"


def _figure(width: float = WIDTH, height: float = HEIGHT, bottom: float = 0.9):
    """A figure with fixed margins (``bottom`` inches for the x labels; faster than a layout engine)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(left=0.8 / width, right=1 - 0.25 / width, bottom=bottom / height, top=1 - 0.4 / height)
    return figure, figure.add_subplot()


def save(figure, path: str | Path, formats: Sequence[str] | None = None) -> list[Path]:
    """Write ``figure`` to ``path`` (its suffix gives the format), or to ``path`` with each suffix of ``formats``.

    SVG files carry no date, so an unchanged figure gives the same file. Returns the paths written.
    """
    path = Path(path)
    targets = [path.with_suffix(f".{f}") for f in formats] if formats else [path]
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        fmt = target.suffix.lstrip(".") or "svg"
        metadata = {"Date": None} if fmt == "svg" else None
        figure.savefig(target, format=fmt, metadata=metadata, transparent=False, dpi=110)
    return targets


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def region_bars(per_region: Mapping[str, float], title: str = ""):
    """Bar chart of the encoding r per region (regions in their stored order)."""
    items = [(str(k), finite(v)) for k, v in per_region.items()]
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return None
    figure, ax = _figure(max(WIDTH, 0.35 * len(items)), HEIGHT, bottom=1.1)
    ax.bar(range(len(items)), [v for _, v in items], color=COLOR)
    ax.set_xticks(range(len(items)), [_short(k, 16) for k, _ in items], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("encoding r")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(_short(title, 70), fontsize=10)
    return figure


def layer_profile(per_layer: Mapping[str, float], title: str = "", best: str | None = None):
    """Line plot of the mean encoding r of every layer, the best layer marked."""
    items = [(str(k), finite(v)) for k, v in per_layer.items()]
    if sum(v is not None for _, v in items) < 2:
        return None
    figure, ax = _figure()
    x = np.arange(len(items))
    y = np.array([np.nan if v is None else v for _, v in items])
    ax.plot(x, y, marker="o", color=COLOR)
    if best in dict(items):
        i = [k for k, _ in items].index(best)
        ax.plot([i], [y[i]], marker="*", markersize=14, color=ACCENT, linestyle="none", label="best layer")
        ax.legend(fontsize=8)
    step = max(1, len(items) // 12)
    ax.set_xticks(x[::step], [_short(k, 12) for k, _ in items][::step], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("mean encoding r")
    ax.set_title(_short(title, 70), fontsize=10)
    return figure


def layer_distance(regions: Mapping[str, Mapping], layers: Sequence[str], title: str = "",
                   pearson: float | None = None):
    """Scatter of each region's best layer against its distance from V1, with the least-squares line."""
    points = []
    for region, row in regions.items():
        distance, depth = finite(row.get("distance_mm")), finite(row.get("depth"))
        if distance is not None and depth is not None:
            points.append((str(region), distance, depth * (len(layers) - 1) if len(layers) > 1 else depth))
    if len(points) < 2:
        return None
    figure, ax = _figure(bottom=0.55)
    x = np.array([p[1] for p in points])
    y = np.array([p[2] for p in points])
    ax.scatter(x, y, color=COLOR, zorder=3)
    for name, xi, yi in points:
        ax.annotate(_short(name, 12), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    _fit_line(ax, x, y, f"fit (r = {pearson:.2f})" if pearson is not None else "least-squares fit")
    ax.set_xlabel("distance from V1 (mm)")
    ax.set_ylabel("best layer (index)" if len(layers) > 1 else "best-layer depth")
    ax.set_title(_short(title, 70), fontsize=10)
    return figure


def layer_time(r_time: Mapping[str, Sequence], times: Sequence[float], title: str = "",
               t_max: Mapping[str, float | None] | None = None):
    """Heat map of encoding r per layer (rows) and time (columns)."""
    layers = list(r_time)
    if not layers or not times:
        return None
    matrix = np.array([[np.nan if finite(v) is None else v for v in r_time[layer]] for layer in layers], dtype=float)
    if matrix.shape[1] != len(times) or not np.isfinite(matrix).any():
        return None
    figure, ax = _figure(WIDTH, max(2.6, 0.22 * len(layers) + 1.2), bottom=0.55)
    image = ax.imshow(matrix, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                      extent=(float(times[0]), float(times[-1]), -0.5, len(layers) - 0.5))
    step = max(1, len(layers) // 10)
    ax.set_yticks(range(0, len(layers), step), [_short(l, 12) for l in layers][::step], fontsize=8)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("layer")
    if t_max:
        marks = [(i, finite(t_max.get(layer))) for i, layer in enumerate(layers)]
        marks = [(i, t) for i, t in marks if t is not None]
        if marks:
            ax.plot([t for _, t in marks], [i for i, _ in marks], marker="o", color="white", markeredgecolor="black",
                    linestyle="-", linewidth=0.8, markersize=4, label="T_max")
            ax.legend(fontsize=7, loc="upper right")
    figure.colorbar(image, ax=ax, label="encoding r", fraction=0.05, pad=0.02)
    ax.set_title(_short(title, 70), fontsize=10)
    return figure


def training_curves(curves: Mapping[str, Sequence[tuple[int, float]]], half_times: Mapping[str, float | None],
                    title: str = "", log: bool = False):
    """Score against training step, one line per benchmark, half-times marked by dashed lines.

    ``log`` draws the steps on a symmetric-log axis (linear below the first step after 0), as
    half-times are interpolated in log-step.
    """
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    if not curves:
        return None
    figure, ax = _figure(bottom=0.55)
    colors = [COLOR, ACCENT, "#2f855a", "#6b46c1", "#b7791f", "#718096"]
    for i, (label, points) in enumerate(curves.items()):
        color = colors[i % len(colors)]
        steps, scores = zip(*points)
        ax.plot(steps, scores, marker="o", color=color, label=_short(label, 40))
        t = half_times.get(label)
        if t is not None:
            ax.axvline(t, color=color, linestyle="--", linewidth=1)
            ax.annotate(f"t½ = {t:,.0f}", (t, max(scores)), fontsize=7, color=color, xytext=(3, -10),
                        textcoords="offset points")
    positive = [s for points in curves.values() for s, _ in points if s > 0]
    if log and positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    ax.set_xlabel("training step" + (" (log scale)" if log and positive else ""))
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    ax.set_title(_short(title, 70), fontsize=10)
    return figure


def _fit_line(ax, x: np.ndarray, y: np.ndarray, label: str) -> None:
    if len(x) >= 2 and np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 50)
        ax.plot(grid, slope * grid + intercept, color=ACCENT, label=label)
        ax.legend(fontsize=8)


def labelled_scatter(points: Mapping[str, tuple[float, float]], xlabel: str, ylabel: str, title: str = "",
                     r: float | None = None, p: float | None = None, identity: bool = False):
    """Scatter of named points (name → (x, y)) with the least-squares line and r (and p) in its legend.

    ``identity`` draws the y = x diagonal instead of the fit (a model against another).
    """
    items = [(str(k), finite(x), finite(y)) for k, (x, y) in points.items()]
    items = [(k, x, y) for k, x, y in items if x is not None and y is not None]
    if len(items) < 2:
        return None
    figure, ax = _figure(bottom=0.55)
    x = np.array([i[1] for i in items])
    y = np.array([i[2] for i in items])
    ax.scatter(x, y, color=COLOR, zorder=3)
    for name, xi, yi in items:
        ax.annotate(_short(name, 12), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if r is None and len(items) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
        r = float(np.corrcoef(x, y)[0, 1])
    stats = "" if r is None else f"r = {r:.2f}" + ("" if p is None else f", p = {p:.2g}")
    if identity:
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="#718096", linestyle="--", linewidth=1,
                label=f"y = x ({stats})" if stats else "y = x")
        ax.legend(fontsize=8)
    else:
        _fit_line(ax, x, y, f"fit ({stats})" if stats else "least-squares fit")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(_short(title, 70), fontsize=10)
    return figure


def map_scatters(values: Mapping[str, float], maps: Mapping[str, Mapping[str, float]],
                 stats: Mapping[str, Mapping], ylabel: str, title: str = ""):
    """One panel per cortical map: each parcel's map value (x) against its value (y), with r and its p.

    Parameters
    ----------
    values : parcel → value (a half-time, %)
    maps : map name → parcel → map value
    stats : map name → {"r", "p_value", "null"} (from :func:`brainbench.core.compute.cortical.correlate_maps`)
    """
    panels = [name for name, table in maps.items()
              if sum(finite(table.get(k)) is not None and finite(v) is not None for k, v in values.items()) >= 2]
    if not panels:
        return None
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.1 * len(panels), 3.2))
    figure.subplots_adjust(left=0.6 / (3.1 * len(panels)), right=0.98, bottom=0.18, top=0.8, wspace=0.35)
    for i, name in enumerate(panels):
        ax = figure.add_subplot(1, len(panels), i + 1)
        pairs = [(finite(maps[name].get(k)), finite(v)) for k, v in values.items()]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        x, y = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        ax.scatter(x, y, color=COLOR, s=14, zorder=3)
        info = stats.get(name, {})
        r, pv = finite(info.get("r")), finite(info.get("p_value"))
        text = "" if r is None else f"r = {r:.2f}" + ("" if pv is None else f", p = {pv:.2g} ({info.get('null', '')})")
        _fit_line(ax, x, y, text or "fit")
        ax.set_xlabel(_short(name, 24), fontsize=8)
        if i == 0:
            ax.set_ylabel(ylabel)
    figure.suptitle(_short(title, 90), fontsize=10)
    return figure

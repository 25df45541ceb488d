"""Static SVG plots of a model's results, drawn by matplotlib at build time (no JavaScript, no CDN).

Each function draws what its detail holds and returns False, writing nothing, when it holds
too little to draw. Figures are built with :class:`matplotlib.figure.Figure` (no pyplot, no
GUI backend) and saved as SVG with text kept as paths, so plugin-provided strings cannot
inject markup; the pages show them with ``<img>``.
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


def _save(figure, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="svg", metadata={"Date": None}, transparent=False)
    return True


def _short(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def region_bars(per_region: Mapping[str, float], path: Path, title: str) -> bool:
    """Bar chart of the encoding r per region (regions in their stored order)."""
    items = [(str(k), finite(v)) for k, v in per_region.items()]
    items = [(k, v) for k, v in items if v is not None]
    if not items:
        return False
    figure, ax = _figure(max(WIDTH, 0.35 * len(items)), HEIGHT, bottom=1.1)
    ax.bar(range(len(items)), [v for _, v in items], color=COLOR)
    ax.set_xticks(range(len(items)), [_short(k, 16) for k, _ in items], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("encoding r")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_title(_short(title, 70), fontsize=10)
    return _save(figure, path)


def layer_profile(per_layer: Mapping[str, float], path: Path, title: str, best: str | None = None) -> bool:
    """Line plot of the mean encoding r of every layer, the best layer marked."""
    items = [(str(k), finite(v)) for k, v in per_layer.items()]
    if sum(v is not None for _, v in items) < 2:
        return False
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
    return _save(figure, path)


def layer_distance(regions: Mapping[str, Mapping], layers: Sequence[str], path: Path, title: str,
                   pearson: float | None = None) -> bool:
    """Scatter of each region's best layer against its distance from V1, with the least-squares line."""
    points = []
    for region, row in regions.items():
        distance, depth = finite(row.get("distance_mm")), finite(row.get("depth"))
        if distance is not None and depth is not None:
            points.append((str(region), distance, depth * (len(layers) - 1) if len(layers) > 1 else depth))
    if len(points) < 2:
        return False
    figure, ax = _figure(bottom=0.55)
    x = np.array([p[1] for p in points])
    y = np.array([p[2] for p in points])
    ax.scatter(x, y, color=COLOR, zorder=3)
    for name, xi, yi in points:
        ax.annotate(_short(name, 12), (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if np.ptp(x) > 0:
        slope, intercept = np.polyfit(x, y, 1)
        grid = np.linspace(x.min(), x.max(), 50)
        label = f"fit (r = {pearson:.2f})" if pearson is not None else "least-squares fit"
        ax.plot(grid, slope * grid + intercept, color=ACCENT, label=label)
        ax.legend(fontsize=8)
    ax.set_xlabel("distance from V1 (mm)")
    ax.set_ylabel("best layer (index)" if len(layers) > 1 else "best-layer depth")
    ax.set_title(_short(title, 70), fontsize=10)
    return _save(figure, path)


def layer_time(r_time: Mapping[str, Sequence], times: Sequence[float], path: Path, title: str) -> bool:
    """Heat map of encoding r per layer (rows) and time (columns)."""
    layers = list(r_time)
    if not layers or not times:
        return False
    matrix = np.array([[np.nan if finite(v) is None else v for v in r_time[layer]] for layer in layers], dtype=float)
    if matrix.shape[1] != len(times) or not np.isfinite(matrix).any():
        return False
    figure, ax = _figure(WIDTH, max(2.6, 0.22 * len(layers) + 1.2), bottom=0.55)
    image = ax.imshow(matrix, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest",
                      extent=(float(times[0]), float(times[-1]), -0.5, len(layers) - 0.5))
    step = max(1, len(layers) // 10)
    ax.set_yticks(range(0, len(layers), step), [_short(l, 12) for l in layers][::step], fontsize=8)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("layer")
    figure.colorbar(image, ax=ax, label="encoding r", fraction=0.05, pad=0.02)
    ax.set_title(_short(title, 70), fontsize=10)
    return _save(figure, path)


def training_curves(curves: Mapping[str, Sequence[tuple[int, float]]], half_times: Mapping[str, float | None],
                    path: Path, title: str) -> bool:
    """Score against training step, one line per benchmark, half-times marked by dashed lines."""
    curves = {k: v for k, v in curves.items() if len(v) >= 2}
    if not curves:
        return False
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
    ax.set_xlabel("training step")
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    ax.set_title(_short(title, 70), fontsize=10)
    return _save(figure, path)

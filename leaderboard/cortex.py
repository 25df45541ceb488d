"""Per-region values on the cortex: Glasser (HCP-MMP1) parcels drawn on nilearn's inflated fsaverage5.

The mesh, the sulcal depth behind it and the drawing are nilearn's (``load_fsaverage("fsaverage5")``
and ``plot_surf_stat_map(engine="matplotlib")``): the fsaverage5 files ship inside nilearn, so
nothing is downloaded. The parcel of every fsaverage5 vertex is the package's
``data_files/lh.HCP_MMP1.fsaverage5.annot`` (FreeSurfer annotation), derived once by
:func:`derive_fsaverage5_annot` from NSD's fsaverage ``lh.HCP_MMP1.mgz``: fsaverage5's 10,242
vertices are the first 10,242 of fsaverage's 163,842 (the icosahedron is refined by appending
vertices), so the labels are that file's first 10,242 values. See ``data_files/README.md`` for
the citation.

**Left hemisphere only.** Only NSD's left-hemisphere label file was available when the labels
were derived, so only the left hemisphere is drawn. A region named for the right hemisphere
(``rh.V1``) is not drawn and is listed as such on the figure; a region without a hemisphere
(``V1``) is drawn on the left.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from brainbench.core.compute.cortical import parcel_name
from brainbench.core.errors import BrainbenchError

HERE = Path(__file__).resolve().parent
ANNOT = HERE / "data_files" / "lh.HCP_MMP1.fsaverage5.annot"
N_FSAVERAGE5 = 10242
#: hemispheres whose labels are shipped
HEMISPHERES = ("lh",)
MISSING_NOTE = "right hemisphere not drawn: its Glasser labels are not shipped"


def derive_fsaverage5_annot(mgz: str | Path, ctab: str | Path, out: str | Path = ANNOT) -> Path:
    """Write the fsaverage5 annotation from NSD's fsaverage label volume and colour table.

    Parameters
    ----------
    mgz
        ``lh.HCP_MMP1.mgz`` on fsaverage: (163842, 1, 1) label per vertex, 0 (none) … 180.
    ctab
        ``HCP_MMP1.mgz.ctab``: ``index name`` per line, 0 = ``Unknown``, 1 = ``V1`` … 180.
    out
        The ``.annot`` to write (default: the package's).

    Raises
    ------
    BrainbenchError
        The volume is not fsaverage's 163,842 vertices, or a parcel has no fsaverage5 vertex.
    """
    import nibabel
    from nibabel.freesurfer import write_annot

    values = np.asarray(nibabel.load(str(mgz)).dataobj).ravel()
    if values.size != 163842:
        raise BrainbenchError(f"{mgz} labels {values.size} vertices, not fsaverage's 163842")
    labels = values[:N_FSAVERAGE5].astype(np.int32)
    names = {int(i): name for i, name in (line.split() for line in Path(ctab).read_text().splitlines() if line.strip())}
    missing = [names[k] for k in names if k and not (labels == k).any()]
    if missing:
        raise BrainbenchError(f"parcels without an fsaverage5 vertex: {', '.join(missing)}")
    order = sorted(names)
    rng = np.random.default_rng(0)  # the colour table is required by the format; colours carry no meaning
    colours = np.column_stack([rng.integers(0, 256, (len(order), 3)), np.zeros(len(order), int)])
    colours[0, :3] = 25
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_annot(str(out), labels, colours.astype(np.int32), [names[k] for k in order], fill_ctab=True)
    return out


@functools.lru_cache(maxsize=1)
def glasser_fsaverage5() -> tuple[np.ndarray, tuple[str, ...]]:
    """The shipped labels: (10242,) parcel index per left-hemisphere vertex (0 = none) and the names (index order)."""
    from nibabel.freesurfer import read_annot

    labels, _, names = read_annot(str(ANNOT))
    return labels, tuple(n.decode() if isinstance(n, bytes) else n for n in names)


def vertex_values(values: Mapping[str, float]) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Per-region values → a value per left-hemisphere fsaverage5 vertex (NaN where no region has one).

    Parameters
    ----------
    values : region → value; names as :func:`brainbench.core.compute.cortical.parcel_name` reads them
        (``lh.V1``, ``L_V1_ROI``, ``V1``). ``lh.`` names win over names without a hemisphere.

    Returns
    -------
    data : (10242,) float
    drawn : the regions drawn
    not_drawn : region → why (right hemisphere, not a Glasser parcel, no value)
    """
    labels, names = glasser_fsaverage5()
    index = {name: i for i, name in enumerate(names)}
    per_parcel: dict[str, tuple[int, str, float]] = {}
    drawn, not_drawn = [], {}
    for region, value in values.items():
        side, parcel = parcel_name(str(region))
        number = None if value is None or isinstance(value, bool) else float(value)
        if side not in (None, *HEMISPHERES):
            not_drawn[region] = "right hemisphere: its labels are not shipped"
        elif parcel not in index or index[parcel] == 0:
            not_drawn[region] = "not a Glasser (HCP-MMP1) parcel"
        elif number is None or not math.isfinite(number):
            not_drawn[region] = "no value"
        else:
            rank = 0 if side else 1  # an lh. name wins over a bare one
            if parcel not in per_parcel or rank < per_parcel[parcel][0]:
                per_parcel[parcel] = (rank, region, number)
    data = np.full(labels.shape, np.nan)
    for parcel, (_, region, number) in per_parcel.items():
        data[labels == index[parcel]] = number
        drawn.append(region)
    for region in values:
        if region not in drawn and region not in not_drawn:
            not_drawn[region] = "another name of the same parcel was drawn"
    return data, drawn, not_drawn


@functools.lru_cache(maxsize=1)
def _surface():
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")["inflated"].parts["left"]
    sulcal = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal").data.parts["left"]
    return mesh, np.asarray(sulcal)


def cortical_map(values: Mapping[str, float], label: str, title: str = "", *, cmap: str = "viridis",
                 vmin: float | None = None, vmax: float | None = None, views: Sequence[str] = ("lateral", "medial")):
    """Draw per-region values on the inflated left hemisphere (fsaverage5), one panel per view.

    Parameters
    ----------
    values
        Region → value (encoding r, best-layer depth, half-time %, p-value…).
    label
        What the colour bar shows, with its unit (``"encoding r"``, ``"half-time (% of training)"``).
    title
        Figure title.
    cmap, vmin, vmax
        Colour map and its range (default: the values' range).
    views
        nilearn views (``lateral``, ``medial``, ``ventral``, ``posterior``…).

    Returns
    -------
    matplotlib.figure.Figure, or None when no region is a left-hemisphere Glasser parcel with a
    value. Parcels without a value show the grey sulcal pattern; a note under the panels says
    how many regions are drawn and which were not, and that the right hemisphere is not drawn.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from nilearn import plotting

    data, drawn, not_drawn = vertex_values(values)
    if not drawn:
        return None
    finite = data[np.isfinite(data)]
    low = float(finite.min()) if vmin is None else vmin
    high = float(finite.max()) if vmax is None else vmax
    if high <= low:  # one value (or all equal): a scale from 0, so the bar does not magnify rounding
        low, high = min(0.0, low), max(0.0, high)
        if high <= low:
            low, high = low - 1.0, high + 1.0
    mesh, sulcal = _surface()
    figure = Figure(figsize=(3.3 * len(views) + 0.9, 3.4))
    width = 0.84 / len(views)
    for i, view in enumerate(views):
        ax = figure.add_axes((0.01 + i * width, 0.12, width, 0.76), projection="3d")
        plotting.plot_surf_stat_map(mesh, data, bg_map=sulcal, hemi="left", view=view, engine="matplotlib",
                                    axes=ax, figure=figure, colorbar=False, cmap=cmap, vmin=low, vmax=high,
                                    symmetric_cbar=False)
        ax.set_title(f"left, {view}", fontsize=8, y=0.92)
        for surface in ax.collections:  # 20,000 triangles: an image inside an SVG, not 7 MB of paths
            surface.set_rasterized(True)
    bar = figure.add_axes((0.86, 0.2, 0.018, 0.6))
    figure.colorbar(ScalarMappable(Normalize(low, high), cmap=cmap), cax=bar, label=label)
    figure.suptitle(title, fontsize=10)
    figure.text(0.01, 0.02, _note(drawn, not_drawn), fontsize=7, color="#4a5568", wrap=True)
    return figure


def _note(drawn: list[str], not_drawn: Mapping[str, str]) -> str:
    text = f"{len(drawn)} region{'s' * (len(drawn) != 1)} drawn (HCP-MMP1 on fsaverage5; grey: no value); {MISSING_NOTE}"
    if not_drawn:
        names = list(not_drawn)
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        text += f"; not drawn: {shown}"
    return text

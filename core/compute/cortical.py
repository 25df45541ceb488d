"""Cortical maps: correlate per-region scores (half-times, …) with maps of the cortex, per Glasser parcel.

The shipped table (``core/compute/data_files/glasser_parcel_maps.csv``) has one row per parcel of the
left hemisphere of the HCP-MMP1 atlas (Glasser et al. 2016; 180 parcels, standard order):

=====================  ======================================================================
column                 what (source)
=====================  ======================================================================
``myelin_t1t2``        T1w/T2w ratio, a myelin proxy (HCP S1200; Glasser & Van Essen 2011),
                       ``T1T2ratio`` of Sydnor et al. 2021
``thickness_mm``       cortical thickness, mm (HCP S1200), ``Cortical.Thickness`` of Sydnor 2021
``expansion``          *evolutionary* areal expansion, macaque → human (Hill et al. 2010),
                       ``Evolution.Expansion`` of Sydnor 2021. The paper correlates with
                       Hill's *developmental* expansion, which is not in this table: give it
                       as a user map.
``timescale_tau_ms``   intrinsic neuronal timescale τ, ms, from ECoG (Gao et al. 2020). The
                       paper uses MEG timescales (Shafiei et al. 2022), not in this table.
``sphere_x/y/z``       the parcel's centroid on fsaverage's sphere (unit radius): the mean of
                       its vertices' positions, vertices labelled by the fsaverage HCP-MMP1
                       annotation (``lh.HCP_MMP1.mgz`` as distributed with NSD), positions of
                       the order-7 icosahedron MNE ships (``mne/data/icos.fif.gz``), whose
                       163,842 vertices are fsaverage's sphere vertices in order (checked:
                       parcels come out compact, mean angular radius 6.8° against 87° for a
                       shuffled order)
=====================  ======================================================================

:func:`build_parcel_table` rebuilds it from the source files (``glasser_regions.csv``,
``brainmaps_glasser.csv``, ``timescale_gao2020.csv`` and the label file); values are copied
as written there. Users may pass their own CSV maps (a ``parcel`` column and numeric columns); a
table covering all 180 parcels gets the shipped sphere centroids, so the spin test applies to it.

**Statistics** (:func:`correlate_maps`): Pearson (or Spearman) r across the parcels that have
both a value and a map value, and a p-value from a null over parcels:

- ``null="spin"`` (default): the spin test for parcellated data (Alexander-Bloch et al. 2018;
  Váša et al. 2018): the sphere is rotated at random (uniform rotations,
  ``scipy.spatial.transform.Rotation.random``), and each parcel takes the map value of the
  parcel whose rotated centroid it is assigned to (Hungarian assignment of the 180 centroids,
  ``scipy.optimize.linear_sum_assignment``, so each value is used once). It keeps the map's
  spatial autocorrelation, which a shuffle destroys; left hemisphere only (right-hemisphere
  regions are matched to the left parcel of the same name, see ``hemisphere``).
- ``null="permutation"``: map values shuffled across the matched parcels (exchangeable
  parcels: anti-conservative for smooth maps).

p = (1 + #{|r_null| ≥ |r|}) / (1 + n) (two-sided). Every result says which null was used.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import BrainbenchError, MissingDataError

PARCEL_TABLE = Path(__file__).resolve().parent / "data_files" / "glasser_parcel_maps.csv"
#: table column → (source file, source column)
SOURCES = {
    "myelin_t1t2": ("brainmaps_glasser.csv", "T1T2ratio"),
    "thickness_mm": ("brainmaps_glasser.csv", "Cortical.Thickness"),
    "expansion": ("brainmaps_glasser.csv", "Evolution.Expansion"),
    "timescale_tau_ms": ("timescale_gao2020.csv", "tau"),
}
SPHERE = ("sphere_x", "sphere_y", "sphere_z")
NULLS = ("spin", "permutation")
METHODS = ("pearson", "spearman")
HEMISPHERES = ("mean", "lh", "rh", "both")
HEADER = """\
# Per-parcel cortical maps, HCP-MMP1 (Glasser) atlas, left hemisphere, 180 parcels in the atlas order.
# Built by brainbench.core.compute.cortical.build_parcel_table; see that module for every column.
# Sources (cite them when you use this table):
#   Glasser MF et al. (2016) A multi-modal parcellation of human cerebral cortex. Nature 536:171-178.
#   Sydnor VJ et al. (2021) Neurodevelopment of the association cortices: patterns, mechanisms, and
#     implications for psychopathology. Neuron 109:2820-2846 (parcel values of T1T2ratio,
#     Cortical.Thickness and Evolution.Expansion; github.com/PennLINC/S-A_ArchetypalAxis).
#   Glasser MF & Van Essen DC (2011) J Neurosci 31:11597-11616 (T1w/T2w myelin mapping).
#   Hill J et al. (2010) Similar patterns of cortical expansion during human development and
#     evolution. PNAS 107:13135-13140 (evolutionary expansion; the developmental map is not here).
#   Gao R, van den Brink RL, Pfeffer T, Voytek B (2020) Neuronal timescales are functionally dynamic
#     and shaped by cortical microarchitecture. eLife 9:e61277 (ECoG timescale tau, ms).
#   Sphere centroids: fsaverage HCP-MMP1 labels (lh.HCP_MMP1.mgz, as distributed with NSD, Allen et
#     al. 2022) on the order-7 icosahedron shipped by MNE-Python (Gramfort et al. 2013).
"""


@dataclass
class ParcelMaps:
    """Maps per parcel: ``parcels`` (names), ``maps`` (name → values, NaN where missing), ``sphere``
    ((n, 3) unit-sphere centroids, or None)."""

    parcels: list[str]
    maps: dict[str, np.ndarray]
    sphere: np.ndarray | None = None
    source: str = ""


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise MissingDataError(f"{path} does not exist")
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    rows = list(csv.reader(lines))
    if not rows:
        raise BrainbenchError(f"{path} has no rows")
    return rows[0], rows[1:]


def parcel_centroids(labels: str | Path, n_parcels: int = 180) -> np.ndarray:
    """Unit-sphere centroid of every parcel 1…n of an fsaverage (163,842-vertex) label file, (n, 3)."""
    import mne
    import nibabel

    values = np.asarray(nibabel.load(str(labels)).dataobj).ravel().astype(int)
    icosahedron = Path(mne.__file__).parent / "data" / "icos.fif.gz"
    vertices = mne.read_bem_surfaces(str(icosahedron), s_id=9007, verbose="error")["rr"]
    if len(values) != len(vertices):
        raise BrainbenchError(f"{labels} labels {len(values)} vertices, not fsaverage's {len(vertices)}")
    out = np.empty((n_parcels, 3))
    for k in range(1, n_parcels + 1):
        if not (values == k).any():
            raise BrainbenchError(f"{labels} has no vertex with label {k}")
        centre = vertices[values == k].mean(0)
        out[k - 1] = centre / np.linalg.norm(centre)
    return out


def build_parcel_table(folder: str | Path, labels: str | Path | None = None) -> str:
    """The shipped table's text, rebuilt from the source CSVs in ``folder`` and the fsaverage ``labels`` file.

    Parameters
    ----------
    folder
        Holds ``glasser_regions.csv``, ``brainmaps_glasser.csv`` and ``timescale_gao2020.csv`` (same parcel order).
    labels
        ``lh.HCP_MMP1.mgz`` on fsaverage, for the sphere centroids; None leaves those columns out.
    """
    folder = Path(folder)
    _, regions = _read_csv(folder / "glasser_regions.csv")
    names = [r[0] for r in regions]
    columns = {}
    for column, (file, source) in SOURCES.items():
        header, rows = _read_csv(folder / file)
        if source not in header:
            raise BrainbenchError(f"{folder / file} has no column {source!r}")
        if len(rows) != len(names):
            raise BrainbenchError(f"{folder / file} has {len(rows)} rows for {len(names)} parcels")
        if header[0] == "":  # the timescale file names its rows (p9_46v for p9-46v): check the order
            found = [row[0].replace("_", "-") for row in rows]
            if found != names:
                raise BrainbenchError(f"{folder / file} lists the parcels in another order than glasser_regions.csv")
        columns[column] = [row[header.index(source)] for row in rows]
    sphere = parcel_centroids(labels, len(names)) if labels is not None else None
    out = io.StringIO()
    out.write(HEADER)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["parcel", "index", *SOURCES, *(SPHERE if sphere is not None else ())])
    for i, name in enumerate(names):
        extra = [f"{v:.6f}" for v in sphere[i]] if sphere is not None else []
        writer.writerow([name, i + 1, *(columns[c][i] for c in SOURCES), *extra])
    return out.getvalue()


def load_maps(path: str | Path | None = None) -> ParcelMaps:
    """Maps from the shipped table (default) or a user CSV (``parcel`` or ``region`` column + numeric columns)."""
    path = Path(path) if path is not None else PARCEL_TABLE
    header, rows = _read_csv(path)
    key = next((c for c in ("parcel", "region") if c in header), header[0])
    parcels = [parcel_name(row[header.index(key)])[1] for row in rows]
    maps, sphere = {}, None
    for j, column in enumerate(header):
        if column in (key, "index") or column in SPHERE:
            continue
        maps[column] = np.array([_number(row[j]) for row in rows])
    if all(c in header for c in SPHERE):
        sphere = np.array([[_number(row[header.index(c)]) for c in SPHERE] for row in rows])
    elif path != PARCEL_TABLE:  # a user table of all 180 parcels borrows the shipped sphere centroids
        shipped = load_maps()
        if sorted(parcels) == sorted(shipped.parcels):
            sphere = shipped.sphere[[shipped.parcels.index(p) for p in parcels]]
    if not maps:
        raise BrainbenchError(f"{path} has no map columns besides {key!r}")
    return ParcelMaps(parcels, maps, sphere, str(path))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


_PREFIX = re.compile(r"^(lh|rh|L|R)[._]")


def parcel_name(region: str) -> tuple[str | None, str]:
    """(hemisphere, parcel) of a region name: ``lh.V1`` / ``L_V1_ROI`` / ``V1`` → ("lh", "V1") / … / (None, "V1").

    Underscores between parcel-name parts are read as hyphens (``p9_46v`` → ``p9-46v``, Gao's spelling).
    """
    name, hemisphere = region.strip(), None
    match = _PREFIX.match(name)
    if match:
        hemisphere = {"L": "lh", "R": "rh"}.get(match.group(1), match.group(1))
        name = name[match.end():]
    name = re.sub(r"_ROI$", "", name)
    return hemisphere, name.replace("_", "-")


def parcel_values(values: Mapping[str, float], parcels: Sequence[str], hemisphere: str = "mean") -> dict[str, float]:
    """Per-region values → per-parcel values (regions not in ``parcels`` are dropped).

    ``hemisphere``: ``mean`` averages a parcel's left and right regions, ``lh``/``rh`` keep one
    hemisphere (names without a hemisphere count for both), ``both`` keeps each region as its own
    point (``lh.V1`` and ``rh.V1`` both matched to parcel V1: the key stays the region name).
    """
    if hemisphere not in HEMISPHERES:
        raise BrainbenchError(f"hemisphere must be one of {', '.join(HEMISPHERES)}, got {hemisphere!r}")
    known = set(parcels)
    grouped: dict[str, list[float]] = {}
    for region, value in values.items():
        side, name = parcel_name(region)
        if name not in known or value is None or not math.isfinite(value):
            continue
        if hemisphere in ("lh", "rh") and side not in (None, hemisphere):
            continue
        grouped.setdefault(region if hemisphere == "both" else name, []).append(float(value))
    return {k: float(np.mean(v)) for k, v in grouped.items()}


def spin_assignments(sphere: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` spin permutations of the parcels, (n, n_parcels): row k gives, for every parcel, the parcel whose
    value it takes under the k-th random rotation."""
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.transform import Rotation

    sphere = np.asarray(sphere, dtype=np.float64)
    out = np.empty((n, len(sphere)), dtype=np.int64)
    for k, rotation in enumerate(Rotation.random(n, random_state=seed).as_matrix() if n else []):
        rotated = sphere @ rotation.T
        rows, cols = linear_sum_assignment(-(sphere @ rotated.T))  # parcel i ← the parcel rotated onto it
        out[k, rows] = cols
    return out


def _correlation(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """Pearson r of x and y, or of their ranks (Spearman); NaN when fewer than 3 pairs or one is constant."""
    from scipy.stats import rankdata

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    if method == "spearman":
        x, y = rankdata(x), rankdata(y)
    x, y = x - x.mean(), y - y.mean()
    return float(np.clip(x @ y / math.sqrt((x @ x) * (y @ y)), -1, 1))


def correlate_maps(values: Mapping[str, float], maps: ParcelMaps, *, method: str = "pearson", null: str = "spin",
                   permutations: int = 1000, seed: int = 0, hemisphere: str = "mean") -> list[dict]:
    """Correlation of per-region ``values`` with every map, each with a p-value from ``null``.

    Parameters
    ----------
    values
        Region → value (a half-time, a score…); names as :func:`parcel_name` reads them.
    maps
        From :func:`load_maps`.
    method, null, permutations, seed, hemisphere
        See the module docstring and :func:`parcel_values`.

    Returns
    -------
    One dict per map: ``map``, ``n`` (parcels used), ``r``, ``p_value``, ``method``, ``null``,
    ``permutations``, ``parcels`` (the parcels used).
    """
    for name, value, allowed in (("method", method, METHODS), ("null", null, NULLS)):
        if value not in allowed:
            raise BrainbenchError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    if null == "spin" and maps.sphere is None:
        raise BrainbenchError(f"the maps in {maps.source} have no sphere_x/y/z columns, so no spin test; "
                              "use --null permutation")
    per_parcel = parcel_values(values, maps.parcels, hemisphere)
    if len(per_parcel) < 3:
        shown = ", ".join(list(values)[:6])
        raise BrainbenchError(f"only {len(per_parcel)} of the regions ({shown}…) match a parcel of the map table; "
                              "need at least 3 (region names such as V1, lh.MT, L_V1_ROI)")
    index = {p: i for i, p in enumerate(maps.parcels)}
    keys = list(per_parcel)
    where = np.array([index[parcel_name(k)[1]] for k in keys])
    x_all = np.array([per_parcel[k] for k in keys])
    spins = spin_assignments(maps.sphere, permutations, seed) if null == "spin" else None
    rng = np.random.default_rng(seed)
    out = []
    for name, column in maps.maps.items():
        ok = np.isfinite(column[where])
        x, y = x_all[ok], column[where][ok]
        r = _correlation(x, y, method)
        p = math.nan
        if math.isfinite(r) and permutations > 0:
            if null == "spin":
                nulls = column[spins[:, where[ok]]]  # the rotated map at the parcels used
            else:
                nulls = rng.permuted(np.broadcast_to(y, (permutations, len(y))), axis=1)
            found = np.array([_correlation(x[np.isfinite(row)], row[np.isfinite(row)], method) for row in nulls])
            found = found[np.isfinite(found)]
            if len(found):
                p = float((1 + np.sum(np.abs(found) >= abs(r) - 1e-12)) / (1 + len(found)))
        out.append({"map": name, "n": int(ok.sum()), "r": r, "p_value": p, "method": method, "null": null,
                    "permutations": int(permutations), "parcels": [keys[i] for i in np.flatnonzero(ok)]})
    return out

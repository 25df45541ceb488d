"""Glasser parcels on nilearn's fsaverage5: the shipped labels are right, and values land on their parcels."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from brainbench.core.compute.cortical import load_maps
from brainbench.leaderboard.cortex import ANNOT, cortical_map, derive_fsaverage5_annot, glasser_fsaverage5, vertex_values


def test_shipped_labels_sit_where_fsaverage_puts_each_parcel():
    labels, names = glasser_fsaverage5()
    assert labels.shape == (10242,) and len(names) == 181 and names[:3] == ("Unknown", "V1", "MST")
    assert set(np.unique(labels)) == set(range(181))
    from nilearn import datasets

    sphere = datasets.load_fsaverage("fsaverage5")["sphere"].parts["left"].coordinates
    shipped = load_maps()  # parcel centroids computed on full fsaverage (163,842 vertices)
    angles = []
    for k in range(1, 181):
        centre = sphere[labels == k].mean(0)
        centre /= np.linalg.norm(centre)
        angles.append(np.degrees(np.arccos(np.clip(centre @ shipped.sphere[shipped.parcels.index(names[k])], -1, 1))))
    assert max(angles) < 2.0  # a wrong vertex order would scatter them by tens of degrees


@pytest.mark.real_data
def test_the_annotation_is_derived_from_nsd_labels(tmp_path):
    root = os.environ.get("BRAINBENCH_REAL_DATA")
    if not root:
        pytest.skip("BRAINBENCH_REAL_DATA is not set")
    out = derive_fsaverage5_annot(Path(root) / "nsd" / "lh.HCP_MMP1.mgz", Path(root) / "nsd" / "HCP_MMP1.mgz.ctab",
                                  tmp_path / "lh.annot")
    assert out.read_bytes() == ANNOT.read_bytes()


def test_values_land_on_their_parcels_and_the_rest_is_said():
    labels, names = glasser_fsaverage5()
    data, drawn, not_drawn = vertex_values({"lh.V1": 0.5, "V1": 0.1, "MT": 0.3, "rh.V2": 0.2, "area-01": 0.4,
                                            "lh.FFC": float("nan")})
    assert np.all(data[labels == names.index("V1")] == 0.5)  # the lh. name wins over the bare one
    assert np.all(data[labels == names.index("MT")] == 0.3)
    assert np.isnan(data[labels == names.index("V2")]).all() and np.isnan(data[labels == 0]).all()
    assert sorted(drawn) == ["MT", "lh.V1"]
    assert set(not_drawn) == {"V1", "rh.V2", "area-01", "lh.FFC"}
    assert "right hemisphere" in not_drawn["rh.V2"] and "not a Glasser" in not_drawn["area-01"]


def test_the_map_is_a_figure_that_says_what_it_shows(tmp_path):
    from matplotlib.figure import Figure

    figure = cortical_map({"lh.V1": 0.5, "lh.MT": 0.3, "rh.V1": 0.4}, "encoding r", "a map")
    assert isinstance(figure, Figure)
    texts = [t.get_text() for t in figure.texts]
    assert any("2 regions drawn" in t and "right hemisphere not drawn" in t and "rh.V1" in t for t in texts)
    assert any(ax.get_ylabel() == "encoding r" for ax in figure.axes)  # the colour bar
    figure.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 10_000
    assert cortical_map({"area-01": 0.3}, "encoding r") is None

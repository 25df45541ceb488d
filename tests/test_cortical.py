"""Cortical maps: the shipped per-parcel table, planted correlations, the spin and permutation nulls, the command."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from brainbench.core.config import Config
from brainbench.core.compute.cortical import (PARCEL_TABLE, build_parcel_table, correlate_maps, load_maps, parcel_name,
                                      parcel_values, spin_assignments)
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.results import ResultRow, ResultStore
from brainbench.core.commands.trajectory import analyze

REAL = os.environ.get("BRAINBENCH_REAL_DATA")


@pytest.fixture(scope="module")
def maps():
    return load_maps()


def test_the_shipped_table_has_180_parcels_with_citations(maps):
    text = PARCEL_TABLE.read_text()
    for source in ("Glasser MF et al. (2016)", "Sydnor VJ et al. (2021)", "Hill J et al. (2010)", "Gao R"):
        assert source in text
    assert len(maps.parcels) == 180 and maps.parcels[:4] == ["V1", "MST", "V6", "V2"] and "p9-46v" in maps.parcels
    assert set(maps.maps) == {"myelin_t1t2", "thickness_mm", "expansion", "timescale_tau_ms"}
    assert all(np.isfinite(v).all() for v in maps.maps.values())
    assert np.allclose(np.linalg.norm(maps.sphere, axis=1), 1, atol=1e-5)
    v1 = maps.sphere[0]
    assert v1[1] < -0.5 and v1[0] > 0  # V1: posterior, on the medial (+x) side of the left sphere


@pytest.mark.real_data
@pytest.mark.skipif(not REAL, reason="needs BRAINBENCH_REAL_DATA (the real Glasser maps and NSD's fsaverage labels)")
def test_the_shipped_table_is_what_the_builder_makes_from_the_real_files():
    root = Path(REAL)
    assert build_parcel_table(root / "glasser", root / "nsd" / "lh.HCP_MMP1.mgz") == PARCEL_TABLE.read_text()


def test_region_names_become_parcels(maps):
    assert parcel_name("lh.V1") == ("lh", "V1")
    assert parcel_name("R_p9-46v_ROI") == ("rh", "p9-46v")
    assert parcel_name("p9_46v") == (None, "p9-46v")
    values = parcel_values({"lh.V1": 1.0, "rh.V1": 3.0, "MT": 5.0, "area-01": 9.0}, maps.parcels)
    assert values == {"V1": 2.0, "MT": 5.0}
    assert parcel_values({"lh.V1": 1.0, "rh.V1": 3.0}, maps.parcels, "rh") == {"V1": 3.0}
    assert parcel_values({"lh.V1": 1.0, "rh.V1": 3.0}, maps.parcels, "both") == {"lh.V1": 1.0, "rh.V1": 3.0}


def test_spin_assignments_are_permutations_that_keep_neighbours_together(maps):
    spins = spin_assignments(maps.sphere, 20, seed=1)
    assert all(sorted(row) == list(range(180)) for row in spins)
    # a rotation moves neighbouring parcels together: V1 and V2 land on nearby parcels, unlike a shuffle
    distance = np.linalg.norm(maps.sphere[spins[:, 0]] - maps.sphere[spins[:, 3]], axis=1)
    assert np.median(distance) < 0.5


def test_a_planted_map_is_recovered_by_both_nulls(maps):
    rng = np.random.default_rng(0)
    values = {p: 2 * maps.maps["myelin_t1t2"][i] + rng.normal(0, 0.02) for i, p in enumerate(maps.parcels)}
    for null in ("spin", "permutation"):
        myelin = next(r for r in correlate_maps(values, maps, null=null, permutations=300) if r["map"] == "myelin_t1t2")
        assert myelin["r"] > 0.9 and myelin["p_value"] < 0.01 and myelin["null"] == null and myelin["n"] == 180
    unrelated = {p: v for p, v in zip(maps.parcels, rng.normal(size=180))}
    results = correlate_maps(unrelated, maps, null="spin", permutations=300)
    assert all(r["p_value"] > 0.01 for r in results)


def test_the_spin_null_is_the_conservative_one_for_smooth_maps(maps):
    """A map that only follows the anterior-posterior axis 'correlates' with myelin under a shuffle, not under spins."""
    posterior = {p: maps.sphere[i, 1] for i, p in enumerate(maps.parcels)}
    spin = {r["map"]: r for r in correlate_maps(posterior, maps, null="spin", permutations=500)}
    shuffle = {r["map"]: r for r in correlate_maps(posterior, maps, null="permutation", permutations=500)}
    assert abs(spin["myelin_t1t2"]["r"]) > 0.4
    assert shuffle["myelin_t1t2"]["p_value"] < 0.01 < spin["myelin_t1t2"]["p_value"]
    assert spearman_is_offered(posterior, maps)


def spearman_is_offered(values, maps) -> bool:
    found = correlate_maps(values, maps, method="spearman", null="permutation", permutations=50)
    return all(r["method"] == "spearman" for r in found)


def test_user_maps_and_refusals(maps, tmp_path):
    path = tmp_path / "maps.csv"
    path.write_text("# my map\nparcel,gradient\n" + "\n".join(f"{p},{i}" for i, p in enumerate(maps.parcels[:40])))
    mine = load_maps(path)
    assert list(mine.maps) == ["gradient"] and mine.sphere is None
    values = {p: float(i) ** 2 for i, p in enumerate(maps.parcels[:40])}
    (result,) = correlate_maps(values, mine, method="spearman", null="permutation", permutations=100)
    assert result["r"] == pytest.approx(1.0) and result["n"] == 40
    with pytest.raises(BrainbenchError, match="no sphere_x/y/z columns, so no spin test"):
        correlate_maps(values, mine)
    with pytest.raises(BrainbenchError, match="only 1 of the regions"):
        correlate_maps({"V1": 1.0, "area-01": 2.0}, maps)
    complete = tmp_path / "complete.csv"  # every parcel (here in reverse order): the spin test applies
    lines = [f"L_{p}_ROI,{i}" for i, p in reversed(list(enumerate(maps.parcels)))]
    complete.write_text("region,developmental\n" + "\n".join(lines))
    reverse = load_maps(complete)
    assert reverse.sphere is not None and np.allclose(reverse.sphere[reverse.parcels.index("V1")], maps.sphere[0])


def test_the_command_reads_stored_half_times(maps, tmp_path):
    rng = np.random.default_rng(2)
    regions = [f"lh.{p}" for p in maps.parcels[:30]]
    planted = {r: float(100 * maps.maps["expansion"][i] + rng.normal(0, 5)) for i, r in enumerate(regions)}
    row = ResultRow(model="m", checkpoint="all", dataset="nsd", subject="all", metric="halftime",
                    options=json.dumps({"metric": {"base": "encoding"}}), score=2.0, error=0.1, n_units=10,
                    detail={"per_region_half_time": planted})
    with ResultStore(Config().db_path) as store:
        store.save(row)
    result = CliRunner().invoke(analyze, ["cortical-maps", "-m", "m", "-d", "nsd", "--permutations", "200"])
    assert result.exit_code == 0, result.output
    assert "null: spin test, 200 random rotations" in result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("expansion"))
    n, r, p = line.split()[1:]
    assert int(n) == 30 and float(r) > 0.9 and float(p) < 0.05
    values = tmp_path / "values.csv"
    values.write_text("region,value\n" + "\n".join(f"{k},{v}" for k, v in planted.items()))
    as_json = CliRunner().invoke(analyze, ["cortical-maps", "--values", str(values), "--null", "permutation",
                                           "--permutations", "100", "--format", "json"])
    data = json.loads(as_json.output)
    assert {r["map"] for r in data["results"]} >= {"expansion", "myelin_t1t2"}
    missing = CliRunner().invoke(analyze, ["cortical-maps", "-m", "other", "-d", "nsd"])
    assert missing.exit_code != 0 and "no stored halftime row for other@all on nsd" in missing.output

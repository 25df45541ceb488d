"""The NSD dataset plugin, read back from a miniature tree in the real formats (tests/nsd_fixture.py)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.plugins.datasets import nsd as nsd_module
from brainbench.plugins.datasets.nsd import DEFAULT_REGIONS, NSD, write_voxel_map
from brainbench.plugins.datasets.nsd_files import read_design, read_label_table
from brainbench.plugins.metrics.encoding import Encoding

from nsd_fixture import AFFINE, GLASSER, HEMI_I, PLACED, REGION_K, SHAPE, VOXEL_MM, build_mini_nsd, image_id

REAL = os.environ.get("BRAINBENCH_REAL_DATA")
real_data = pytest.mark.skipif(not REAL, reason="BRAINBENCH_REAL_DATA is not set")


@pytest.fixture(scope="session")
def tree(tmp_path_factory):
    return build_mini_nsd(tmp_path_factory.mktemp("nsd"))


@pytest.fixture
def damaged(tree, tmp_path):
    """A copy of the tree that a test may break."""
    shutil.copytree(tree.root, tmp_path / "nsd")
    return tmp_path / "nsd"


def _nsd(root, **options) -> NSD:
    return NSD(root=str(root), sessions=2, cache=False, **options)


def _expected(tree, subject: str, voxels: np.ndarray):
    """Independent answer: /300, z-score per session, mean over each image's trials (sorted nsdIds)."""
    betas = tree.betas[subject].reshape(len(tree.betas[subject]), -1)[:, voxels] / 300.0
    z = np.empty_like(betas)
    for s in range(len(betas) // 750):
        block = betas[s * 750:(s + 1) * 750]
        with np.errstate(invalid="ignore", divide="ignore"):
            z[s * 750:(s + 1) * 750] = (block - block.mean(0)) / block.std(0)
    ids = tree.trial_ids(subject, len(betas) // 750)
    images = np.unique(ids)
    return images, np.stack([z[ids == n].mean(0) for n in images]), np.array([(ids == n).sum() for n in images])


# ------------------------------------------------------------------ reading
def test_responses_are_session_zscored_repetition_means(tree):
    dataset = _nsd(tree.root, subjects="subj01", betas_format="nii")
    r = dataset.responses("subj01")
    lh_v1 = r.units["region"] == "lh.V1"
    np.testing.assert_array_equal(r.units["voxel"][lh_v1], np.flatnonzero(tree.labels["lh"].ravel() == 1))
    images, expected, _ = _expected(tree, "subj01", r.units["voxel"])
    np.testing.assert_array_equal(dataset.stimuli.nsd_ids[r.stimulus_index], images)
    np.testing.assert_allclose(r.data, expected, rtol=1e-5, atol=1e-5)
    assert r.data.shape == (550, 8 * 2 * 16)  # 550 images; 8 placed regions × 2 hemispheres × 16 voxels
    assert set(r.units["hemisphere"]) == {"lh", "rh"}


def test_hdf5_and_nifti_betas_agree(tree):
    nii = _nsd(tree.root, subjects="subj01", betas_format="nii").responses("subj01")
    hdf5 = _nsd(tree.root, subjects="subj01", betas_format="hdf5").responses("subj01")
    np.testing.assert_array_equal(nii.data, hdf5.data)


def test_stimuli_are_read_by_nsd_id(tree):
    dataset = _nsd(tree.root)
    picks = [0, 17, 5, 17, len(dataset.stimuli) - 1]
    images = dataset.stimuli.load(picks)
    assert [image_id(im) for im in images] == dataset.stimuli.nsd_ids[picks].tolist()
    assert images[0].shape == (16, 16, 3) and images[0].dtype == np.uint8
    assert dataset.stimuli.ids[0] == f"nsd{dataset.stimuli.nsd_ids[0]:05d}"
    # the union of both subjects' images: 450 shared + 100 own each, as far as two sessions show them
    one = _nsd(tree.root, subjects="subj01")
    assert len(one.stimuli) == 550 < len(dataset.stimuli) <= 650
    assert one.stimuli.fingerprint() == _nsd(tree.root, subjects="subj01").stimuli.fingerprint()
    assert one.stimuli.fingerprint() != dataset.stimuli.fingerprint()
    assert one.fingerprint() != _nsd(tree.root, subjects="subj01", regions="V1").fingerprint()


def test_design_reader_matches_the_written_arrays(tree):
    design = read_design(tree.root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    np.testing.assert_array_equal(design.trial_images("subj02", 2), tree.trial_ids("subj02", 2))
    np.testing.assert_array_equal(design.shared, tree.subjectim[0, :1000] - 1)


def test_noise_ceiling_from_ncsnr_uses_the_nsd_formula(tree):
    r = _nsd(tree.root, subjects="subj01").responses("subj01")
    _, _, counts = _expected(tree, "subj01", r.units["voxel"][:1])
    ncsnr = tree.ncsnr["subj01"].ravel()[r.units["voxel"]]
    expected = np.sqrt(ncsnr**2 / (ncsnr**2 + np.mean(1 / counts)))
    np.testing.assert_allclose(r.noise_ceiling, expected, rtol=1e-5)
    assert 1 / 3 < np.mean(1 / counts) < 0.45  # most images seen 3 times, some fewer


def test_split_half_noise_ceiling_recovers_the_truth(tree):
    dataset = _nsd(tree.root, subjects="subj02")  # subj02 has no ncsnr.nii.gz
    r = dataset.responses("subj02")
    assert dataset.report["subj02"]["noise_ceiling"] == "split-half"
    _, _, counts = _expected(tree, "subj02", r.units["voxel"][:1])
    ncsnr = tree.ncsnr["subj02"].ravel()[r.units["voxel"]]
    truth = np.sqrt(ncsnr**2 / (ncsnr**2 + np.mean(1 / counts)))
    assert np.corrcoef(truth, r.noise_ceiling)[0, 1] > 0.9
    assert np.abs(truth - r.noise_ceiling).mean() < 0.03


def test_repetitions_average_to_the_responses(tree):
    dataset = _nsd(tree.root, subjects="subj02", regions="MT")
    reps = dataset.repetitions("subj02")
    r = dataset.responses("subj02")
    assert reps.data.shape == (3, len(r.stimulus_index), r.n_units)
    np.testing.assert_array_equal(reps.counts, (~np.isnan(reps.data[:, :, 0])).sum(0))
    np.testing.assert_allclose(np.nanmean(reps.data, axis=0), r.data, rtol=1e-5, atol=1e-6)


def test_shared_split_holds_out_the_shared_images(tree):
    dataset = _nsd(tree.root, subjects="subj01", regions="V1")
    r = dataset.responses("subj01")
    ((train, test),) = dataset.shared_split(r)
    assert len(test) == 450 and len(train) == 100
    assert np.isin(dataset.stimuli.nsd_ids[r.stimulus_index[test]], tree.subjectim[0, :1000] - 1).all()


def test_constant_voxel_is_nan_and_counted_and_encoding_drops_it(tree):
    dataset = _nsd(tree.root, subjects="subj01", regions="lh.V1")
    r = dataset.responses("subj01")
    assert dataset.report["subj01"]["n_bad_voxels"] == 1
    assert np.isnan(r.data).any(axis=0).sum() == 1
    features = {"layer00": np.random.default_rng(0).normal(size=(len(r.data), 4))}
    score = Encoding(folds=2, alphas=[1.0, 100.0]).score(features, r, dataset)
    assert score.detail["n_dropped"] == 1 and score.n_units == 15


def test_responses_are_cached_on_disk(tree, monkeypatch):
    first = NSD(root=str(tree.root), sessions=2, subjects="subj02", regions="V2").responses("subj02")

    def no_reading(*args, **kwargs):
        raise AssertionError("betas were read again")

    monkeypatch.setattr(nsd_module, "read_session", no_reading)
    again = NSD(root=str(tree.root), sessions=2, subjects="subj02", regions="V2").responses("subj02")
    np.testing.assert_array_equal(first.data, again.data)
    np.testing.assert_array_equal(first.noise_ceiling, again.noise_ceiling)


# ------------------------------------------------------------------ regions and geometry
def test_region_centroids_and_distances_are_known(tree):
    dataset = _nsd(tree.root, subjects="subj01")
    positions = dataset.region_positions("subj01")
    for hemisphere, irange in HEMI_I.items():
        for name, j in PLACED.items():
            ijk = np.array([np.mean(irange), j, np.mean(REGION_K)])
            np.testing.assert_allclose(positions[f"{hemisphere}.{name}"], AFFINE[:3, :3] @ ijk + AFFINE[:3, 3], atol=1e-4)
    distances = dataset.region_distances("subj01")
    assert distances["rh.MT"] == pytest.approx(VOXEL_MM * PLACED["MT"], abs=1e-4)
    assert distances["lh.IFSp"] == pytest.approx(VOXEL_MM * PLACED["IFSp"], abs=1e-4)
    assert dataset.reference_for("rh.MT") == "rh.V1" and dataset.reference_for("lh.44") == "lh.V1"
    assert dataset.volume_geometry("subj01")[0] == SHAPE


def test_region_options(tree):
    default = _nsd(tree.root)
    assert default.regions[:2] == ["lh.V1", "rh.V1"] and len(default.regions) == 2 * len(DEFAULT_REGIONS)
    default.responses("subj01")
    assert "lh.V3" in default.report["subj01"]["empty_regions"]  # listed but absent from the tiny volume
    lh = _nsd(tree.root, regions="MT, BA44,rh.V2", hemispheres="lh", subjects="subj01")
    assert lh.regions == ["lh.MT", "lh.44", "rh.V2"]
    assert set(lh.responses("subj01").units["region"]) == set(lh.regions)
    assert set(lh.region_positions("subj01")) == {"lh.MT", "lh.44", "rh.V2", "lh.V1", "rh.V1"}
    assert len(_nsd(tree.root, regions="all").regions) == 360
    assert _nsd(tree.root, regions=45, subjects=1).regions == ["lh.45", "rh.45"]  # `--set` reads numbers as JSON
    with pytest.raises(BrainbenchError, match="did you mean 'MT'"):
        _nsd(tree.root, regions="MTT")
    with pytest.raises(BrainbenchError, match="hemispheres='left' is not one of lh, rh, both"):
        _nsd(tree.root, hemispheres="left")
    nsdgeneral = _nsd(tree.root, atlas="nsdgeneral", subjects="subj01")
    assert nsdgeneral.regions == ["lh.nsdgeneral", "rh.nsdgeneral"]
    assert nsdgeneral.region_positions("subj01") is None
    assert nsdgeneral.responses("subj01").n_units == 256


def test_voxel_map_round_trips_through_nifti(tree, tmp_path):
    import nibabel as nib

    dataset = _nsd(tree.root, subjects="subj01", regions="V1,MT")
    r = dataset.responses("subj01")
    values = np.arange(r.n_units, dtype=float)
    values[3] = np.nan
    path = write_voxel_map(dataset, "subj01", values, r.units["voxel"], tmp_path / "map.nii.gz")
    img = nib.load(str(path))
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-5)
    volume = np.asarray(img.dataobj).ravel()
    keep = np.isfinite(values)
    np.testing.assert_array_equal(volume[r.units["voxel"][keep]], values[keep])
    assert np.isnan(volume[r.units["voxel"][3]])
    assert np.isnan(volume).sum() == volume.size - (r.n_units - 1)


def test_encoding_writes_the_voxel_map_of_its_layer(tree, tmp_path):
    import nibabel as nib

    from brainbench.plugins.metrics.encoding import Encoding

    dataset = _nsd(tree.root, subjects="subj01", regions="V1,MT")
    r = dataset.responses("subj01")
    rng = np.random.default_rng(0)
    features = {"layer00": rng.normal(size=(len(r.data), 6)), "layer01": r.data[:, :4] + rng.normal(size=(len(r.data), 4))}
    best = Encoding(folds=2, alphas=[1.0, 100.0], layer_selection="best", maps_dir=str(tmp_path / "maps"))
    assert best.score(features, r, dataset).detail["map"] == str(tmp_path / "maps" / "nsd_subj01_layer01_r.nii.gz")
    score = Encoding(folds=2, alphas=[1.0, 100.0], maps_dir=str(tmp_path / "maps")).score(features, r, dataset)
    assert score.detail["map"] == str(tmp_path / "maps" / "nsd_subj01_nested_r.nii.gz")  # r of the per-fold layers
    volume = np.asarray(nib.load(score.detail["map"]).dataobj).ravel()
    finite = np.isfinite(volume[r.units["voxel"]])
    assert finite.sum() == score.n_units  # every scored voxel is in the map, the dropped ones are NaN
    assert np.nanmean(volume[r.units["voxel"]]) == pytest.approx(score.value, abs=1e-6)


def test_fingerprints_hash_design_atlas_and_beta_headers(tree):
    dataset = _nsd(tree.root, subjects="subj01", regions="V1,MT")
    prints = dataset.fingerprints()
    assert "nsddata/experiments/nsd/nsd_expdesign.mat" in prints
    assert any(k.endswith("roi/lh.HCP_MMP1.nii.gz") for k in prints)
    assert sum("betas_session" in k for k in prints) == 2
    assert all(len(v) == 64 for v in prints.values())
    assert prints == _nsd(tree.root, subjects="subj01", regions="V1,MT").fingerprints()


# ------------------------------------------------------------------ validation and bad input
def test_check_passes_on_a_good_tree(tree):
    assert NSD.check(root=str(tree.root), sessions=2) == []


def test_check_names_every_broken_file(damaged):
    import h5py
    import nibabel as nib
    import scipy.io

    betas = damaged / "nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    (betas / "betas_session02.hdf5").unlink()
    with h5py.File(betas / "betas_session01.hdf5", "w") as f:
        f.create_dataset("betas", data=np.zeros((750, 7, 10, 12), np.int16))  # Z = 7, not 8
    roi = damaged / "nsddata/ppdata/subj01/func1pt8mm/roi/rh.HCP_MMP1.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.int16), AFFINE), str(roi))
    design = damaged / "nsddata/experiments/nsd/nsd_expdesign.mat"
    scipy.io.savemat(str(design), {"subjectim": np.ones((8, 10000), np.int32)})
    problems = NSD.check(root=str(damaged), sessions=2)
    assert len(problems) == 4, problems
    text = "\n".join(problems)
    assert "subj02" in text and "betas_session02.hdf5 and so on" not in text and "session 2 of subj02 is missing" in text
    assert "betas_session01.hdf5 has volume shape (12, 10, 7)" in text
    assert "rh.HCP_MMP1.nii.gz has shape (5, 5, 5)" in text
    assert "nsd_expdesign.mat has no 'masterordering'" in text
    assert all(p.count(". ") == 0 for p in problems)  # one sentence each


def test_bench_data_check_lists_problems(tree, damaged):
    from click.testing import CliRunner

    from brainbench.cli import main

    good = CliRunner().invoke(main, ["data", "check", "nsd", "--set", f"root={tree.root}", "--set", "sessions=2"])
    assert good.exit_code == 0 and "all files present" in good.output, good.output
    (damaged / "nsddata/ppdata/subj02/func1pt8mm/roi/lh.HCP_MMP1.nii.gz").unlink()
    bad = CliRunner().invoke(main, ["data", "check", "nsd", "--set", f"root={damaged}", "--set", "sessions=2"])
    assert bad.exit_code == 1 and "subj02/func1pt8mm/roi/lh.HCP_MMP1.nii.gz is missing" in bad.output


def test_check_without_a_root():
    assert NSD.check() == ["no NSD root is set; pass --nsd-root, set BRAINBENCH_NSD_ROOT, or nsd_root in the "
                           "config file (see docs/nsd.md)"]
    assert "is not a folder" in NSD.check(root="/nonexistent/nsd")[0]


def test_root_comes_from_the_environment(tree, monkeypatch):
    with pytest.raises(MissingDataError, match="no NSD root is set"):
        NSD()
    monkeypatch.setenv("BRAINBENCH_NSD_ROOT", str(tree.root))
    assert NSD(sessions=2).subjects == ["subj01", "subj02"]


def test_missing_session_is_one_sentence_naming_the_file(tree):
    # the tree has 2 sessions: asking for 3 fails at once, naming the first missing file
    with pytest.raises(MissingDataError, match=r"session 3 of subj01 is missing \(no .*betas_session03\.hdf5"):
        NSD(root=str(tree.root), subjects="subj01", sessions=3, cache=False)
    with pytest.raises(MissingDataError, match=r"of subj02 are missing \(no .*subj02/.*/betas_session01\.nii\.gz"):
        _nsd(tree.root, subjects="subj02", betas_format="nii")


def test_bad_shapes_and_design_raise_naming_the_file(damaged):
    import h5py
    import scipy.io

    betas = damaged / "nsddata_betas/ppdata/subj02/func1pt8mm/betas_fithrf_GLMdenoise_RR/betas_session02.hdf5"
    with h5py.File(betas, "w") as f:
        f.create_dataset("betas", data=np.zeros((700, 8, 10, 12), np.int16))
    with pytest.raises(BrainbenchError, match=r"betas_session02\.hdf5 has 700 trials, expected 750"):
        _nsd(damaged, subjects="subj02").responses("subj02")
    design = damaged / "nsddata/experiments/nsd/nsd_expdesign.mat"
    scipy.io.savemat(str(design), {"subjectim": np.ones((8, 10000), np.int32)})
    with pytest.raises(BrainbenchError, match=r"nsd_expdesign\.mat has no 'masterordering' variable"):
        _nsd(damaged)
    with pytest.raises(BrainbenchError, match="'subj09' is not an NSD subject"):
        _nsd(damaged, subjects="subj09")


# ------------------------------------------------------------------ plugin and end to end
def test_registered_and_scored_end_to_end(tree):
    from brainbench.core.config import Config
    from brainbench.core.registry.specs import get_registry
    from brainbench.core.store.results import ResultStore
    from brainbench.core.pipeline.runner import RunOptions, run

    assert get_registry().dataset("nsd").metadata["modality"] == "fmri"
    options = RunOptions(subjects=["subj01"], progress=False, metric_options={"folds": 2, "alphas": [1.0, 1e3]},
                         dataset_options={"root": str(tree.root), "sessions": 2, "subjects": "subj01",
                                          "regions": "V1,MT,45"})
    with ResultStore(Config().db_path) as store:
        rows = run(["dinov3-tiny@init"], ["nsd"], ["encoding", "spatial"], store=store, config=Config(), options=options)
    by_metric = {(row.metric, row.subject): row for row in rows}
    encoding = by_metric[("encoding", "subj01")]
    assert set(encoding.detail["per_region"]) == {"lh.V1", "rh.V1", "lh.MT", "rh.MT", "lh.45", "rh.45"}
    assert encoding.detail["n_dropped"] == 1  # the fixture's dead voxel
    spatial_row = by_metric[("spatial", "subj01")]
    assert spatial_row.detail["per_region_distance"]["rh.45"] == pytest.approx(VOXEL_MM * PLACED["45"], abs=1e-4)
    assert spatial_row.detail["n_regions"] == 6 and len(spatial_row.detail["layers"]) == 5


# ------------------------------------------------------------------ the real files (BRAINBENCH_REAL_DATA)
@real_data
def test_real_design_first_trials():
    design = read_design(Path(REAL) / "nsd/nsd_expdesign.mat")
    assert design.trial_images("subj01", 1)[:4].tolist() == [46002, 61882, 828, 67573]
    assert (design.subjectim[:, :1000] == design.subjectim[0, :1000]).all()
    np.testing.assert_array_equal(np.sort(design.shared), np.sort(design.subjectim[0, :1000]))


@real_data
def test_real_label_table_is_the_glasser_order():
    table = read_label_table(Path(REAL) / "nsd/HCP_MMP1.mgz.ctab")
    assert len(table) == 180 and table[1] == "V1" and table[2] == "MST" and table[23] == "MT"
    assert (table[74], table[75], table[81], table[82], table[160]) == ("44", "45", "IFSp", "IFSa", "VMV2")
    assert list(table.values()) == GLASSER  # the fixture writes the real table
    assert set(DEFAULT_REGIONS) <= set(table.values())


@real_data
def test_real_fsaverage_labels_use_the_table_indices():
    from brainbench.plugins.datasets.nsd_files import read_label_volume

    labels, _ = read_label_volume(Path(REAL) / "nsd/lh.HCP_MMP1.mgz")
    assert labels.shape == (163842, 1, 1) and labels.min() == 0 and labels.max() == 180
    assert (labels == 1).sum() > 1000  # V1 covers thousands of fsaverage vertices


@pytest.mark.parametrize("layout", [dict(chunks=(750, 1, 1, 1)),  # NSD's own: exact chunk reads
                                    dict(chunks=(750, 1, 1, 1), compression="gzip"),  # row segments
                                    dict(chunks=(50, 3, 4, 5))])  # anything else: z-slice boxes
def test_hdf5_betas_are_read_by_voxel_in_every_chunk_layout(tmp_path, layout):
    import h5py

    from brainbench.plugins.datasets.nsd_files import read_session

    rng = np.random.default_rng(0)
    volume = rng.integers(-3000, 3000, size=(750, 6, 7, 8), dtype=np.int16)  # (trials, Z, Y, X)
    path = tmp_path / "betas_session01.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("betas", data=volume, **layout)
    ijk = np.stack([rng.integers(0, 8, 40), rng.integers(0, 7, 40), rng.integers(0, 6, 40)])  # (x, y, z) per voxel
    got = read_session(path, ijk, (8, 7, 6))
    expected = volume[:, ijk[2], ijk[1], ijk[0]].astype(np.float32) / np.float32(300.0)
    np.testing.assert_array_equal(got, expected)

"""Kind 4 of issue 13: inputs a result depends on are checked, and what was dropped is said.

Cases bug-02, bug-03, rel-14, rel-15, rel-24 and rel-31 of ../shared/cases, as tests.
"""
from __future__ import annotations

import os
import shutil
import types

import numpy as np
import pytest
from click.testing import CliRunner

import brainbench
from brainbench.cli import main
from brainbench.core.contract.data import ArrayStimulusSet, Dataset, Responses, StimulusSet
from brainbench.core.errors import BrainbenchError
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry import reset_registry
from brainbench.core.store.results import ResultStore
from brainbench.core.pipeline.stimuli_checks import CheckedStimuli, stimulus_problem
from brainbench.plugins.metrics.encoding import Encoding

from conftest import TINY_MODEL
from nsd_fixture import build_mini_nsd
from things_meg_fixture import build_things_meg


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def rows() -> list:
    if not os.path.exists(os.environ["BRAINBENCH_DB"]):
        return []
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        return store.query()


# -- stimuli (bug-02) -------------------------------------------------------------------------

class FloatImages(StimulusSet):
    """The same images as float32 in [0, 1] (what skimage.img_as_float gives)."""

    def __init__(self, images):
        self.images, self.ids = images, [f"img{i}" for i in range(len(images))]

    def load(self, indices):
        return [self.images[i].astype(np.float32) / 255 for i in indices]

    def fingerprint(self):
        return "float-images"


class FloatDataset(Dataset):
    name, modality = "float-fmri", "fmri"

    def __init__(self):
        rng = np.random.default_rng(0)
        self.stimuli = FloatImages(rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8))
        self.subjects = ["s1"]

    def responses(self, subject):
        return Responses(subject, np.random.default_rng(1).standard_normal((12, 5)), np.arange(12))


@pytest.fixture
def float_plugin():
    module = types.ModuleType("float_plugin")

    @brainbench.hookimpl
    def register_datasets(register):
        register("float-fmri", FloatDataset, description="float stimuli", modality="fmri")

    module.register_datasets = register_datasets
    get_plugin_manager().register(module, name="float-plugin")
    reset_registry()
    yield
    reset_registry()


@pytest.mark.parametrize("batch_size", ["32", "4"])  # one batch in-process; several through DataLoader workers
def test_float_stimuli_are_refused_by_run_naming_uint8(float_plugin, batch_size):
    result = invoke("run", "-m", TINY_MODEL, "-d", "float-fmri", "-q", "--batch-size", batch_size)
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: dataset 'float-fmri' gave stimulus 'img0'") and "uint8" in last, last
    assert "float32 (32, 32, 3) with values in [0, 1]" in last
    assert rows() == []


def test_checked_stimuli_pass_uint8_rgb_and_refuse_the_rest():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    checked = CheckedStimuli(ArrayStimulusSet(images), "d")
    assert len(checked.load([0, 2])) == 2 and checked.fingerprint() == ArrayStimulusSet(images).fingerprint()
    assert stimulus_problem(np.zeros((8, 8), np.uint8)) == "has shape (8, 8)"
    assert stimulus_problem(np.ones((8, 8, 3), np.float64) * 3) == "is float64 (8, 8, 3)"


# -- activations (bug-03) ---------------------------------------------------------------------

def test_non_finite_activations_are_refused_with_the_layer_named():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 20))
    responses = Responses("s1", X[:, :3] @ rng.standard_normal((3, 8)) + rng.standard_normal((60, 8)), np.arange(60))
    metric = Encoding(folds=3, alphas=[1.0, 10.0])
    assert np.isfinite(metric.score({"L": X}, responses, None).value)
    bad = X.copy()
    bad[7, 0], bad[:, 1] = np.inf, np.nan
    with pytest.raises(BrainbenchError, match=r"layer L has 61 non-finite activations \(NaN or inf\) in 2 of 20"):
        metric.score({"L": bad}, responses, None)


# -- NSD regions (rel-14, rel-15, rel-24) --------------------------------------------------------

@pytest.fixture(scope="module")
def nsd_tree(tmp_path_factory):
    return build_mini_nsd(tmp_path_factory.mktemp("nsd"), subjects={"subj01": ("nii",)}).root


@pytest.fixture
def nsd_copy(nsd_tree, tmp_path):
    shutil.copytree(nsd_tree, tmp_path / "nsd")
    return tmp_path / "nsd"


def _nsd(root, *extra):
    return invoke("run", "-m", TINY_MODEL, "-d", "nsd", "--nsd-root", root, "--set", "dataset.sessions=2", *extra)


def test_a_requested_region_without_voxels_is_said_and_recorded(nsd_copy):  # rel-15
    result = _nsd(nsd_copy, "--set", "dataset.regions=V1,V3")
    assert result.exit_code == 0, result.output
    assert "requested regions with no voxel in the atlas, left out: lh.V3, rh.V3" in result.stderr
    subject = [r for r in rows() if r.subject == "subj01"][0]
    assert subject.detail["empty_regions"] == ["lh.V3", "rh.V3"]
    check = invoke("data", "check", "nsd", "--nsd-root", nsd_copy, "--set", "sessions=2", "--set", "regions=V1,V3")
    assert check.exit_code == 1 and "has no voxel of the requested region lh.V3 (subj01)" in check.stdout, check.output


def test_an_all_nan_region_is_said_and_recorded(nsd_copy):  # rel-14
    import nibabel as nib

    roi = nsd_copy / "nsddata/ppdata/subj01/func1pt8mm/roi"
    lh, rh = (np.asarray(nib.load(roi / f"{h}.HCP_MMP1.nii.gz").dataobj) for h in ("lh", "rh"))
    betas = nsd_copy / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    for s in (1, 2):
        path = betas / f"betas_session{s:02d}.nii.gz"
        image = nib.load(path)
        data = np.asarray(image.dataobj).astype(np.float32)
        data[(lh == 1) | (rh == 1)] = np.nan  # every V1 voxel
        nib.save(nib.Nifti1Image(data, image.affine), path)
    result = _nsd(nsd_copy, "--set", "dataset.regions=V1,V2")
    assert result.exit_code == 0, result.output
    assert "regions whose every unit is NaN or constant, left out: lh.V1, rh.V1" in result.stderr
    subject = [r for r in rows() if r.subject == "subj01"][0]
    assert subject.detail["regions_without_usable_units"] == ["lh.V1", "rh.V1"]
    assert set(subject.detail["per_region"]) == {"lh.V2", "rh.V2"}


def test_spatial_without_its_reference_region_refuses_and_stores_nothing(nsd_copy):  # rel-24
    import nibabel as nib

    roi = nsd_copy / "nsddata/ppdata/subj01/func1pt8mm/roi"
    for name in ("lh.HCP_MMP1", "rh.HCP_MMP1", "HCP_MMP1"):
        image = nib.load(roi / f"{name}.nii.gz")
        data = np.asarray(image.dataobj).copy()
        data[data == 1] = 250  # V1 relabelled: no reference region left
        nib.save(nib.Nifti1Image(data, image.affine), roi / f"{name}.nii.gz")
    result = _nsd(nsd_copy, "-x", "spatial", "--set", "dataset.regions=all", "-q")
    assert result.exit_code == 1 and "Traceback" not in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: metric 'spatial' has 0 usable regions for subj01") and "no position for" in last
    assert rows() == []
    check = invoke("data", "check", "nsd", "--nsd-root", nsd_copy, "--set", "sessions=2")
    assert check.exit_code == 1 and "has no voxel of lh.V1, the region distances are measured from" in check.stdout


# -- MEG epochs with NaN samples (rel-31) -----------------------------------------------------

def test_meg_trials_with_nan_are_dropped_before_filtering_counted_and_said(tmp_path):
    import mne

    meg = build_things_meg(tmp_path / "meg")
    path = meg.epochs_path("P1")
    epochs = mne.read_epochs(path, preload=True, verbose="error")
    data = epochs.get_data()
    data[3, 2, :] = np.nan
    data[7, :, 50] = np.nan
    mne.EpochsArray(data, epochs.info, events=epochs.events, tmin=epochs.tmin, event_id=epochs.event_id,
                    metadata=epochs.metadata, baseline=None, verbose="error").save(path, overwrite=True,
                                                                                   verbose="error")
    from brainbench.plugins.datasets.things_meg import ThingsMEG

    dataset = ThingsMEG(root=str(meg.root), images_root=str(meg.images_root))
    responses = dataset.responses("P1")
    assert np.isfinite(responses.data).all()  # no unit lost to a NaN spreading through the low-pass
    assert responses.notes["n_dropped_trials"] == 2
    result = invoke("run", "-m", TINY_MODEL, "-d", "things-meg", "--things-meg-root", meg.root,
                    "--things-images-root", meg.images_root)
    assert result.exit_code == 0, result.output
    assert "2 trials with NaN or infinite samples were dropped before filtering" in result.stderr
    subject = [r for r in rows() if r.subject == "P1"][0]
    assert subject.detail["n_dropped_trials"] == 2 and subject.n_units == responses.data.shape[1]

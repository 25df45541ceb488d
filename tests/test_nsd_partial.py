"""Partial NSD trees: the contiguous sessions on disk are scored, with one line saying so; a gap or
a ``sessions`` option beyond them fails before any extraction (plugins/datasets/nsd_sessions.py)."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.plugins.datasets.nsd import NSD
from brainbench.plugins.datasets.nsd_stimuli_subset import SUBSET, stimuli_file
from nsd_fixture import build_mini_nsd, image_id

BETAS = "nsddata_betas/ppdata/{}/func1pt8mm/betas_fithrf_GLMdenoise_RR"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_mini_nsd(tmp_path_factory.mktemp("nsd"))


@pytest.fixture
def copy(tree, tmp_path):
    shutil.copytree(tree.root, tmp_path / "nsd")
    return tmp_path / "nsd"


def _drop(root, subject, session, rename_to=None):
    folder = root / BETAS.format(subject)
    for suffix in (".hdf5", ".nii.gz"):
        path = folder / f"betas_session{session:02d}{suffix}"
        if path.is_file():
            if rename_to:
                path.rename(folder / f"betas_session{rename_to:02d}{suffix}")
            else:
                path.unlink()


def test_sessions_on_disk_are_used_and_announced(tree, copy, capsys):
    dataset = NSD(root=str(tree.root), subjects="subj01", cache=False)
    assert dataset.n_sessions("subj01") == 2
    assert capsys.readouterr().err.strip() == "subj01: sessions 1–2 of 40 on disk; 1,500 trials, 550 images"
    np.testing.assert_array_equal(dataset.stimuli.nsd_ids, np.unique(tree.trial_ids("subj01", 2)))

    _drop(copy, "subj01", 2)
    one = NSD(root=str(copy), subjects="subj01", cache=False)
    first = np.unique(tree.trial_ids("subj01", 1))
    assert capsys.readouterr().err.strip() == f"subj01: session 1 of 40 on disk; 750 trials, {len(first)} images"
    np.testing.assert_array_equal(one.stimuli.nsd_ids, first)  # images restricted to the trials on disk
    responses = one.responses("subj01")
    assert len(responses.data) == len(first) < 550
    assert one.report["subj01"]["sessions"] == 1 and one.report["subj01"]["n_trials"] == 750


def test_a_gap_or_sessions_beyond_the_disk_fail_at_once(copy):
    _drop(copy, "subj01", 2, rename_to=4)
    with pytest.raises(MissingDataError, match=r"subj01: beta sessions 1, 4 are on disk but session 2 is missing "
                                               r"\(no .*betas_session02\.hdf5\)"):
        NSD(root=str(copy), subjects="subj01", cache=False)
    assert any("session 2 is missing" in p for p in NSD.check(root=str(copy), subjects="subj01"))
    with pytest.raises(MissingDataError, match=r"sessions=5 needs sessions 1–5 but sessions 2–3, 5 of subj01 are "
                                               r"missing .*--sessions 2-5`"):
        NSD(root=str(copy), subjects="subj01", sessions=5, cache=False)


def test_check_accepts_a_consistent_partial_tree_with_its_notice(tree, capsys):
    assert NSD.check(root=str(tree.root)) == []
    err = capsys.readouterr().err
    assert "subj01: sessions 1–2 of 40 on disk" in err and "subj02: sessions 1–2 of 40 on disk" in err


def test_every_file_is_checked_before_extraction(copy, monkeypatch):
    """A broken second session is found before any activation is extracted, not after."""
    from brainbench.core.pipeline import runner
    from brainbench.core.config import Config
    from brainbench.core.store.results import ResultStore

    with h5py.File(copy / BETAS.format("subj02") / "betas_session02.hdf5", "w") as f:
        f.create_dataset("betas", data=np.zeros((700, 8, 10, 12), np.int16))

    def no_extraction(*args, **kwargs):
        raise AssertionError("activations were extracted before the files were checked")

    monkeypatch.setattr(runner, "extract", no_extraction)
    options = runner.RunOptions(progress=False, dataset_options={"root": str(copy), "subjects": "subj02"})
    with ResultStore(Config().db_path) as store, \
            pytest.raises(BrainbenchError, match=r"betas_session02\.hdf5 has 700 trials, expected 750"):
        runner.run(["dinov3-tiny@init"], ["nsd"], ["encoding"], store=store, config=Config(), options=options)


def test_a_subset_of_the_images_is_read_like_the_full_file(tree, copy):
    full = copy / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
    wanted = np.unique(tree.trial_ids("subj01", 2))
    with h5py.File(full, "r") as source, h5py.File(copy / SUBSET, "w") as subset:
        brick = subset.create_dataset("imgBrick", shape=source["imgBrick"].shape, dtype=np.uint8,
                                      chunks=(1, 16, 16, 3))
        brick[wanted.tolist()] = source["imgBrick"][wanted.tolist()]
        fetched = subset.create_dataset("fetched", shape=(len(brick),), dtype=bool)
        fetched[wanted.tolist()] = True
    full.unlink()
    dataset = NSD(root=str(copy), subjects="subj01", cache=False)
    assert dataset.stimuli.path.name == "nsd_stimuli_subset.hdf5"
    images = dataset.stimuli.load([0, 5, len(wanted) - 1])
    assert [image_id(im) for im in images] == [wanted[0], wanted[5], wanted[-1]]
    both = np.unique(np.r_[wanted, tree.trial_ids("subj02", 2)])
    with pytest.raises(MissingDataError, match=r"holds 550 NSD images but .* of the .* images of subj01, subj02 are "
                                               r"not among them"):
        stimuli_file(copy, both, "subj01, subj02")
    with pytest.raises(MissingDataError, match="bench data fetch nsd"):
        NSD(root=str(copy), cache=False)

"""Kinds 2, 5 and 7 of issue 13: a damaged file of the user's is one sentence naming it; weights must fit
exactly; a broken dataset never stops a grid.

Cases rel-01 … rel-04, rel-33, rel-34, rel-73, rel-74, rel-79 and rel-108 of ../shared/cases, as tests.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.results import ResultStore

from conftest import TINY_MODEL
from nsd_fixture import build_mini_nsd
from things_meg_fixture import build_things_meg
from cli_errors import one_line_error

STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def n_rows() -> int:
    if not os.path.exists(os.environ["BRAINBENCH_DB"]):
        return 0
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        return store.count()


@pytest.fixture(scope="module")
def nsd_tree(tmp_path_factory):
    return build_mini_nsd(tmp_path_factory.mktemp("nsd"), subjects={"subj01": ("nii",)}).root


@pytest.fixture
def nsd_copy(nsd_tree, tmp_path):
    root = tmp_path / "nsd"
    shutil.copytree(nsd_tree, root)
    return root


def _truncate(path):
    os.truncate(path, path.stat().st_size // 2)


def _zero_header(path):
    with open(path, "r+b") as f:
        f.write(bytes(4096))


def _garble_metadata(path):
    rng = np.random.default_rng(1)
    with open(path, "r+b") as f:
        for offset in (2048, 4096, 8192):
            f.seek(offset)
            f.write(rng.integers(0, 256, 1024, dtype=np.uint8).tobytes())


def _too_few_images(path):
    import h5py

    with h5py.File(path, "r") as f:
        kept = f["imgBrick"][:600]
    with h5py.File(path, "w") as f:
        f.create_dataset("imgBrick", data=kept)


@pytest.mark.parametrize("damage, words", [
    (_truncate, ["cannot be read", "truncated file"]),                 # rel-01
    (_zero_header, ["cannot be read", "file signature not found"]),    # rel-02
    (_garble_metadata, ["cannot be read"]),                            # rel-03
    (_too_few_images, ["600 images"]),                                  # rel-04
])
def test_damaged_nsd_image_file_is_named_by_run_and_by_data_check(nsd_copy, damage, words):
    path = nsd_copy / STIMULI
    damage(path)
    run = invoke("run", "-m", TINY_MODEL, "-d", "nsd", "--nsd-root", nsd_copy, "--set", "dataset.sessions=2", "-q")
    line = one_line_error(run, str(path), *words)
    assert "download it again" in line
    assert n_rows() == 0
    check = invoke("data", "check", "nsd", "--nsd-root", nsd_copy, "--set", "sessions=2")
    assert check.exit_code == 1 and "Traceback" not in check.output
    assert any(str(path) in problem and all(w in problem for w in words)
               for problem in check.stdout.splitlines()), check.stdout  # the same problem, found without a run


def test_grid_reports_and_skips_a_broken_dataset(nsd_copy):  # rel-108
    _truncate(nsd_copy / STIMULI)
    result = invoke("grid", "-m", TINY_MODEL, "-d", "nsd", "-d", "synthetic-fmri", "-x", "encoding",
                    "--nsd-root", nsd_copy, "--set", "dataset:nsd.sessions=2", "--set", "dataset:synthetic-fmri.n_images=40",
                    "--set", "dataset:synthetic-fmri.reference=dinov3-tiny@init",
                    "--set", "dataset:synthetic-fmri.image_size=64")
    assert result.exit_code == 0, result.output
    assert "skipped dataset nsd" in result.stderr and "truncated file" in result.stderr
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        assert {r.dataset for r in store.query()} == {"synthetic-fmri"} and store.count() == 4


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_text("this is not a JPEG"), ["cannot identify image file"]),   # rel-33
    (lambda p: os.truncate(p, p.stat().st_size // 3), ["Truncated File Read"]),        # rel-34
])
def test_damaged_things_image_is_named(tmp_path, damage, words):
    meg = build_things_meg(tmp_path / "meg")
    first = sorted(meg.images_root.rglob("*.jpg"))[0]
    damage(first)
    result = invoke("run", "-m", TINY_MODEL, "-d", "things-meg", "--things-meg-root", meg.root,
                    "--things-images-root", meg.images_root, "-q")
    one_line_error(result, f"THINGS image {first} cannot be read", *words)
    assert n_rows() == 0


# -- weights ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_state():
    import torch
    from transformers import DINOv3ViTModel

    from brainbench.plugins.models.dinov3_model import dinov3_config
    torch.manual_seed(1)
    return {k: v.contiguous() for k, v in DINOv3ViTModel(dinov3_config("dinov3-tiny")).state_dict().items()}


def _run_weights(path, *extra):
    return invoke("run", "-m", "dinov3-tiny@mine", "--set", f"model.weights={path}", "--set", "dataset.n_images=40",
                  "--set", "dataset.reference=dinov3-tiny@init", "--set", "dataset.image_size=64", "-q", *extra)


def test_truncated_safetensors_is_named(tmp_path, tiny_state):  # rel-73
    from safetensors.torch import save_file

    path = tmp_path / "tiny.safetensors"
    save_file(tiny_state, str(path))
    os.truncate(path, path.stat().st_size // 2)
    one_line_error(_run_weights(path), f"weights file {path} cannot be read", "incomplete metadata")
    assert n_rows() == 0


def test_a_pth_that_is_not_a_checkpoint_is_named(tmp_path):  # rel-79
    path = tmp_path / "junk.pth"
    path.write_text("this is not a checkpoint at all")
    one_line_error(_run_weights(path), f"weights file {path} cannot be read", "save it again")
    assert n_rows() == 0


@pytest.mark.parametrize("backend", ["transformers", "timm"])
def test_unexpected_tensors_are_refused_with_their_names(tmp_path, tiny_state, backend):  # rel-74
    import torch

    path = tmp_path / "extra.pth"
    torch.save({**tiny_state, "foo.bar": torch.zeros(3), "head.weight": torch.zeros(2, 2)}, path)
    result = _run_weights(path, "--set", f"model.backend={backend}")
    last = one_line_error(result)
    assert "unexpected tensors" in last or "unknown tensor" in last, last
    assert "foo.bar" in last or "head.weight" in last, last
    assert n_rows() == 0


def test_a_deeper_checkpoint_is_refused(tmp_path):
    import torch
    from safetensors.torch import save_file
    from transformers import DINOv3ViTModel

    from brainbench.plugins.models.dinov3_model import DINOv3, dinov3_config
    torch.manual_seed(2)
    deep = DINOv3ViTModel(dinov3_config("dinov3-tiny", num_hidden_layers=6))
    path = tmp_path / "deep.safetensors"
    save_file({k: v.contiguous() for k, v in deep.state_dict().items()}, str(path))
    model = DINOv3("dinov3-tiny", "deep", weights=str(path))
    with pytest.raises(BrainbenchError, match=r"unexpected tensors \(.*layer\.4\."):
        model.load(torch.device("cpu"))

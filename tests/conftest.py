"""Shared fixtures: an isolated brainbench home, tiny configs, and a clean plugin registry."""
from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # never wait on the network
# One BLAS thread: on a shared 2-core machine two threads per process slow the suite down several-fold.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest

from brainbench.core.config import clear_flags
from brainbench.core.registry.discovery import reset_plugin_manager

#: options that make the synthetic datasets tiny: a 4-block DINOv3 at 64 px, 40 images
TINY_DATASET = {"reference": "dinov3-tiny@init", "n_images": 40, "image_size": 64}
TINY_MODEL = "dinov3-tiny@init"


@pytest.fixture(scope="session")
def session_home(tmp_path_factory):
    """One cache for the whole session, so the tiny reference network runs once."""
    return tmp_path_factory.mktemp("brainbench-home")


@pytest.fixture(autouse=True)
def isolated_home(session_home, tmp_path, monkeypatch):
    """Every test gets its own database and config file, and shares the activation cache."""
    monkeypatch.setenv("BRAINBENCH_HOME", str(session_home))
    monkeypatch.setenv("BRAINBENCH_DB", str(tmp_path / "results.db"))
    monkeypatch.setenv("BRAINBENCH_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("BRAINBENCH_LOAD_PLUGINS", "")  # no stray entry points from the environment
    for name in ("BRAINBENCH_DEVICE", "BRAINBENCH_WEIGHTS", "BRAINBENCH_NSD_ROOT", "BRAINBENCH_THINGS_MEG_ROOT",
                 "BRAINBENCH_THINGS_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    reset_plugin_manager()
    clear_flags()
    yield
    reset_plugin_manager()
    clear_flags()


@pytest.fixture(scope="session")
def tiny_fmri():
    from brainbench.plugins.datasets.synthetic import SyntheticFMRI

    return SyntheticFMRI(**TINY_DATASET)


@pytest.fixture(scope="session")
def tiny_meg():
    from brainbench.plugins.datasets.synthetic import SyntheticMEG

    return SyntheticMEG(**TINY_DATASET)


@pytest.fixture
def tiny_cli_args():
    """`bench run` arguments that score the tiny model on the tiny synthetic fMRI data."""
    args = ["-m", TINY_MODEL, "-d", "synthetic-fmri", "-q"]
    for key, value in TINY_DATASET.items():
        args += ["--set", f"dataset.{key}={value}"]
    return args

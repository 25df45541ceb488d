"""Features computed elsewhere: `bench features import`, then `-m features:NAME` scored like any model.

The imported features are the tiny reference model's own activations on the synthetic data, so
their scores must equal the model's scores exactly, however the rows were ordered on disk.
"""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.pipeline.activations import extract
from brainbench.core.registry import get_registry
from conftest import TINY_DATASET, TINY_MODEL

LAYERS = ["layer02", "layer04"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def dataset_args():
    return [a for k, v in TINY_DATASET.items() for a in ("--set", f"dataset.{k}={v}")] + ["--set", "metric.folds=3"]


def import_sets():
    return [a for k, v in TINY_DATASET.items() for a in ("--set", f"{k}={v}")]


def score(model: str, *extra):
    result = invoke("run", "-m", model, "-d", "synthetic-fmri", "-q", "--format", "json", *dataset_args(), *extra)
    assert result.exit_code == 0, result.output
    return {r["subject"]: r for r in json.loads(result.output)}


@pytest.fixture(scope="module")
def reference(tiny_fmri):
    """The tiny model's pooled activations (two layers) and the synthetic stimuli's ids."""
    model = get_registry().model("dinov3-tiny").factory("init")
    acts = extract(model, tiny_fmri.stimuli, layers=LAYERS, device="cpu", progress=False)
    return acts.layers, list(tiny_fmri.stimuli.ids)


@pytest.fixture(scope="module")
def expected(reference):
    """The model's own scores on the two layers."""
    return score(TINY_MODEL, "--layers", ",".join(LAYERS))


def test_npz_with_reordered_ids_scores_like_the_model(tmp_path, reference, expected):
    layers, ids = reference
    order = np.random.default_rng(0).permutation(len(ids))
    np.savez(tmp_path / "features.npz", **{k: v[order] for k, v in layers.items()})
    (tmp_path / "stimuli.csv").write_text("row,stimulus_id\n" + "".join(f"{i},{ids[j]}\n" for i, j in enumerate(order)))
    result = invoke("features", "import", tmp_path, "--name", "lab-model", "--ids", tmp_path / "stimuli.csv",
                    "--dataset", "synthetic-fmri", *import_sets())
    assert result.exit_code == 0, result.output
    assert "rows are put in the stimulus order of synthetic-fmri, by their ids" in result.output
    assert "features:lab-model: 2 layers (layer02 (40, 64), layer04 (40, 64)) for 40 stimuli" in result.output
    rows = score("features:lab-model")
    for subject, row in expected.items():
        assert rows[subject]["score"] == pytest.approx(row["score"], abs=1e-6)
    provenance = rows["all"]["provenance"]["features"]
    assert set(provenance["files"]) == {"features.npz", "stimuli.csv"}
    assert all(len(h) == 64 for h in provenance["files"].values())
    assert get_registry().model("features:lab-model").metadata["layers"] == 2
    # the hashes travel with exported result files, which validate with the ':' in the model name
    exported = invoke("results", "export", "--out", tmp_path / "export", "--contributor", "tester",
                      "--model", "features:lab-model")
    assert exported.exit_code == 0, exported.output
    (path,) = (tmp_path / "export").rglob("*.json")
    assert path.name.startswith("features-lab-model@imported--")
    assert json.loads(path.read_text())["provenance"]["features"]["files"] == provenance["files"]
    assert invoke("results", "validate", tmp_path / "export").exit_code == 0


def test_thingsvision_output_folder(tmp_path, reference, expected):
    layers, ids = reference
    out = tmp_path / "thingsvision"
    order = np.arange(len(ids))[::-1]
    for layer, values in layers.items():  # thingsvision.utils.storing.save_features(features, out/layer, "npy")
        (out / layer).mkdir(parents=True)
        np.save(out / layer / "features.npy", values[order])
    (out / "file_names.txt").write_text("".join(f"images/{ids[j]}.png\n" for j in order))  # ImageDataset's file
    result = invoke("features", "import", out, "--name", "tv-model")
    assert result.exit_code == 0, result.output
    assert "ids from" in result.output and "file_names.txt" in result.output
    rows = score("features:tv-model")
    for subject, row in expected.items():
        assert rows[subject]["score"] == pytest.approx(row["score"], abs=1e-6)


def test_h5_with_extra_rows_is_said_and_missing_ids_stop(tmp_path, reference, expected, caplog):
    layers, ids = reference
    with h5py.File(tmp_path / "feats.h5", "w") as f:
        for layer, values in layers.items():
            f[layer] = np.concatenate([values, np.zeros((2, values.shape[1]), np.float32)])
        f["stimulus_ids"] = np.array(ids + ["other-1", "other-2"], dtype="S")
    assert invoke("features", "import", tmp_path, "--name", "extra").exit_code == 0
    rows = score("features:extra")
    assert rows["all"]["score"] == pytest.approx(expected["all"]["score"], abs=1e-6)
    assert "2 rows belong to no stimulus" in caplog.text

    missing = tmp_path / "missing"
    missing.mkdir()
    np.save(missing / "layer02.npy", layers["layer02"][:-3])
    (missing / "ids.txt").write_text("\n".join(ids[:-3]))
    result = invoke("features", "import", missing, "--name", "short", "--dataset", "synthetic-fmri",
                    *import_sets())
    assert result.exit_code != 0
    assert f"has no features for 3 of the 40 stimuli of synthetic-fmri (e.g. {ids[-3]}" in result.output
    assert "Traceback" not in result.output
    # registered without a check, the same sentence stops the run
    assert invoke("features", "import", missing, "--name", "short").exit_code == 0
    run = invoke("run", "-m", "features:short", "-d", "synthetic-fmri", "-q", *dataset_args())
    assert run.exit_code != 0 and "has no features for 3 of the 40 stimuli" in run.output


def test_bad_input_is_one_sentence(tmp_path, reference):
    layers, ids = reference
    np.save(tmp_path / "layer02.npy", layers["layer02"])
    result = invoke("features", "import", tmp_path, "--name", "no-ids")
    assert result.exit_code != 0 and "which stimulus is each row" in result.output
    (tmp_path / "ids.txt").write_text("\n".join(ids[:5]))
    result = invoke("features", "import", tmp_path, "--name", "few-ids")
    assert "lists 5 stimulus ids but the features have 40 rows" in result.output
    (tmp_path / "ids.txt").write_text("\n".join(ids))
    assert invoke("features", "import", tmp_path, "--name", "ok").exit_code == 0
    np.save(tmp_path / "layer02.npy", layers["layer02"] + 1)  # changed after the import
    run = invoke("run", "-m", "features:ok", "-d", "synthetic-fmri", "-q", *dataset_args())
    assert run.exit_code != 0 and "changed since it was imported as features:ok" in run.output
    assert "no imported features are called 'nope'" in invoke("run", "-m", "features:nope", "-q").output
    assert "without checkpoints; drop @init" in invoke("run", "-m", "features:ok@init", "-q").output

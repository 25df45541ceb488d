"""The spatial score: known answers, permutation p-values, and the synthetic planted hierarchy."""
from __future__ import annotations

import json

import numpy as np
import pytest

import brainbench
from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Score
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry.specs import get_registry, reset_registry
from brainbench.plugins.metrics.spatial import Spatial, best_layer, spatial_correlation

FAST = {"folds": 3, "alphas": [0.1, 10.0, 1000.0], "n_permutations": 2000}


class Planted(Dataset):
    """Region k's units read out layer k exactly; region k lies 10·k mm from V1 (region 0)."""

    name = "planted"
    modality = "fmri"

    def __init__(self, n_regions=5, n_layers=6, n=80, units=4, seed=0, positions=True):
        rng = np.random.default_rng(seed)
        self.subjects = ["s1"]
        self.regions = ["V1"] + [f"R{k}" for k in range(1, n_regions)]
        self.features = {f"layer{l:02d}": rng.normal(size=(n, 8)) for l in range(n_layers)}
        layers = list(self.features.values())
        columns, labels = [], []
        for k, region in enumerate(self.regions):
            source = layers[round(k * (n_layers - 1) / (n_regions - 1))]
            columns += [source @ rng.normal(size=8) for _ in range(units)]
            labels += [region] * units
        self.data = np.stack(columns, 1)
        self.labels = np.array(labels)
        self.positions = positions

    def responses(self, subject):
        return Responses(subject, self.data, np.arange(len(self.data)), {"region": self.labels})

    def region_positions(self, subject):
        if not self.positions:
            return None
        return {r: np.array([0.0, -10.0 * k, 0.0]) for k, r in enumerate(self.regions)}


def test_planted_layers_and_distances_give_r_one():
    dataset = Planted()
    score = Spatial(**FAST).score(dataset.features, dataset.responses("s1"), dataset)
    regions = score.detail["regions"]
    assert [regions[r]["best_layer"] for r in dataset.regions] == ["layer00", "layer01", "layer02", "layer04", "layer05"]
    assert [score.detail["per_region_distance"][r] for r in dataset.regions] == pytest.approx([0, 10, 20, 30, 40])
    assert score.value > 0.98 and score.detail["spearman_r"] == pytest.approx(1.0)
    assert regions["R2"]["depth"] == pytest.approx(0.4) and len(regions["R2"]["profile"]) == 6
    assert regions["R2"]["n_units"] == 4 and score.n_units == 20
    json.dumps(score.detail)  # the leaderboard stores it as JSON


@pytest.mark.parametrize("similarity", ["rsa", "cka"])
def test_rsa_and_cka_profiles_find_the_same_planted_layers(similarity):
    dataset = Planted()
    score = Spatial(**FAST, similarity=similarity).score(dataset.features, dataset.responses("s1"), dataset)
    regions = score.detail["regions"]
    assert [regions[r]["best_layer"] for r in dataset.regions] == ["layer00", "layer01", "layer02", "layer04", "layer05"]
    assert score.value > 0.98 and score.detail["similarity"] == similarity and regions["R2"]["n_units"] == 4
    with pytest.raises(BrainbenchError, match="similarity must be one of encoding, rsa, cka"):
        Spatial(similarity="cca")


def test_reference_region_can_be_excluded_and_regions_without_position_are_skipped():
    dataset = Planted()
    score = Spatial(**FAST, include_reference=False).score(dataset.features, dataset.responses("s1"), dataset)
    assert "V1" not in score.detail["regions"] and score.detail["skipped"]["V1"].startswith("reference region")
    assert score.detail["n_regions"] == 4
    dataset.region_positions = lambda subject: {r: np.zeros(3) + k for k, r in enumerate(dataset.regions[:3])}
    score = Spatial(**FAST).score(dataset.features, dataset.responses("s1"), dataset)
    assert score.detail["skipped"] == {"R3": "no position for R3", "R4": "no position for R4"}


def test_weighted_estimate_is_the_profile_weighted_mean_layer():
    assert best_layer(np.array([0.1, 0.3, 0.2])) == 1.0
    assert best_layer(np.array([0.1, 0.3, 0.2]), "weighted") == pytest.approx((0.2 * 1 + 0.1 * 2) / 0.3)
    assert best_layer(np.array([0.2, 0.2, 0.2]), "weighted") == 0.0  # flat: falls back to the argmax


def test_permutation_p_values_match_the_exact_ones():
    # a perfect monotonic relation among 6 regions: exactly 2 of 720 orderings reach |r| = 1 (1 for "greater")
    depth, distance = np.arange(6.0), np.arange(6.0) ** 2
    two_sided = spatial_correlation(depth, distance, permutations=20000, seed=1)
    greater = spatial_correlation(depth, distance, permutations=20000, alternative="greater", seed=1)
    assert two_sided["spearman_r"] == 1.0 and two_sided["pearson_r"] == pytest.approx(0.9598, abs=1e-4)
    assert two_sided["p_value_spearman"] == pytest.approx(2 / 720, abs=1e-3)
    assert greater["p_value_spearman"] == pytest.approx(1 / 720, abs=7e-4)
    unrelated = spatial_correlation(np.arange(12.0), np.random.default_rng(0).permutation(np.arange(12.0)))
    assert unrelated["p_value"] > 0.05


def test_degenerate_inputs_give_nan_not_errors():
    assert np.isnan(spatial_correlation(np.zeros(5), np.arange(5.0))["pearson_r"])
    assert np.isnan(spatial_correlation(np.arange(2.0), np.arange(2.0))["p_value"])
    dataset = Planted()
    dataset.features = {"only": dataset.features["layer00"]}
    score = Spatial(**FAST).score(dataset.features, dataset.responses("s1"), dataset)
    assert np.isnan(score.value) and score.detail["n_regions"] == 5


def test_aggregate_is_mean_and_sem_with_pooled_regions():
    def subject(r, depth):
        regions = {name: {"depth": d, "distance_mm": 10.0 * k, "profile": [d, 1 - d], "layer_index": d,
                          "best_layer": "x", "n_units": 3} for k, (name, d) in enumerate(zip("ABC", depth))}
        return Score(r, detail={"regions": regions, "spearman_r": r, "layers": ["a", "b"]}, n_units=9)

    scores = {"s1": subject(0.5, [0.0, 0.5, 1.0]), "s2": subject(0.7, [0.0, 1.0, 1.0])}
    total = Spatial(**FAST).aggregate(scores)
    assert total.value == pytest.approx(0.6) and total.error == pytest.approx(0.1)
    assert total.detail["regions"]["B"]["depth"] == pytest.approx(0.75)
    assert total.detail["regions"]["B"]["profile"] == pytest.approx([0.75, 0.25])
    assert total.detail["pooled"]["pearson_r"] == pytest.approx(np.corrcoef([0, 0.75, 1], [0, 10, 20])[0, 1])
    assert total.n_units == 18 and total.detail["subjects"] == {"s1": 0.5, "s2": 0.7}
    assert total.detail["n_subjects"] == 2 and total.detail["dropped_subjects"] == {}


def test_a_subject_without_a_score_is_named_and_not_counted():
    from brainbench.core.store.formatting import table
    from brainbench.core.store.results import ResultRow

    regions = {"A": {"depth": 0.0, "distance_mm": 0.0, "profile": [0.0]}}
    scores = {"s1": Score(0.5, detail={"regions": regions}), "s2": Score(0.7, detail={"regions": regions}),
              "s3": Score(float("nan"), detail={"regions": {}})}
    total = Spatial(**FAST).aggregate(scores)
    assert total.value == pytest.approx(0.6) and total.error == pytest.approx(0.1)
    assert total.detail["n_subjects"] == 2 and total.detail["dropped_subjects"] == {"s3": "score is NaN"}
    row = ResultRow(model="m", checkpoint="init", dataset="d", subject="all", metric="spatial", options="{}",
                    score=total.value, error=total.error, n_units=0, detail=total.detail)
    header, _, line = table([row]).splitlines()
    assert header.split()[5] == "n" and line.split()[7] == "2"  # the printed table shows the subjects used


def test_options_and_datasets_are_checked(tiny_meg):
    with pytest.raises(BrainbenchError, match="did you mean 'layer_estimate'"):
        Spatial(layer_estimat="weighted")
    with pytest.raises(BrainbenchError, match="layer_estimate='mode' is not one of argmax, weighted"):
        Spatial(layer_estimate="mode")
    with pytest.raises(BrainbenchError, match="applies to fmri data"):
        Spatial().check_dataset(tiny_meg)
    with pytest.raises(BrainbenchError, match="needs region positions"):
        Spatial().check_dataset(Planted(positions=False))


def test_registered_as_a_metric():
    spec = get_registry().metric("spatial")
    assert spec.factory is Spatial and "layer_estimate" in spec.metadata["options"]


class _Small64:
    """A test plugin: dinov3-small (13 layers, random init) run at 64 px, cheap on a CPU."""

    @brainbench.hookimpl
    def register_models(self, register):
        from brainbench.plugins.models.dinov3_model import DINOv3
        def build(checkpoint=None, **options):
            model = DINOv3("dinov3-small", checkpoint or "init", **options)
            model.image_size = 64
            return model

        register("dinov3-small-64px", build, description="dinov3-small at 64 px (tests)")


def test_synthetic_planted_hierarchy_is_recovered():
    from brainbench.plugins.datasets.synthetic import SyntheticFMRI

    get_plugin_manager().register(_Small64(), name="small-64px")
    reset_registry()
    dataset = SyntheticFMRI(reference="dinov3-small-64px@init", n_images=80, image_size=64, n_subjects=1)
    features = dataset._reference_activations.layers  # exactly the reference network's features
    assert len(features) == 13
    score = Spatial().score(features, dataset.responses("sub-01"), dataset)
    assert score.value >= 0.9 and score.detail["p_value"] < 1e-3
    planted = dataset.planted_layer(len(features))
    found = [score.detail["regions"][r]["layer_index"] for r in dataset.regions]
    assert np.corrcoef(found, list(planted.values()))[0, 1] > 0.9
    assert score.detail["regions"]["V1"]["distance_mm"] == 0.0

"""RSA and CKA: the unbiased HSIC against its defining sums, planted similarities, the subject ceiling."""
from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
from scipy.stats import spearmanr

from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.registry import get_registry
from brainbench.plugins.metrics.cka import CKA, gram, linear_cka, unbiased_hsic
from brainbench.plugins.metrics.rsa import RSA, rdm_vector


def brute_force_hsic(K, L):
    """Song et al. 2012: the U-statistic as three sums over distinct index tuples."""
    n = len(K)
    pairs = sum(K[i, j] * L[i, j] for i, j in permutations(range(n), 2)) / (n * (n - 1))
    triples = sum(K[i, j] * L[i, q] for i, j, q in permutations(range(n), 3)) / (n * (n - 1) * (n - 2))
    quads = sum(K[i, j] * L[q, r] for i, j, q, r in permutations(range(n), 4)) / (n * (n - 1) * (n - 2) * (n - 3))
    return pairs + quads - 2 * triples


def test_unbiased_hsic_equals_its_defining_u_statistic():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 5))
    Y[:, 0] += 2 * X[:, 0]
    for K, L in ((gram(X), gram(Y)), (X @ X.T, Y @ Y.T)):  # also on uncentred kernels
        assert unbiased_hsic(K, L) == pytest.approx(brute_force_hsic(K, L), rel=1e-10)
    with pytest.raises(ValueError, match="at least 4 samples"):
        unbiased_hsic(np.eye(3), np.eye(3))


def test_linear_cka_is_one_for_the_same_geometry_and_near_zero_for_unrelated_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 10))
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert linear_cka(X, 3.0 * X @ rotation + 5.0) == pytest.approx(1.0)  # rotation, scale and shift
    unrelated = [linear_cka(rng.normal(size=(20, 500)), rng.normal(size=(20, 500))) for _ in range(20)]
    assert abs(np.mean(unrelated)) < 0.02  # unbiased: no positive offset with few stimuli and many features
    Xc, Yc = (lambda A: A - A.mean(0))(rng.normal(size=(20, 500))), (lambda A: A - A.mean(0))(rng.normal(size=(20, 500)))
    biased = np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))
    assert biased > 0.5  # the biased estimator's offset, for contrast


def planted(n=60, seed=0, noise=0.5):
    """Two layers; region 'early' is a linear image of layer0, region 'late' of layer1."""
    rng = np.random.default_rng(seed)
    features = {"layer0": rng.normal(size=(n, 12)), "layer1": rng.normal(size=(n, 12))}
    Y = np.hstack([features["layer0"] @ rng.normal(size=(12, 8)), features["layer1"] @ rng.normal(size=(12, 8))])
    Y += noise * rng.normal(size=Y.shape)
    return features, Responses("s1", Y, np.arange(n), {"region": np.repeat(["early", "late"], 8)})


@pytest.mark.parametrize("metric", [RSA(noise_ceiling="none"), CKA(noise_ceiling="none")], ids=["rsa", "cka"])
def test_each_region_is_most_similar_to_the_layer_that_drives_it(metric):
    features, responses = planted()
    score = metric.score(features, responses, None)
    table = score.detail["per_region_layer"]
    assert table["early"]["layer0"] > 0.4 > 0.15 > abs(table["early"]["layer1"])
    assert table["late"]["layer1"] > 0.4 > 0.15 > abs(table["late"]["layer0"])
    assert score.detail["region_layers"] == {"early": "layer0", "late": "layer1"}
    assert score.value == pytest.approx(max(score.detail["per_layer"].values()))
    assert score.detail["per_region_own_layer"]["early"] == table["early"]["layer0"]
    fixed = type(metric)(layer="layer1", noise_ceiling="none").score(features, responses, None)
    assert fixed.detail["layer_selection"] == "fixed" and fixed.value == pytest.approx(score.detail["per_layer"]["layer1"])


def test_rsa_is_the_spearman_correlation_of_correlation_distance_rdms():
    features, responses = planted(n=25)
    Y = responses.data[:, :8]
    upper = np.triu_indices(25, 1)
    model, brain = (1 - np.corrcoef(A)[upper] for A in (features["layer0"], Y))
    np.testing.assert_allclose(rdm_vector(features["layer0"]), model, atol=1e-12)
    score = RSA(noise_ceiling="none").score(features, responses, None)
    assert score.detail["per_region_layer"]["early"]["layer0"] == pytest.approx(spearmanr(model, brain)[0])
    pearson = RSA(noise_ceiling="none", comparison="pearson").score(features, responses, None)
    assert pearson.detail["per_region_layer"]["early"]["layer0"] == pytest.approx(np.corrcoef(model, brain)[0, 1])


@pytest.mark.parametrize("metric_class", [RSA, CKA], ids=["rsa", "cka"])
def test_meg_time_points_are_groups(metric_class):
    rng = np.random.default_rng(2)
    features = {"layer0": rng.normal(size=(30, 6)), "layer1": rng.normal(size=(30, 6))}
    times = [0.0, 100.0, 200.0]
    blocks = [rng.normal(size=(30, 5)), features["layer0"] @ rng.normal(size=(6, 5)), features["layer1"] @ rng.normal(size=(6, 5))]
    units = {"sensor": np.tile([f"MEG{i}" for i in range(5)], 3), "time": np.repeat(times, 5)}
    score = metric_class(noise_ceiling="none").score(features, Responses("s1", np.hstack(blocks), np.arange(30), units), None)
    assert score.detail["time_layers"] == {"0.0": score.detail["time_layers"]["0.0"], "100.0": "layer0", "200.0": "layer1"}
    assert abs(score.detail["per_time_layer"]["0.0"]["layer0"]) < 0.3


class Subjects(Dataset):
    """Three subjects: one shared signal of the stimuli plus each subject's own noise."""

    name, modality = "three-subjects", "fmri"
    subjects = ["s1", "s2", "s3"]

    def __init__(self, noise=0.3):
        rng = np.random.default_rng(3)
        self.signal = rng.normal(size=(40, 10))
        self.noise = {s: noise * rng.normal(size=(40, 10)) for s in self.subjects}

    def responses(self, subject):
        return Responses(subject, self.signal + self.noise[subject], np.arange(40), {"region": np.repeat(["A", "B"], 5)})


@pytest.mark.parametrize("metric_class", [RSA, CKA], ids=["rsa", "cka"])
def test_the_subject_noise_ceiling_brackets_between_subject_agreement(metric_class):
    dataset = Subjects()
    features = {"layer0": dataset.signal}
    score = metric_class().score(features, dataset.responses("s1"), dataset)
    lower, upper = score.detail["noise_ceiling"], score.detail["noise_ceiling_upper"]
    assert 0.3 < lower < upper <= 1.0 and score.detail["n_shared_stimuli"] == 40
    assert score.detail["ceiled_score"] == pytest.approx(score.value / lower)
    total = metric_class().aggregate({s: metric_class().score(features, dataset.responses(s), dataset)
                                      for s in dataset.subjects})
    assert 0.3 < total.detail["noise_ceiling"] < total.detail["noise_ceiling_upper"]
    disagreeing = metric_class().score(features, Subjects(noise=30.0).responses("s1"), Subjects(noise=30.0))
    assert disagreeing.detail["noise_ceiling"] < 0.05 and disagreeing.detail["ceiled_score"] is None
    exact = metric_class().score(features, Subjects(noise=0.0).responses("s1"), Subjects(noise=0.0))
    assert exact.detail["noise_ceiling"] == pytest.approx(1.0)  # identical subjects agree perfectly


def test_options_are_checked_in_one_sentence():
    with pytest.raises(BrainbenchError, match="nested needs a fitted model"):
        RSA(layer_selection="nested")
    with pytest.raises(BrainbenchError, match="comparison must be one of spearman, pearson"):
        RSA(comparison="kendall")
    with pytest.raises(BrainbenchError, match="noise_ceiling must be one of subjects, none"):
        CKA(noise_ceiling="repetitions")
    assert {"rsa", "cka"} <= set(get_registry().names("metrics"))
    assert get_registry().metric("cka").metadata["options"] == list(CKA.defaults)

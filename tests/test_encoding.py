"""The encoding metric: known answers on planted data, bad units dropped and counted."""
import numpy as np
import pytest

from brainbench.core.contract.data import Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Score
from brainbench.plugins.metrics.encoding import Encoding


def _planted(n=120, d=20, m=30, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = X @ rng.normal(size=(d, m)) + noise * rng.normal(size=(n, m))
    regions = np.repeat(["V1", "V2", "V3"], m // 3)
    return {"layer00": rng.normal(size=(n, d)), "layer01": X}, Responses("s1", Y, np.arange(n), {"region": regions})


def test_linear_responses_are_predicted_almost_perfectly():
    features, responses = _planted()
    score = Encoding().score(features, responses, dataset=None)
    assert score.detail["layer"] == "layer01"
    assert score.value > 0.99
    assert score.detail["per_layer"]["layer00"] < 0.3  # an unrelated layer predicts little
    assert set(score.detail["per_region"]) == {"V1", "V2", "V3"}


def test_noise_level_sets_the_score():
    # responses = signal + noise with equal variance → expected r ≈ 1/√2 at best
    features, responses = _planted(n=400, d=10)
    signal_sd = responses.data.std(0)
    rng = np.random.default_rng(1)
    noisy = responses.data + rng.normal(size=responses.data.shape) * signal_sd
    score = Encoding().score(features, Responses("s1", noisy, np.arange(400)), dataset=None)
    assert score.value == pytest.approx(1 / np.sqrt(2), abs=0.05)


def test_noise_scores_near_zero():
    rng = np.random.default_rng(0)
    features = {"layer00": rng.normal(size=(200, 30))}
    responses = Responses("s1", rng.normal(size=(200, 50)), np.arange(200))
    assert abs(Encoding(layer="layer00").score(features, responses, dataset=None).value) < 0.1


def test_nan_and_constant_units_are_dropped_and_counted():
    features, responses = _planted()
    data = responses.data.copy()
    data[3, 0] = np.nan
    data[:, 1] = 7.0
    score = Encoding().score(features, Responses("s1", data, np.arange(len(data))), dataset=None)
    assert score.detail["n_dropped"] == 2 and score.n_units == 28
    assert np.isfinite(score.value)
    all_bad = Responses("s1", np.full((10, 3), np.nan), np.arange(10))
    with pytest.raises(BrainbenchError, match="NaN or constant"):
        Encoding().score({"layer00": np.ones((10, 2))}, all_bad, dataset=None)


def test_options_are_checked():
    with pytest.raises(BrainbenchError, match="did you mean 'folds'"):
        Encoding(fold=3)
    features, responses = _planted()
    with pytest.raises(BrainbenchError, match="no layer 'layer07'"):
        Encoding(layer="layer07").score(features, responses, dataset=None)


def test_aggregate_is_mean_and_sem_across_subjects():
    scores = {s: Score(v, 0.01, 10, {"per_region": {"V1": v}}) for s, v in (("a", 0.2), ("b", 0.4), ("c", 0.6))}
    total = Encoding().aggregate(scores)
    assert total.value == pytest.approx(0.4)
    assert total.error == pytest.approx(np.std([0.2, 0.4, 0.6], ddof=1) / np.sqrt(3))
    assert total.detail["per_region"]["V1"] == pytest.approx(0.4)
    assert total.n_units == 30


def test_permutation_p_values_separate_signal_from_noise():
    features, responses = _planted(n=120, d=20, m=30, noise=3.0)
    data = responses.data.copy()
    rng = np.random.default_rng(5)
    data[:, responses.units["region"] == "V3"] = rng.normal(size=(120, 10))  # V3: no signal
    noisy = Responses("s1", data, np.arange(120), {"region": responses.units["region"]})
    score = Encoding(layer="layer01", n_permutations=99).score(features, noisy, dataset=None)
    assert score.detail["p_per_region"]["V1"] == score.detail["p_per_region"]["V2"] == 0.01  # the smallest possible
    assert score.detail["p_per_region"]["V3"] > 0.05
    assert score.detail["p_value"] == 0.01
    assert "p_value" not in Encoding(layer="layer01").score(features, noisy, dataset=None).detail

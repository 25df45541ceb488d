"""Layer selection: the ridge engine's training-part errors, and the nested / best / fixed rules."""
import numpy as np
import pytest
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

from brainbench.core.contract.data import Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.compute.ridge import cv_predict
from brainbench.plugins.metrics.encoding import Encoding
from brainbench.plugins.metrics.layer_selection import NestedSelection, modal_layer

ALPHAS = np.logspace(-1, 5, 7)


def test_loo_errors_are_scikit_learns_leave_one_out_errors_at_the_chosen_alpha():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 12)), rng.normal(size=(40, 6))
    Y[:, :3] += X[:, :3] * [3, 1, 0.3]
    result = cv_predict(X, Y, alphas=ALPHAS, folds=4, backend="numpy")
    for f, (train, _) in enumerate(KFold(4).split(X)):
        model = RidgeCV(alphas=ALPHAS, alpha_per_target=True, store_cv_results=True).fit(X[train], Y[train])
        chosen = np.searchsorted(ALPHAS, model.alpha_)
        expected = model.cv_results_.mean(axis=0)[np.arange(6), chosen]  # (n, targets, alphas) → per target
        np.testing.assert_allclose(result.errors[f], expected, rtol=1e-7)


def test_the_torch_backend_reports_the_same_errors():
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(30, 40)), rng.normal(size=(30, 5))
    for rule in ("loo", "gcv"):
        numpy_errors = cv_predict(X, Y, alphas=ALPHAS, folds=3, alpha_selection=rule, backend="numpy").errors
        torch_errors = cv_predict(X, Y, alphas=ALPHAS, folds=3, alpha_selection=rule, backend="torch").errors
        np.testing.assert_allclose(torch_errors, numpy_errors, rtol=1e-9)


@pytest.mark.parametrize("rule", ["gcv", "kfold"])
def test_other_criteria_report_the_minimum_of_their_own_scores(rule):
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(30, 8)), rng.normal(size=(30, 3))
    result = cv_predict(X, Y, alphas=ALPHAS, folds=3, alpha_selection=rule, backend="numpy")
    assert result.errors.shape == (3, 3) and np.isfinite(result.errors).all() and (result.errors > 0).all()
    assert result.errors.max() < 3 * Y.var()  # a mean squared error, on the scale of the responses


def _noise_layers(n=60, d=20, m=40, layers=8, seed=0, signal_layer=None):
    rng = np.random.default_rng(seed)
    features = {f"layer{i:02d}": rng.normal(size=(n, d)) for i in range(layers)}
    Y = rng.normal(size=(n, m))
    if signal_layer is not None:
        Y += features[signal_layer] @ rng.normal(size=(d, m)) * 0.3
    regions = np.repeat(["V1", "V2"], m // 2)
    return features, Responses("s1", Y, np.arange(n), {"region": regions})


def _equally_good_layers(seed, n=80, k=5, d=20, m=30, layers=8):
    """Layers that are the same map of a latent S plus independent per-stimulus noise: equal in truth."""
    rng = np.random.default_rng(seed)
    S, A = rng.normal(size=(n, k)), rng.normal(size=(k, d))
    features = {f"layer{i}": S @ A + 3.0 * rng.normal(size=(n, d)) for i in range(layers)}
    Y = S @ rng.normal(size=(k, m)) + 2.0 * rng.normal(size=(n, m))
    return features, Responses("s1", Y, np.arange(n), {"region": np.repeat(["V1", "V2"], m // 2)})


def test_best_is_optimistic_over_equally_good_layers_and_nested_much_less():
    best_excess, nested_excess = [], []
    for seed in range(6):
        features, responses = _equally_good_layers(seed)
        best = Encoding(layer_selection="best").score(features, responses, dataset=None)
        nested = Encoding().score(features, responses, dataset=None)
        typical = np.mean(list(best.detail["per_layer"].values()))  # what any one layer scores
        assert best.value == max(best.detail["per_layer"].values())
        best_excess.append(best.value - typical)
        nested_excess.append(nested.value - typical)
    assert np.mean(best_excess) > 0.02  # the maximum of 8 noisy estimates sits above their mean
    assert np.mean(nested_excess) < np.mean(best_excess) / 2  # chosen on training parts: little optimism


def test_nested_finds_the_planted_layer_in_every_fold_and_records_it():
    features, responses = _noise_layers(signal_layer="layer05", n=100)
    score = Encoding(folds=5).score(features, responses, dataset=None)
    assert score.detail["layer_selection"] == "nested"
    assert score.detail["fold_layers"] == ["layer05"] * 5 and score.detail["layer"] == "layer05"
    assert score.detail["region_layers"] == {"V1": ["layer05"] * 5, "V2": ["layer05"] * 5}
    # with the right layer in every fold, nested equals the fixed layer's score exactly
    fixed = Encoding(layer="layer05").score(features, responses, dataset=None)
    assert fixed.detail["layer_selection"] == "fixed"
    assert score.value == pytest.approx(fixed.value, abs=1e-12)
    assert score.detail["per_region_own_layer"] == pytest.approx(fixed.detail["per_region"], abs=1e-12)


def test_each_region_gets_its_own_layer():
    rng = np.random.default_rng(3)
    n, d = 120, 10
    features = {f"layer{i}": rng.normal(size=(n, d)) for i in range(3)}
    Y = np.hstack([features["layer0"] @ rng.normal(size=(d, 10)), features["layer2"] @ rng.normal(size=(d, 10))])
    Y += rng.normal(size=Y.shape)
    responses = Responses("s1", Y, np.arange(n), {"region": np.repeat(["early", "late"], 10)})
    for rule in ("nested", "best"):
        detail = Encoding(layer_selection=rule).score(features, responses, dataset=None).detail
        layers = detail["region_layers"]
        assert layers["early"] in ("layer0", ["layer0"] * 5) and layers["late"] in ("layer2", ["layer2"] * 5)
        # the global layer serves one region; the other is better served by its own layer
        own, shared = detail["per_region_own_layer"], detail["per_region"]
        assert sorted(own[g] - shared[g] > 0.3 for g in own) == [False, True]
        assert detail["per_region_layer"]["late"]["layer2"] > 0.5 > detail["per_region_layer"]["late"]["layer0"]


def test_options_name_the_rule():
    assert Encoding().scoring_options()["layer_selection"] == "nested"
    fixed = Encoding(layer="layer03").scoring_options()  # the layer alone implies fixed, as before
    assert (fixed["layer_selection"], fixed["layer"]) == ("fixed", "layer03")
    assert Encoding(layer="best").options["layer_selection"] == "best"
    with pytest.raises(BrainbenchError, match="layer_selection=fixed needs layer=NAME"):
        Encoding(layer_selection="fixed")
    with pytest.raises(BrainbenchError, match="not one of nested, best, fixed"):
        Encoding(layer_selection="oracle")
    with pytest.raises(BrainbenchError, match="goes with layer_selection=fixed"):
        Encoding(layer_selection="nested", layer="layer03")


def test_nested_selection_keeps_the_lowest_error_per_fold_and_group():
    Y = np.arange(12, dtype=float).reshape(6, 2) ** 1.5
    splits = [(np.arange(3, 6), np.arange(3)), (np.arange(3), np.arange(3, 6))]
    sel = NestedSelection(Y, splits, np.array(["a", "b"]))
    sel.add("one", np.full((6, 2), 1.0), np.array([[1.0, 9.0], [9.0, 9.0]]))
    sel.add("two", np.full((6, 2), 2.0), np.array([[5.0, 1.0], [1.0, 1.0]]))
    assert sel.fold_layers("a") == ["one", "two"] and sel.fold_layers("b") == ["two", "two"]
    assert sel.grouped[:3].tolist() == [[1.0, 2.0]] * 3 and sel.grouped[3:].tolist() == [[2.0, 2.0]] * 3
    assert modal_layer(["b", "a", "b", "a"], ["a", "b"]) == "a"

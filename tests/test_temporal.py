"""The temporal score: T_max, onsets, the permutation p-value, and synthetic-meg's planted hierarchy."""
import json

import numpy as np
import pytest

from brainbench.core.config import Config
from brainbench.core.contract.data import Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.registry.specs import get_registry
from brainbench.core.store.results import ResultStore
from brainbench.core.pipeline.runner import RunOptions, run
from brainbench.plugins.datasets.synthetic import SyntheticMEG
from brainbench.plugins.metrics.encoding import Encoding
from brainbench.plugins.metrics.temporal import Temporal, correlation_test, onset_time, peak_time, unit_grid

from conftest import TINY_DATASET, TINY_MODEL

TIMES = np.arange(-100.0, 801.0, 25.0)


def test_peak_time_is_the_mean_of_the_window_within_95_percent_around_the_peak():
    times = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    curve = np.array([0.1, 0.96, 1.0, 0.5, 0.97]) * 0.3  # normalising by the maximum removes the scale
    assert peak_time(curve, times) == pytest.approx(15)  # the window 10..20; the bump at 40 is apart
    assert peak_time(curve, times, peak="points") == pytest.approx((10 + 20 + 40) / 3)
    assert peak_time(curve, times, threshold=0.99) == 20
    assert peak_time(curve, times, peak="argmax") == 20
    assert np.isnan(peak_time(np.array([-0.1, -0.2, 0.0, -0.3, np.nan]), times))  # never above chance


@pytest.mark.parametrize("similarity", ["rsa", "cka"])
def test_rsa_and_cka_curves_give_the_planted_peak_times(similarity):
    # layer ℓ alone drives the sensors at 100·(ℓ+1) ms; other times are noise
    rng = np.random.default_rng(0)
    n, times = 40, np.arange(0.0, 501.0, 100.0)
    features = {f"layer{l}": rng.normal(size=(n, 6)) for l in range(4)}
    blocks = [features[f"layer{int(t // 100) - 1}"] @ rng.normal(size=(6, 8)) if 100 <= t <= 400
              else rng.normal(size=(n, 8)) for t in times]
    units = {"sensor": np.tile([f"MEG{i}" for i in range(8)], len(times)), "time": np.repeat(times, 8)}
    responses = Responses("s1", np.hstack(blocks), np.arange(n), units)
    score = Temporal(similarity=similarity, n_permutations=99).score(features, responses, None)
    assert score.detail["t_max"] == {f"layer{l}": 100.0 * (l + 1) for l in range(4)}
    assert score.value == pytest.approx(1.0) and score.detail["onset"]["layer0"] is None


def test_a_second_peak_pulls_the_all_points_rule_but_not_the_window():
    # a main peak at 150 ms (a plateau 125..175) and a second bump reaching 97 % of it at 600 ms
    times = np.arange(0.0, 801.0, 25.0)
    curve = np.exp(-0.5 * ((times - 150) / 40) ** 2) + 0.97 * np.exp(-0.5 * ((times - 600) / 15) ** 2)
    curve[(times >= 125) & (times <= 175)] = 1.0
    assert peak_time(curve, times) == pytest.approx(150)
    assert peak_time(curve, times, peak="points") == pytest.approx((125 + 150 + 175 + 600) / 4)
    # a NaN time point ends the window
    gapped = curve.copy()
    gapped[times == 125] = np.nan
    assert peak_time(gapped, times) == pytest.approx(162.5)


def test_unit_grid_keeps_sensor_order_and_marks_dropped_units():
    sensors = np.repeat(["MRO11-1609", "MLO11-1609"], 3)
    times = np.tile([0.0, 20.0, 40.0], 2)
    kept = np.array([True, True, True, True, False, True])
    names, time_points, grid = unit_grid(np.arange(6.0)[kept], sensors[kept], times[kept])
    assert names == ["MRO11-1609", "MLO11-1609"] and time_points.tolist() == [0, 20, 40]
    np.testing.assert_array_equal(grid, [[0, 1, 2], [3, np.nan, 5]])


def test_permutation_p_value_is_one_sided():
    depth = np.linspace(0, 1, 12)
    r, p = correlation_test(depth, 300 * depth + 80, n_permutations=999)
    assert r == pytest.approx(1.0) and p == pytest.approx(1 / 1000)
    r, p = correlation_test(depth, -depth, n_permutations=999)
    assert r == pytest.approx(-1.0) and p == 1.0
    assert np.isnan(correlation_test(depth, np.full(12, 200.0), 99)[0])  # every layer peaks at once: undefined


@pytest.mark.parametrize("test", ["fdr", "cluster"])
def test_onset_is_the_first_time_above_chance(test):
    rng = np.random.default_rng(0)
    grid = rng.normal(0, 0.05, size=(40, len(TIMES)))
    grid[:, TIMES >= 100] += 0.1
    assert onset_time(grid, TIMES, test, n_permutations=200) == 100
    grid[:, TIMES >= 100] -= 0.2  # below chance is not an onset
    assert onset_time(grid, TIMES, test, n_permutations=200) is None


def test_tiny_meg_detail_has_every_layer_time_and_sensor(tiny_meg):
    features = tiny_meg._reference_activations.layers
    score = Temporal(n_permutations=500).score(features, tiny_meg.responses("sub-01"), tiny_meg)
    detail, layers = score.detail, list(features)
    json.dumps(detail, allow_nan=False)  # plain JSON: undefined values are null, not NaN
    assert detail["layers"] == layers and detail["times"] == tiny_meg.times.tolist()
    assert all(len(detail["r_time"][l]) == len(tiny_meg.times) for l in layers)
    assert all(len(detail["sensor_map"][l]) == tiny_meg.n_sensors for l in layers)
    assert all(detail["peak_sensor"][l] in detail["sensor_map"][l] for l in layers)
    assert all(onset is None or onset >= 60 for onset in detail["onset"].values())  # the planted onset is 60 ms
    depth = np.array(list(detail["depth"].values()))
    assert depth[0] == 0 and depth[-1] == 1
    t_max = np.array([detail["t_max"][l] for l in layers])
    assert score.value == pytest.approx(np.corrcoef(depth, t_max)[0, 1])
    assert 0 < detail["p_value"] <= 1 and score.error > 0 and score.n_units == 32 * 37


def test_one_solve_for_all_targets_equals_one_model_per_time_point(tiny_meg):
    features = {"layer02": tiny_meg._reference_activations.layers["layer02"]}
    responses = tiny_meg.responses("sub-01")
    together, _ = Encoding().unit_scores(features, responses)
    for t in (0.0, 150.0, 400.0):
        at = responses.units["time"] == t
        alone = Responses("sub-01", responses.data[:, at], responses.stimulus_index,
                          {k: v[at] for k, v in responses.units.items()})
        per_time, _ = Encoding().unit_scores(features, alone)
        np.testing.assert_allclose(per_time["layer02"], together["layer02"][at], atol=1e-10)


def test_synthetic_meg_planted_layer_time_hierarchy_is_recovered():
    dataset = SyntheticMEG(reference="dinov3-small@init", n_images=80, image_size=64)
    features = dataset._reference_activations.layers
    # An untrained reference's layers are near copies: every layer's r(t) is one noisy plateau from
    # 100 to 450 ms, peaking by chance at 150 ms, and the hierarchy lies in where along the plateau a
    # layer stays within 95 %. The all-points rule averages the plateau; the window stops at its first
    # dip, at the chance peak.
    metric = Temporal(n_permutations=2000, peak="points")
    scores = {s: metric.score(features, dataset.responses(s), dataset) for s in dataset.subjects}
    total = metric.aggregate(scores)
    assert len(features) == 13
    assert total.value >= 0.9, {s: round(v.value, 3) for s, v in scores.items()}
    assert all(s.value >= 0.8 and s.detail["p_value"] < 0.01 for s in scores.values())
    assert all(onset >= 60 for s in scores.values() for onset in s.detail["onset"].values())
    t_max = total.detail["t_max"]
    assert t_max["layer00"] < 150 < 400 < t_max["layer12"]  # planted: layer ℓ drives 60 + 45·ℓ ms
    assert len(total.detail["r_time"]["layer06"]) == len(dataset.times) and np.isfinite(total.error)


def test_wrong_modality_missing_time_labels_and_bad_options_are_one_sentence(tiny_fmri):
    with pytest.raises(BrainbenchError, match="applies to meg data"):
        Temporal().check_dataset(tiny_fmri)
    rng = np.random.default_rng(0)
    features = {f"layer{i}": rng.normal(size=(20, 4)) for i in range(3)}
    unlabelled = Responses("s1", rng.normal(size=(20, 6)), np.arange(20), {"region": np.repeat(["V1", "V2"], 3)})
    with pytest.raises(BrainbenchError, match="labelled by 'time'"):
        Temporal().score(features, unlabelled, tiny_fmri)
    timed = Responses("s1", unlabelled.data, np.arange(20), {"time": np.tile([0.0, 50.0, 100.0], 2)})
    with pytest.raises(BrainbenchError, match="at least 3 layers"):
        Temporal().score({"a": features["layer0"]}, timed, tiny_fmri)
    with pytest.raises(BrainbenchError, match="one of window, points, argmax"):
        Temporal(peak="max")
    with pytest.raises(BrainbenchError, match="did you mean 'onset_test'"):
        Temporal(onset_tset="fdr")


def test_runs_from_the_registry_and_stores_one_row_per_subject(tmp_path):
    spec = get_registry().metric("temporal")
    assert spec.metadata["modality"] == "meg"
    store = ResultStore(tmp_path / "results.db")
    rows = run([TINY_MODEL], ["synthetic-meg"], ["temporal"], store=store, config=Config(),
               options=RunOptions(dataset_options=dict(TINY_DATASET), metric_options={"n_permutations": 200},
                                  progress=False))
    assert [r.subject for r in rows] == ["sub-01", "sub-02", "sub-03", "all"]
    aggregate = rows[-1]
    assert aggregate.detail["times"] == TIMES.tolist() and set(aggregate.detail["subjects"]) == {"sub-01", "sub-02",
                                                                                                "sub-03"}
    assert len(store.query(metric="temporal")) == 4

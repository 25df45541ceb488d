"""The half-time metric: known answers for the curve maths, planted per-region half-times, and the registry."""
from __future__ import annotations

import math

import numpy as np
import pytest

from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.compute.halftime import bootstrap_half_times, half_time, logistic, to_axis
from brainbench.core.contract.metric import Score
from brainbench.plugins.metrics.halftime import Halftime, format_order, order_summary

STEPS = np.array([0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000])
#: a longer, denser trajectory: 0, then 24 log-spaced steps from 1 to 100,000
DENSE = np.concatenate([[0], np.unique(np.round(np.geomspace(1, 100_000, 24)))])


def sigmoid_curve(midpoint: float, low: float = 0.0, high: float = 1.0, width: float = 0.25,
                  steps: np.ndarray = STEPS) -> np.ndarray:
    """A logistic in log10(1 + step) whose value is half-way from ``low`` to ``high`` at ``midpoint``."""
    return logistic(to_axis(steps), low, high, math.log10(1 + midpoint), width)


def test_a_logistic_in_log_step_gives_back_its_half_time():
    curve = sigmoid_curve(200)
    # exact answer: where the logistic reaches half of its value at the last step
    x = math.log10(201) - 0.25 * math.log(2 / curve[-1] - 1)
    truth = 10 ** x - 1
    assert truth == pytest.approx(200, rel=0.01)
    fitted = half_time(STEPS, curve, interpolation="sigmoid")
    assert fitted.step == pytest.approx(truth, rel=1e-4)
    assert fitted.percent == pytest.approx(100 * truth / STEPS[-1], rel=1e-4)
    monotone = half_time(STEPS, curve)  # interpolation between checkpoints: close, not exact
    assert monotone.step == pytest.approx(200, rel=0.05)
    assert monotone.threshold == pytest.approx(curve[-1] / 2)


def test_log_and_linear_interpolation_differ_as_expected():
    steps, values = [9, 999], [0.0, 1.0]  # half-way is x = 2 on log10(1 + step), step 504 on the step axis
    assert half_time(steps, values, interpolation="linear").step == pytest.approx(99)
    assert half_time(steps, values, interpolation="linear", axis="linear").step == pytest.approx(504)
    # on a curve concave in the step, linear interpolation in the step puts the half-time late
    curve = sigmoid_curve(200)
    assert half_time(STEPS, curve, axis="linear", interpolation="linear").step > half_time(STEPS, curve).step


def test_baselines_and_undefined_cases():
    rising = sigmoid_curve(100, low=0.6, high=1.0)  # already at 60 % of the final value at init
    assert half_time(STEPS, rising).step == 0.0  # the paper's definition: 50 % of the final value
    assert half_time(STEPS, rising, baseline="init").step == pytest.approx(100, rel=0.05)
    falling = sigmoid_curve(100, low=1.0, high=0.2)
    assert half_time(STEPS, falling, baseline="init").step == pytest.approx(100, rel=0.05)
    negative = half_time(STEPS, -sigmoid_curve(100))
    assert math.isnan(negative.step) and negative.reason == "the final score is not above 0"
    assert half_time([0, 5], [0.1, float("nan")]).reason == "fewer than two checkpoints have a score"
    assert math.isnan(half_time(STEPS[:3], [0.0, 0.5, 1.0], interpolation="sigmoid").step)
    with pytest.raises(BrainbenchError, match="interpolation='cubic' is not one of"):
        half_time(STEPS, sigmoid_curve(100), interpolation="cubic")


def test_the_monotone_interpolant_does_not_overshoot_a_noisy_curve():
    values = np.array([0.0, 0.05, 0.02, 0.3, 0.28, 0.9, 0.85, 1.0, 0.97, 1.0])
    found = half_time(STEPS, values)
    assert STEPS[4] < found.step < STEPS[5]  # first crossing between the last checkpoint below and the first above


def test_bootstrap_over_subjects_brackets_the_truth():
    rng = np.random.default_rng(0)
    curves = np.array([sigmoid_curve(m) for m in rng.lognormal(math.log(200), 0.3, size=12)])
    boot = bootstrap_half_times(STEPS, curves, n_boot=300, seed=1)
    low, high = boot["ci_step"]
    assert low < half_time(STEPS, curves.mean(0)).step < high
    assert boot["n_defined"] == 300 and boot["ci_percent"][1] == pytest.approx(100 * high / STEPS[-1])


class PlantedRegions(Dataset):
    """Regions on a line away from V1 (a real Dataset subclass): only the geometry is used."""

    name = "planted-regions"
    modality = "fmri"
    subjects = ["s1", "s2", "s3"]

    def __init__(self, distances: dict[str, float]):
        self.distances = distances

    def responses(self, subject: str) -> Responses:
        raise BrainbenchError("planted-regions has geometry only")

    def region_positions(self, subject: str):
        return {r: np.array([d, 0.0, 0.0]) for r, d in self.distances.items()}


def planted_trajectory(noise: float = 0.01, seed: int = 0):
    """Encoding scores per subject and checkpoint whose region curves have half-times growing with distance."""
    rng = np.random.default_rng(seed)
    distances = {"V1": 0.0, **{f"area-{k}": 10.0 * k for k in range(1, 9)}}
    midpoints = {r: 50 + 25 * d for r, d in distances.items()}  # 50 steps at V1 … 2050 at 80 mm
    scores = {}
    for subject in ("s1", "s2", "s3"):
        series = []
        for i in range(len(DENSE)):
            regions = {r: float(sigmoid_curve(m, high=0.3, steps=DENSE)[i] + rng.normal(0, noise))
                       for r, m in midpoints.items()}
            series.append(Score(float(np.mean(list(regions.values()))), 0.01, 90, {"per_region": regions}))
        scores[subject] = series
    scores["all"] = [Score(float(np.mean([scores[s][i].value for s in ("s1", "s2", "s3")])), 0.01, 270,
                           {"per_region": {r: float(np.mean([scores[s][i].detail["per_region"][r]
                                                             for s in ("s1", "s2", "s3")])) for r in distances}})
                     for i in range(len(DENSE))]
    return PlantedRegions(distances), scores, midpoints


def test_planted_per_region_half_times_correlate_with_distance():
    dataset, scores, midpoints = planted_trajectory()
    fitted = Halftime(interpolation="sigmoid", bootstrap=0).score_trajectory("encoding", DENSE, scores, dataset)
    for region, midpoint in midpoints.items():  # the fit recovers every planted half-time
        assert fitted["all"].detail["regions"][region]["step"] == pytest.approx(midpoint, rel=0.1)
    metric = Halftime(bootstrap=200, n_permutations=2000)  # default: monotone interpolation between checkpoints
    result = metric.score_trajectory("encoding", DENSE, scores, dataset)
    total = result["all"]
    per_region = total.detail["regions"]
    for region, midpoint in midpoints.items():
        assert per_region[region]["step"] == pytest.approx(midpoint, rel=0.15)
        assert per_region[region]["distance_mm"] == pytest.approx(dataset.distances[region])
    stats = total.detail["distance_correlation"]
    assert stats["pearson_r"] > 0.9 and stats["spearman_r"] > 0.95 and stats["p_value"] < 0.01
    assert stats["n"] == 9 and stats["null"] == "permutation"
    low, high = stats["ci_r"]
    assert low <= stats["pearson_r"] <= high
    assert set(result) == {"s1", "s2", "s3", "all"}
    assert total.value == pytest.approx(total.detail["half_time_percent"]) and total.error >= 0
    assert total.detail["ci_percent"][0] <= total.value <= total.detail["ci_percent"][1]


def test_shuffled_distances_give_no_correlation():
    dataset, scores, _ = planted_trajectory()
    shuffled = dict(zip(dataset.distances, np.random.default_rng(3).permutation(list(dataset.distances.values()))))
    result = Halftime(bootstrap=0, n_permutations=2000).score_trajectory("encoding", DENSE, scores,
                                                                      PlantedRegions(shuffled))
    assert result["all"].detail["distance_correlation"]["p_value"] > 0.05


def test_meg_windows_and_weak_targets():
    times = [str(float(t)) for t in range(-100, 801, 25)]
    series = []
    for i in range(len(STEPS)):
        per_time = {t: (float(sigmoid_curve(10 * (1 + float(t) / 10), high=0.2)[i]) if float(t) >= 60 else 0.001)
                    for t in times}
        series.append(Score(0.1, 0.01, 100, {"per_time": per_time}))
    scores = {"s1": series, "s2": series, "all": series}
    meg = PlantedRegions({})
    meg.modality = "meg"
    metric = Halftime(bootstrap=0, n_permutations=500, window_ms=100)
    total = metric.score_trajectory("encoding", STEPS, scores, meg)["all"]
    assert "-100..0" in total.detail["skipped_windows"]  # before onset: below min_final
    assert total.detail["time_correlation"]["pearson_r"] > 0.8  # later windows learn later


def test_order_summary_follows_the_paper():
    aggregates = {("meg", "temporal"): Score(0.7), ("fmri", "encoding"): Score(2.0), ("fmri", "spatial"): Score(4.0),
                  ("meg", "encoding"): Score(1.5)}
    summary = order_summary(aggregates)
    assert [r["metric"] for r in summary["ranked"]] == ["temporal", "encoding", "encoding", "spatial"]
    assert summary["matches_paper"] is True
    assert format_order(summary).startswith("temporal 0.7% (meg) → encoding 1.5% (meg)")
    swapped = order_summary({("fmri", "spatial"): Score(0.5), ("fmri", "encoding"): Score(2.0)})
    assert swapped["matches_paper"] is False


def test_halftime_options_and_single_checkpoints_are_refused(tiny_fmri):
    with pytest.raises(BrainbenchError, match="has no option 'fold'"):
        Halftime(fold=3)
    with pytest.raises(BrainbenchError, match="must name other metrics"):
        Halftime(metrics="halftime")
    assert Halftime(metrics="encoding, spatial").base_metrics() == ["encoding", "spatial"]
    with pytest.raises(BrainbenchError, match="scores a training trajectory"):
        Halftime().score({}, None, tiny_fmri)


def test_the_conformance_probe_of_the_metric_passes():
    status, message = Halftime().conformance_check()
    assert status == "pass" and message.startswith("a planted curve with half-time 499 steps gives")


def moving_layer_trajectory(rule="nested", seed=0, metric=None):
    """Encoding scored for real at every checkpoint of a planted training run.

    Latent A drives a small 'early' region (6 units, at 10 mm) and latent B a large 'late' region
    (24 units, at 40 mm). Layer 0 learns A (half-time 30 steps) and layer 2 learns B (half-time
    1000 steps), so the globally best layer moves from layer 0 to layer 2 during training while the
    early region's own layer stays layer 0.
    """
    from brainbench.plugins.metrics.encoding import Encoding

    steps = np.array([0, 3, 10, 30, 100, 300, 1000, 3000, 10000])
    rng = np.random.default_rng(seed)
    n, k = 100, 4
    metric = metric or Encoding(layer_selection=rule, folds=5)
    scores = {}
    for subject in ("s1", "s2", "s3"):
        A, B = rng.normal(size=(n, k)), rng.normal(size=(n, k))
        Y = np.hstack([A @ rng.normal(size=(k, 6)), B @ rng.normal(size=(k, 24))]) + 0.7 * rng.normal(size=(n, 30))
        responses = Responses(subject, Y, np.arange(n), {"region": np.repeat(["early", "late"], [6, 24])})
        noise = {l: rng.normal(size=(n, 8)) for l in range(3)}
        mixing = rng.normal(size=(k, 8))
        series = []
        for step in steps:
            a, b = (float(sigmoid_curve(m, steps=np.array([step]))[0]) for m in (30, 1000))
            features = {"layer0": a * A @ mixing + noise[0], "layer1": noise[1], "layer2": b * B @ mixing + noise[2]}
            series.append(metric.score(features, responses, None))
        scores[subject] = series
    scores["all"] = [metric.aggregate({s: scores[s][i] for s in ("s1", "s2", "s3")}) for i in range(len(steps))]
    return steps, scores


def test_a_regions_half_time_follows_its_own_layer_when_the_global_best_layer_moves():
    steps, scores = moving_layer_trajectory()
    first, last = scores["s1"][4].detail, scores["s1"][-1].detail  # step 100, step 10000
    assert first["layer"] == "layer0" and last["layer"] == "layer2"  # the global choice moves
    assert all(s.detail["region_layers"]["early"] == ["layer0"] * 5 for s in scores["s1"][3:])  # the region's does not
    assert last["per_region"]["early"] < 0.2 < last["per_region_own_layer"]["early"]  # spliced vs own layer
    dataset = PlantedRegions({"V1": 0.0, "early": 10.0, "late": 40.0})
    for rule in ("own", "final"):
        metric = Halftime(bootstrap=0, n_permutations=0, region_layer=rule)
        total = metric.score_trajectory("encoding", steps, scores, dataset)["all"]
        regions = total.detail["regions"]
        assert regions["early"]["step"] == pytest.approx(30, rel=0.5), rule
        assert regions["late"]["step"] == pytest.approx(1000, rel=0.5), rule
        assert total.detail["region_layer"] == rule
    # the former reading (every region at the one globally best layer) loses the early region at the end
    spliced = [[s.detail["per_region"]["early"] for s in scores[k]] for k in ("s1", "s2", "s3")]
    assert half_time(steps, np.mean(spliced, axis=0)).final < 0.2


def test_the_aggregate_names_both_half_time_summaries():
    dataset, scores, _ = planted_trajectory()
    detail = Halftime(bootstrap=0, n_permutations=0).score_trajectory("encoding", DENSE, scores, dataset)["all"].detail
    assert detail["half_time_of_mean_curve_percent"] == detail["half_time_percent"]
    subjects = list(detail["subjects"].values())
    assert detail["mean_of_subject_half_times_percent"] == pytest.approx(np.mean(subjects))
    assert detail["sem_of_subject_half_times_percent"] == pytest.approx(np.std(subjects, ddof=1) / np.sqrt(3))
    with pytest.raises(BrainbenchError, match="region_layer must be one of own, final"):
        Halftime(region_layer="global")


def test_cka_rows_give_per_region_half_times_too():
    from brainbench.plugins.metrics.cka import CKA

    steps, scores = moving_layer_trajectory(metric=CKA(noise_ceiling="none"))
    assert scores["s1"][4].detail["layer"] == "layer0" and scores["s1"][-1].detail["layer"] == "layer2"
    assert scores["s1"][-1].detail["region_layers"]["early"] == "layer0"
    dataset = PlantedRegions({"V1": 0.0, "early": 10.0, "late": 40.0})
    regions = Halftime(bootstrap=0, n_permutations=0).score_trajectory("cka", steps, scores, dataset)["all"].detail["regions"]
    assert 3 < regions["early"]["step"] < 100 < 300 < regions["late"]["step"] < 3000

"""The synthetic datasets: deterministic, and their planted hierarchy is recoverable."""
import numpy as np

from brainbench.plugins.datasets.synthetic import SyntheticFMRI, photo_stimuli
from brainbench.plugins.metrics.encoding import Encoding

from conftest import TINY_DATASET


def test_stimuli_are_real_photos_and_deterministic():
    a, b = photo_stimuli(12, 32, seed=0), photo_stimuli(12, 32, seed=0)
    assert a.images.shape == (12, 32, 32, 3) and a.images.dtype == np.uint8
    assert a.fingerprint() == b.fingerprint() != photo_stimuli(12, 32, seed=1).fingerprint()
    assert a.images.std() > 20  # photographs, not blank frames
    assert a.ids[0].split("-")[0] in {"astronaut", "coffee", "chelsea", "cat", "rocket", "camera", "brick", "grass",
                                      "gravel", "coins", "moon", "clock", "hubble_deep_field",
                                      "immunohistochemistry", "retina", "colorwheel"}


def test_fmri_shapes_geometry_and_ceiling(tiny_fmri):
    r = tiny_fmri.responses("sub-01")
    assert r.data.shape == (40, 12 * 40)
    assert list(dict.fromkeys(r.units["region"])) == tiny_fmri.regions
    assert np.all((r.noise_ceiling > 0.5) & (r.noise_ceiling < 0.82))  # 1/sqrt(1+σ²), σ in [0.7, 1.4]
    positions = tiny_fmri.region_positions("sub-01")
    distance = {k: np.linalg.norm(v - positions["V1"]) for k, v in positions.items()}
    depth = tiny_fmri.region_depth
    assert np.corrcoef([depth[k] for k in distance], list(distance.values()))[0, 1] > 0.95
    assert not np.array_equal(r.data, tiny_fmri.responses("sub-02").data)
    np.testing.assert_array_equal(r.data, SyntheticFMRI(**TINY_DATASET).responses("sub-01").data)


def _best_layers(per_layer, labels, groups):
    layers = list(per_layer)
    return [int(np.argmax([np.nanmean(per_layer[l][labels == g]) for l in layers])) for g in groups]


def test_fmri_planted_layers_are_recovered(tiny_fmri):
    features = tiny_fmri._reference_activations.layers
    responses = tiny_fmri.responses("sub-01")
    per_layer, _ = Encoding().unit_scores(features, responses)
    best = _best_layers(per_layer, responses.units["region"], tiny_fmri.regions)
    planted = list(tiny_fmri.planted_layer(len(features)).values())
    assert np.corrcoef(best, planted)[0, 1] > 0.8
    assert best[0] == 0 and best[-1] >= 3  # V1 reads the embedding, the last region the deepest blocks


def test_meg_deeper_layers_peak_later(tiny_meg):
    features = tiny_meg._reference_activations.layers
    responses = tiny_meg.responses("sub-01")
    per_layer, _ = Encoding().unit_scores(features, responses)
    times = responses.units["time"]
    peak_time = []
    for r in per_layer.values():
        curve = np.array([np.nanmean(r[times == t]) for t in tiny_meg.times])
        peak_time.append(tiny_meg.times[curve >= 0.95 * curve.max()].mean())
        assert curve[tiny_meg.times < 60].mean() < 0.15  # nothing before the planted onset
    assert np.corrcoef(np.arange(len(peak_time)), peak_time)[0, 1] > 0.8
    assert peak_time[0] < peak_time[-1]

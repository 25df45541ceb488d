"""The THINGS-MEG plugin reads a miniature ds004212 written in the real formats."""
import numpy as np
import pytest
from PIL import Image

from brainbench.core.config import Config
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.registry.specs import get_registry
from brainbench.core.store.results import ResultStore
from brainbench.core.pipeline.runner import RunOptions, run
from brainbench.core.compute.stats import pearson
from brainbench.plugins.datasets.things_meg import ThingsMEG, things_relpath

from conftest import TINY_MODEL
from things_meg_fixture import build_things_meg

FULL = dict(decimate=1, tmin=-100, tmax=1300)  # every sample, no filtering


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """Two participants, whose epochs MNE splits into -epo.fif and -epo-1.fif."""
    return build_things_meg(tmp_path_factory.mktemp("things"), subjects=("P1", "P2"), n_channels=32,
                            split_size="2MB")


def _open(mini, **options):
    return ThingsMEG(root=str(mini.root), images_root=str(mini.images_root), **options)


def _one_sentence(message: str) -> bool:
    return "\n" not in message and ". " not in message.rstrip(".")


def _expected_rows(mini, subject, trial_types=("exp", "test")):
    """Per image file stem, the mean of its trials as written (catch trials excluded)."""
    meta = mini.metadata[subject]
    out = {}
    for stem in sorted({things_relpath(p).split("/")[1][:-4] for p in meta.image_path}):
        rows = meta.trial_type.isin(trial_types) & meta.image_path.str.endswith(f"/{stem}.jpg")
        if rows.any():
            out[stem] = mini.trials[subject][rows.to_numpy()].mean(0)
    return out


def test_reads_split_epochs_and_averages_repetitions(mini):
    assert mini.epochs_path("P1").with_name("preprocessed_P1-epo-1.fif").is_file()  # MNE split the file
    dataset = _open(mini, **FULL)
    assert dataset.subjects == ["P1", "P2"] and dataset.modality == "meg"
    for subject in dataset.subjects:
        responses = dataset.responses(subject)
        expected = _expected_rows(mini, subject)
        assert responses.data.shape == (24 + 6, 32 * 281) and responses.data.dtype == np.float32
        ids = [dataset.stimuli.ids[i] for i in responses.stimulus_index]
        assert ids == sorted(expected)  # exp images once, each test image once (averaged), no catch image
        for row, image_id in enumerate(ids):
            np.testing.assert_allclose(responses.data[row], expected[image_id].reshape(-1), atol=1e-5)
    assert list(responses.units["sensor"][:2]) == [mini.channels[0]] * 2  # sensor-major
    np.testing.assert_allclose(responses.units["time"][:281], mini.times_ms)


def test_trial_types_choose_rows_and_stimuli(mini):
    dataset = _open(mini, trial_types="test", **FULL)
    assert len(dataset.stimuli) == 6 and all(i.endswith("s") for i in dataset.stimuli.ids)
    responses = dataset.responses("P1")
    expected = _expected_rows(mini, "P1", ["test"])
    np.testing.assert_allclose(responses.data, np.stack([expected[i].reshape(-1) for i in dataset.stimuli.ids]),
                               atol=1e-5)
    assert len(_open(mini, trial_types=["exp"]).stimuli) == 24
    with pytest.raises(BrainbenchError, match="catch trials show no THINGS image"):
        _open(mini, trial_types="exp,catch")


def test_default_grid_is_50_hz_from_minus_100_to_800_ms(mini):
    responses = _open(mini).responses("P1")
    times = np.unique(responses.units["time"])
    np.testing.assert_allclose(times, np.arange(-100, 801, 20))
    assert responses.data.shape == (30, 32 * 46)


def test_decimation_low_passes_before_subsampling(tmp_path):
    slow = lambda t: np.sin(2 * np.pi * 4 * t / 1000)  # noqa: E731 - 4 Hz: kept
    fast = lambda t: np.sin(2 * np.pi * 35 * t / 1000)  # noqa: E731 - 35 Hz: above the new 25 Hz Nyquist
    mini = build_things_meg(tmp_path, n_exp=6, n_test=3, n_reps=2, signal=0, noise=0,
                            waveform=lambda t: slow(t) + fast(t))
    responses = _open(mini, decimate=4, tmin=0, tmax=1000).responses("P1")
    times = responses.units["time"][:51]
    np.testing.assert_allclose(times, np.arange(0, 1001, 20))
    error = responses.data[0, :51] - slow(times)
    assert np.abs(error[5:-5]).max() < 0.05  # 35 Hz removed, 4 Hz intact (the epoch's edges excepted)
    assert np.abs(fast(times)).max() > 0.5  # plain subsampling would have aliased it in


def test_sensor_selection_and_zscore(mini):
    occipital = _open(mini, sensors="occipital").responses("P1")
    assert set(occipital.units["sensor"]) == {c for c in mini.channels if c[2] == "O"}
    chosen = _open(mini, sensors=["MLO1", "MRT11-1609"]).responses("P1")
    assert set(chosen.units["sensor"]) == {c for c in mini.channels if c.startswith("MLO1")} | {"MRT11-1609"}
    z = _open(mini, zscore=True).responses("P1")
    per_sensor = z.data.reshape(len(z.data), 32, -1)
    np.testing.assert_allclose(per_sensor.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(per_sensor.std(axis=(0, 2)), 1, atol=1e-4)
    with pytest.raises(BrainbenchError, match="matches no channel"):
        _open(mini, sensors="EEG")


def test_noise_ceiling_is_split_half_spearman_brown(mini):
    responses = _open(mini, trial_types="test", **FULL).responses("P1")
    meta, trials = mini.metadata["P1"], mini.trials["P1"]
    test = meta[meta.trial_type == "test"]
    rank = test.groupby("image_path").cumcount().to_numpy()  # sessions in order: odd vs even repetitions
    halves = []
    for parity in (0, 1):
        picked = test[rank % 2 == parity]
        paths = sorted(set(picked.image_path))
        means = [trials[picked.index[picked.image_path == p]].mean(0).reshape(-1) for p in paths]
        halves.append(np.stack(means))
    r_half = np.clip(pearson(*halves), 0, None)
    np.testing.assert_allclose(responses.noise_ceiling, np.sqrt(2 * r_half / (1 + r_half)), atol=1e-4)
    ceiling = responses.noise_ceiling.reshape(32, 281)
    times = responses.units["time"][:281]
    assert ceiling[:, (times > 100) & (times < 200)].mean() > 0.8  # where the images drive the sensors
    assert ceiling[:, times < 0].mean() < ceiling[:, (times > 100) & (times < 200)].mean() - 0.3
    # single-trial exp rows can be predicted less well than twelve-trial averages
    mixed = _open(mini, **FULL).responses("P1").noise_ceiling
    assert np.all(mixed <= responses.noise_ceiling + 1e-9) and mixed.mean() < responses.noise_ceiling.mean()


def test_images_load_lazily_and_fingerprint_their_content(mini, tmp_path):
    dataset = _open(mini, trial_types="test")
    image = dataset.stimuli.load([0])[0]
    assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
    on_disk = np.asarray(Image.open(mini.images_root / "aardvark" / "aardvark_04s.jpg").convert("RGB"))
    assert dataset.stimuli.ids[0] == "aardvark_04s"
    np.testing.assert_array_equal(image, on_disk)
    # the parent of the category folders' parent works too (THINGS zip layout: object_images/<category>/)
    parent = ThingsMEG(root=str(mini.root), images_root=str(mini.images_root.parent), trial_types="test")
    assert parent.stimuli.fingerprint() == dataset.stimuli.fingerprint()
    assert dataset.fingerprint() != _open(mini, trial_types="test", decimate=2).fingerprint()


def test_options_default_to_the_configured_roots(mini, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_THINGS_MEG_ROOT", str(mini.root))
    monkeypatch.setenv("BRAINBENCH_THINGS_IMAGES", str(mini.images_root))
    assert ThingsMEG().subjects == ["P1", "P2"]


def test_missing_roots_say_where_to_get_the_data(mini, tmp_path):
    with pytest.raises(MissingDataError, match="BRAINBENCH_THINGS_MEG_ROOT") as err:
        ThingsMEG()
    assert _one_sentence(str(err.value))
    with pytest.raises(MissingDataError, match="no THINGS-MEG epochs"):
        ThingsMEG(root=str(tmp_path))
    with pytest.raises(MissingDataError, match="osf.io") as err:
        ThingsMEG(root=str(mini.root))
    assert "not part of ds004212" in str(err.value) and _one_sentence(str(err.value))


def _broken(tmp_path, **changes):
    return build_things_meg(tmp_path, n_exp=6, n_test=3, n_reps=2, n_channels=4, **changes)


def test_missing_images_are_counted(tmp_path):
    mini = _broken(tmp_path)
    (mini.images_root / "hot_dog" / "hot_dog_01b.jpg").unlink()
    with pytest.raises(MissingDataError, match=r"1 of 9 THINGS images are missing .*hot_dog/hot_dog_01b.jpg") as err:
        _open(mini)
    assert _one_sentence(str(err.value))


def test_epochs_and_metadata_count_mismatch(tmp_path):
    mini = _broken(tmp_path, metadata_in_fif=False)
    table = mini.metadata["P1"]
    table.iloc[:-1].to_csv(mini.csv_path("P1"), index=False)
    with pytest.raises(BrainbenchError, match=f"has {len(table)} epochs but .*has {len(table) - 1} rows") as err:
        _open(mini)
    assert _one_sentence(str(err.value))
    mini.csv_path("P1").unlink()
    with pytest.raises(MissingDataError, match="holds no trial metadata"):
        _open(mini)


def test_non_ctf_channels_are_refused(tmp_path):
    mini = _broken(tmp_path, channel_names=["EEG001", "EEG002", "EEG003", "EEG004"], channel_type="eeg")
    with pytest.raises(BrainbenchError, match="not CTF MEG sensors .*'EEG001', type eeg") as err:
        _open(mini)
    assert _one_sentence(str(err.value))


def test_other_sampling_rates_are_refused(tmp_path):
    mini = _broken(tmp_path, sfreq=250.0)
    with pytest.raises(BrainbenchError, match="sampled at 250 Hz but .* 200 Hz") as err:
        _open(mini)
    assert _one_sentence(str(err.value))


def test_check_lists_every_problem(tmp_path):
    mini = _broken(tmp_path, subjects=("P1", "P2"), sfreq=250.0)
    (mini.images_root / "zebra" / "zebra_01b.jpg").unlink()
    problems = ThingsMEG.check(root=str(mini.root), images_root=str(mini.images_root))
    assert len(problems) == 2 and all("250 Hz" in p for p in problems)  # images are checked on readable files only
    fine = build_things_meg(tmp_path / "ok", n_exp=6, n_test=3, n_reps=2, n_channels=4)
    (fine.images_root / "zebra" / "zebra_01b.jpg").unlink()
    (problem,) = ThingsMEG.check(root=str(fine.root), images_root=str(fine.images_root))
    assert problem.startswith("1 of 9 THINGS images are missing")
    assert ThingsMEG.check(root=str(fine.root), images_root=str(fine.images_root), decimate=0) == [
        "things-meg decimate must be a positive whole number, got 0"]
    assert ThingsMEG.check(root=str(fine.root), tmax="late") == ["things-meg tmax must be a time in ms, got 'late'"]
    with pytest.raises(BrainbenchError, match="no option 'decimation'; did you mean 'decimate'"):
        ThingsMEG(decimation=2)
    with pytest.raises(BrainbenchError, match="holds no time point"):
        _open(fine, tmin=1400, tmax=1500)


def test_bad_data_stores_nothing(tmp_path):
    mini = _broken(tmp_path, subjects=("P1", "P2"))
    build_things_meg(tmp_path / "p2", subjects=("P2",), n_exp=6, n_test=3, n_reps=2, n_channels=4, sfreq=250.0)
    (tmp_path / "p2" / "ds004212" / "derivatives" / "preprocessed" / "preprocessed_P2-epo.fif").replace(
        mini.epochs_path("P2"))
    store = ResultStore(tmp_path / "results.db")
    options = RunOptions(dataset_options={"root": str(mini.root), "images_root": str(mini.images_root)},
                         progress=False)
    with pytest.raises(BrainbenchError, match="P2-epo.fif is sampled at 250 Hz"):
        run([TINY_MODEL], ["things-meg"], ["encoding"], store=store, config=Config(), options=options)
    assert store.query() == []


def test_registered_and_scored_end_to_end(mini, tmp_path):
    spec = get_registry().dataset("things-meg")
    assert spec.metadata["modality"] == "meg" and spec.metadata["subjects"] == ["P1", "P2", "P3", "P4"]
    store = ResultStore(tmp_path / "results.db")
    options = RunOptions(dataset_options={"root": str(mini.root), "images_root": str(mini.images_root),
                                          "sensors": "occipital"},
                         metric_options={"n_permutations": 100}, progress=False)
    rows = run([TINY_MODEL], ["things-meg"], ["temporal"], store=store, config=Config(), options=options)
    assert [r.subject for r in rows] == ["P1", "P2", "all"]
    assert rows[0].detail["times"] == list(np.arange(-100.0, 801.0, 20.0))
    assert len(store.query(dataset="things-meg")) == 3


def test_fingerprints_hash_epochs_headers_and_metadata(mini):
    dataset = _open(mini)
    prints = dataset.fingerprints()
    assert any(k.endswith("-epo.fif") for k in prints) and any(k.endswith(".csv") for k in prints)
    assert any(k.endswith("-epo-1.fif") for k in prints)  # split parts too
    assert prints == _open(mini).fingerprints()

"""The conformance checklist (`bench check`): every built-in plugin passes it, broken plugins fail it
with the sentence that says what is wrong, and malformed metadata or scores are named field by field."""
from __future__ import annotations

import json
import math
import os
import types

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import brainbench
from brainbench.core.authoring import conformance
from brainbench.core.contract import metadata
from brainbench.core.registry import guards
from brainbench.core.commands.authoring import check as check_command
from brainbench.core.errors import BrainbenchError, MissingDataError
from brainbench.core.registry.discovery import get_plugin_manager, reset_plugin_manager
from brainbench.core.registry.specs import KINDS, get_registry, reset_registry

from conftest import TINY_DATASET

#: small options for built-in datasets whose defaults take minutes on a CPU
FAST_DATASET_OPTIONS = {"synthetic-fmri": TINY_DATASET, "synthetic-meg": TINY_DATASET}


def _builtin_specs() -> list[tuple[str, str]]:
    """(kind, name) of every built-in entry, with no entry-point plugin loaded."""
    saved = os.environ.get("BRAINBENCH_LOAD_PLUGINS")
    os.environ["BRAINBENCH_LOAD_PLUGINS"] = ""
    try:
        reset_plugin_manager()
        registry = get_registry()
        return [(kind, name) for kind in KINDS for name in registry.names(kind)
                if registry.specs[kind][name].source == "built-in"]
    finally:
        if saved is None:
            os.environ.pop("BRAINBENCH_LOAD_PLUGINS")
        else:
            os.environ["BRAINBENCH_LOAD_PLUGINS"] = saved
        reset_plugin_manager()


BUILTINS = _builtin_specs()


def _skip_if_skipped(report):
    skipped = [c for c in report.checks if c.status == "skip"]
    if skipped:
        pytest.skip(f"{report.name}: {skipped[0].name}: {skipped[0].message}")


@pytest.mark.parametrize("kind,name", [b for b in BUILTINS if b[0] == "models"], ids=lambda v: v)
def test_builtin_model_conforms(kind, name):
    spec = get_registry().model(name)
    parameters = spec.metadata.get("parameters")
    if isinstance(parameters, int) and parameters > conformance.TEST_MAX_PARAMETERS:
        report = conformance.check_model(spec, run=False)  # too big to build in the test suite: metadata only
        assert report.ok, report.render()
        return
    checkpoint = "init" if "init" in spec.metadata.get("checkpoints", ["init"]) else None
    try:  # reduced resolution, when the model accepts it
        spec.factory(checkpoint, image_size=64)
        options = {"image_size": 64}
    except BrainbenchError:
        options = {}
    report = conformance.check_model(spec, checkpoint, options)
    assert report.ok, report.render()
    _skip_if_skipped(report)
    assert [c.name for c in report.checks][-3:] == ["forward", "deterministic", "batch"]


@pytest.mark.parametrize("kind,name", [b for b in BUILTINS if b[0] == "datasets"], ids=lambda v: v)
def test_builtin_dataset_conforms(kind, name):
    report = conformance.check_dataset(get_registry().dataset(name), FAST_DATASET_OPTIONS.get(name))
    assert report.ok, report.render()
    _skip_if_skipped(report)
    assert report.count("pass") >= 4


@pytest.mark.parametrize("kind,name", [b for b in BUILTINS if b[0] == "metrics"], ids=lambda v: v)
def test_builtin_metric_conforms(kind, name):
    report = conformance.check_metric(get_registry().metric(name))
    assert report.ok, report.render()
    assert any(c.name.startswith("probe") and c.status == "pass" for c in report.checks), report.render()


def test_every_kind_has_builtins():
    assert {kind for kind, _ in BUILTINS} == set(KINDS)


# -- broken plugins, registered for real through the plugin manager -------------------------------
MODEL_METADATA = dict(family="cnn", parameters=448 + 4640, layers=3, training_data="none", objective="none",
                      source="tests")


class GoodCNN(brainbench.VisionModel):
    """A conforming two-conv network; subclasses break one rule each."""

    image_size = 32
    layer_names = ["conv1", "conv2", "pooled"]

    def fingerprint(self):
        return {"seed": 0}

    def load(self, device):
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, stride=2), torch.nn.Conv2d(16, 32, 3, stride=2))
        self.net.to(device).eval()

    def forward_layers(self, pixels):
        a = torch.relu(self.net[0](pixels))
        b = torch.relu(self.net[1](a))
        return [a, b, b.mean(dim=(2, 3))]


class MissingLayer(GoodCNN):
    def forward_layers(self, pixels):
        return super().forward_layers(pixels)[:2]


class Noisy(GoodCNN):
    def forward_layers(self, pixels):
        return [x + torch.randn_like(x) for x in super().forward_layers(pixels)]


class NaNs(GoodCNN):
    def forward_layers(self, pixels):
        a, b, c = super().forward_layers(pixels)
        return [a, b * float("nan"), c]


class TrainingMode(GoodCNN):
    def load(self, device):
        super().load(device)
        self.net.train()


class Blind(GoodCNN):
    def forward_layers(self, pixels):
        return super().forward_layers(torch.zeros_like(pixels))


def register(kind: str, name: str, factory, **metadata):
    """Register one entry from a throwaway plugin module, as an installed plugin would."""
    module = types.ModuleType(f"plugin_{name.replace('-', '_')}")

    @brainbench.hookimpl
    def hook(register):
        register(name, factory, description="test plugin", **metadata)

    setattr(module, f"register_{kind}", hook)
    pm = get_plugin_manager()
    for plugin_name, plugin in list(pm.list_name_plugin()):  # one test plugin per entry name
        if plugin_name.startswith("plugin_") and plugin_name != module.__name__ or plugin_name == module.__name__:
            pm.unregister(name=plugin_name)
    pm.register(module, name=module.__name__)
    reset_registry()
    return get_registry().get(kind, name)


def model_report(cls, **metadata):
    spec = register("models", "broken", lambda checkpoint=None, **o: cls("broken", checkpoint or "init"),
                    **{**MODEL_METADATA, **metadata})
    return conformance.check_model(spec)


def failure(report, name):
    return next(c.message for c in report.checks if c.name == name and c.status == "fail")


def test_a_conforming_model_passes_every_check():
    report = model_report(GoodCNN)
    assert report.ok and report.count("skip") == 0, report.render()
    assert [c.name for c in report.checks] == ["metadata", "build", "layers", "fingerprint", "eval mode",
                                               "parameters", "forward", "deterministic", "batch"]
    assert "parameters: the network has 5,088 parameters, as declared (5,088)" in report.render()


def test_wrong_layer_count_fails():
    report = model_report(MissingLayer)
    assert failure(report, "forward") == ("the forward pass returned 2 layers but layer_names declares 3 "
                                          "(conv1, conv2, pooled)")
    report = model_report(GoodCNN, layers=4)
    assert failure(report, "layers") == "layer_names has 3 layers but the metadata declares layers=4"


def test_nondeterministic_model_fails():
    message = failure(model_report(Noisy), "deterministic")
    assert message.startswith("two runs on the same 4 images differ (layer ")
    assert message.endswith("use eval mode and no randomness in the forward pass")


def test_nan_output_fails():
    assert failure(model_report(NaNs), "forward") == "layer conv2 has NaN or infinite values for 4 of 4 images"


def test_training_mode_and_blind_models_fail():
    report = model_report(TrainingMode)
    assert failure(report, "eval mode") == "after load(), net is in training mode; call .eval() on the network"
    assert failure(model_report(Blind), "forward") == ("layer conv1 gives the same pooled features for every "
                                                       "image; does it use its input?")


def test_wrong_metadata_fails():
    report = model_report(GoodCNN, parameters=244)
    assert failure(report, "parameters") == "the network has 5,088 parameters but the metadata declares 244"
    spec = register("models", "sparse", lambda checkpoint=None: GoodCNN("sparse", "init"), family="cnn",
                    parameters=5088)
    assert failure(conformance.check_model(spec), "metadata").startswith(
        "no metadata field 'layers' (number of layers the model yields (`len(layer_names)`)) (and 3 more)")


def test_factory_that_returns_no_model_fails_and_missing_weights_skip():
    spec = register("models", "nothing", lambda checkpoint=None: None, **MODEL_METADATA)
    assert failure(conformance.check_model(spec), "build") == "the factory returned NoneType, not a brainbench.VisionModel"

    def absent(checkpoint=None):
        raise MissingDataError("no weights for absent: put them in /weights/absent")

    report = conformance.check_model(register("models", "absent", absent, **MODEL_METADATA))
    assert report.ok and report.checks[-1].status == "skip"
    assert report.checks[-1].message == "not checked: no weights for absent: put them in /weights/absent"


# -- datasets ---------------------------------------------------------------------------------------
class SmallData(brainbench.Dataset):
    name, modality = "small", "fmri"

    def __init__(self, shift=0, positions=True):
        rng = np.random.default_rng(0)
        self.stimuli = brainbench.ArrayStimulusSet(rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8))
        self.subjects, self.shift, self.positions = ["sub-01"], shift, positions

    def responses(self, subject):
        data = np.random.default_rng(1).normal(size=(20, 6))
        return brainbench.Responses(subject, data, np.arange(20) + self.shift,
                                    units={"region": np.repeat(["V1", "V4"], 3)})

    def region_positions(self, subject):
        return {"V1": np.zeros(3), "V4": np.ones(3)} if self.positions else None


def test_datasets_pass_and_fail_with_reasons():
    spec = register("datasets", "small", SmallData, modality="fmri", spatial=True, citation="tests")
    assert conformance.check_dataset(spec).ok
    report = conformance.check_dataset(spec, {"shift": 5})
    assert failure(report, "responses") == ("the stimulus indices of sub-01 must point into the 20 stimuli "
                                            "(got 20 rows, indices 5…24)")
    report = conformance.check_dataset(spec, {"positions": False})
    assert failure(report, "geometry") == "the metadata declares spatial=True but region_positions() returns None"
    spec = register("datasets", "megless", SmallData, modality="meg", citation="tests")
    assert failure(conformance.check_dataset(spec), "build") == ("the dataset's modality is 'fmri' but the "
                                                                 "metadata declares 'meg'")


def test_dataset_without_files_is_skipped_with_its_reason(tmp_path):
    class OnDisk(SmallData):
        @classmethod
        def check(cls, **options):
            return [f"{tmp_path}/betas.h5 is missing", f"{tmp_path}/images.h5 is missing"]

    report = conformance.check_dataset(register("datasets", "ondisk", OnDisk, modality="fmri", citation="x"))
    assert report.ok
    assert report.checks[-1].status == "skip"
    assert report.checks[-1].message == (f"not checked: {tmp_path}/betas.h5 is missing (and 1 more; see "
                                         "`bench data check ondisk`)")


# -- metrics ----------------------------------------------------------------------------------------
class InSample(brainbench.Metric):
    """Fits and scores on the same rows: a noise model looks good, which the checklist must catch."""

    name, defaults = "in-sample", {}

    def score(self, features, responses, dataset):
        x = np.hstack([np.ones((len(responses.data), 1))] + [f for f in features.values()])
        fitted = x @ np.linalg.lstsq(x, responses.data, rcond=None)[0]
        r = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(responses.data.T, fitted.T)])
        return brainbench.Score(float(r.mean()), float(r.std() / np.sqrt(len(r))), len(r), {})


class Constant(InSample):
    def score(self, features, responses, dataset):
        return brainbench.Score(0.5, 0.01, 1, {})


class FloatScore(InSample):
    def score(self, features, responses, dataset):
        return 0.5


class NumpyDetail(InSample):
    def score(self, features, responses, dataset):
        return brainbench.Score(0.9, 0.01, 3, {"best": np.float32(0.9)})


@pytest.mark.parametrize("cls,expected", [
    (InSample, "a model of pure noise scores 0.443 ± 0.004, not near 0 (is the score cross-validated?)"),
    (Constant, "a perfect model (responses read out from its own features) scores 0.500, below 80% of the ceiling 1.000"),
    (FloatScore, "on the fmri probe, score() returned float, not a brainbench.Score"),
    (NumpyDetail, "on the fmri probe, Score.detail is not JSON-serialisable (Object of type float32 is not JSON "
                  "serializable); convert numpy values with float() or .tolist()"),
])
def test_broken_metrics_fail(cls, expected):
    report = conformance.check_metric(register("metrics", "broken-metric", cls, modality="fmri, meg"))
    assert failure(report, "probe fmri").startswith(expected), report.render()


def test_metric_that_accepts_any_option_fails():
    class Lax(brainbench.Metric):
        def __init__(self, **options):
            self.options = options

        def score(self, features, responses, dataset):
            return brainbench.Score(0.0)

    report = conformance.check_metric(register("metrics", "lax", Lax, modality="fmri, meg"))
    assert failure(report, "options") == "an unknown option was accepted silently; check options against defaults"


# -- metadata and score validation --------------------------------------------------------------------
def test_metadata_problems_name_the_field():
    assert metadata.metadata_problems("models", MODEL_METADATA) == []
    assert metadata.metadata_problems("models", {**MODEL_METADATA, "parameters": "21M"}, complete=False) == [
        "metadata field 'parameters' = '21M', which should be a positive integer (exact number of parameters)"]
    assert metadata.metadata_problems("models", {"parameters": True, "checkpoints": ["init", 3]},
                                         complete=False) == [
        "metadata field 'parameters' = True, which should be a positive integer (exact number of parameters)",
        "metadata field 'checkpoints' = ['init', 3], which should be a list of strings (checkpoint names "
        "accepted after `@`)"]
    assert metadata.metadata_problems("models", {}, complete=False) == []
    assert metadata.metadata_problems("datasets", {"modality": "fmri", "spatial": "yes"}) == [
        "no metadata field 'citation' (the paper or source to cite)",
        "metadata field 'spatial' = 'yes', which should be true or false (true when the dataset gives region "
        "positions (spatial score))"]


def test_score_problem_and_expect_instance():
    assert guards.score_problem(brainbench.Score(0.3, 0.01, 10, {"a": [1.0]})) is None
    assert guards.score_problem(brainbench.Score(0.3)) == ("Score.error is NaN; give the standard error of "
                                                                "the score")
    assert guards.score_problem(brainbench.Score(0.3, 0.1, 0)) == "Score.n_units is 0, not a positive integer"
    assert guards.score_problem(brainbench.Score(math.nan), strict=False) is None
    assert guards.score_problem(brainbench.Score("0.3", 0.1, 1)) == "Score.value is str, not a number"
    spec = register("metrics", "typed", InSample, modality="fmri")
    with pytest.raises(BrainbenchError) as error:
        guards.expect_score(0.5, spec)
    assert str(error.value) == ("plugin 'plugin_typed' (plugin 'plugin_typed'): the score() of metric 'typed' "
                                "returned float, not a brainbench.Score")
    with pytest.raises(BrainbenchError) as error:
        guards.expect_score(brainbench.Score(0.5, 0.1, 3, {"r": np.float32(0.5)}), spec, "aggregate()")
    assert str(error.value).startswith("plugin 'plugin_typed' (plugin 'plugin_typed'): the aggregate() of metric "
                                       "'typed' is malformed: Score.detail is not JSON-serialisable")
    data_spec = register("datasets", "small", SmallData, modality="fmri", citation="tests")
    responses = SmallData(shift=5).responses("sub-01")
    assert guards.expect_responses(responses, data_spec, "sub-01", 25) is responses
    with pytest.raises(BrainbenchError) as error:
        guards.expect_responses(responses, data_spec, "sub-01", 20)
    assert str(error.value) == ("plugin 'plugin_small' (plugin 'plugin_small'): the responses('sub-01') of dataset "
                                "'small' is malformed: stimulus_index holds 24, but there are 20 stimuli")
    with pytest.raises(BrainbenchError, match=r"the factory of dataset 'small' returned dict, not a brainbench.Dataset$"):
        guards.expect_instance({}, brainbench.Dataset, data_spec)


def test_registration_refuses_malformed_metadata_naming_plugin_and_field():
    spec = register("models", "fine", lambda checkpoint=None: None, family="cnn", parameters=10)
    assert spec.metadata == {"family": "cnn", "parameters": 10}  # incomplete is allowed; `bench check` flags it
    module = types.ModuleType("plugin_sloppy")

    @brainbench.hookimpl
    def register_models(register):
        register("bad-size", lambda checkpoint=None: None, family="cnn", parameters="21M")

    module.register_models = register_models
    get_plugin_manager().register(module, name="plugin_sloppy")
    reset_registry()
    registry = get_registry()
    assert "bad-size" not in registry.names("models") and "fine" in registry.names("models")
    assert [(e.plugin, e.error) for e in registry.errors] == [("plugin_sloppy", (
        "BrainbenchError: plugin 'plugin_sloppy' registered model 'bad-size' with metadata field 'parameters' = "
        "'21M', which should be a positive integer (exact number of parameters)"))]


# -- the command ------------------------------------------------------------------------------------
def invoke(*args):
    return CliRunner().invoke(check_command, [str(a) for a in args])


def test_check_command_prints_a_checklist_and_exits_zero():
    result = invoke("dinov3-tiny@init", "encoding")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "model dinov3-tiny@init (built-in)"
    assert "  ✓ batch: an image gives the same activations alone as in a batch of 4" in lines
    assert "metric encoding (built-in)" in lines
    assert not any(line.startswith(("  ✗", "  –")) for line in lines)


def test_check_command_fails_on_a_broken_model_and_is_strict_on_request():
    register("models", "broken", lambda checkpoint=None: NaNs("broken", "init"), **MODEL_METADATA)
    result = invoke("broken")
    assert result.exit_code == 1
    assert "  ✗ forward: layer conv2 has NaN or infinite values for 4 of 4 images" in result.output
    assert result.output.rstrip().endswith("Error: 1 check failed")

    result = invoke("dinov3-small")  # default checkpoint: released weights, not on disk here
    assert result.exit_code == 0, result.output
    assert "  – build: not checked: no weights for dinov3-small" in result.output
    assert invoke("dinov3-small", "--strict").exit_code == 1
    assert invoke("dinov3-small", "--metadata-only", "--strict").exit_code == 0

    data = json.loads(invoke("dinov3-tiny", "--checkpoint", "init", "--set", "image_size=32", "--json").output)
    assert data[0]["ok"] and data[0]["name"] == "dinov3-tiny@init"
    assert data[0]["checks"][0] == {"name": "metadata", "status": "pass", "message": (
        "family, parameters, layers, training_data, objective and source are given and well-formed")}


def test_check_command_errors_are_one_sentence():
    result = invoke("dinov3-smal")
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: no model, dataset or metric is called 'dinov3-smal'; did you mean "
                                    "'dinov3-small'")
    result = invoke("encoding", "--set", "folds")
    assert result.exit_code == 2 and "use OPTION=VALUE" in result.output
    assert isinstance(check_command, click.Command)


def test_check_command_names_plugins_that_failed_to_load():
    module = types.ModuleType("plugin_frob")

    @brainbench.hookimpl
    def register_models(register):
        raise ImportError("plugin_frob needs the frobnicate library")

    module.register_models = register_models
    get_plugin_manager().register(module, name="plugin_frob")
    reset_registry()
    result = invoke("frob-net")
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: no model, dataset or metric is called 'frob-net'; plugin plugin_frob "
                                     "(plugin 'plugin_frob') failed to load: ImportError: plugin_frob needs the "
                                     "frobnicate library")

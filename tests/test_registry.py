"""The registry: name lookup with suggestions, duplicate and broken plugins, name syntax."""
from __future__ import annotations

import pytest

import brainbench
from brainbench.core.errors import BrainbenchError, DuplicateNameError, UnknownNameError
from brainbench.core.registry.discovery import DEFAULT_PLUGINS, get_plugin_manager
from brainbench.core.registry.specs import ModelRef, get_registry, reset_registry


def _build(checkpoint=None, **options):  # a model factory that is never called here
    raise AssertionError("factories are lazy: registering must not call them")


class ModelPlugin:
    """A plugin object registering the given ``(name, factory, metadata)`` models."""

    def __init__(self, *entries):
        self.entries = entries

    @brainbench.hookimpl
    def register_models(self, register):
        for name, factory, metadata in self.entries:
            register(name, factory, description=f"test model {name}", **metadata)


class RaisingPlugin:
    @brainbench.hookimpl
    def register_models(self, register):
        register("half-registered", _build, description="registered before the hook failed")
        raise RuntimeError("the hook exploded")


def registry_with(**plugins):
    """A fresh registry from the built-ins plus ``plugins`` (pluggy name -> object)."""
    pm = get_plugin_manager()
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    reset_registry()
    return get_registry()


# -- unknown names --------------------------------------------------------------------------

def test_close_name_suggests_the_closest_first():
    with pytest.raises(UnknownNameError) as info:
        get_registry().model("dinov3-smal")
    message = str(info.value)
    assert message.startswith("unknown model 'dinov3-smal'; did you mean 'dinov3-small'")
    assert message.endswith("?")
    assert isinstance(info.value, KeyError)  # still a KeyError for callers that catch that


def test_far_name_lists_every_registered_name():
    registry = get_registry()
    with pytest.raises(UnknownNameError) as info:
        registry.model("zzzz")
    message = str(info.value)
    assert "did you mean" not in message
    assert f"registered models: {', '.join(registry.names('models'))}" in message
    assert "bench list models" in message


def test_unknown_dataset_and_metric_names():
    registry = get_registry()
    with pytest.raises(UnknownNameError, match=r"unknown dataset 'synthetic-fmr'; did you mean 'synthetic-fmri'"):
        registry.dataset("synthetic-fmr")
    with pytest.raises(UnknownNameError, match=r"unknown metric 'encodng'; did you mean 'encoding'\?"):
        registry.metric("encodng")


def test_find_looks_in_every_kind():
    registry = get_registry()
    assert (registry.find("dinov3-tiny").kind, registry.find("dinov3-tiny").name) == ("models", "dinov3-tiny")
    assert registry.find("synthetic-meg").kind == "datasets"
    assert registry.find("encoding").kind == "metrics"
    with pytest.raises(UnknownNameError, match=r"no model, dataset or metric is called 'encodin'; did you mean 'encoding'\?"):
        registry.find("encodin")
    with pytest.raises(UnknownNameError) as info:
        registry.find("qqqqqq")
    assert str(info.value) == "no model, dataset or metric is called 'qqqqqq'"


# -- built-ins ------------------------------------------------------------------------------

def test_builtin_plugins_are_registered_with_source_built_in():
    registry = get_registry()
    assert registry.errors == []
    expected = {
        ("models", "dinov3-small"): "brainbench.plugins.models.dinov3",
        ("models", "dinov3-tiny"): "brainbench.plugins.models.dinov3",
        ("datasets", "synthetic-fmri"): "brainbench.plugins.datasets.synthetic",
        ("datasets", "synthetic-meg"): "brainbench.plugins.datasets.synthetic",
        ("metrics", "encoding"): "brainbench.plugins.metrics.encoding",
    }
    for (kind, name), plugin in expected.items():
        spec = registry.get(kind, name)
        assert spec.plugin == plugin
        assert spec.source == "built-in"
    assert set(expected.values()) <= set(DEFAULT_PLUGINS)
    as_json = registry.model("dinov3-small").to_json()
    assert as_json["kind"] == "model" and as_json["source"] == "built-in"
    assert as_json["metadata"]["parameters"] == 21_596_544
    assert {"synthetic-fmri", "synthetic-meg"} <= set(registry.names("datasets"))
    assert registry.names("models") == sorted(registry.specs["models"])


def test_a_plugin_object_adds_names_lazily():
    registry = registry_with(**{"extra-models": ModelPlugin(("extra-net", _build, {"family": "test"}))})
    spec = registry.model("extra-net")
    assert (spec.plugin, spec.source) == ("extra-models", "plugin 'extra-models'")
    assert spec.metadata == {"family": "test"}
    assert spec.description == "test model extra-net"
    assert "dinov3-small" in registry.names("models")  # the built-ins are still there


# -- duplicate and broken plugins -----------------------------------------------------------

def test_same_name_from_two_plugins_names_both():
    with pytest.raises(DuplicateNameError) as info:
        registry_with(**{
            "alpha-plugin": ModelPlugin(("shared-net", _build, {})),
            "beta-plugin": ModelPlugin(("shared-net", _build, {})),
        })
    message = str(info.value)
    assert "model 'shared-net' is registered twice" in message
    assert "'alpha-plugin'" in message and "'beta-plugin'" in message


def test_a_plugin_reusing_a_builtin_name_names_the_builtin():
    with pytest.raises(DuplicateNameError) as info:
        registry_with(**{"copycat": ModelPlugin(("dinov3-small", _build, {}))})
    message = str(info.value)
    assert "'brainbench.plugins.models.dinov3'" in message and "built-in" in message
    assert "'copycat'" in message


def test_a_raising_hook_is_reported_and_the_rest_still_resolves():
    registry = registry_with(**{"broken-plugin": RaisingPlugin(),
                                "fine-plugin": ModelPlugin(("fine-net", _build, {}))})
    assert [(e.plugin, e.source, e.error) for e in registry.errors] == [
        ("broken-plugin", "plugin 'broken-plugin'", "RuntimeError: the hook exploded")]
    assert registry.model("fine-net").plugin == "fine-plugin"
    assert registry.model("dinov3-small").source == "built-in"
    assert registry.dataset("synthetic-fmri").source == "built-in"


@pytest.mark.parametrize("name, factory, metadata, fragment", [
    ("MyNet", _build, {}, "invalid model name 'MyNet'"),
    ("my net", _build, {}, "invalid model name 'my net'"),
    ("", _build, {}, "invalid model name ''"),
    (42, _build, {}, "invalid model name 42"),
    ("valid-net", "not-a-function", {}, "model 'valid-net' with a factory that is not callable"),
    ("meta-net", _build, {"weights": object()}, "model 'meta-net' with metadata that is not JSON-serialisable"),
    ("set-net", _build, {"tags": {"a", "b"}}, "model 'set-net' with metadata that is not JSON-serialisable"),
])
def test_bad_registrations_are_rejected_naming_the_plugin(name, factory, metadata, fragment):
    registry = registry_with(**{"sloppy-plugin": ModelPlugin((name, factory, metadata))})
    assert len(registry.errors) == 1
    error = registry.errors[0]
    assert error.plugin == "sloppy-plugin"
    assert error.error.startswith("BrainbenchError: plugin 'sloppy-plugin' registered ")
    assert fragment in error.error
    assert name not in registry.specs["models"]
    assert "dinov3-small" in registry.names("models")


# -- NAME@CHECKPOINT ------------------------------------------------------------------------

@pytest.mark.parametrize("text, name, checkpoint", [
    ("dinov3-large@step-125000", "dinov3-large", "step-125000"),
    ("dinov3-small@init", "dinov3-small", "init"),
    ("dinov3-small", "dinov3-small", None),
    ("  dinov3-small@pretrained ", "dinov3-small", "pretrained"),
    ("convnext_v2+ft.1@Epoch.3", "convnext_v2+ft.1", "Epoch.3"),
])
def test_model_ref_parses(text, name, checkpoint):
    ref = ModelRef.parse(text)
    assert (ref.name, ref.checkpoint) == (name, checkpoint)
    assert str(ref) == text.strip()


@pytest.mark.parametrize("text, fragment", [
    ("", "invalid model name ''"),
    ("Bad", "invalid model name 'Bad'"),
    ("@init", "invalid model name '@init'"),
    ("a b", "invalid model name 'a b'"),
    ("a@", "invalid checkpoint in 'a@'"),
    ("a@b c", "invalid checkpoint in 'a@b c'"),
    ("a@b@c", "invalid checkpoint in 'a@b@c'"),
    ("a@-init", "invalid checkpoint in 'a@-init'"),
])
def test_model_ref_rejects(text, fragment):
    with pytest.raises(BrainbenchError) as info:
        ModelRef.parse(text)
    assert str(info.value).startswith(fragment)
    assert "dinov3-small@init" in str(info.value) or "step-125000" in str(info.value)

"""Kind 1 of issue 13: plugin options are declared, parsed once, and refused in one sentence before any work.

Cases bug-01, bug-05, bug-06, rel-40 … rel-45 and rel-52 of ../shared/cases, as tests.
"""
from __future__ import annotations

import json
import os

import pytest

from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.options import OptionError, coerce, declared, describe, key_options, parse_sets
from brainbench.core.registry.options import validate
from brainbench.core.registry import get_registry
from brainbench.core.store.results import ResultStore

from conftest import TINY_DATASET, TINY_MODEL
from cli_errors import invoke, one_line_error

TINY_SETS = [arg for key, value in TINY_DATASET.items() for arg in ("--set", f"dataset.{key}={value}")]


def stored_rows() -> list:
    if not os.path.exists(os.environ["BRAINBENCH_DB"]):
        return []
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        return store.query()


# -- the declarations -------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["models", "datasets", "metrics"])
def test_every_registered_option_has_a_declared_type(kind):
    registry = get_registry()
    for name in registry.names(kind):
        decl = declared(registry.get(kind, name))
        assert decl.table and not decl.open, name
        assert all(o.kind != "any" for o in decl.table.values()), (name, decl.table)


@pytest.mark.parametrize("kind, name, options, words", [
    ("metrics", "encoding", {"folds": "abc"}, ["folds=abc", "a whole number ≥ 2"]),           # rel-40
    ("metrics", "encoding", {"folds": 1}, ["folds=1", "a whole number ≥ 2"]),                  # rel-41
    ("datasets", "synthetic-fmri", {"n_images": -5}, ["n_images=-5", "whole number ≥ 10"]),   # rel-42
    ("metrics", "encoding", {"alphas": [0, 1, 10]}, ["alphas=[0, 1, 10]", "each > 0"]),        # bug-01
    ("metrics", "encoding", {"alphas": [-1, 0]}, ["alphas=[-1, 0]", "each > 0"]),              # rel-44
    ("models", "dinov3-tiny", {"seed": "abc"}, ["seed=abc", "a whole number ≥ 0"]),           # rel-45
    ("models", "dinov3-tiny", {"mean": "0.5,0.5"}, ["mean=0.5,0.5", "a list of 3 numbers"]),
    ("metrics", "spatial", {"alternative": "less"}, ["alternative=less", "two-sided, greater"]),
    ("datasets", "nsd", {"zscore": "maybe"}, ["zscore=maybe", "true or false"]),
])
def test_a_wrong_value_is_one_sentence_naming_the_option_and_what_it_accepts(kind, name, options, words):
    with pytest.raises(OptionError) as caught:
        coerce(get_registry().get(kind, name), options)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{kind[:-1]} {name!r} cannot use ")
    for word in words:
        assert word in message, message


def test_values_are_converted_to_the_declared_type():
    registry = get_registry()
    assert coerce(registry.metric("encoding"), {"alphas": "1,10,100", "folds": "3"}) == \
        {"alphas": [1.0, 10.0, 100.0], "folds": 3}
    assert coerce(registry.metric("encoding"), {"alphas": "[1, 10]"}) == {"alphas": [1.0, 10.0]}
    assert coerce(registry.model("dinov3-tiny"), {"mean": "0.5,0.5,0.5", "image_size": "64"}) == \
        {"mean": [0.5, 0.5, 0.5], "image_size": 64}
    assert coerce(registry.dataset("nsd"), {"regions": 44, "sessions": "all", "zscore": "false"}) == \
        {"regions": ["44"], "sessions": "all", "zscore": False}


def test_unknown_option_suggests_the_closest():
    with pytest.raises(OptionError, match="has no option 'fold'; did you mean 'folds'"):
        coerce(get_registry().metric("encoding"), {"fold": 3})


def test_defaults_spelled_out_make_the_same_key():
    registry = get_registry()
    tiny = registry.model("dinov3-tiny")  # its own image size is 64, mean/std ImageNet's
    assert key_options(tiny, {"image_size": 64, "mean": "0.485,0.456,0.406", "seed": "0"}) == {}
    assert key_options(tiny, {"image_size": 96}) == {"image_size": 96}
    assert key_options(registry.dataset("synthetic-fmri"), {"n_images": "300", "n_subjects": 2}) == {"n_subjects": 2}


def test_bench_info_shows_types_ranges_and_defaults():
    result = invoke("info", "encoding")
    assert result.exit_code == 0, result.output
    assert "folds: a whole number ≥ 2 (default: 5)" in result.stdout
    assert "alphas: a list of numbers" in result.stdout
    data = json.loads(invoke("info", "dinov3-tiny", "--json").stdout)
    assert data["option_types"]["image_size"] == {"type": "int", "default": 64, "accepts": "a whole number ≥ 16"}
    assert any(line.startswith("seed: ") for line in describe(get_registry().dataset("synthetic-meg")))


# -- one --set parser -------------------------------------------------------------------------

def test_both_spellings_and_both_list_forms_parse_alike():
    parsed = parse_sets(["metric.alphas=1,10", "metric:encoding.folds=3", "dataset.regions=[\"V1\", \"MT\"]"])
    assert parsed.general["metric"] == {"alphas": "1,10"}
    assert parsed.get("metric", "encoding") == {"alphas": "1,10", "folds": 3}
    assert parsed.get("metric", "spatial") == {"alphas": "1,10"}
    assert parsed.general["dataset"] == {"regions": ["V1", "MT"]}


def test_grid_validates_before_building_anything():
    registry = get_registry()
    selected = {"model": [registry.model("dinov3-tiny")], "dataset": [registry.dataset("synthetic-fmri")],
                "metric": [registry.metric("encoding"), registry.metric("spatial")]}
    with pytest.raises(OptionError, match="spatial.*n_permutations=-1"):
        validate(parse_sets(["metric:spatial.n_permutations=-1"]), selected)
    with pytest.raises(OptionError, match="no selected metric .* has option 'nope'"):
        validate(parse_sets(["metric.nope=1"]), selected)
    with pytest.raises(BrainbenchError, match="unknown metric 'encodin'"):
        validate(parse_sets(["metric:encodin.folds=3"]), selected)
    result = invoke("grid", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-x", "encoding", "--dry-run",
                    "--set", "metric:encoding.folds=1", *TINY_SETS)
    one_line_error(result, "metric 'encoding' cannot use folds=1")


# -- bench run: refused before any activation is extracted ----------------------------------------

@pytest.mark.parametrize("option, words", [
    ("metric.folds=abc", ["folds=abc"]), ("metric.folds=1", ["folds=1"]), ("dataset.n_images=-5", ["n_images=-5"]),
    ("metric.alphas=[0,1,10]", ["alphas"]), ("metric.alphas=[-1,0]", ["alphas"]), ("model.seed=abc", ["seed=abc"]),
    ("metric:encoding.folds=0", ["folds=0"]),
    # a layer is known from the model's config before it is built: refused before extraction too
    ("metric.layer=nope", ["option layer='nope' is not a layer of dinov3-tiny", "layer00, layer01"]),
])
def test_run_refuses_a_bad_option_before_any_work(option, words, tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("BRAINBENCH_HOME", str(home))
    result = invoke("run", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-q", *TINY_SETS, "--set", option)
    one_line_error(result, *words)
    assert not (home / "activations").exists()  # nothing extracted, not even the reference network
    assert stored_rows() == []


def test_comma_lists_are_accepted_and_stored_like_json_lists():  # bug-06
    comma = invoke("run", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-q", "-s", "sub-01", *TINY_SETS,
                   "--set", "metric.alphas=1,10,100", "--set", "model.mean=0.5,0.5,0.5", "--format", "json")
    assert comma.exit_code == 0, comma.output
    options = json.loads(comma.stdout)[0]["options"]
    assert options["metric"]["alphas"] == [1.0, 10.0, 100.0] and options["model"] == {"mean": [0.5, 0.5, 0.5]}
    again = invoke("run", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-q", "-s", "sub-01", *TINY_SETS,
                   "--set", "metric:encoding.alphas=[1, 10, 100]", "--set", "model.mean=[0.5, 0.5, 0.5]")
    assert again.exit_code == 0, again.output
    assert len(stored_rows()) == 2  # sub-01 and its aggregate, updated in place: one computation, one key


def test_spelling_out_a_default_updates_the_same_row():  # bug-05
    plain = invoke("run", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-q", "-s", "sub-01", *TINY_SETS)
    assert plain.exit_code == 0, plain.output
    spelled = invoke("run", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-q", "-s", "sub-01", *TINY_SETS,
                     "--set", "model.image_size=64", "--set", "dataset.n_subjects=3", "--set", "metric.folds=5")
    assert spelled.exit_code == 0, spelled.output
    rows = stored_rows()
    assert len(rows) == 2 and {r.subject for r in rows} == {"sub-01", "all"}
    assert json.loads(rows[0].options)["model"] == {}


def test_checkpoints_flag_with_a_named_checkpoint_is_refused():  # rel-52
    result = invoke("run", "-m", TINY_MODEL, "--checkpoints", "all", *TINY_SETS)
    one_line_error(result, "--checkpoints", "dinov3-tiny@init")
    assert stored_rows() == []

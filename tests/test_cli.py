"""The ``bench`` command end to end, in process (click's CliRunner), on the tiny synthetic data."""
from __future__ import annotations

import csv
import io
import json
import os

import click
import pytest
from click.testing import CliRunner

import brainbench
from brainbench.cli import main
from brainbench.core.store.results import ResultRow, ResultStore

from conftest import TINY_DATASET, TINY_MODEL

JSON_KEYS = {"model", "checkpoint", "dataset", "subject", "metric", "options", "score", "error", "n_units",
             "detail", "brainbench_version", "plugin_versions", "data_hash", "seed", "elapsed_s",
             "created_at", "updated_at"}
SUBJECTS = ["sub-01", "sub-02", "sub-03", "all"]
#: the --set options that make the synthetic dataset tiny
TINY_SETS = [arg for key, value in TINY_DATASET.items() for arg in ("--set", f"dataset.{key}={value}")]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def tiny_args(*extra):
    """`bench run` on the tiny model and data, without -q (for tests that read stderr)."""
    return ["run", "-m", TINY_MODEL, "-d", "synthetic-fmri", *extra, *TINY_SETS]


def stored_row(model: str, subject: str) -> ResultRow:
    """A row as another model's run would have stored it."""
    return ResultRow(model=model, checkpoint="init", dataset="synthetic-fmri", subject=subject, metric="encoding",
                     options="{}", score=0.3, error=0.01, n_units=10)


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """No Hugging Face cache, whatever this machine has downloaded before."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


def db_count() -> int:
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        return store.count()


def assert_one_line_error(result, *fragments, exit_code=1):
    """Shown as one sentence on stderr, with no traceback and no escaped exception."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- bench run ------------------------------------------------------------------------------

def test_run_stores_rows_prints_a_table_and_reuses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_HOME", str(tmp_path / "fresh-home"))  # an empty activation cache
    first = invoke(*tiny_args())
    assert first.exit_code == 0, first.output
    assert "dinov3-tiny@init × synthetic-fmri: extracted activations in" in first.stderr
    assert "(5 layers × 40 stimuli, pooling=mean)" in first.stderr
    assert f"saved 4 rows to {os.environ['BRAINBENCH_DB']}" in first.stderr
    assert db_count() == 4

    lines = first.stdout.strip().splitlines()
    assert lines[0].split() == ["model", "dataset", "metric", "subject", "score", "n", "n", "units", "elapsed"]
    assert set(lines[1]) == {"-", " "}
    assert len(lines) == 2 + 4
    for line, subject in zip(lines[2:], SUBJECTS):
        cells = line.split()
        assert cells[:4] == ["dinov3-tiny@init", "synthetic-fmri", "encoding", subject]
        score, plus_minus, error = cells[4:7]
        assert plus_minus == "±" and 0 < float(score) < 1 and float(error) > 0
        if subject == "all":  # the subjects the aggregate used, then 12 regions × 40 voxels per subject
            assert cells[7:9] == ["3", "1440"]
        else:
            assert cells[7] == "480"
        assert cells[-1:] == ["s"] and float(cells[-2]) >= 0

    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        before = {r.subject: (r.score, r.created_at) for r in store.query()}

    second = invoke(*tiny_args())
    assert second.exit_code == 0, second.output
    assert "dinov3-tiny@init × synthetic-fmri: reused cached activations" in second.stderr
    assert "extracted" not in second.stderr
    assert db_count() == 4
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        after = {r.subject: (r.score, r.created_at) for r in store.query()}
    assert after == before  # same scores (deterministic), rows kept with their creation time


def test_quiet_run_prints_only_the_result(tiny_cli_args):
    result = invoke("run", *tiny_cli_args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("model ")


def test_run_json_output(tiny_cli_args):
    result = invoke("run", *tiny_cli_args, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list) and [r["subject"] for r in rows] == SUBJECTS
    for row in rows:
        assert JSON_KEYS <= set(row), JSON_KEYS - set(row)
        assert (row["model"], row["checkpoint"], row["dataset"], row["metric"]) == (
            "dinov3-tiny", "init", "synthetic-fmri", "encoding")
        assert row["options"]["dataset"] == TINY_DATASET
        assert row["options"]["metric"]["folds"] == 5 and row["options"]["pooling"] == "mean"
        assert row["brainbench_version"] == brainbench.__version__
        assert set(row["plugin_versions"].values()) == {"built-in"}
        assert row["seed"] == 0 and len(row["data_hash"]) == 64
        assert isinstance(row["score"], float) and isinstance(row["detail"], dict)
    aggregate = rows[-1]
    assert aggregate["n_units"] == sum(r["n_units"] for r in rows[:3])
    assert aggregate["detail"]["subjects"] == {r["subject"]: r["score"] for r in rows[:3]}
    assert aggregate["score"] == pytest.approx(sum(r["score"] for r in rows[:3]) / 3)


def test_run_csv_output_and_one_subject(tiny_cli_args):
    result = invoke("run", *tiny_cli_args, "--format", "csv", "--subject", "sub-02")
    assert result.exit_code == 0, result.output
    records = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["subject"] for r in records] == ["sub-02", "all"]
    assert records[0]["model"] == "dinov3-tiny" and records[0]["checkpoint"] == "init"
    assert float(records[0]["score"]) == pytest.approx(float(records[1]["score"]))  # mean of one subject
    assert json.loads(records[0]["options"])["dataset"] == TINY_DATASET
    assert int(records[0]["n_units"]) == 480
    assert db_count() == 2


def test_rows_that_differ_only_in_options_show_those_options(tiny_cli_args):
    assert invoke("run", *tiny_cli_args).exit_code == 0
    single = invoke("results", "-s", "all").stdout.splitlines()
    assert "options" not in single[0]  # one row per model, dataset, metric and subject: no column
    assert invoke("run", *tiny_cli_args, "--set", "model.seed=2").exit_code == 0
    lines = invoke("results", "-s", "all").stdout.splitlines()
    assert lines[0].split()[-1] == "options" and len(lines) == 4
    assert sorted(line.split()[-1] for line in lines[2:]) == ["model.seed=2", "model.seed=default"]


def test_subject_all_scores_every_subject_as_the_default_does(tiny_cli_args):
    result = invoke("run", *tiny_cli_args, "--format", "csv", "--subject", "all")
    assert result.exit_code == 0, result.output
    assert [r["subject"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["sub-01", "sub-02", "sub-03", "all"]


# -- bench run: mistakes are one sentence -----------------------------------------------------

def test_unknown_model_far_from_everything_lists_the_models():
    line = assert_one_line_error(invoke("run", "--model", "nope"), "unknown model 'nope'", "registered models:")
    assert "dinov3-small" in line and "bench list models" in line


def test_misspelt_model_did_you_mean():
    assert_one_line_error(invoke("run", "--model", "dinov3-gaint@init"),
                          "unknown model 'dinov3-gaint'; did you mean 'dinov3-giant'")


def test_misspelt_dataset_did_you_mean():
    assert_one_line_error(invoke("run", "-m", TINY_MODEL, "--dataset", "synthetic-fmr"),
                          "unknown dataset 'synthetic-fmr'; did you mean 'synthetic-fmri'")


def test_invalid_model_syntax():
    assert_one_line_error(invoke("run", "-m", "DINOv3-small"), "invalid model name 'DINOv3-small'")


def test_unknown_subject(tiny_cli_args):
    assert_one_line_error(invoke("run", *tiny_cli_args, "--subject", "sub-09"),
                          "dataset 'synthetic-fmri' has no subject 'sub-09'")
    assert_one_line_error(invoke("run", *tiny_cli_args, "--subject", "alice"),
                          "has no subject 'alice'; its subjects: sub-01, sub-02, sub-03")
    assert db_count() == 0


def test_unknown_metric_option_suggests_the_right_one(tiny_cli_args):
    assert_one_line_error(invoke("run", *tiny_cli_args, "--set", "metric.fold=3"),
                          "metric 'encoding' has no option 'fold'; did you mean 'folds'?")


def test_unknown_model_option_is_one_sentence(tiny_cli_args):
    assert_one_line_error(invoke("run", *tiny_cli_args, "--set", "model.sed=1"),
                          "model 'dinov3-tiny' has no option 'sed'", "seed")


def test_unknown_dataset_option_is_one_sentence(tiny_cli_args):
    assert_one_line_error(invoke("run", *tiny_cli_args, "--set", "dataset.n_imgs=40"), "n_imgs", "n_images")
    assert db_count() == 0


@pytest.mark.parametrize("bad", ["bad", "metric.folds", "nothing.folds=3", "metric.=3"])
def test_malformed_set_is_a_usage_error(bad):
    result = invoke("run", "--set", bad)
    assert result.exit_code == 2, result.output
    assert "Usage: " in result.stderr
    assert "Invalid value for --set" in result.stderr and "TARGET.OPTION=VALUE" in result.stderr
    assert "Traceback" not in result.output


def test_pretrained_model_without_weights_says_where_to_put_them(empty_hf_cache):
    result = invoke("run", "-m", "dinov3-small", *TINY_SETS)
    assert_one_line_error(result, "no weights for dinov3-small", "$BRAINBENCH_WEIGHTS",
                          "dinov3-vits16-pretrain-lvd1689m", "dinov3-small@init")
    assert db_count() == 0


def test_test_architecture_has_no_pretrained_weights():
    assert_one_line_error(invoke("run", "-m", "dinov3-tiny", *TINY_SETS), "dinov3-tiny", "weights",
                          "dinov3-tiny@init")
    assert db_count() == 0


def test_checkpoint_that_is_not_on_disk(empty_hf_cache):
    assert_one_line_error(invoke("run", "-m", "dinov3-small@step-9", *TINY_SETS), "dinov3-small", "'step-9'",
                          "$BRAINBENCH_WEIGHTS")
    assert db_count() == 0


# -- bench results ------------------------------------------------------------------------

def test_results_filters_by_glob_and_subject(tiny_cli_args):
    assert invoke("run", *tiny_cli_args).exit_code == 0
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:  # a second model's rows
        for subject in ("sub-01", "all"):
            store.save(stored_row("convnext-tiny", subject))

    everything = json.loads(invoke("results", "--format", "json").stdout)
    assert len(everything) == 6

    dinov3 = json.loads(invoke("results", "--model", "dinov3-*", "--format", "json").stdout)
    assert [(r["model"], r["subject"]) for r in dinov3] == [("dinov3-tiny", s) for s in sorted(SUBJECTS)]

    aggregates = invoke("results", "--subject", "all")
    assert aggregates.exit_code == 0, aggregates.output
    lines = aggregates.stdout.strip().splitlines()
    assert [line.split()[:4] for line in lines[2:]] == [
        ["convnext-tiny@init", "synthetic-fmri", "encoding", "all"],
        ["dinov3-tiny@init", "synthetic-fmri", "encoding", "all"]]

    both = list(csv.DictReader(io.StringIO(invoke("results", "-m", "dinov3-*", "-s", "all", "--format", "csv").stdout)))
    assert [(r["model"], r["subject"]) for r in both] == [("dinov3-tiny", "all")]

    none = invoke("results", "--model", "resnet-*")
    assert none.exit_code == 0 and len(none.stdout.strip().splitlines()) == 2  # header and rule only
    assert none.stderr.strip() == "no stored score matches these filters; stored models: convnext-tiny, dinov3-tiny"
    assert json.loads(invoke("results", "--model", "resnet-*", "--format", "json").stdout) == []

    # NAME@CHECKPOINT, as bench run takes it and the table shows it
    spelled = json.loads(invoke("results", "-m", "dinov3-tiny@init", "-s", "all", "--format", "json").stdout)
    assert [(r["model"], r["checkpoint"], r["subject"]) for r in spelled] == [("dinov3-tiny", "init", "all")]
    assert invoke("results", "-m", "dinov3-tiny@step-5", "--format", "json").stdout.strip() == "[]"
    clash = invoke("results", "-m", "dinov3-tiny@init", "--checkpoint", "step-5")
    assert clash.exit_code == 2 and "name two checkpoints" in clash.output


def test_results_reads_the_db_given_by_flag(tmp_path):
    other = tmp_path / "other.db"
    with ResultStore(other) as store:
        store.save(stored_row("flagged-model", "sub-01"))
    rows = json.loads(invoke("results", "--db", other, "--format", "json").stdout)
    assert [r["model"] for r in rows] == ["flagged-model"]


def test_results_without_a_database_says_run_first():
    assert not os.path.exists(os.environ["BRAINBENCH_DB"])
    assert_one_line_error(invoke("results"), f"no results database at {os.environ['BRAINBENCH_DB']}",
                          "run `bench run` first")
    assert not os.path.exists(os.environ["BRAINBENCH_DB"])  # asking did not create it


# -- list, info, help ------------------------------------------------------------------------

def test_list_and_info():
    listing = invoke("list")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    assert lines[0] == "models:" and "datasets:" in lines and "metrics:" in lines
    assert "failed to load" not in listing.stdout
    small = next(line for line in lines if line.strip().startswith("dinov3-small "))
    assert small.endswith("[21.6M params]")

    data = json.loads(invoke("list", "--json").stdout)
    assert set(data) == {"models", "datasets", "metrics", "errors"} and data["errors"] == []
    assert "encoding" in [m["name"] for m in data["metrics"]]
    assert set(json.loads(invoke("list", "datasets", "--json").stdout)) == {"datasets", "errors"}

    info = invoke("info", "dinov3-large")
    assert info.exit_code == 0, info.output
    assert info.stdout.splitlines()[0] == "dinov3-large (model, from built-in)"
    assert "  parameters: 303129600" in info.stdout.splitlines()
    assert json.loads(invoke("info", "encoding", "--json").stdout)["kind"] == "metric"
    assert_one_line_error(invoke("info", "dinov3-larg"), "did you mean 'dinov3-large'")
    assert invoke("list", "modells").exit_code == 2


def _leaf_commands(group, path=()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # `bench results` runs on its own too
                yield [*path, name]
            yield from _leaf_commands(command, (*path, name))
        else:
            yield [*path, name]


LEAF_COMMANDS = list(_leaf_commands(main))


def test_the_documented_commands_exist():
    assert {"list", "info", "run", "results", "config"} <= {" ".join(c) for c in LEAF_COMMANDS}


@pytest.mark.parametrize("command", [[], *LEAF_COMMANDS], ids=lambda c: " ".join(c) or "bench")
def test_every_help_has_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    example = result.stdout.split("Example", 1)[1]
    assert "bench " in example.split("Options:")[0]  # the example is a command line


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert brainbench.__version__ in result.stdout

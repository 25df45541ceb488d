"""Every ``bench`` command, given a corrupt input of each file kind, ends in one ``Error: …`` line and a
non-zero exit, without a traceback; ``--debug`` (or ``BRAINBENCH_DEBUG=1``) adds the traceback.

Also kind 8 of issue 13 (bounded inputs: case rel-91).
"""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.store.results import ResultRow, ResultStore

from conftest import TINY_DATASET, TINY_MODEL
from nsd_fixture import build_mini_nsd
from things_meg_fixture import build_things_meg

TINY_SETS = [arg for key, value in TINY_DATASET.items() for arg in ("--set", f"dataset.{key}={value}")]


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    """One corrupt file of each kind a user hands brainbench, and where it is."""
    root = tmp_path_factory.mktemp("corrupt")
    (root / "not-sqlite.db").write_text("hello, I am a CSV file\n")
    (root / "config.toml").write_text("nsd_root = [unclosed\n")
    (root / "result.json").write_text('{"schema_version": 1, "rows": [')
    (root / "junk.pth").write_text("this is not a checkpoint at all")
    (root / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    nsd = build_mini_nsd(root / "nsd", subjects={"subj01": ("nii",)}).root
    stimuli = nsd / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
    os.truncate(stimuli, stimuli.stat().st_size // 2)
    meg = build_things_meg(root / "meg")
    meg.epochs_path("P1").write_bytes(b"\x00" * 2048)  # not a FIF file
    return {"root": root, "nsd": nsd, "meg": meg}


def _cases(c):
    root, nsd, meg = c["root"], c["nsd"], c["meg"]
    db, toml, result, pth, st = (root / n for n in ("not-sqlite.db", "config.toml", "result.json", "junk.pth",
                                                    "junk.safetensors"))
    weights = ["--set", "dataset.n_images=40"]
    return {
        # the results database
        "run/db": (["run", "-m", TINY_MODEL, *TINY_SETS, "-q", "--db", db], {}, "not a SQLite"),
        "grid/db": (["grid", "-m", TINY_MODEL, "-d", "synthetic-fmri", "-q", "--db", db], {}, "not a SQLite"),
        "results/db": (["results", "--db", db], {}, "not a SQLite"),
        "results-failed/db": (["results", "--failed", "--db", db], {}, "not a SQLite"),
        "export/db": (["results", "export", "--out", root / "out", "--db", db], {}, "not a SQLite"),
        "import/db": (["results", "import", root / "none", "--db", db], {}, "not a SQLite"),
        "leaderboard/db": (["leaderboard", "build", "--out", root / "site", "--db", db], {}, ""),
        # the config file
        "run/config": (["run", "-m", TINY_MODEL, *TINY_SETS], {"BRAINBENCH_CONFIG": str(toml)}, "not valid TOML"),
        "config/config": (["config"], {"BRAINBENCH_CONFIG": str(toml)}, "not valid TOML"),
        "data-check/config": (["data", "check", "nsd"], {"BRAINBENCH_CONFIG": str(toml)}, "problem"),
        # a result file
        "import/result": (["results", "import", result], {}, ""),
        "validate/result": (["results", "validate", result], {}, ""),
        # weights
        "run/pth": (["run", "-m", "dinov3-tiny@junk", "--set", f"model.weights={pth}", *weights], {}, str(pth)),
        "run/safetensors": (["run", "-m", "dinov3-tiny@junk", "--set", f"model.weights={st}", *weights], {}, str(st)),
        "grid/pth": (["grid", "-m", "dinov3-tiny@junk", "-d", "synthetic-fmri", "-x", "encoding",
                      "--set", f"model.weights={pth}"], {}, "jobs failed"),  # each job's failure names the file
        "check/pth": (["check", "dinov3-tiny@junk", "--set", f"weights={pth}"], {}, "check"),
        # NSD's image file
        "run/nsd": (["run", "-m", TINY_MODEL, "-d", "nsd", "--nsd-root", nsd, "--set", "dataset.sessions=2"], {},
                    "nsd_stimuli.hdf5"),
        "grid/nsd": (["grid", "-m", TINY_MODEL, "-d", "nsd", "-x", "encoding", "--nsd-root", nsd,
                      "--set", "dataset.sessions=2"], {}, "nsd_stimuli.hdf5"),
        "data-check/nsd": (["data", "check", "nsd", "--nsd-root", nsd, "--set", "sessions=2"], {}, "problem"),
        "check/nsd": (["check", "nsd", "--strict", "--set", f"root={nsd}", "--set", "sessions=2"], {}, "check"),
        # THINGS-MEG's epochs
        "run/meg": (["run", "-m", TINY_MODEL, "-d", "things-meg", "--things-meg-root", meg.root,
                     "--things-images-root", meg.images_root], {}, "preprocessed_P1-epo.fif"),
        "data-check/meg": (["data", "check", "things-meg", "--things-meg-root", meg.root,
                            "--things-images-root", meg.images_root], {}, "problem"),
    }


CASES = ["run/db", "grid/db", "results/db", "results-failed/db", "export/db", "import/db", "leaderboard/db",
         "run/config", "config/config", "data-check/config", "import/result", "validate/result", "run/pth",
         "run/safetensors", "grid/pth", "check/pth", "run/nsd", "grid/nsd", "data-check/nsd", "check/nsd",
         "run/meg", "data-check/meg"]


@pytest.mark.parametrize("case", CASES)
def test_every_command_ends_a_corrupt_input_in_one_error_line(corrupt, case):
    args, env, fragment = _cases(corrupt)[case]
    result = CliRunner().invoke(main, [str(a) for a in args], env=env)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    last = [line for line in result.output.strip().splitlines() if line.strip()][-1]
    assert last.startswith("Error: ") and fragment in last, result.output


def test_debug_flag_and_variable_show_the_traceback(corrupt):
    args = ["results", "--db", str(corrupt["root"] / "not-sqlite.db")]
    plain = CliRunner().invoke(main, args)
    assert "Traceback" not in plain.output
    for debug_args, env in ((["--debug", *args], {}), (args, {"BRAINBENCH_DEBUG": "1"})):
        result = CliRunner().invoke(main, debug_args, env=env)
        assert result.exit_code == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert result.stderr.strip().splitlines()[-1] == plain.stderr.strip().splitlines()[-1]


def test_an_unexpected_error_is_one_sentence_that_asks_for_a_bug_report(monkeypatch):
    from brainbench.core.store import formatting

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("division by zero")

    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        store.save(ResultRow(model="m", checkpoint="init", dataset="d", subject="all", metric="encoding",
                             options="{}", score=0.5, error=0.1, n_units=3))
    monkeypatch.setattr("brainbench.core.commands.results.render", broken)
    assert formatting.render is not broken
    result = CliRunner().invoke(main, ["results"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == ("Error: unexpected ZeroDivisionError: division by zero (a bug in brainbench or "
                                     "a plugin; run again with --debug for the traceback and report it)")


# -- kind 8: bounded inputs ------------------------------------------------------------------------

def test_a_result_file_over_the_size_limit_is_refused_before_parsing(tmp_path, monkeypatch):  # rel-91
    big = tmp_path / "huge.json"
    big.write_text(json.dumps({"rows": [{"detail": {"junk": [0.5] * 300_000}}]}))  # ~1.5 MB
    monkeypatch.setenv("BRAINBENCH_MAX_RESULT_MB", "1")
    for args in (["results", "import", str(big)], ["results", "validate", str(big)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"{big} is 1.4 MB, over the 1 MB limit for a result file" in result.output, result.output
    with ResultStore(os.environ["BRAINBENCH_DB"]) as store:
        assert store.count() == 0
    monkeypatch.setenv("BRAINBENCH_MAX_RESULT_MB", "lots")
    result = CliRunner().invoke(main, ["results", "validate", str(big)])
    assert result.stderr.strip().splitlines()[-1] == \
        "Error: BRAINBENCH_MAX_RESULT_MB='lots' is not a positive number of megabytes"

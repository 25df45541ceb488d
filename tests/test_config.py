"""Settings: flag > environment > config file > default, each with its source."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.config import SETTINGS, Config, Setting, config_path
from brainbench.core.errors import BrainbenchError

from conftest import TINY_DATASET


@pytest.fixture
def config_file():
    """The per-test config file that conftest points BRAINBENCH_CONFIG at (absent until written)."""
    return Path(os.environ["BRAINBENCH_CONFIG"])


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *fragments):
    """A BrainbenchError shown as one ``Error: …`` line on stderr, no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # handled, not an escaped exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_default_when_nothing_is_set(config_file):
    assert not config_file.exists()
    assert Config().settings["device"] == Setting("device", "auto", "default")
    assert Config().settings["nsd_root"] == Setting("nsd_root", None, "default")


def test_precedence_flag_over_env_over_file_over_default(config_file, monkeypatch):
    config_file.write_text('device = "cuda:2"\nnsd_root = "/data/nsd"\n')
    from_file = f"config {config_file}"
    assert Config().settings["device"] == Setting("device", "cuda:2", from_file)
    assert Config().settings["things_meg_root"] == Setting("things_meg_root", None, "default")

    monkeypatch.setenv("BRAINBENCH_DEVICE", "cpu")
    assert Config().settings["device"] == Setting("device", "cpu", "env BRAINBENCH_DEVICE")
    assert Config().settings["nsd_root"] == Setting("nsd_root", "/data/nsd", from_file)  # others still from file

    config = Config(device="cuda:0", db=None)  # None means "flag not given"
    assert config.settings["device"] == Setting("device", "cuda:0", "flag")
    assert config.settings["db"].source == "env BRAINBENCH_DB"
    assert config.get("device") == "cuda:0"


def test_unknown_override_is_a_programming_error():
    with pytest.raises(TypeError, match="unknown settings"):
        Config(devise="cpu")


def test_db_default_is_home_results_db(monkeypatch, tmp_path):
    monkeypatch.delenv("BRAINBENCH_DB")
    home = Path(os.environ["BRAINBENCH_HOME"])
    config = Config()
    assert config.db_path == home / "results.db"
    assert config.cache_dir == home / "activations"
    db_row = next(s for s in config.rows() if s.name == "db")
    assert db_row == Setting("db", str(home / "results.db"), "default (<home>/results.db)")

    # the default follows home wherever home comes from, here the config file
    monkeypatch.delenv("BRAINBENCH_HOME")
    Path(os.environ["BRAINBENCH_CONFIG"]).write_text(f'home = "{tmp_path / "elsewhere"}"\n')
    assert Config().db_path == tmp_path / "elsewhere" / "results.db"


def test_config_file_defaults_to_home(monkeypatch):
    monkeypatch.delenv("BRAINBENCH_CONFIG")
    assert config_path() == Path(os.environ["BRAINBENCH_HOME"]) / "config.toml"


def test_empty_home_variable_means_default_home_for_the_config_file_too(monkeypatch):
    monkeypatch.delenv("BRAINBENCH_CONFIG")
    monkeypatch.setenv("BRAINBENCH_HOME", "")
    default_home = Path(SETTINGS["home"][1]).expanduser()
    assert Config().home == default_home
    assert config_path() == default_home / "config.toml"


def test_bench_config_shows_values_and_sources(config_file, monkeypatch):
    config_file.write_text('nsd_root = "/data/nsd"\n')
    monkeypatch.setenv("BRAINBENCH_DEVICE", "cpu")
    result = invoke("config")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"config file: {config_file}"
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[1:]}
    assert list(rows) == list(SETTINGS)
    assert rows["device"] == ["cpu", "env BRAINBENCH_DEVICE"]
    assert rows["nsd_root"] == ["/data/nsd", f"config {config_file}"]
    assert rows["weights"] == ["-", "default"]

    data = json.loads(invoke("config", "--json").stdout)
    assert data["config_file"] == str(config_file)
    assert data["settings"]["device"] == {"value": "cpu", "source": "env BRAINBENCH_DEVICE"}
    assert data["settings"]["nsd_root"] == {"value": "/data/nsd", "source": f"config {config_file}"}
    assert data["settings"]["weights"] == {"value": None, "source": "default"}
    assert data["settings"]["db"] == {"value": os.environ["BRAINBENCH_DB"], "source": "env BRAINBENCH_DB"}


def test_bench_config_says_when_the_file_is_absent(config_file):
    result = invoke("config")
    assert result.stdout.splitlines()[0] == f"config file: {config_file} (absent)"


def test_invalid_toml_names_the_file(config_file):
    config_file.write_text("device = cpu without quotes\n")
    with pytest.raises(BrainbenchError) as info:
        Config()
    assert str(info.value).startswith(f"config file {config_file} is not valid TOML")
    assert_one_line_error(invoke("config"), str(config_file), "not valid TOML")
    assert_one_line_error(invoke("config", "--json"), str(config_file))


def test_unknown_key_names_the_file_and_the_key(config_file):
    config_file.write_text('device = "cpu"\nnsd_path = "/data/nsd"\n')
    with pytest.raises(BrainbenchError) as info:
        Config()
    message = str(info.value)
    assert str(config_file) in message and "'nsd_path'" in message and "nsd_root" in message
    assert_one_line_error(invoke("config"), str(config_file), "unknown keys ['nsd_path']")


def test_weights_setting_from_the_config_file_is_used(config_file, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # nothing cached
    weights = tmp_path / "weights"
    weights.mkdir()
    config_file.write_text(f'weights = "{weights}"\n')
    assert json.loads(invoke("config", "--json").stdout)["settings"]["weights"]["value"] == str(weights)
    args = ["run", "-m", "dinov3-small", "-q"]
    for key, value in TINY_DATASET.items():
        args += ["--set", f"dataset.{key}={value}"]
    result = invoke(*args)
    assert result.exit_code == 1
    # the message must point at the configured folder, not at an unset $BRAINBENCH_WEIGHTS
    assert str(weights / "dinov3-vits16-pretrain-lvd1689m") in result.stderr

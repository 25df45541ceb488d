"""A real third-party plugin, installed as a distribution on sys.path and found through
the ``brainbench`` entry-point group, exactly as ``pip install some-plugin`` would."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.registry.discovery import reset_plugin_manager
from brainbench.core.store.results import ResultStore

from conftest import TINY_DATASET

PLUGIN_SOURCE = '''
"""An external brainbench plugin: one small convolutional network."""
import torch

import brainbench


class TinyConvNet(brainbench.VisionModel):
    image_size = 32

    def __init__(self, checkpoint, seed=0):
        if checkpoint not in (None, "init"):
            raise brainbench.core.errors.BrainbenchError(f"ext-tinyconv has no checkpoint {checkpoint!r}")
        super().__init__("ext-tinyconv", "init")
        self.seed = seed
        self.network = None

    @property
    def layer_names(self):
        return ["conv1", "conv2", "pooled"]

    def fingerprint(self):
        return {"seed": self.seed, "architecture": "conv4-conv8"}

    def load(self, device):
        torch.manual_seed(self.seed)
        self.network = torch.nn.ModuleList([
            torch.nn.Conv2d(3, 4, kernel_size=4, stride=4),
            torch.nn.Conv2d(4, 8, kernel_size=2, stride=2),
        ]).eval().to(device)

    def forward_layers(self, pixel_values):
        first = torch.relu(self.network[0](pixel_values))   # (batch, 4, 8, 8)
        second = torch.relu(self.network[1](first))         # (batch, 8, 4, 4)
        return [first, second, second.mean(dim=(2, 3))]     # the last one already pooled


@brainbench.hookimpl
def register_models(register):
    register("ext-tinyconv", TinyConvNet, description="Two-conv test network from an external plugin",
             family="external-test", parameters=244, checkpoints=["init"])
'''

BROKEN_SOURCE = 'raise ImportError("bb_broken needs the frobnicate library")\n'


def _install(root: Path, module: str, dist: str, version: str, source: str) -> None:
    """Write a package and its ``.dist-info`` (what pip leaves in site-packages) under ``root``."""
    (root / module).mkdir()
    (root / module / "__init__.py").write_text(source)
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[brainbench]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site folder on sys.path holding bb_extplugin (works) and bb_broken (fails to import)."""
    root = tmp_path / "site"
    root.mkdir()
    _install(root, "bb_extplugin", "bb-extplugin", "0.1", textwrap.dedent(PLUGIN_SOURCE))
    _install(root, "bb_broken", "bb-broken", "0.2", BROKEN_SOURCE)
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("BRAINBENCH_LOAD_PLUGINS")
    for module in ("bb_extplugin", "bb_broken"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    reset_plugin_manager()
    yield root
    for module in ("bb_extplugin", "bb_broken"):
        sys.modules.pop(module, None)
    reset_plugin_manager()


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_entry_point_plugin_is_listed_with_its_distribution(site):
    result = invoke("list", "models")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "ext-tinyconv" in line)
    assert "Two-conv test network from an external plugin" in line
    assert line.endswith("(from bb-extplugin 0.1)")  # where a third-party model comes from
    builtin = next(line for line in result.stdout.splitlines() if line.strip().startswith("dinov3-small "))
    assert "(from" not in builtin  # the built-ins are untouched

    data = json.loads(invoke("list", "models", "--json").stdout)
    spec = next(m for m in data["models"] if m["name"] == "ext-tinyconv")
    assert spec["source"] == "bb-extplugin 0.1"
    assert spec["metadata"] == {"family": "external-test", "parameters": 244, "checkpoints": ["init"]}
    assert next(m for m in data["models"] if m["name"] == "dinov3-small")["source"] == "built-in"


def test_entry_point_plugin_info(site):
    result = invoke("info", "ext-tinyconv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ext-tinyconv (model, from bb-extplugin 0.1)"
    assert "family: external-test" in result.stdout
    as_json = json.loads(invoke("info", "ext-tinyconv", "--json").stdout)
    assert as_json["source"] == "bb-extplugin 0.1" and as_json["kind"] == "model"


def test_entry_point_model_is_scored_and_stored(site, tmp_path):
    args = ["run", "-m", "ext-tinyconv@init", "-d", "synthetic-fmri", "-q", "--format", "json"]
    for key, value in TINY_DATASET.items():
        args += ["--set", f"dataset.{key}={value}"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["subject"] for r in rows] == ["sub-01", "sub-02", "sub-03", "all"]
    for row in rows:
        assert (row["model"], row["checkpoint"], row["dataset"]) == ("ext-tinyconv", "init", "synthetic-fmri")
        assert -1 <= row["score"] <= 1
        assert row["plugin_versions"]["bb_extplugin"] == "bb-extplugin 0.1"
    assert set(rows[0]["detail"]["per_layer"]) == {"conv1", "conv2", "pooled"}
    with ResultStore(tmp_path / "results.db") as store:
        stored = store.query(model="ext-tinyconv")
    assert len(stored) == 4
    assert {r.subject: r.score for r in stored} == {r["subject"]: r["score"] for r in rows}


def test_plugin_that_fails_to_import_is_reported_and_the_rest_lists(site):
    result = invoke("list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "plugins that failed to load:" in lines
    assert "  bb_broken (bb-broken): ImportError: bb_broken needs the frobnicate library" in lines
    assert any(line.strip().startswith("dinov3-small ") for line in lines)
    assert any(line.strip().startswith("ext-tinyconv ") for line in lines)

    errors = json.loads(invoke("list", "--json").stdout)["errors"]
    assert errors == [{"plugin": "bb_broken", "source": "bb-broken",
                       "error": "ImportError: bb_broken needs the frobnicate library"}]


def test_load_plugins_allow_list(site, monkeypatch):
    monkeypatch.setenv("BRAINBENCH_LOAD_PLUGINS", "other")
    reset_plugin_manager()
    result = invoke("list")
    assert result.exit_code == 0, result.output
    assert "ext-tinyconv" not in result.stdout
    assert "failed to load" not in result.stdout and "bb_broken" not in result.stdout
    assert "dinov3-small" in result.stdout

    monkeypatch.setenv("BRAINBENCH_LOAD_PLUGINS", " bb_extplugin ,other")
    reset_plugin_manager()
    result = invoke("list")
    assert "ext-tinyconv" in result.stdout
    assert "bb_broken" not in result.stdout


def test_plugin_is_found_by_the_installed_bench_command(site):
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINBENCH_LOAD_PLUGINS", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    bench = Path(sys.executable).parent / "bench"
    done = subprocess.run([str(bench), "list", "models", "--json"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    sources = {m["name"]: m["source"] for m in data["models"]}
    assert sources["ext-tinyconv"] == "bb-extplugin 0.1"
    assert sources["dinov3-small"] == "built-in"
    assert [e["plugin"] for e in data["errors"]] == ["bb_broken"]

"""`bench new`: the generated packages are working plugins that install with `pip install -e`,
show up in `bench list` at once, and pass `bench check` as generated."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from brainbench.core.authoring import conformance, scaffold
from brainbench.core.commands.authoring import new as new_command
from brainbench.core.errors import BrainbenchError
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry.specs import get_registry, reset_registry

PLUGINS = {"model": "my-model", "dataset": "my-data", "metric": "my-metric"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The three generated packages, made once: kind → package folder."""
    root = tmp_path_factory.mktemp("plugins")
    return {kind: scaffold.new_plugin(kind, name, root) for kind, name in PLUGINS.items()}


def test_names_derive_from_the_registered_name():
    names = scaffold.PluginNames.from_name("model", "my-model")
    assert (names.module, names.dist, names.class_name, names.check_name) == (
        "brainbench_my_model", "brainbench-my-model", "MyModel", "my-model@init")
    assert scaffold.PluginNames.from_name("metric", "rsa.v2").module == "brainbench_rsa_v2"
    with pytest.raises(BrainbenchError, match=r"^invalid model name 'My_Model': start with a lower-case letter"):
        scaffold.PluginNames.from_name("model", "My_Model")
    with pytest.raises(BrainbenchError, match=r"^cannot make a 'benchmark' plugin; choose one of model, dataset, metric$"):
        scaffold.PluginNames.from_name("benchmark", "x")


def test_the_package_has_an_entry_point_a_module_a_test_and_a_readme(generated):
    root = generated["model"]
    assert root.name == "brainbench-my-model"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "brainbench_my_model/__init__.py", "brainbench_my_model/plugin.py",
                     "pyproject.toml", "tests/test_brainbench_my_model.py"]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "brainbench-my-model"
    assert project["project"]["entry-points"]["brainbench"] == {"brainbench_my_model": "brainbench_my_model.plugin"}
    assert project["tool"]["setuptools"]["packages"] == ["brainbench_my_model"]
    for package in generated.values():
        for path in package.rglob("*.*"):
            assert "{{" not in path.read_text(), path
    readme = (generated["dataset"] / "README.md").read_text()
    assert "bench check my-data" in readme and "bench run -m dinov3-small@init -d my-data" in readme


def _import_plugin(package: Path):
    """Import a generated plugin module from its file and register it, as its entry point would."""
    module_name = f"{package.name.replace('-', '_')}.plugin"
    spec = importlib.util.spec_from_file_location(module_name, package / package.name.replace("-", "_") / "plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    get_plugin_manager().register(module, name=package.name.replace("-", "_"))
    reset_registry()
    return module


@pytest.mark.parametrize("kind", list(PLUGINS))
def test_generated_plugins_pass_the_checklist_as_generated(generated, kind):
    _import_plugin(generated[kind])
    names = scaffold.PluginNames.from_name(kind, PLUGINS[kind])
    report = conformance.check(names.check_name)
    assert report.ok and report.count("skip") == 0, report.render()
    test_file = generated[kind] / "tests" / f"test_{names.module}.py"  # the generated test, run as pytest would
    namespace = {"__name__": "generated_test"}
    exec(compile(test_file.read_text(), str(test_file), "exec"), namespace)
    namespace["test_conformance"]()


def test_generated_model_loads_saved_weights(generated, tmp_path):
    module = _import_plugin(generated["model"])
    weights = tmp_path / "mine.pt"
    torch.manual_seed(3)
    torch.save(module.Network().state_dict(), weights)
    report = conformance.check("my-model@mine", options={"weights": str(weights)})
    assert report.ok and report.count("skip") == 0, report.render()
    with pytest.raises(BrainbenchError, match=r"^my-model has no checkpoint 'mine'; use my-model@init"):
        get_registry().model("my-model").factory("mine")
    with pytest.raises(BrainbenchError, match=r"^model 'my-model' has no option 'sead'; its options: seed, weights$"):
        get_registry().model("my-model").factory(None, sead=1)


def test_generated_dataset_reads_files_and_reports_missing_ones(generated, tmp_path):
    module = _import_plugin(generated["dataset"])
    demo = module.MyData()
    np.save(tmp_path / "stimuli.npy", demo.stimuli.images)
    report = conformance.check("my-data", options={"root": str(tmp_path)})
    assert report.checks[1].status == "skip"
    assert report.checks[1].message == f"not checked: {tmp_path}/positions.json is missing (and 1 more; see " \
                                       "`bench data check my-data`)"
    responses = demo.responses("sub-01")
    np.savez(tmp_path / "sub-07.npz", data=responses.data, region=responses.units["region"])
    (tmp_path / "positions.json").write_text(json.dumps({k: v.tolist() for k, v in demo.positions.items()}))
    report = conformance.check("my-data", options={"root": str(tmp_path)})
    assert report.ok and report.count("skip") == 0, report.render()
    assert "sub-07: 60 rows" in report.render()


def test_new_command_lists_files_and_next_steps(tmp_path):
    result = CliRunner().invoke(new_command, ["metric", "cca", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"created {tmp_path}/brainbench-cca/"
    assert "  brainbench_cca/plugin.py" in lines
    assert f"  pip install -e {tmp_path}/brainbench-cca" in lines
    assert "  bench check cca" in lines

    again = CliRunner().invoke(new_command, ["metric", "cca", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert again.output == (f"Error: {tmp_path}/brainbench-cca already exists and is not empty; choose another "
                            "name or use --force\n")
    assert CliRunner().invoke(new_command, ["metric", "cca", "--dir", str(tmp_path), "--force"]).exit_code == 0
    taken = CliRunner().invoke(new_command, ["model", "dinov3-small", "--dir", str(tmp_path)])
    assert taken.output == ("Error: a model called 'dinov3-small' is already registered (by built-in); choose "
                            "another name\n")


def _throwaway_venv(path: Path) -> Path:
    """A venv that sees the project's packages (torch, brainbench…) but installs into its own site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = path / "lib" / version / "site-packages"
    project_site = sysconfig.get_paths()["purelib"]
    (site_packages / "_brainbench_project.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")
    return path / "bin" / "python"


@pytest.mark.slow
def test_generated_packages_install_with_pip_e_and_are_listed_and_checked(generated, tmp_path):
    python = _throwaway_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("BRAINBENCH_LOAD_PLUGINS", "PYTHONPATH")}
    env.update(HF_HUB_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    editable = [arg for package in generated.values() for arg in ("-e", str(package))]
    pip = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", *editable], env=env, capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr

    listing = subprocess.run([str(python), "-m", "brainbench.cli", "list", "--json"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    sources = {entry["name"]: entry["source"] for kind in ("models", "datasets", "metrics") for entry in data[kind]}
    assert sources["my-model"] == "brainbench-my-model 0.1.0"
    assert sources["my-data"] == "brainbench-my-data 0.1.0"
    assert sources["my-metric"] == "brainbench-my-metric 0.1.0"
    assert sources["dinov3-small"] == "built-in" and data["errors"] == []

    checked = subprocess.run([str(python), "-m", "brainbench.core.commands.authoring", "check", *PLUGINS.values()],
                             env=env, capture_output=True, text=True, timeout=180)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "model my-model@init (brainbench-my-model 0.1.0)" in checked.stdout
    assert "✗" not in checked.stdout and "–" not in checked.stdout
    assert checked.stdout.count("failed, 0 skipped") == 3


def test_commands_attach_to_the_bench_group():
    """What cli.py does with `main.add_command(new)` and `main.add_command(check)`."""
    from brainbench.cli import BenchGroup
    from brainbench.core.commands.authoring import check as check_command

    group = BenchGroup(name="bench", commands=[new_command, check_command])
    result = CliRunner().invoke(group, ["check", "encoding"])
    assert result.exit_code == 0 and "metric encoding (built-in)" in result.output, result.output
    result = CliRunner().invoke(group, ["new", "model", "Bad"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: invalid model name 'Bad': start with a lower-case letter")
    for command in ("new", "check"):
        help_text = CliRunner().invoke(group, [command, "--help"]).output
        assert "Example" in help_text and f"bench {command}" in help_text

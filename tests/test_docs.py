"""The README's examples work as written."""
import re
import types
from pathlib import Path

from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry.specs import reset_registry

from conftest import TINY_DATASET

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_model_plugin_runs(tmp_path):
    (source,) = _python_blocks()
    module = types.ModuleType("my_plugin")
    exec(compile(source, "README.md", "exec"), module.__dict__)
    get_plugin_manager().register(module, name="my_plugin")
    reset_registry()
    runner = CliRunner()
    listing = runner.invoke(main, ["list", "models"])
    assert "tiny-cnn" in listing.output
    args = ["run", "-m", "tiny-cnn", "-d", "synthetic-fmri", "-q", "--format", "json"]
    for key, value in TINY_DATASET.items():
        args += ["--set", f"dataset.{key}={value}"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert '"model": "tiny-cnn"' in result.output


def test_readme_quickstart_matches_the_makefile():
    text = README.read_text()
    makefile = (README.parent / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in text
        assert re.search(rf"^{target}:", makefile, flags=re.M)
    assert "make test" in (README.parent / ".ci" / "run").read_text()

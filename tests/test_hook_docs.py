"""The plugin documentation is complete and true: docs/hooks.md is generated from core/contract/hookspecs.py and
up to date, every hook is documented, and every example in docs/plugins.md passes the conformance checklist."""
from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from brainbench.core.authoring import conformance, scaffold
from brainbench.core.contract import hookspecs
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.registry.specs import reset_registry

DOCS = Path(__file__).resolve().parents[1] / "docs"
PLUGINS_MD = DOCS / "plugins.md"
REGENERATE = "python -m brainbench.core.authoring.scaffold hooks"
#: example file in docs/plugins.md → the name it registers
EXAMPLES = {"timm_plugin.py": "timm-resnet18", "transformers_plugin.py": "vit-mini", "torch_plugin.py": "my-cnn",
            "dataset_plugin.py": "my-data", "metric_plugin.py": "layer-average"}


def examples() -> dict[str, str]:
    """File name → source of every ```python block of docs/plugins.md that starts with ``# NAME.py``."""
    return dict(re.findall(r"```python\n# (\S+\.py)\n(.*?)```", PLUGINS_MD.read_text(), flags=re.S))


def test_every_hook_is_documented():
    assert scaffold.undocumented_hooks() == [], "give every hook in core/contract/hookspecs.py a docstring"
    assert list(scaffold.hookspecs()) == ["register_models", "register_datasets", "register_metrics",
                                          "register_model_prefixes"]


def test_hooks_md_is_up_to_date():
    text = (DOCS / "hooks.md").read_text()
    assert text == scaffold.hook_reference(), f"docs/hooks.md is stale; run `{REGENERATE}`"
    for name in scaffold.hookspecs():
        assert f"## `{name}(register)`" in text


def test_a_new_undocumented_hook_is_caught(monkeypatch):
    def register_benchmarks(register):
        pass

    register_benchmarks.brainbench_spec = {}
    monkeypatch.setattr(hookspecs, "register_benchmarks", register_benchmarks, raising=False)
    assert scaffold.undocumented_hooks() == ["register_benchmarks"]
    assert "## `register_benchmarks(register)`\n\n*Undocumented.*" in scaffold.hook_reference()
    assert (DOCS / "hooks.md").read_text() != scaffold.hook_reference()


def test_plugins_md_covers_every_hook_and_kind():
    text = PLUGINS_MD.read_text()
    for name in scaffold.hookspecs():
        assert f"`{name}`" in text
    assert "(hooks.md)" in text
    for heading in ("### (a) Any timm model", "### (b) Any transformers vision model", "### (c) A custom torch module",
                    "## Adding a dataset", "## Adding a metric", "## `bench check`: the conformance checklist"):
        assert f"\n{heading}\n" in text
    assert "at most 25 million parameters\n(`conformance.TEST_MAX_PARAMETERS`" in text
    assert conformance.TEST_MAX_PARAMETERS == 25_000_000
    assert set(examples()) == set(EXAMPLES)


@pytest.mark.parametrize("filename", list(EXAMPLES))
def test_docs_example_passes_the_checklist(filename):
    source = examples()[filename]
    assert len([line for line in source.splitlines() if line.strip()]) <= 21, "keep the examples to about 20 lines"
    module = types.ModuleType(filename[:-3])
    exec(compile(source, f"docs/plugins.md:{filename}", "exec"), module.__dict__)
    get_plugin_manager().register(module, name=module.__name__)
    reset_registry()
    report = conformance.check(EXAMPLES[filename])
    assert report.ok and report.count("skip") == 0, report.render()

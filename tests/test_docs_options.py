"""Every ``--set`` option the README and docs/*.md name is one the plugin declares."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from brainbench.core.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: ``metric.OPTION=``, ``dataset:NAME.OPTION=`` … as written after ``--set`` or in prose
NAMED = re.compile(r"(?<![\w.])(metric|dataset|model)(?::([A-Za-z0-9_@-]+))?\.([a-z_][a-z0-9_]*)=")
KINDS = {"metric": "metrics", "dataset": "datasets", "model": "models"}


def declared_options(kind: str, name: str) -> set[str] | None:
    """The options a plugin declares: its ``options`` metadata, else what its factory accepts (None: unknown)."""
    spec = get_registry().get(kind, name)
    if isinstance(spec.metadata.get("options"), (list, tuple)):
        return set(spec.metadata["options"])
    factory = spec.factory
    if inspect.isfunction(factory) and getattr(factory, "option_types", None):  # the built-in models' make_factory
        return set(factory.option_types)
    if inspect.isclass(factory):
        names = set()
        for cls in factory.__mro__:
            init = cls.__dict__.get("__init__")
            if init is not None:
                names |= {p.name for p in inspect.signature(init).parameters.values()
                          if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"}
        return names
    return None


def named_options():
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().splitlines(), 1):
            for kind, name, option in NAMED.findall(line):
                yield pytest.param(kind, name or None, option, id=f"{doc.name}:{number}:{kind}.{option}")


@pytest.mark.parametrize("kind, name, option", list(named_options()))
def test_an_option_named_in_the_docs_exists(kind, name, option):
    registry = get_registry()
    names = [name] if name else registry.names(KINDS[kind])
    known = [declared_options(KINDS[kind], n) for n in names]
    assert any(option in k for k in known if k is not None), \
        f"{kind}{':' + name if name else ''}.{option}: no {kind} plugin declares option {option!r}"


def test_the_docs_name_options_at_all():
    assert len(list(named_options())) > 20  # the pattern still matches how the docs write options

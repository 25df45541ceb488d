"""Contributor tooling: ``bench new`` (a ready-to-edit plugin package) and the generated hook reference.

:func:`new_plugin` writes, from the templates in ``core/authoring/templates/``::

    brainbench-NAME/
        pyproject.toml                 the `brainbench` entry point; `pip install -e .` makes `bench` find it
        README.md                      install, check, use
        brainbench_NAME/__init__.py
        brainbench_NAME/plugin.py      the hook and a working example to edit
        tests/test_brainbench_NAME.py  the conformance checklist as a test

:func:`hook_reference` renders ``docs/hooks.md`` from the docstrings of ``core/contract/hookspecs.py``
and the metadata schema of ``core/authoring/conformance.py``; ``python -m brainbench.core.authoring.scaffold
hooks`` rewrites it (``tests/test_hook_docs.py`` fails when it is stale).
"""
from __future__ import annotations

import inspect
import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import brainbench
from ..contract.metadata import SCHEMA
from ..errors import BrainbenchError
from ..registry.specs import get_registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
HOOKS_DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
KINDS = {"model": "models", "dataset": "datasets", "metric": "metrics"}
_NAME = re.compile(r"^[a-z][a-z0-9._+-]*$")
_WHAT = {"model": "a small CNN with random or saved weights",
         "dataset": "demo fMRI data in memory, or your files with `--set dataset.root=DIR`",
         "metric": "a cross-validated ridge readout"}


@dataclass(frozen=True)
class PluginNames:
    """The names one plugin package uses, all derived from the registered name."""

    kind: str
    name: str  #: registered name, e.g. ``my-model``
    module: str  #: import package and entry-point name, e.g. ``brainbench_my_model``
    dist: str  #: distribution and folder name, e.g. ``brainbench-my-model``
    class_name: str  #: e.g. ``MyModel``

    @classmethod
    def from_name(cls, kind: str, name: str) -> "PluginNames":
        if kind not in KINDS:
            raise BrainbenchError(f"cannot make a {kind!r} plugin; choose one of {', '.join(KINDS)}")
        if not _NAME.match(name):
            raise BrainbenchError(f"invalid {kind} name {name!r}: start with a lower-case letter, then use "
                                  "lower-case letters, digits and '-._+' (e.g. 'my-model')")
        ident = re.sub(r"[^a-z0-9]+", "_", name).strip("_")
        class_name = "".join(part.capitalize() for part in ident.split("_"))
        if not class_name.isidentifier() or keyword.iskeyword(class_name):
            class_name = f"Plugin{class_name}"
        return cls(kind, name, f"brainbench_{ident}", f"brainbench-{ident.replace('_', '-')}", class_name)

    @property
    def check_name(self) -> str:
        return f"{self.name}@init" if self.kind == "model" else self.name

    @property
    def run_example(self) -> str:
        return {"model": f"bench run -m {self.name}@init -d synthetic-fmri",
                "dataset": f"bench run -m dinov3-small@init -d {self.name}",
                "metric": f"bench run -m dinov3-small@init -d synthetic-fmri -x {self.name}"}[self.kind]


def render(template: str, names: PluginNames) -> str:
    """A template's text with its ``{{placeholders}}`` filled in."""
    values = {"name": names.name, "module": names.module, "dist": names.dist, "Class": names.class_name,
              "kind": names.kind, "check_name": names.check_name, "run_example": names.run_example,
              "what": _WHAT[names.kind], "brainbench_version": brainbench.__version__.split("+")[0]}
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def plugin_files(names: PluginNames) -> dict[str, str]:
    """Relative path → content of every file of the package."""
    return {
        "pyproject.toml": render("pyproject.toml.tmpl", names),
        "README.md": render("README.md.tmpl", names),
        f"{names.module}/__init__.py": render("init.py.tmpl", names),
        f"{names.module}/plugin.py": render(f"{names.kind}.py.tmpl", names),
        f"tests/test_{names.module}.py": render("test_plugin.py.tmpl", names),
    }


def new_plugin(kind: str, name: str, directory: str | Path = ".", *, force: bool = False) -> Path:
    """Write a ready-to-edit plugin package for a ``model``, ``dataset`` or ``metric`` called ``name``.

    Parameters
    ----------
    kind : ``model``, ``dataset`` or ``metric``
    name : the name to register (lower-case letters, digits and ``-._+``)
    directory : where the package folder ``brainbench-NAME`` is created
    force : overwrite the files of an existing folder

    Returns
    -------
    Path
        The package folder.

    Raises
    ------
    BrainbenchError
        The name is invalid or taken by a registered plugin, or the folder exists (without ``force``).
    """
    names = PluginNames.from_name(kind, name)
    registry = get_registry()
    if name in registry.specs[KINDS[kind]]:
        owner = registry.specs[KINDS[kind]][name]
        raise BrainbenchError(f"a {kind} called {name!r} is already registered (by {owner.source}); "
                              "choose another name")
    root = Path(directory) / names.dist
    if root.exists() and any(root.iterdir()) and not force:
        raise BrainbenchError(f"{root} already exists and is not empty; choose another name or use --force")
    for relative, content in plugin_files(names).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


# -- hook reference ------------------------------------------------------------------------------
def hookspecs() -> dict[str, object]:
    """Name → function of every hook specification, in source order."""
    from ..contract import hookspecs as module

    specs = {name: f for name, f in vars(module).items() if callable(f) and hasattr(f, "brainbench_spec")}
    return dict(sorted(specs.items(), key=lambda item: item[1].__code__.co_firstlineno))


def undocumented_hooks() -> list[str]:
    """Hook specifications without a docstring."""
    return [name for name, f in hookspecs().items() if not (f.__doc__ or "").strip()]


def _schema_table(kind: str) -> list[str]:
    rows = ["| field | type | required | meaning |", "|---|---|---|---|"]
    types = {"text": "string", "count": "positive integer", "flag": "boolean", "texts": "list of strings"}
    rows += [f"| `{f.name}` | {types[f.type]} | {'yes' if f.required else 'no'} | {f.meaning} |" for f in SCHEMA[kind]]
    return rows


def _markdown(docstring: str) -> str:
    """A numpydoc/reST docstring as Markdown: section underlines become bold titles, ``::`` a colon."""
    text = re.sub(r"^(\w[\w ]*)\n-{3,}$", r"**\1**\n", inspect.cleandoc(docstring), flags=re.M)
    text = re.sub(r"^::\n\n", "", text, flags=re.M)
    return re.sub(r"::$", ":", text, flags=re.M)


def hook_reference() -> str:
    """``docs/hooks.md``: the hook specifications' docstrings and the metadata schema, as Markdown."""
    from ..contract import hookspecs as module

    lines = ["# Hook reference", "",
             "<!-- Generated from core/contract/hookspecs.py and core/authoring/conformance.py by "
             "`python -m brainbench.core.authoring.scaffold hooks`; do not edit by hand. -->", "",
             _markdown(module.__doc__ or ""), ""]
    for name, function in hookspecs().items():
        lines += [f"## `{name}{inspect.signature(function)}`", "",
                  _markdown(function.__doc__ or "*Undocumented.*"), ""]
        kind = name.removeprefix("register_")
        if kind in SCHEMA:
            lines += [f"Metadata of {kind} (checked when registered: types; by `bench check`: completeness):", "",
                      *_schema_table(kind), ""]
    return "\n".join(lines).rstrip() + "\n"


def write_hook_reference(path: Path = HOOKS_DOC) -> Path:
    """Rewrite ``docs/hooks.md`` from :func:`hook_reference`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(hook_reference(), encoding="utf-8")
    return path


if __name__ == "__main__":  # python -m brainbench.core.authoring.scaffold hooks
    if sys.argv[1:] != ["hooks"]:
        sys.exit("usage: python -m brainbench.core.authoring.scaffold hooks   (rewrites docs/hooks.md)")
    print(f"wrote {write_hook_reference()}")

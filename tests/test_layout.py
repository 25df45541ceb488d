"""The layout stays true: every import inside brainbench follows the allowed arrows.

Each file belongs to a *part* (``core/store/``, ``cli.py``, ``plugins/`` …); a part may import
only the parts listed for it in :data:`ALLOWED` (README, "Layout"), so imports run one way, ground
floor first: errors, files → config, compute → contract → registry → store → pipeline → grid,
authoring → commands → ``cli.py``. Imports inside functions count too. The tests also check that
every brainbench import names a module that exists, and that no file uses an old path that
``core/_moved.py`` only forwards.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the repository root is the package `brainbench`

# Part → what it may import (module-path prefixes under `brainbench`; "" is the face, `brainbench`
# itself). A part may always import itself. Keep in step with README's Layout section.
GROUND = ("core.errors", "core.files", "core._lazy", "core.failures", "core.fetch")
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": ("core._moved",),  # core/__init__.py installs the forwarding of old paths
    "core.errors": (),
    "core.fetch": ("core.errors",),  # S3 transfers for the dataset plugins' `bench data fetch`
    "core.failures": ("core.errors",),  # a library's error on a user's file → one sentence; --debug
    "core.files": (),
    "core._lazy": (),
    "core._moved": (),
    "core.config": ("core.errors", "core.files"),
    "core.content_hash": ("core.errors", "core.config"),  # a file's SHA-256, remembered by path+size+mtime+inode
    "core.compute": (*GROUND,),
    "core.contract": (*GROUND, "core.compute.stats", "core.compute.images"),
    "core.registry": (*GROUND, "core.contract"),
    "core.store": (*GROUND, "", "core.config", "core.contract", "core.registry",
                   "core.compute.cortical"),  # tidy tables name Glasser parcels
    "core.pipeline": (*GROUND, "", "core.config", "core.compute", "core.contract", "core.registry", "core.store"),
    "core.grid": (*GROUND, "", "core.config", "core.contract", "core.registry", "core.store", "core.pipeline"),
    "core.authoring": (*GROUND, "", "core.contract", "core.registry", "core.pipeline.activations"),
    # command modules: anything in core (each lazily where it is heavy), never each other
    "core.commands.common": (*GROUND,),
    "core.commands.flags": (*GROUND, "core.config"),
    "core.commands": (*GROUND, "", "core.config", "core.compute", "core.contract", "core.registry", "core.store",
                      "core.pipeline", "core.grid", "core.authoring", "core.commands.common", "core.commands.flags",
                      "plugins.models.training", "plugins.models.features"),
    "cli": ("core.commands", "leaderboard.commands", "core.failures"),
    # the notebook API: what `bench run` and `bench results` do, as functions returning DataFrames
    "api": (*GROUND, "", "core.config", "core.compute", "core.contract", "core.registry", "core.store",
            "core.pipeline", "core.commands.run"),
    "": (*GROUND, "core", "core.contract"),
    "plugins": (*GROUND, "", "core.config", "core.content_hash", "core.compute", "core.contract", "plugins"),
    # the one exception: synthetic data plant their truth in a reference model's activations
    "plugins.datasets.synthetic": (*GROUND, "", "core.config", "core.compute", "core.contract", "plugins",
                                   "core.registry", "core.pipeline.activations"),
    # the developmental data read a trained tiny-dino checkpoint's activations (same reason)
    "plugins.datasets.synthetic_dev": (*GROUND, "", "core.config", "core.compute", "core.contract", "plugins",
                                       "core.registry", "core.pipeline.activations"),
    # imported features are checked against a dataset's stimuli, which the registry builds
    "plugins.models.features": (*GROUND, "", "core.config", "core.compute", "core.contract", "plugins",
                                "core.registry"),
    "leaderboard": (*GROUND, "", "core.config", "core.contract.checkpoints", "core.registry", "core.store",
                    "core.compute.cortical",
                    "core.commands.common", "leaderboard"),
}


#: parts whose modules may not import each other (only what ALLOWED lists)
APART = {"core.commands"}


def _module_of(path: Path) -> str:
    """``core/store/results.py`` → ``core.store.results``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """Whether ``name`` (under brainbench; "" is the face) is a module or package in the tree."""
    base = ROOT.joinpath(*name.split(".")) if name else ROOT
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def part_of(module: str) -> str:
    """The most specific entry of :data:`ALLOWED` that ``module`` belongs to."""
    candidates = [p for p in ALLOWED if module == p or module.startswith(p + ".") or p == ""]
    return max(candidates, key=len)


def _local(name: str | None) -> str | None:
    """``brainbench.core.x`` → ``core.x``; ``brainbench`` → "" (the face); another package → None."""
    if name == "brainbench":
        return ""
    return name.removeprefix("brainbench.") if name and name.startswith("brainbench.") else None


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every brainbench module that ``source`` imports: (line, module under brainbench; "" = the face)."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _local(a.name)) for a in node.names if _local(a.name) is not None]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            elif (target := _local(node.module)) is None:
                continue
            # `from package import module` imports that module; `from module import name`, the module
            modules = [f"{target}.{a.name}".lstrip(".") for a in node.names]
            found += [(node.lineno, m) for m in dict.fromkeys(m if _is_module(m) else target for m in modules)]
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that cross the allowed arrows, one sentence each."""
    own = part_of(module)
    allowed = ALLOWED[own]
    problems = []
    for line, target in imports(module, source, is_package):
        if not _is_module(target):
            problems.append(f"{module}:{line} imports brainbench.{target}, which does not exist")
            continue
        same_part = part_of(target) == own and own not in APART
        if same_part or any(target == a or (a and target.startswith(a + ".")) for a in allowed):
            continue
        problems.append(f"{module}:{line} ({own or 'the face'}) imports brainbench.{target} "
                        f"({part_of(target) or 'the face'}), which is not an allowed arrow")
    return problems


def _source_files() -> list[Path]:
    # skipped folders are not walked at all (THINGSvision's environment holds gigabytes)
    skip = {"tests", "benchmarks", "docs", ".venv", ".venv-thingsvision", "site", "build"}
    files = list(ROOT.glob("*.py"))
    for child in ROOT.iterdir():
        if child.is_dir() and not child.is_symlink() and child.name not in skip:
            files += child.rglob("*.py")
    return sorted(p for p in files if "__pycache__" not in p.parts)


def test_every_import_follows_the_allowed_arrows():
    problems = []
    for path in _source_files():
        problems += violations(_module_of(path), path.read_text(), path.name == "__init__.py")
    assert problems == [], "\n".join(problems)


def test_every_file_belongs_to_a_part_with_rules():
    # a new top-level module, core/ module or core/ subpackage must be given its line in ALLOWED
    def orphan(module: str) -> bool:  # falls back on the face's or core/__init__'s rules
        return part_of(module) in ("", "core") and module not in ("", "core")

    orphans = [str(p.relative_to(ROOT)) for p in _source_files() if orphan(_module_of(p))]
    assert orphans == [], f"give {orphans} a line in ALLOWED (tests/test_layout.py) and in README's Layout"


def _defined_names(module: str) -> set[str]:
    """The names ``from module import NAME`` can take: top-level definitions, imports, lazy exports, submodules."""
    base = ROOT.joinpath(*module.split(".")) if module else ROOT
    path = base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")
    names = {p.stem for p in base.glob("*.py")} | {p.name for p in base.iterdir() if (p / "__init__.py").is_file()} \
        if path.name == "__init__.py" else set()
    statements = list(ast.parse(path.read_text()).body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.If, ast.Try)):
            statements += node.body + node.orelse + getattr(node, "handlers", []) + getattr(node, "finalbody", [])
        elif isinstance(node, ast.ExceptHandler):
            statements += node.body
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).partition(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
            if isinstance(node.value, ast.Dict) and any(getattr(t, "id", "") == "_EXPORTS" for t in targets):
                names |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
    return names


def test_every_imported_name_exists():
    # `from brainbench.x import name` where x has no `name`: e.g. a function that moved in a merge
    problems = []
    for path in [*_source_files(), *(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        module = _module_of(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or any(a.name == "*" for a in node.names):
                continue
            if node.level:
                base = package.split(".") if package else []
                target = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            elif node.module == "brainbench" or (node.module or "").startswith("brainbench."):
                target = node.module.removeprefix("brainbench").lstrip(".")
            else:
                continue
            if not _is_module(target):
                continue  # reported by test_every_import_follows_the_allowed_arrows
            missing = [a.name for a in node.names if a.name not in _defined_names(target)]
            problems += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n} from brainbench.{target}, which has "
                         "no such name" for n in missing]
    assert problems == [], "\n".join(problems)


def test_no_import_circle():
    # module → the brainbench modules it imports (also inside functions); no module may reach itself
    graph = {}
    for path in _source_files():
        module = _module_of(path)
        graph[module] = {t for _, t in imports(module, path.read_text(), path.name == "__init__.py") if t != module}
    circles, done = [], set()

    def visit(module, trail):
        if module in trail:
            circles.append(" → ".join(trail[trail.index(module):] + [module]))
            return
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, trail + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert circles == []


@pytest.mark.parametrize("module, source", [
    ("core.contract.metric", "from ..pipeline.runner import run\n"),  # a lower floor importing a higher one
    ("core.registry.discovery", "def reset():\n    from . import specs\n    from ..store import results\n"),
    ("core.commands.run", "from .grid import grid\n"),  # command modules do not import each other
    ("core.compute.ridge", "import brainbench.core.registry\n"),
    ("plugins.metrics.encoding", "from brainbench.core.pipeline.runner import run\n"),
    ("core.store.results", "from .no_such_module import x\n"),  # e.g. a relative import left behind by a move
])
def test_a_crossing_import_is_caught(module, source):
    assert violations(module, source)


@pytest.mark.parametrize("module, source", [
    ("core.store.results", "from ..registry import get_registry\nfrom ..errors import BrainbenchError\n"),
    ("core.commands.run", "from .common import BATCH_SIZE\nfrom .flags import _parse_sets\nfrom ..pipeline.runner import run\n"),
    ("plugins.datasets.synthetic", "from brainbench.core.pipeline.activations import extract\n"),
])
def test_an_allowed_import_passes(module, source):
    assert violations(module, source) == []


def test_no_file_uses_an_old_path():
    from brainbench.core._moved import MOVED

    old = tuple(MOVED)
    users = []
    files = [*_source_files(), *(ROOT / "tests").glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]
    for path in [f for f in files if f.name != "test_layout.py"]:  # this file imports one on purpose
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            users += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                      if n in old or n.startswith(tuple(o + "." for o in old))]
    assert users == []


def test_old_paths_forward_with_a_warning():
    import importlib
    import sys

    from brainbench.core.authoring import conformance

    sys.modules.pop("brainbench.core.conformance", None)
    with pytest.warns(DeprecationWarning, match="brainbench.core.authoring.conformance"):
        old = importlib.import_module("brainbench.core.conformance")
    assert old is conformance
    from brainbench.core.conformance import check  # what every generated plugin test does

    assert check is conformance.check


FACES = ["brainbench", *(f"brainbench.core.{p.name}" for p in sorted((ROOT / "core").iterdir())
                         if (p / "__init__.py").is_file() and p.name != "commands")]


@pytest.mark.parametrize("face", FACES)
def test_every_public_name_of_a_face_resolves(face):
    import importlib

    module = importlib.import_module(face)
    assert module.__all__, f"{face} exports nothing"
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def _run_fresh(code: str) -> None:
    """Run ``code`` in a new interpreter (nothing imported yet); its assertion errors fail the test."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert done.returncode == 0, done.stderr


def test_the_cli_and_its_help_import_no_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nimport brainbench.cli\n"
            "assert 'torch' not in sys.modules, 'import brainbench.cli imports torch'\n"
            "result = CliRunner().invoke(brainbench.cli.main, ['--help'])\n"
            "assert result.exit_code == 0 and 'Commands:' in result.output\n"
            "for group in ('grid', 'results', 'trajectory', 'analyze', 'new', 'check', 'leaderboard', 'run'):\n"
            "    assert CliRunner().invoke(brainbench.cli.main, [group, '--help']).exit_code == 0, group\n"
            "heavy = sorted({'torch', 'transformers', 'timm', 'sklearn', 'scipy', 'mne'} & set(sys.modules))\n"
            "assert not heavy, f'bench --help imports {heavy}'\n")
    _run_fresh(code)


def test_listing_and_describing_plugins_import_no_torch():
    # `bench list` and `bench info` read every plugin's registration: model classes (torch,
    # transformers, timm) are imported only when a model is built.
    code = ("import sys\nfrom click.testing import CliRunner\nimport brainbench.cli\n"
            "for args in (['list'], ['info', 'dinov3-small'], ['info', 'resnet50'], ['info', 'synthetic-fmri'],\n"
            "             ['info', 'encoding']):\n"
            "    result = CliRunner().invoke(brainbench.cli.main, args)\n"
            "    assert result.exit_code == 0, (args, result.output)\n"
            "assert 'dinov3-convnext-tiny' in CliRunner().invoke(brainbench.cli.main, ['list']).output\n"
            "heavy = sorted({'torch', 'transformers', 'timm', 'sklearn'} & set(sys.modules))\n"
            "assert not heavy, f'bench list / info import {heavy}'\n"
            "from brainbench.core.registry import get_registry\n"
            "model = get_registry().model('dinov3-tiny').factory('init')\n"
            "assert type(model).__name__ == 'DINOv3' and 'torch' in sys.modules\n")
    _run_fresh(code)


def test_the_api_docs_examples_run_and_name_only_public_names(tmp_path, monkeypatch):
    import re

    text = (ROOT / "docs" / "api.md").read_text()
    plugin, notebook = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    exec(compile(plugin, "docs/api.md", "exec"), {})
    scope: dict = {}
    exec(compile(notebook, "docs/api.md", "exec"), scope)
    last = scope["rows"][-1]
    assert last.subject == "all" and 0 < last.score <= 1
    assert [(r.key, r.score) for r in scope["stored"]] == [(last.key, pytest.approx(last.score))]
    import importlib

    for module, name in re.findall(r"`(brainbench(?:\.core\.\w+)?)\.(\w+)[`(]", text):
        assert hasattr(importlib.import_module(module), name), f"docs/api.md names {module}.{name}"


def test_the_readme_layout_names_every_part():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout"):text.index("\n## ", text.index("## Layout") + 1)]
    parts = [f"core/{p.name}/" for p in (ROOT / "core").iterdir() if (p / "__init__.py").is_file()]
    modules = [f"core/{p.name}" for p in (ROOT / "core").glob("*.py") if not p.name.startswith("_")]
    missing = [name for name in sorted(parts + modules) if name not in section]
    assert missing == [], f"README's Layout section does not say what {missing} hold"

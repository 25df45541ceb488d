"""Lazy re-exports for package faces (PEP 562 module ``__getattr__``).

A package's ``__init__`` names its public objects without importing the modules that define
them: ``import brainbench`` and ``bench --help`` must not pay for torch, and importing one
small module of a subpackage must not load all of its siblings.
"""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names live in its modules.

    Parameters
    ----------
    package
        The package's ``__name__``.
    exports
        Public name → the module that defines it, relative to ``package`` (``".model"``) or absolute.

    Each name is imported on first use and then cached in the package, so later look-ups are plain
    attribute reads. An unknown name raises ``AttributeError`` as for any module.
    """

    def __getattr__(name: str) -> object:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__

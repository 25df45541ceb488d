"""Resolve model, dataset and metric names to the plugins that registered them.

Names are collected once from the ``register_*`` hooks. Each plugin's hook is called
on its own, so a hook that raises is reported with the plugin's name while every other
plugin keeps working, and a name claimed twice is reported with both sources.
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BrainbenchError, DuplicateNameError, UnknownNameError
from ..contract.metadata import metadata_problems
from .discovery import LOAD_ERRORS, PluginLoadError, get_plugin_manager, plugin_source

KINDS = ("models", "datasets", "metrics")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")
_CHECKPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: ``PREFIX:NAME``: a model that a prefix resolver builds by name (``timm:convnext_base.fb_in22k``,
#: ``hf:facebook/dinov2-small``); the part after ':' follows the library's own spelling
_PREFIXED = re.compile(r"^([a-z0-9][a-z0-9_-]*):([A-Za-z0-9][A-Za-z0-9._+/-]*)$")


def is_model_name(name: str) -> bool:
    """Whether ``name`` is a valid model name: ``NAME`` or ``PREFIX:NAME``."""
    return bool(_NAME.match(name) or _PREFIXED.match(name))


@dataclass(frozen=True)
class Spec:
    """One registered model, dataset or metric."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    metadata: dict[str, Any]
    plugin: str  # the pluggy name of the plugin that registered it

    @property
    def source(self) -> str:
        return plugin_source(self.plugin)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind[:-1],
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class ModelRef:
    """A model name with an optional checkpoint: ``NAME`` or ``NAME@CHECKPOINT``."""

    name: str
    checkpoint: str | None = None

    @classmethod
    def parse(cls, text: str) -> "ModelRef":
        """Parse and validate ``NAME[@CHECKPOINT]`` (the one place this syntax is read)."""
        name, sep, checkpoint = text.strip().partition("@")
        if not is_model_name(name):
            raise BrainbenchError(
                f"invalid model name {text!r}: use lower-case letters, digits and '-._+', or PREFIX:NAME "
                "(e.g. 'timm:resnet18'), optionally followed by @CHECKPOINT (e.g. 'dinov3-small@init')"
            )
        if sep and not _CHECKPOINT.match(checkpoint):
            raise BrainbenchError(
                f"invalid checkpoint in {text!r}: after '@' give a checkpoint name such as "
                "'init', 'pretrained' or 'step-125000'"
            )
        return cls(name, checkpoint if sep else None)

    def __str__(self) -> str:
        return self.name if self.checkpoint is None else f"{self.name}@{self.checkpoint}"


@dataclass(frozen=True)
class PrefixSpec:
    """A model-name prefix (``timm``, ``hf``, …) and the resolver that turns ``PREFIX:NAME`` into a model.

    ``resolve(rest)`` gets what follows ``PREFIX:`` and returns ``(factory, description, metadata)``,
    exactly what ``register`` takes for a model, or raises a :class:`BrainbenchError` naming the problem.
    """

    prefix: str
    resolve: Callable[[str], tuple]
    description: str
    plugin: str

    @property
    def source(self) -> str:
        return plugin_source(self.plugin)


@dataclass
class Registry:
    """Every registered spec, by kind and name, plus the problems met while collecting them."""

    specs: dict[str, dict[str, Spec]] = field(default_factory=lambda: {k: {} for k in KINDS})
    errors: list[PluginLoadError] = field(default_factory=list)
    #: model-name prefixes (``register_model_prefixes``) and the models resolved through them so far
    prefixes: dict[str, PrefixSpec] = field(default_factory=dict)
    resolved: dict[str, Spec] = field(default_factory=dict)

    def resolve_prefixed(self, name: str) -> Spec | None:
        """The spec of a ``PREFIX:NAME`` model (resolved once, then kept), or None for a plain name."""
        match = _PREFIXED.match(name)
        if match is None:
            return None
        if name in self.resolved:
            return self.resolved[name]
        prefix = self.prefixes.get(match.group(1))
        if prefix is None:
            known = ", ".join(f"{p}:" for p in sorted(self.prefixes)) or "none"
            raise UnknownNameError(f"unknown model prefix {match.group(1)!r} in {name!r}; known prefixes: {known}")
        try:
            factory, description, metadata = prefix.resolve(match.group(2))
        except BrainbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a resolver's own failure is one sentence naming the plugin
            raise BrainbenchError(f"plugin {prefix.plugin!r} could not resolve model {name!r} "
                                  f"({type(exc).__name__}: {exc})") from None
        _check_metadata("models", name, prefix.plugin, metadata)
        spec = Spec("models", name, factory, description, dict(metadata), prefix.plugin)
        self.resolved[name] = spec
        return spec

    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> Spec:
        """The spec for ``name``, or an error that suggests the closest names."""
        table = self.specs[kind]
        if name in table:
            return table[name]
        if kind == "models" and (spec := self.resolve_prefixed(name)) is not None:
            return spec
        singular = kind[:-1]
        close = difflib.get_close_matches(name, table, n=3, cutoff=0.6)
        if close:
            hint = " or ".join(repr(c) for c in close)
            raise UnknownNameError(f"unknown {singular} {name!r}; did you mean {hint}?")
        listing = ", ".join(sorted(table)) or "none"
        raise UnknownNameError(
            f"unknown {singular} {name!r}; registered {kind}: {listing} (see `bench list {kind}`)"
        )

    def find(self, name: str) -> Spec:
        """Look a name up in every kind (``bench info NAME``)."""
        for kind in KINDS:
            if name in self.specs[kind]:
                return self.specs[kind][name]
        if (spec := self.resolve_prefixed(name)) is not None:
            return spec
        everything = {n for kind in KINDS for n in self.specs[kind]}
        close = difflib.get_close_matches(name, everything, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownNameError(f"no model, dataset or metric is called {name!r}{hint}")

    def model(self, name: str) -> Spec:
        return self.get("models", name)

    def dataset(self, name: str) -> Spec:
        return self.get("datasets", name)

    def metric(self, name: str) -> Spec:
        return self.get("metrics", name)


def _check_metadata(kind: str, name: str, plugin: str, metadata: dict[str, Any]) -> None:
    """Refuse metadata that is not JSON-serialisable or breaks the schema's types (``conformance.SCHEMA``).

    Missing fields are allowed here; ``bench check`` reports them.
    """
    try:
        json.dumps(metadata)
    except TypeError as exc:
        raise BrainbenchError(
            f"plugin {plugin!r} registered {kind[:-1]} {name!r} with metadata that is not "
            f"JSON-serialisable ({exc})"
        ) from None

    problems = metadata_problems(kind, metadata, complete=False)
    if problems:
        raise BrainbenchError(f"plugin {plugin!r} registered {kind[:-1]} {name!r} with {problems[0]}")


def _collect(pm, kind: str, registry: Registry) -> None:
    hook = getattr(pm.hook, f"register_{kind}")
    for impl in hook.get_hookimpls():
        plugin = impl.plugin_name

        def register(name, factory, description="", _plugin=plugin, **metadata):
            if not isinstance(name, str) or not _NAME.match(name):
                raise BrainbenchError(
                    f"plugin {_plugin!r} registered the invalid {kind[:-1]} name {name!r} "
                    "(lower-case letters, digits and '-._+' only)"
                )
            if not callable(factory):
                raise BrainbenchError(
                    f"plugin {_plugin!r} registered {kind[:-1]} {name!r} with a factory that is not callable"
                )
            _check_metadata(kind, name, _plugin, metadata)
            existing = registry.specs[kind].get(name)
            if existing is not None:
                raise DuplicateNameError(
                    f"{kind[:-1]} {name!r} is registered twice: by {existing.source} "
                    f"(plugin {existing.plugin!r}) and by {plugin_source(_plugin)} (plugin {_plugin!r})"
                )
            registry.specs[kind][name] = Spec(kind, name, factory, description, dict(metadata), _plugin)

        try:
            impl.function(register=register)
        except DuplicateNameError:
            raise
        except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others
            registry.errors.append(
                PluginLoadError(plugin, plugin_source(plugin), f"{type(exc).__name__}: {exc}")
            )


def _collect_prefixes(pm, registry: Registry) -> None:
    for impl in pm.hook.register_model_prefixes.get_hookimpls():
        plugin = impl.plugin_name

        def register(prefix, resolve, description="", _plugin=plugin):
            if not isinstance(prefix, str) or not re.match(r"^[a-z0-9][a-z0-9_-]*$", prefix) or not callable(resolve):
                raise BrainbenchError(f"plugin {_plugin!r} registered the invalid model prefix {prefix!r} "
                                      "(lower-case letters, digits, '-' and '_', with a callable resolver)")
            existing = registry.prefixes.get(prefix)
            if existing is not None:
                raise DuplicateNameError(f"model prefix {prefix + ':'!r} is registered twice: by {existing.source} "
                                         f"(plugin {existing.plugin!r}) and by {plugin_source(_plugin)} (plugin {_plugin!r})")
            registry.prefixes[prefix] = PrefixSpec(prefix, resolve, description, _plugin)

        try:
            impl.function(register=register)
        except DuplicateNameError:
            raise
        except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others
            registry.errors.append(PluginLoadError(plugin, plugin_source(plugin), f"{type(exc).__name__}: {exc}"))


_registry: Registry | None = None
_built_from: object | None = None  # the plugin manager _registry was collected from


def get_registry() -> Registry:
    """The registry of every loaded plugin, built on first use and after the plugin manager is reset."""
    global _registry, _built_from
    pm = get_plugin_manager()
    if _registry is None or _built_from is not pm:
        registry = Registry()
        for kind in KINDS:
            _collect(pm, kind, registry)
        _collect_prefixes(pm, registry)
        registry.errors[:0] = LOAD_ERRORS
        _registry, _built_from = registry, pm
    return _registry


def reset_registry() -> None:
    """Collect the registry again on next use (after registering a plugin in the current manager)."""
    global _registry
    _registry = None

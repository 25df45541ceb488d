"""Plugin discovery: built-in plugins first, then every ``brainbench`` entry point.

A plugin that fails to import is recorded in :data:`LOAD_ERRORS` (shown by
``bench list``) instead of breaking the rest of the suite.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib.metadata import entry_points

import pluggy

from ..contract import hookspecs

ENTRY_POINT_GROUP = "brainbench"

# Built-ins go through the same door as third-party plugins.
DEFAULT_PLUGINS = (
    "brainbench.plugins.models.dinov3",
    "brainbench.plugins.models.convnext",
    "brainbench.plugins.models.generalization",
    "brainbench.plugins.models.by_name",
    "brainbench.plugins.models.features",
    "brainbench.plugins.datasets.synthetic",
    "brainbench.plugins.datasets.synthetic_dev",
    "brainbench.plugins.datasets.nsd",
    "brainbench.plugins.datasets.things_meg",
    "brainbench.plugins.metrics.encoding",
    "brainbench.plugins.metrics.spatial",
    "brainbench.plugins.metrics.temporal",
    "brainbench.plugins.metrics.halftime",
    "brainbench.plugins.metrics.rsa",
    "brainbench.plugins.metrics.cka",
)


@dataclass(frozen=True)
class PluginLoadError:
    """A plugin that could not be loaded, and why."""

    plugin: str
    source: str
    error: str


LOAD_ERRORS: list[PluginLoadError] = []
_SOURCES: dict[str, str] = {}  # entry-point plugin name -> 'distribution version'
_manager: pluggy.PluginManager | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _allowed_entry_points() -> set[str] | None:
    """``BRAINBENCH_LOAD_PLUGINS=a,b`` loads only those entry points; empty loads none."""
    raw = os.environ.get("BRAINBENCH_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = _build_manager()
    return _manager


def reset_plugin_manager() -> None:
    """Forget loaded plugins (tests, or after installing a plugin in-process).

    The registry notices: it is rebuilt from the next manager on its next use
    (:func:`brainbench.core.registry.get_registry`).
    """
    global _manager
    _manager = None
    LOAD_ERRORS.clear()
    _SOURCES.clear()


def _build_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the rest
            LOAD_ERRORS.append(PluginLoadError(module_name, "built-in", _describe(exc)))
    allowed = _allowed_entry_points()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # noqa: BLE001
            LOAD_ERRORS.append(PluginLoadError(ep.name, dist, _describe(exc)))
            continue
        _SOURCES[ep.name] = f"{dist} {ep.dist.version}" if ep.dist is not None else dist
    return pm


def plugin_source(plugin_name: str) -> str:
    """Where a plugin comes from: ``built-in``, ``<distribution> <version>``, or its name."""
    if plugin_name in DEFAULT_PLUGINS:
        return "built-in"
    return _SOURCES.get(plugin_name, f"plugin {plugin_name!r}")

"""Finds, names, builds and guards plugins: plugin discovery (the pluggy manager), the registry of
specs, and the guards that check what a plugin returns."""
from .._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_PLUGINS": ".discovery",
    "ENTRY_POINT_GROUP": ".discovery",
    "LOAD_ERRORS": ".discovery",
    "PluginLoadError": ".discovery",
    "get_plugin_manager": ".discovery",
    "plugin_source": ".discovery",
    "reset_plugin_manager": ".discovery",
    "KINDS": ".specs",
    "ModelRef": ".specs",
    "Registry": ".specs",
    "Spec": ".specs",
    "get_registry": ".specs",
    "reset_registry": ".specs",
    "build": ".guards",
    "expect_responses": ".guards",
    "expect_score": ".guards",
    "score_problem": ".guards",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

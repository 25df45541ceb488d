"""For plugin authors: conformance checks (``bench check``) and the plugin scaffold (``bench new``)."""
from .._lazy import lazy_exports

_EXPORTS = {
    "check": ".conformance",
    "new_plugin": ".scaffold",
    "hook_reference": ".scaffold",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

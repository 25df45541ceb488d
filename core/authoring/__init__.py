"""For plugin authors: conformance checks (``bench check``) and the plugin scaffold (``bench new``)."""

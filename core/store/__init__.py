"""What a score row is, where it is kept and how it travels: the SQLite results store, output
formats, benchmark ids and versions, provenance, and portable result files."""
from .._lazy import lazy_exports

_EXPORTS = {
    "AGGREGATE_SUBJECT": ".results",
    "Failure": ".results",
    "KEY_FIELDS": ".results",
    "ResultRow": ".results",
    "ResultStore": ".results",
    "canonical_options": ".results",
    "json_safe": ".results",
    "FORMATS": ".formatting",
    "failed_results": ".formatting",
    "render": ".formatting",
    "render_failures": ".formatting",
    "benchmark_id": ".benchmarks",
    "current_version": ".benchmarks",
    "machine_summary": ".provenance",
    "scoring_provenance": ".provenance",
    "InvalidResultFile": ".portable",
    "load": ".portable",
    "read_document": ".portable",
    "result_files": ".portable",
    "RowPool": ".exchange",
    "export_results": ".exchange",
    "import_files": ".exchange",
    "validate_files": ".exchange",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

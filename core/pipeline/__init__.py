"""One run: activations → metric → rows (``bench run``), checkpoint series and trajectory metrics."""
from .._lazy import lazy_exports

_EXPORTS = {
    "Activations": ".activations",
    "available_memory": ".activations",
    "cache_key": ".activations",
    "check_memory": ".activations",
    "extract": ".activations",
    "pool_tokens": ".activations",
    "resolve_device": ".activations",
    "RunOptions": ".runner",
    "default_datasets": ".runner",
    "run": ".runner",
    "Outcome": ".scoring",
    "result_context": ".scoring",
    "row_options": ".scoring",
    "score_metric": ".scoring",
    "score_row": ".scoring",
    "score_subject": ".scoring",
    "checkpoints_text": ".trajectories",
    "is_trajectory_metric": ".trajectories",
    "series_folder": ".trajectories",
    "region_values_file": ".analysis",
    "stored_region_values": ".analysis",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

"""Numerics that know no plugin: the ridge engine and its backends, statistics, half-times and
cortical maps."""
from .._lazy import lazy_exports

_EXPORTS = {
    "CVResult": ".ridge",
    "DEFAULT_ALPHAS": ".ridge",
    "cv_predict": ".ridge",
    "cv_permutation_null": ".ridge",
    "pearson": ".stats",
    "pearson_from_sums": ".stats",
    "sem": ".stats",
    "half_time": ".halftime",
    "bootstrap_half_times": ".halftime",
    "check_method": ".halftime",
    "logistic": ".halftime",
    "to_axis": ".halftime",
    "PARCEL_TABLE": ".cortical",
    "build_parcel_table": ".cortical",
    "correlate_maps": ".cortical",
    "load_maps": ".cortical",
    "parcel_name": ".cortical",
    "parcel_values": ".cortical",
    "spin_assignments": ".cortical",
    "free_host_memory": ".memory",
    "cgroup_available": ".memory",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

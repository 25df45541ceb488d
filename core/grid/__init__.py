"""Many runs, resumably (``bench grid``): selection, the plan, and the executors that run it."""
from .._lazy import lazy_exports

_EXPORTS = {
    "GridReport": ".plan",
    "GridRequest": ".plan",
    "Plan": ".plan",
    "describe_plan": ".plan",
    "plan_grid": ".plan",
    "run_plan": ".plan",
    "summary_rows": ".plan",
    "PluginOptions": ".selection",
    "candidate_checkpoints": ".selection",
    "checkpoint_sort_key": ".selection",
    "parse_sets": ".selection",
    "select": ".selection",
    "select_models": ".selection",
    "split_patterns": ".selection",
    "Event": ".executors",
    "JobDone": ".executors",
    "JobFailed": ".executors",
    "JobKey": ".executors",
    "JobStarted": ".executors",
    "LocalExecutor": ".executors",
    "Note": ".executors",
    "PoolExecutor": ".executors",
    "WorkUnit": ".executors",
    "execute_unit": ".executors",
    "local_devices": ".launch",
    "make_executor": ".launch",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)

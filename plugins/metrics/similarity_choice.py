"""Which similarity the spatial and temporal summaries read: encoding (ridge), ``rsa`` or ``cka``.

Apart from :mod:`brainbench.plugins.metrics.similarity` because ``rsa`` and ``cka`` are built on
that module's base class: choosing between them here keeps the imports one-way.
"""
from __future__ import annotations

from brainbench.core.errors import BrainbenchError

SIMILARITIES = ("encoding", "rsa", "cka")


def check_similarity(metric: str, value) -> None:
    """Refuse, in one sentence, an unknown ``similarity`` option of the spatial / temporal summaries."""
    if value not in SIMILARITIES:
        raise BrainbenchError(f"metric {metric!r} option similarity must be one of {', '.join(SIMILARITIES)}, "
                              f"got {value!r}")


def similarity_metric(name: str) -> "SimilarityMetric":
    """The ``rsa`` or ``cka`` metric with its default options, without noise ceiling."""
    if name == "rsa":
        from brainbench.plugins.metrics.rsa import RSA as metric
    else:
        from brainbench.plugins.metrics.cka import CKA as metric
    return metric(noise_ceiling="none")

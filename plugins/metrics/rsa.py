"""Representational similarity analysis (RSA): model RDMs against brain RDMs.

Per layer, the representational dissimilarity matrix (RDM) of the stimuli from the layer's
activations (n_stimuli, n_features); per region (fMRI) or per MEG time point (the sensors at that
time), the RDM of the responses; the score is the comparison of their upper triangles (Kriegeskorte
et al. 2008, Front Syst Neurosci 2:4). RDMs and comparisons are rsatoolbox's (``rsatoolbox.rdm.
calc_rdm``, ``rsatoolbox.rdm.compare``). Options: ``rdm`` the dissimilarity, ``"correlation"``
(1 − Pearson r between two stimuli's patterns, default) or ``"euclidean"`` (squared Euclidean
distance per feature); ``comparison`` ``"spearman"`` (rank correlation, default: no assumption of a
linear relation between model and brain dissimilarities) or ``"pearson"``. Layer choice, tables and
the subject noise ceiling: :mod:`brainbench.plugins.metrics.similarity`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import brainbench
from brainbench.core.contract.options import Choice
from brainbench.core.errors import BrainbenchError
from brainbench.plugins.metrics.similarity import SimilarityMetric

RDM_METHODS = ("correlation", "euclidean")
#: option value → rsatoolbox's comparison method
COMPARISONS = {"spearman": "spearman", "pearson": "corr"}


def rdm_vector(X: np.ndarray, method: str = "correlation") -> np.ndarray:
    """Upper triangle of the RDM of X (n_stimuli, n_features), shape (n(n−1)/2,), via rsatoolbox."""
    from rsatoolbox.data import Dataset as RSADataset
    from rsatoolbox.rdm import calc_rdm

    return calc_rdm(RSADataset(np.asarray(X, dtype=np.float64)), method=method).dissimilarities[0]


def compare_rdms(a: list[np.ndarray], b: list[np.ndarray], comparison: str = "spearman") -> np.ndarray:
    """Comparison of every RDM vector of ``a`` with every one of ``b``: shape (len(a), len(b)), via rsatoolbox."""
    from rsatoolbox.rdm import RDMs, compare

    with np.errstate(invalid="ignore", divide="ignore"):
        return compare(RDMs(np.stack(a)), RDMs(np.stack(b)), method=COMPARISONS[comparison])


class RSA(SimilarityMetric):
    name = "rsa"
    defaults = {**SimilarityMetric.defaults, "rdm": "correlation", "comparison": "spearman"}
    option_types = {**SimilarityMetric.option_types, "rdm": Choice(*RDM_METHODS), "comparison": Choice(*COMPARISONS)}

    def __init__(self, **options: Any):
        super().__init__(**options)
        if self.options["rdm"] not in RDM_METHODS:
            raise BrainbenchError(f"metric 'rsa' option rdm must be one of {', '.join(RDM_METHODS)}, "
                                  f"got {self.options['rdm']!r}")
        if self.options["comparison"] not in COMPARISONS:
            raise BrainbenchError(f"metric 'rsa' option comparison must be one of {', '.join(COMPARISONS)}, "
                                  f"got {self.options['comparison']!r}")

    def model_representation(self, X: np.ndarray):
        return rdm_vector(X, self.options["rdm"])

    def brain_representation(self, Y: np.ndarray):
        return rdm_vector(Y, self.options["rdm"])

    def compare(self, model: list, brain: list) -> np.ndarray:
        return compare_rdms(model, brain, self.options["comparison"])

    def mean_representation(self, representations: list):
        return np.mean(representations, axis=0)


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("rsa", RSA,
             description="RSA: rank correlation of each layer's RDM with each region's / MEG time point's RDM",
             modality="fmri, meg", options=list(RSA.defaults), score_range=[-1.0, 1.0])

"""Linear centred kernel alignment (CKA) of layer activations and brain responses, unbiased.

For the same n stimuli, with linear kernels K = X Xᵀ (model, (n_stimuli, n_features)) and
L = Y Yᵀ (brain, (n_stimuli, n_units)), CKA = HSIC(K, L) / √(HSIC(K, K) · HSIC(L, L))
(Kornblith et al. 2019, ICML, "Similarity of Neural Network Representations Revisited"), with
HSIC the *unbiased* estimator of Song et al. 2012 (JMLR 13:1393, eq. 5): with K̃, L̃ the kernels
with their diagonals set to 0,

    HSIC(K, L) = [tr(K̃ L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)),

which, unlike the biased tr(KHLH)/(n−1)², has no positive offset on few stimuli and many
features (two unrelated representations score ≈ 0, not > 0). It needs n ≥ 4. Features are used
as extracted (no z-scoring: CKA is invariant to isotropic scaling and orthogonal transforms of
either side, not to rescaling single features). Per layer and per region / MEG time point, as
every similarity metric (:mod:`brainbench.plugins.metrics.similarity`).
"""
from __future__ import annotations

import numpy as np

import brainbench
from brainbench.plugins.metrics.similarity import SimilarityMetric


def gram(X: np.ndarray) -> np.ndarray:
    """Linear kernel of the column-centred X (n_stimuli, n_features): shape (n, n), float64."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    return X @ X.T


def unbiased_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """The unbiased HSIC estimator (Song et al. 2012, eq. 5) of two (n, n) kernel matrices, n ≥ 4."""
    n = K.shape[0]
    if n < 4:
        raise ValueError(f"the unbiased HSIC needs at least 4 samples, got {n}")
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    k1, l1 = K.sum(axis=0), L.sum(axis=0)
    trace = np.einsum("ij,ji->", K, L)
    return float((trace + k1.sum() * l1.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k1 @ l1)) / (n * (n - 3)))


def cka_from_grams(K: np.ndarray, L: np.ndarray) -> float:
    """CKA of two kernel matrices (n, n); NaN when either has no variance."""
    denominator = unbiased_hsic(K, K) * unbiased_hsic(L, L)
    return unbiased_hsic(K, L) / np.sqrt(denominator) if denominator > 0 else float("nan")


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA, unbiased, of X (n_stimuli, p) and Y (n_stimuli, q)."""
    return cka_from_grams(gram(X), gram(Y))


class CKA(SimilarityMetric):
    name = "cka"

    def model_representation(self, X: np.ndarray):
        K = gram(X)
        return K, unbiased_hsic(K, K)

    def brain_representation(self, Y: np.ndarray):
        L = gram(Y)
        return L, unbiased_hsic(L, L)

    def compare(self, model: list, brain: list) -> np.ndarray:
        out = np.full((len(model), len(brain)), np.nan)
        for i, (K, kk) in enumerate(model):
            for j, (L, ll) in enumerate(brain):
                if kk > 0 and ll > 0:
                    out[i, j] = unbiased_hsic(K, L) / np.sqrt(kk * ll)
        return out

    def mean_representation(self, representations: list):
        # each subject's kernel scaled to unit self-similarity, so that no subject outweighs the others
        L = sum(K / np.sqrt(kk) for K, kk in representations if kk > 0) / len(representations)
        return L, unbiased_hsic(L, L)


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("cka", CKA,
             description="Linear CKA (unbiased HSIC) of each layer with each region's / MEG time point's responses",
             modality="fmri, meg", options=list(CKA.defaults), score_range=[-1.0, 1.0])

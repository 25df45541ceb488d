"""Synthetic fMRI and MEG datasets with a planted, documented hierarchy.

They let the whole suite run with nothing downloaded, and let tests check that the
metrics recover a known truth.

Stimuli: ``n_images`` photographs cut from the real photos that scikit-image ships
(astronaut, coffee, chelsea, rocket, …): random square crops (25–100 % of the shorter
side), random horizontal flips, resized to ``image_size``. Seeded, so identical
everywhere.

Reference network: ``reference`` (default ``dinov3-small@init``, random weights with
seed 0), run on the CPU; features = mean of patch tokens per layer, z-scored across
stimuli. For a layer ℓ, a *readout* is a random linear combination of the top 16
principal directions of layer ℓ's features, scaled to unit variance.

**synthetic-fmri** — planted truth:
    ``n_regions`` regions; region k has depth dₖ = k / (n_regions − 1) and planted layer
    ℓₖ = round(dₖ · (L − 1)) where L is the number of reference layers. Region 0 is
    ``V1``. Each voxel reads out layer ℓₖ + δ with δ ∈ {−1, 0, +1} (probabilities 0.2,
    0.6, 0.2; clipped to valid layers), plus Gaussian noise of s.d. σ ~ U(0.7, 1.4). The
    noise ceiling (largest achievable r) of a voxel is 1/√(1 + σ²). Region centroids lie
    at 8 + 70·dₖ mm (± 2 mm) from V1, in a random direction of the posterior half-space;
    so the best layer grows with distance from V1 (ideal spatial score ≈ 1).

**synthetic-meg** — planted truth:
    ``n_sensors`` sensors at times −100…800 ms every 25 ms. Before 60 ms there is only
    noise. From 60 to 600 ms, time t is driven by layer ℓ(t) = round((t − 60)/540 · (L − 1));
    after 600 ms by the last layer with a gain decaying with a 200 ms time constant. Each
    layer has 8 latent sources (readouts); each sensor mixes them with fixed random
    weights. Noise s.d. 1. So each layer best predicts the window it drives, and T_max
    grows with depth (ideal temporal score ≈ 1).

Subjects (``n_subjects``, default 3) share the planted layers and geometry but have their
own readouts, mixing weights and noise.

The one plugin that imports the registry and ``core.pipeline.activations`` (README, Layout): it
builds the reference model by name and extracts its activations to plant the truth in them.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property

import numpy as np

import brainbench
from brainbench.core.config import Config
from brainbench.core.contract.data import ArrayStimulusSet, Dataset, Responses
from brainbench.core.contract.options import Int, Text
from brainbench.core.registry.specs import ModelRef, get_registry

PHOTOS = ("astronaut", "coffee", "chelsea", "cat", "rocket", "camera", "brick", "grass", "gravel",
          "coins", "moon", "clock", "hubble_deep_field", "immunohistochemistry", "retina", "colorwheel")
N_PCS = 16
FMRI_NOISE = (0.7, 1.4)
MEG_TIMES = np.arange(-100, 801, 25)
MEG_ONSET, MEG_LAST = 60, 600


def photo_stimuli(n_images: int, image_size: int, seed: int = 0) -> ArrayStimulusSet:
    """``n_images`` seeded crops of scikit-image's bundled photographs, (n, size, size, 3) uint8."""
    import skimage.data
    from PIL import Image

    photos = []
    for name in PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        photos.append(Image.fromarray(np.ascontiguousarray(image[:, :, :3])))
    rng = np.random.default_rng(seed)
    images = np.empty((n_images, image_size, image_size, 3), np.uint8)
    ids = []
    for i in range(n_images):
        p = int(rng.integers(len(photos)))
        photo = photos[p]
        side = int(min(photo.size) * rng.uniform(0.25, 1.0))
        left = int(rng.integers(0, photo.size[0] - side + 1))
        top = int(rng.integers(0, photo.size[1] - side + 1))
        crop = photo.crop((left, top, left + side, top + side)).resize((image_size, image_size), Image.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        images[i] = np.asarray(crop)
        ids.append(f"{PHOTOS[p]}-{i:04d}")
    return ArrayStimulusSet(images, ids)


def _readout_basis(features: np.ndarray) -> np.ndarray:
    """z-scored features projected on their top principal directions, (n, N_PCS), unit variance."""
    z = features - features.mean(0)
    sd = z.std(0)
    z = z[:, sd > 0] / sd[sd > 0]
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    k = min(N_PCS, len(s))
    return u[:, :k] * np.sqrt(len(z))


def _readout(basis: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Unit-variance linear readouts basis @ weights, (n, n_readouts)."""
    signal = basis @ weights[: basis.shape[1]]
    return (signal - signal.mean(0)) / signal.std(0)


class SyntheticDataset(Dataset):
    """Shared machinery of the two synthetic datasets (see the module docstring)."""

    option_types = {"n_images": Int(minimum=10, help="stimuli (at least 10, for cross-validation)"),
                    "image_size": Int(minimum=16, help="stimulus side in pixels"),
                    "reference": Text(help="reference network, NAME@CHECKPOINT"),
                    "n_subjects": Int(minimum=1), "seed": Int(minimum=0)}

    def __init__(self, *, n_images: int = 300, image_size: int = 224, reference: str = "dinov3-small@init",
                 n_subjects: int = 3, seed: int = 0):
        self.options = dict(n_images=n_images, image_size=image_size, reference=reference,
                            n_subjects=n_subjects, seed=seed)
        self.stimuli = photo_stimuli(n_images, image_size, seed)
        self.subjects = [f"sub-{i + 1:02d}" for i in range(n_subjects)]
        self.seed = seed
        self.reference = ModelRef.parse(reference)

    @cached_property
    def _reference_activations(self):
        from brainbench.core.pipeline.activations import extract  # torch: only when responses are made

        spec = get_registry().model(self.reference.name)
        model = spec.factory(self.reference.checkpoint)
        return extract(model, self.stimuli, pooling="mean", device="cpu", cache_dir=Config().cache_dir,
                       progress=False)

    @cached_property
    def bases(self) -> list[np.ndarray]:
        """Per reference layer, the (n_images, N_PCS) readout basis."""
        return [_readout_basis(a) for a in self._reference_activations.layers.values()]

    def _rng(self, *parts) -> np.random.Generator:
        return np.random.default_rng([self.seed, *parts])

    def fingerprint(self) -> str:
        blob = json.dumps({"class": type(self).__name__, **self.options,
                           "reference_activations": self._reference_activations.key}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


class SyntheticFMRI(SyntheticDataset):
    name = "synthetic-fmri"
    modality = "fmri"
    option_types = {**SyntheticDataset.option_types, "n_regions": Int(minimum=1), "voxels_per_region": Int(minimum=1)}

    def __init__(self, *, n_regions: int = 12, voxels_per_region: int = 40, **options):
        super().__init__(**options)
        self.options.update(n_regions=n_regions, voxels_per_region=voxels_per_region)
        self.n_regions = n_regions
        self.voxels_per_region = voxels_per_region
        self.regions = ["V1"] + [f"area-{k:02d}" for k in range(1, n_regions)]

    @property
    def region_depth(self) -> dict[str, float]:
        """Planted normalised depth dₖ of each region."""
        return {r: k / max(self.n_regions - 1, 1) for k, r in enumerate(self.regions)}

    def planted_layer(self, n_layers: int) -> dict[str, int]:
        """Planted layer index ℓₖ of each region, for a reference with ``n_layers`` layers."""
        return {r: int(round(d * (n_layers - 1))) for r, d in self.region_depth.items()}

    def region_positions(self, subject: str) -> dict[str, np.ndarray]:
        rng = self._rng(1)  # geometry shared by subjects…
        jitter = self._rng(2, self.subjects.index(subject))  # …up to 1 mm
        positions = {}
        for region, depth in self.region_depth.items():
            direction = rng.normal(size=3)
            direction[1] = -abs(direction[1])  # posterior half-space
            direction /= np.linalg.norm(direction)
            distance = 0.0 if region == "V1" else 8 + 70 * depth + rng.normal(0, 2)
            positions[region] = direction * distance + jitter.normal(0, 1, size=3)
        return positions

    def responses(self, subject: str) -> Responses:
        bases = self.bases
        n_layers = len(bases)
        rng = self._rng(3, self.subjects.index(subject))
        planted = self.planted_layer(n_layers)
        columns, labels, ceilings = [], [], []
        for region in self.regions:
            offsets = rng.choice([-1, 0, 1], p=[0.2, 0.6, 0.2], size=self.voxels_per_region)
            for offset in offsets:
                layer = int(np.clip(planted[region] + offset, 0, n_layers - 1))
                signal = _readout(bases[layer], rng.normal(size=(N_PCS, 1)))[:, 0]
                sigma = rng.uniform(*FMRI_NOISE)
                columns.append(signal + rng.normal(0, sigma, size=len(signal)))
                labels.append(region)
                ceilings.append(1 / np.sqrt(1 + sigma**2))
        return Responses(subject, np.stack(columns, 1).astype(np.float32), np.arange(len(self.stimuli)),
                         units={"region": np.array(labels)}, noise_ceiling=np.array(ceilings))


class SyntheticMEG(SyntheticDataset):
    name = "synthetic-meg"
    modality = "meg"
    option_types = {**SyntheticDataset.option_types, "n_sensors": Int(minimum=1)}
    n_sources = 8

    def __init__(self, *, n_sensors: int = 32, **options):
        super().__init__(**options)
        self.options.update(n_sensors=n_sensors)
        self.n_sensors = n_sensors
        self.times = MEG_TIMES.astype(float)

    def planted_layer(self, n_layers: int) -> np.ndarray:
        """Layer driving each time point (−1 before onset)."""
        depth = np.clip((self.times - MEG_ONSET) / (MEG_LAST - MEG_ONSET), 0, 1)
        layer = np.round(depth * (n_layers - 1)).astype(int)
        layer[self.times < MEG_ONSET] = -1
        return layer

    def gain(self) -> np.ndarray:
        late = np.exp(-np.clip(self.times - MEG_LAST, 0, None) / 200)
        return np.where(self.times < MEG_ONSET, 0.0, late)

    def responses(self, subject: str) -> Responses:
        bases = self.bases
        rng = self._rng(4, self.subjects.index(subject))
        sources = [_readout(b, rng.normal(size=(N_PCS, self.n_sources))) for b in bases]
        mixing = rng.normal(size=(self.n_sources, self.n_sensors)) / np.sqrt(self.n_sources)
        layers = self.planted_layer(len(bases))
        n = len(self.stimuli)
        data = rng.normal(size=(n, self.n_sensors, len(self.times)))
        gain = self.gain()
        for t, layer in enumerate(layers):
            if layer >= 0:
                data[:, :, t] += gain[t] * (sources[layer] @ mixing)
        sensors = np.repeat([f"MEG{s + 1:03d}" for s in range(self.n_sensors)], len(self.times))
        times = np.tile(self.times, self.n_sensors)
        return Responses(subject, data.reshape(n, -1).astype(np.float32), np.arange(n),
                         units={"sensor": sensors, "time": times})


@brainbench.hookimpl(trylast=True)
def register_datasets(register):
    citation = "brainbench synthetic data (planted hierarchy; see plugins/datasets/synthetic.py)"
    register("synthetic-fmri", SyntheticFMRI,
             description="Synthetic fMRI: 12 regions reading out a planted layer band of a reference network",
             modality="fmri", spatial=True, citation=citation)
    register("synthetic-meg", SyntheticMEG,
             description="Synthetic MEG: 32 sensors × 37 time points, deeper layers drive later times",
             modality="meg", citation=citation)

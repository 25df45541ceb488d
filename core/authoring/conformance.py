"""Conformance checks: does a model, dataset or metric plugin keep the contract of ``core/contract/hookspecs.py``?

``bench check NAME`` and the project's tests run them. Each check is one line of a checklist,
passed (✓), failed (✗) or skipped (–, e.g. weights or data not on disk), with one sentence.

- **Models**: metadata complete (:data:`SCHEMA`); the factory returns a ``VisionModel``;
  ``layer_names`` match the declared ``layers``; after ``load`` every module is in eval mode
  and the parameter count matches the declared ``parameters`` (within 5 %); on
  :data:`N_IMAGES` probe images of different sizes, one finite tensor per layer, of the
  model's dtype, batch first, with patch tokens left after the prefix tokens, whose pooled
  features vary across images; two runs give the same activations, and an image gives the
  same activations alone as in a batch.
- **Datasets**: metadata; the dataset's own ``check`` (files on disk); stimuli (uint8 images,
  unique ids, stable fingerprint); subjects; the first subject's responses (row count, stimulus
  indices in range, usable units, ``time`` labels for MEG); region geometry when the dataset
  declares ``spatial=True`` or gives positions.
- **Metrics**: metadata; options checked; on the probe data of each modality the metric
  applies to (:class:`ProbeDataset`: responses are linear readouts of a known "perfect"
  model's features, deeper layers driving regions further from V1 / later times), a
  ``Score`` with a finite value and error and JSON-able detail; the perfect model scores at
  least :data:`PERFECT_FRACTION` of the ceiling (the mean noise ceiling when the metric
  reports one, else 1), and a model of pure noise scores near 0 (within
  :data:`NOISE_FRACTION` of the ceiling or 3 of the metric's own standard errors; NaN,
  "undefined", is accepted); ``aggregate`` over the probe's two subjects.

The project's tests run every check on the built-in plugins; a model above
:data:`TEST_MAX_PARAMETERS` parameters gets the metadata checks only there.
"""
from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from ..pipeline.activations import check_memory, pool_tokens, resolve_device
from ..contract.data import ArrayStimulusSet, Dataset, Responses, StimulusSet
from ..errors import BrainbenchError, MissingDataError
from ..contract.metric import Metric
from ..contract.model import VisionModel
from ..registry.guards import score_problem
from ..contract.metadata import SCHEMA, metadata_problems
from ..registry.specs import ModelRef, Spec, get_registry

N_IMAGES = 4
PERFECT_FRACTION = 0.8
#: a noise model's score must be within this fraction of the ceiling of 0 (or 3 standard errors)
NOISE_FRACTION = 0.15
PARAMETER_TOLERANCE = 0.05
#: above this many parameters the project's tests check a model's metadata only
TEST_MAX_PARAMETERS = 25_000_000

# -- report ------------------------------------------------------------------------------------
MARKS = {"pass": "✓", "fail": "✗", "skip": "–"}


@dataclass
class Check:
    """One line of the checklist: ``status`` is ``pass``, ``fail`` or ``skip``."""

    name: str
    status: str
    message: str


@dataclass
class Report:
    """The checklist of one plugin entry (a model, dataset or metric)."""

    kind: str
    name: str
    source: str
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, status: str, message: str) -> None:
        self.checks.append(Check(name, status, message))

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    @property
    def ok(self) -> bool:
        """True when no check failed (skipped checks do not fail a report)."""
        return self.count("fail") == 0

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    def render(self) -> str:
        """The checklist as text: a heading, one ✓/✗/– line per check, and a summary."""
        lines = [f"{self.kind[:-1]} {self.name} ({self.source})"]
        lines += [f"  {MARKS[c.status]} {c.name}: {c.message}" for c in self.checks]
        lines.append(f"  {self.count('pass')} passed, {self.count('fail')} failed, {self.count('skip')} skipped")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind[:-1], "name": self.name, "source": self.source, "ok": self.ok,
                "checks": [vars(c) for c in self.checks]}


class _Stop(Exception):
    """Ends a checklist early (the reason is already recorded)."""


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 400 else text[:397] + "..."
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, BrainbenchError) else text


@contextlib.contextmanager
def _guard(report: Report, name: str, what: str) -> Iterator[None]:
    """Record an exception raised by the plugin as a failed (or, for missing files, skipped) check."""
    try:
        yield
    except _Stop:
        raise
    except MissingDataError as exc:
        report.add(name, "skip", f"not checked: {_describe(exc)}")
        raise _Stop from None
    except Exception as exc:  # noqa: BLE001 - any error of the plugin is a failed check
        report.add(name, "fail", f"{what} raised {_describe(exc)}")
        raise _Stop from None


def _check_metadata(report: Report, spec: Spec) -> None:
    problems = metadata_problems(spec.kind, spec.metadata)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        report.add("metadata", "fail", f"{problems[0]}{more}; pass it to register()")
    else:
        names = [f.name for f in SCHEMA[spec.kind] if f.required]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        report.add("metadata", "pass", f"{listed} {'is' if len(names) == 1 else 'are'} given and well-formed")


# -- entry point -------------------------------------------------------------------------------
def check(name: str, *, checkpoint: str | None = None, options: dict[str, Any] | None = None,
          run: bool = True, device: str = "cpu") -> Report:
    """Run the conformance checks on a registered model, dataset or metric.

    Parameters
    ----------
    name : a registered name; models may be ``NAME@CHECKPOINT``
    checkpoint : model checkpoint (``NAME@CHECKPOINT`` wins); None: the factory's default
    options : keyword options for the factory (``--set OPTION=VALUE``)
    run : False checks a model's metadata only (no network is built)
    device : where a model runs: ``cpu`` (default), ``cuda``, ``auto``

    Returns
    -------
    Report
    """
    registry = get_registry()
    if "@" in name:
        ref = ModelRef.parse(name)
        spec, checkpoint = registry.model(ref.name), ref.checkpoint
    else:
        spec = registry.find(name)
    if spec.kind == "models":
        return check_model(spec, checkpoint, options, run=run, device=device)
    if spec.kind == "datasets":
        return check_dataset(spec, options)
    return check_metric(spec, options)


# -- models --------------------------------------------------------------------------------------
def probe_images(n: int = N_IMAGES, seed: int = 0) -> list[np.ndarray]:
    """``n`` seeded uint8 (H, W, 3) images of different sizes and aspect ratios, with coarse structure."""
    rng = np.random.default_rng(seed)
    sizes = [(96, 128), (128, 96), (80, 80), (112, 144), (144, 112), (100, 100)]
    images = []
    for i in range(n):
        h, w = sizes[i % len(sizes)]
        coarse = rng.uniform(0, 255, size=(h // 16 + 1, w // 16 + 1, 3))
        image = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)[:h, :w]
        images.append(np.clip(image + rng.normal(0, 20, size=image.shape), 0, 255).astype(np.uint8))
    return images


def _modules(model: VisionModel) -> dict[str, torch.nn.Module]:
    """The torch modules a model holds as attributes (its networks)."""
    return {k: v for k, v in vars(model).items() if isinstance(v, torch.nn.Module)}


def check_model(spec: Spec, checkpoint: str | None = None, options: dict[str, Any] | None = None, *,
                run: bool = True, device: str = "cpu") -> Report:
    """The model checklist of ``spec`` (see the module docstring); ``run=False``: metadata only."""
    label = spec.name if checkpoint is None else f"{spec.name}@{checkpoint}"
    report = Report("models", label, spec.source)
    _check_metadata(report, spec)
    if not run:
        return report
    try:
        with _guard(report, "build", f"the factory of {spec.name!r}"):
            model = spec.factory(checkpoint, **(options or {}))
        if not isinstance(model, VisionModel):
            report.add("build", "fail", f"the factory returned {type(model).__name__}, not a brainbench.VisionModel")
            raise _Stop
        report.name = f"{model.name}@{model.checkpoint}"
        report.add("build", "pass", f"the factory returned a VisionModel ({model.name}@{model.checkpoint})")
        _check_declarations(report, spec, model)
        torch_device = resolve_device(device)
        try:
            check_memory(model, torch_device)
        except BrainbenchError as exc:
            report.add("load", "skip", f"not run: {exc}")
            raise _Stop from None
        with _guard(report, "load", "load()"):
            model.load(torch_device)
        _check_modules(report, spec, model)
        _check_forward(report, model, torch_device)
    except _Stop:
        pass
    return report


def _check_declarations(report: Report, spec: Spec, model: VisionModel) -> None:
    with _guard(report, "layers", "layer_names"):
        names = model.layer_names
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
        report.add("layers", "fail", f"layer_names is {names!r}, not a non-empty list of strings")
        raise _Stop
    declared = spec.metadata.get("layers")
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if list(names).count(n) > 1)
        report.add("layers", "fail", f"layer_names repeats {duplicate!r}; every layer needs its own name")
    elif isinstance(declared, int) and declared != len(names):
        report.add("layers", "fail", f"layer_names has {len(names)} layers but the metadata declares layers={declared}")
    else:
        report.add("layers", "pass", f"{len(names)} uniquely named layers ({names[0]} … {names[-1]})")
    if model.has_cls_token and model.num_prefix_tokens < 1:
        report.add("tokens", "fail", "has_cls_token is True but num_prefix_tokens is 0; count the CLS token")
    with _guard(report, "fingerprint", "fingerprint()"):
        first, second = model.fingerprint(), model.fingerprint()
        json.dumps(first)
    if not isinstance(first, dict) or first != second:
        report.add("fingerprint", "fail", "fingerprint() must return the same JSON-able dict every time")
    else:
        report.add("fingerprint", "pass", "fingerprint() is a stable, JSON-able dict")


def _check_modules(report: Report, spec: Spec, model: VisionModel) -> None:
    modules = _modules(model)
    training = [f"{attr}.{sub}".rstrip(".") for attr, module in modules.items()
                for sub, m in module.named_modules() if m.training]
    if training:
        report.add("eval mode", "fail", f"after load(), {training[0]} is in training mode; call .eval() on the network")
    elif modules:
        verb = "is" if len(modules) == 1 else "are"
        report.add("eval mode", "pass", f"after load(), {', '.join(modules)} {verb} in eval mode")
    else:
        report.add("eval mode", "skip", "the model holds no torch module as an attribute to inspect")
    declared = spec.metadata.get("parameters")
    unique = {id(p): p.numel() for m in modules.values() for p in m.parameters()}
    counted = sum(unique.values())
    if not modules or not isinstance(declared, int) or not counted:
        report.add("parameters", "skip", "no torch module attribute with parameters to count, or none declared")
    elif abs(counted - declared) > PARAMETER_TOLERANCE * declared:
        report.add("parameters", "fail",
                   f"the network has {counted:,} parameters but the metadata declares {declared:,}")
    else:
        report.add("parameters", "pass", f"the network has {counted:,} parameters, as declared ({declared:,})")


def _run(model: VisionModel, pixels: torch.Tensor, device: torch.device) -> list[Any]:
    with torch.inference_mode():
        return [o.detach().cpu() if isinstance(o, torch.Tensor) else o for o in model.iter_layers(pixels.to(device))]


def _max_difference(a: list[torch.Tensor], b: list[torch.Tensor], names: list[str], rows=slice(None)):
    """Largest relative difference between two runs, and the layer where it is."""
    worst, where = 0.0, names[0]
    for name, x, y in zip(names, a, b):
        x, y = x[rows].double(), y[rows].double()
        diff = float((x - y).abs().max() / (x.abs().max() + 1e-6))
        if diff > worst:
            worst, where = diff, name
    return worst, where


def _check_forward(report: Report, model: VisionModel, device: torch.device) -> None:
    images = probe_images()
    n, size = len(images), model.image_size
    with _guard(report, "preprocess", "preprocess()"):
        pixels = model.preprocess(images)
    if tuple(pixels.shape) != (n, 3, size, size) or not torch.isfinite(pixels).all():
        report.add("preprocess", "fail",
                   f"preprocess() gave {tuple(pixels.shape)}, not finite ({n}, 3, {size}, {size})")
        raise _Stop
    names = list(model.layer_names)
    with _guard(report, "forward", "the forward pass"):
        outputs = _run(model, pixels, device)
    problem = _layer_problem(model, outputs, names, n)
    if problem:
        report.add("forward", "fail", problem)
        raise _Stop
    shapes = " … ".join(dict.fromkeys(str(tuple(o.shape)) for o in (outputs[0], outputs[-1])))
    dtype = str(model.dtype).replace("torch.", "")
    report.add("forward", "pass", f"{len(outputs)} finite {dtype} layers for {n} images, {shapes}, "
               "pooled features vary across images")
    with _guard(report, "deterministic", "a second forward pass"):
        diff, layer = _max_difference(outputs, _run(model, pixels, device), names)
    if diff > 1e-5:
        report.add("deterministic", "fail", f"two runs on the same {n} images differ (layer {layer}: relative "
                   f"difference {diff:.2g}); use eval mode and no randomness in the forward pass")
    else:
        report.add("deterministic", "pass", f"two runs on the same {n} images give the same activations")
    with _guard(report, "batch", "a forward pass on one image"):
        diff, layer = _max_difference(outputs, _run(model, pixels[:1], device), names, rows=slice(0, 1))
    if diff > 1e-3:
        report.add("batch", "fail", f"an image gives other activations alone than in a batch of {n} (layer {layer}: "
                   f"relative difference {diff:.2g}); images must not interact (BatchNorm in training mode?)")
    else:
        report.add("batch", "pass", f"an image gives the same activations alone as in a batch of {n}")


def _layer_problem(model: VisionModel, outputs: list[Any], names: list[str], n: int) -> str | None:
    """The first way the forward pass's outputs break the contract, as a sentence; None when they keep it."""
    if len(outputs) != len(names):
        return (f"the forward pass returned {len(outputs)} layers but layer_names declares {len(names)} "
                f"({', '.join(names[:4])}{', …' if len(names) > 4 else ''})")
    for name, out in zip(names, outputs):
        if not isinstance(out, torch.Tensor):
            return f"layer {name} is a {type(out).__name__}, not a torch.Tensor"
        if out.ndim not in (2, 3, 4) or out.shape[0] != n:
            return (f"layer {name} has shape {tuple(out.shape)}; expected ({n}, tokens, dim), ({n}, channels, h, w) "
                    f"or ({n}, dim) for {n} images")
        if out.dtype != model.dtype:
            return f"layer {name} is {out.dtype}, but the model runs in {model.precision} ({model.dtype})"
        bad = int((~torch.isfinite(out.reshape(n, -1))).any(dim=1).sum())
        if bad:
            return f"layer {name} has NaN or infinite values for {bad} of {n} images"
        if out.ndim == 3 and out.shape[1] <= model.num_prefix_tokens:
            return (f"layer {name} has {out.shape[1]} tokens, no more than the {model.num_prefix_tokens} "
                    "prefix tokens (num_prefix_tokens) it declares")
        pooled = pool_tokens(out.float(), model, "mean")
        if pooled.shape[1] == 0 or not bool((pooled.max(0).values > pooled.min(0).values).any()):
            return f"layer {name} gives the same pooled features for every image; does it use its input?"
    return None


# -- datasets ------------------------------------------------------------------------------------
def check_dataset(spec: Spec, options: dict[str, Any] | None = None) -> Report:
    """The dataset checklist of ``spec`` (see the module docstring); files not on disk skip the rest."""
    report = Report("datasets", spec.name, spec.source)
    _check_metadata(report, spec)
    options = options or {}
    try:
        own_check = getattr(spec.factory, "check", None)
        if callable(own_check):
            with _guard(report, "files", "the dataset's check()"):
                problems = list(own_check(**options))
            if problems:
                more = (f" (and {len(problems) - 1} more; see `bench data check {spec.name}`)"
                        if len(problems) > 1 else "")
                report.add("files", "skip", f"not checked: {problems[0]}{more}")
                raise _Stop
            report.add("files", "pass", "the dataset's own check() finds every file")
        with _guard(report, "build", f"the factory of {spec.name!r}"):
            dataset = spec.factory(**options)
        if not isinstance(dataset, Dataset):
            report.add("build", "fail", f"the factory returned {type(dataset).__name__}, not a brainbench.Dataset")
            raise _Stop
        declared = spec.metadata.get("modality")
        if declared is not None and declared != getattr(dataset, "modality", None):
            report.add("build", "fail", f"the dataset's modality is {getattr(dataset, 'modality', None)!r} "
                       f"but the metadata declares {declared!r}")
            raise _Stop
        report.add("build", "pass", f"the factory returned a Dataset of modality {dataset.modality!r}")
        _check_stimuli(report, dataset)
        _check_responses(report, spec, dataset)
    except _Stop:
        pass
    return report


def _check_stimuli(report: Report, dataset: Dataset) -> None:
    stimuli = dataset.stimuli
    if not isinstance(stimuli, StimulusSet):
        report.add("stimuli", "fail", f"stimuli is a {type(stimuli).__name__}, not a brainbench.StimulusSet")
        raise _Stop
    with _guard(report, "stimuli", "loading stimuli"):
        n, ids = len(stimuli), list(stimuli.ids)
        images = stimuli.load([0, n - 1]) if n else []
        fingerprints = stimuli.fingerprint(), stimuli.fingerprint()
    problem = None
    if n == 0 or len(ids) != n or len(set(ids)) != n:
        problem = f"{n} stimuli with {len(set(ids))} distinct ids; give every stimulus its own id"
    elif len(images) != 2 or any(np.asarray(i).dtype != np.uint8 or np.asarray(i).ndim != 3
                                 or np.asarray(i).shape[-1] != 3 for i in images):
        problem = "load() must return one uint8 (H, W, 3) array per index"
    elif not isinstance(fingerprints[0], str) or not fingerprints[0] or fingerprints[0] != fingerprints[1]:
        problem = "the stimuli's fingerprint() must be the same non-empty string every time"
    report.add("stimuli", "fail" if problem else "pass",
               problem or f"{n} stimuli with unique ids, uint8 (H, W, 3) images, a stable fingerprint")
    if problem:
        raise _Stop


def _check_responses(report: Report, spec: Spec, dataset: Dataset) -> None:
    subjects = list(dataset.subjects)
    if not subjects or not all(isinstance(s, str) for s in subjects) or len(set(subjects)) != len(subjects):
        report.add("subjects", "fail", f"subjects is {subjects!r}, not a non-empty list of distinct strings")
        raise _Stop
    subject, n = subjects[0], len(dataset.stimuli)
    with _guard(report, "responses", f"responses({subject!r})"):
        responses = dataset.responses(subject)
    if not isinstance(responses, Responses):
        report.add("responses", "fail", f"responses({subject!r}) returned {type(responses).__name__}, "
                   "not a brainbench.Responses")
        raise _Stop
    index, data = responses.stimulus_index, responses.data
    usable = np.isfinite(data).all(0) if len(data) else np.zeros(data.shape[1], bool)
    usable[usable] = data[:, usable].max(0) > data[:, usable].min(0)
    problem = None
    if len(index) < 2 or index.min() < 0 or index.max() >= n:
        problem = f"the stimulus indices of {subject} must point into the {n} stimuli (got {len(index)} rows, " \
                  f"indices {index.min() if len(index) else '-'}…{index.max() if len(index) else '-'})"
    elif not usable.any():
        problem = f"no unit of {subject} has finite, varying responses"
    elif dataset.modality == "meg" and "time" not in responses.units:
        problem = f"the MEG responses of {subject} need a 'time' label per unit (units={{'time': ...}})"
    report.add("responses", "fail" if problem else "pass", problem or (
        f"{subject}: {len(index)} rows for {len(index)} stimulus indices in range, {data.shape[1]} units "
        f"({int(usable.sum())} usable), labels: {', '.join(responses.units) or 'none'}"))
    if problem:
        raise _Stop
    with _guard(report, "geometry", f"region_positions({subject!r})"):
        positions = dataset.region_positions(subject)
    if positions is None:
        if spec.metadata.get("spatial"):
            report.add("geometry", "fail", "the metadata declares spatial=True but region_positions() returns None")
        return
    regions = sorted({str(r) for r in responses.units.get("region", [])})
    missing = [r for r in regions + sorted({dataset.reference_for(r) for r in regions}) if r not in positions]
    bad = [r for r, p in positions.items() if np.asarray(p, dtype=float).shape != (3,)
           or not np.isfinite(np.asarray(p, dtype=float)).all()]
    if not regions:
        problem = "region_positions() gives positions but the responses have no 'region' label"
    elif missing:
        problem = f"region {missing[0]!r} has no position in region_positions()"
    elif bad:
        problem = f"the position of region {bad[0]!r} is not a finite (x, y, z) in mm"
    report.add("geometry", "fail" if problem else "pass",
               problem or f"every one of the {len(regions)} regions and its reference has a finite (x, y, z) position")


# -- metrics -------------------------------------------------------------------------------------
class ProbeDataset(Dataset):
    """Responses that are linear readouts of a known model's features: the metric checks' ground truth.

    The "perfect" model has ``n_layers`` layers of 12 features: 6 shared by every layer and 6
    of its own. A unit reads out the shared features (s.d. 1) and those of its planted layer
    (s.d. 0.6), plus noise (s.d. 0.1). fMRI: region k (``V1``, ``area-1``…) is planted at layer
    k and lies 10 + 15·k mm from V1. MEG: times 0, 50, … ms, two per layer, deeper layers later.
    """

    reference_region = "V1"

    def __init__(self, modality: str, n_layers: int = 5, n_stimuli: int = 300, seed: int = 0):
        self.name, self.modality, self.seed = f"probe-{modality}", modality, seed
        rng = np.random.default_rng(seed)
        self.stimuli = ArrayStimulusSet(rng.integers(0, 256, size=(n_stimuli, 8, 8, 3), dtype=np.uint8))
        self.subjects = ["sub-01", "sub-02"]
        self.shared = rng.normal(size=(n_stimuli, 6))
        self.own = [rng.normal(size=(n_stimuli, 6)) for _ in range(n_layers)]
        self.layers = {f"layer{k}": np.hstack([self.shared, own]).astype(np.float32) for k, own in enumerate(self.own)}
        self.noise_layers = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in self.layers.items()}
        if modality == "fmri":
            self.units = {"region": np.repeat(["V1"] + [f"area-{k}" for k in range(1, n_layers)], 8)}
            self.planted = np.repeat(np.arange(n_layers), 8)
        else:
            times = np.arange(2 * n_layers) * 50.0
            self.units = {"sensor": np.repeat([f"S{s}" for s in range(6)], len(times)), "time": np.tile(times, 6)}
            self.planted = np.tile(np.arange(2 * n_layers) // 2, 6)

    def responses(self, subject: str) -> Responses:
        rng = np.random.default_rng([self.seed, self.subjects.index(subject)])

        def readout(x):
            signal = x @ rng.normal(size=(x.shape[1], len(self.planted)))
            return signal / signal.std(0)

        own = np.stack([readout(o) for o in self.own])[self.planted, :, np.arange(len(self.planted))].T
        data = readout(self.shared) + 0.6 * own + rng.normal(0, 0.1, size=own.shape)
        ceiling = np.full(len(self.planted), math.sqrt(1.36 / 1.37))
        return Responses(subject, data.astype(np.float32), np.arange(len(self.stimuli)), units=self.units,
                         noise_ceiling=ceiling)

    def region_positions(self, subject: str) -> dict[str, np.ndarray] | None:
        if self.modality != "fmri":
            return None
        rng = np.random.default_rng(self.seed)
        regions = list(dict.fromkeys(self.units["region"].tolist()))
        directions = rng.normal(size=(len(regions), 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        return {r: directions[k] * (0.0 if k == 0 else 10.0 + 15.0 * k) for k, r in enumerate(regions)}


def check_metric(spec: Spec, options: dict[str, Any] | None = None) -> Report:
    """The metric checklist of ``spec`` (see the module docstring), on :class:`ProbeDataset` data."""
    report = Report("metrics", spec.name, spec.source)
    _check_metadata(report, spec)
    options = options or {}
    try:
        with _guard(report, "build", f"the factory of {spec.name!r}"):
            metric = spec.factory(**options)
        if not isinstance(metric, Metric):
            report.add("build", "fail", f"the factory returned {type(metric).__name__}, not a brainbench.Metric")
            raise _Stop
        report.add("build", "pass", f"the factory returned a Metric for {', '.join(metric.modalities)} data")
        _check_unknown_option(report, spec, options)
        if getattr(metric, "trajectory", False):  # scored over checkpoint series, e.g. halftime
            check = getattr(metric, "conformance_check", None)
            status, message = check() if check else ("skip", "a trajectory metric has no single-checkpoint probe")
            report.add("probe trajectory", status, message)
            raise _Stop
        for modality in metric.modalities:
            if modality not in ("fmri", "meg"):
                report.add(f"probe {modality}", "skip", f"no probe data for modality {modality!r}")
                continue
            _check_probe(report, metric, ProbeDataset(modality))
    except _Stop:
        pass
    return report


def _check_unknown_option(report: Report, spec: Spec, options: dict[str, Any]) -> None:
    try:
        spec.factory(**options, conformance_no_such_option=1)
    except BrainbenchError:
        report.add("options", "pass", "an unknown option is refused in one sentence")
    except Exception as exc:  # noqa: BLE001
        report.add("options", "fail", f"an unknown option raised {type(exc).__name__}, not a one-sentence "
                   "BrainbenchError (brainbench.Metric checks options against defaults)")
    else:
        report.add("options", "fail", "an unknown option was accepted silently; check options against defaults")


def _check_probe(report: Report, metric: Metric, probe: ProbeDataset) -> None:
    name = f"probe {probe.modality}"
    with _guard(report, name, f"scoring the {probe.modality} probe"):
        metric.check_dataset(probe)
        perfect = {s: metric.score(dict(probe.layers), probe.responses(s), probe) for s in probe.subjects}
        noise = metric.score(dict(probe.noise_layers), probe.responses(probe.subjects[0]), probe)
    problem = next(filter(None, [score_problem(s) for s in perfect.values()] + [score_problem(noise, strict=False)]),
                   None)
    if problem:
        report.add(name, "fail", f"on the {probe.modality} probe, {problem}")
        raise _Stop
    first = perfect[probe.subjects[0]]
    ceiling = first.detail.get("noise_ceiling")
    ceiling = float(ceiling) if isinstance(ceiling, (int, float)) and 0 < ceiling <= 1 else 1.0
    if not first.value >= PERFECT_FRACTION * ceiling:
        report.add(name, "fail", f"a perfect model (responses read out from its own features) scores "
                   f"{first.value:.3f}, below {PERFECT_FRACTION:.0%} of the ceiling {ceiling:.3f}")
    elif math.isfinite(noise.value) and abs(noise.value) > max(NOISE_FRACTION * ceiling, 3 * noise.error):
        report.add(name, "fail", f"a model of pure noise scores {noise.value:.3f} ± {noise.error:.3f}, not near 0 "
                   "(is the score cross-validated?)")
    else:
        noise_text = "undefined (NaN)" if math.isnan(noise.value) else f"{noise.value:.3f} ± {noise.error:.3f}"
        report.add(name, "pass", f"a perfect model scores {first.value:.3f} (ceiling {ceiling:.3f}), a noise model "
                   f"{noise_text}")
    with _guard(report, f"aggregate {probe.modality}", "aggregate()"):
        total = metric.aggregate(perfect)
    problem = score_problem(total)
    report.add(f"aggregate {probe.modality}", "fail" if problem else "pass",
               f"aggregate() over {len(perfect)} subjects: {problem}" if problem
               else f"aggregate() over {len(perfect)} subjects gives {total.value:.3f} ± {total.error:.3f}")

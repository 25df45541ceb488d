# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quickstart: score a model, get a DataFrame, draw it
#
# Scores DINOv3 ViT-S/16 with random weights on the built-in synthetic fMRI data (photographs
# that scikit-image ships, no download), then reads the results as pandas DataFrames and draws
# them: per layer, per region, and on the cortex.
#
# The test suite runs this notebook with `BRAINBENCH_NOTEBOOK_QUICK=1`: a 4-block test-sized
# model and 40 images at 64 px, so that it takes seconds; the code is the same.

# %%
# %matplotlib inline
import os

import brainbench

QUICK = os.environ.get("BRAINBENCH_NOTEBOOK_QUICK") == "1"
MODEL = "dinov3-tiny@init" if QUICK else "dinov3-small@init"
DATA = {"reference": "dinov3-tiny@init", "n_images": 40, "image_size": 64} if QUICK else {}

# %% [markdown]
# `brainbench.score` runs what `bench run` runs: rows are stored in the results database
# (`bench config` shows where) and activations are cached, so a second call is fast.

# %%
scores = brainbench.score(MODEL, "synthetic-fmri", ["encoding", "spatial"], dataset_options=DATA)
scores[["model", "checkpoint", "metric", "subject", "score", "error", "layer", "noise_ceiling", "ceiled_score"]]

# %% [markdown]
# The aggregate over subjects is the row with `subject == "all"`; it carries the chosen layer,
# the noise ceiling and the ceiled score.

# %%
aggregate = scores[scores.subject == "all"].set_index("metric")
aggregate.loc["encoding", ["score", "error", "layer", "ceiled_score"]]

# %% [markdown]
# ## Per layer
#
# `detail="layers"` gives one row per layer: the mean encoding r of every layer.

# %%
layers = brainbench.results(model=MODEL, metric="encoding", detail="layers")
profile = layers[layers.subject == "all"]
profile[["layer", "depth", "r", "chosen"]]

# %%
from brainbench.leaderboard import plots

plots.layer_profile(dict(zip(profile.layer, profile.r)), f"{MODEL}: encoding r per layer",
                    best=profile[profile.chosen].layer.iloc[0])

# %% [markdown]
# ## Per region
#
# `detail="regions"` gives one row per region: encoding r at the chosen layer, and, from the
# spatial rows, each region's best layer and its distance from V1. Merge them on the region.

# %%
regions = brainbench.results(model=MODEL, subject="all", detail="regions")
keys = ["model", "checkpoint", "dataset", "subject", "region"]
table = regions[regions.metric == "encoding"][keys + ["r", "noise_ceiling"]].merge(
    regions[regions.metric == "spatial"][keys + ["best_layer", "depth", "distance_mm"]], on=keys)
table

# %%
plots.region_bars(dict(zip(table.region, table.r)), f"{MODEL}: encoding r per region")

# %%
spatial = aggregate.loc["spatial"]
plots.layer_distance({r: {"depth": d, "distance_mm": x} for r, d, x in zip(table.region, table.depth, table.distance_mm)},
                     profile.layer.tolist(), f"{MODEL}: best layer vs distance from V1", pearson=spatial.score)

# %% [markdown]
# ## On the cortex
#
# `cortical_map` draws per-region values on nilearn's inflated fsaverage5 surface, one value per
# Glasser (HCP-MMP1) parcel; parcels without a value stay grey. The synthetic dataset's regions
# are `V1` and `area-01` … `area-11`, which are not cortical parcels: only V1 lands on the cortex,
# and the figure says so. With NSD (`-d nsd`), regions are Glasser parcels (`lh.V1`, `lh.MT`, …)
# and every one is drawn. Only the left hemisphere's labels are shipped.

# %%
from brainbench.leaderboard.cortex import cortical_map

cortical_map(dict(zip(table.region, table.r)), "encoding r", f"{MODEL}: encoding r per region")

# %% [markdown]
# What a full map looks like: the T1w/T2w myelin map that `bench analyze cortical-maps`
# correlates half-times with, one value for each of the 180 parcels.

# %%
from brainbench.core.compute.cortical import load_maps

maps = load_maps()
cortical_map(dict(zip(maps.parcels, maps.maps["myelin_t1t2"])), "T1w/T2w ratio", "myelin (HCP S1200)", cmap="magma")

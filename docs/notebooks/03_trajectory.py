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
# # A training trajectory: checkpoints, half-times, the report
#
# `tiny-dino` is a small ViT that brainbench trains on CPU with DINO self-distillation
# (`bench trajectory make`, about two minutes for the default 300 steps). Scoring its
# checkpoints in step order gives every score along training; the half-time is the step at
# which a score first reaches half its final value (Raugel et al. 2026: temporal → encoding →
# spatial). `bench report` then draws the paper's figures for what is stored.
#
# The test suite runs this with `BRAINBENCH_NOTEBOOK_QUICK=1`: 12 training steps, 4 checkpoints,
# 40 images at 64 px, in a temporary weights folder.

# %%
# %matplotlib inline
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import brainbench
from brainbench.core.config import Config

QUICK = os.environ.get("BRAINBENCH_NOTEBOOK_QUICK") == "1"
DATA = {"reference": "dinov3-tiny@init", "n_images": 40, "image_size": 64} if QUICK else {}
if QUICK:
    os.environ["BRAINBENCH_WEIGHTS"] = tempfile.mkdtemp(prefix="tiny-dino-")
config = Config()
folder = (config.path("weights") or config.home / "weights") / "tiny-dino"

# %% [markdown]
# Train the checkpoints once (skipped when the folder already holds a trajectory).

# %%
bench = [sys.executable, "-m", "brainbench.cli"]
if not any(folder.glob("model_*.pth")):
    quick = ["--steps", "12", "--batch-size", "8", "--checkpoints", "4"] if QUICK else []
    subprocess.run(bench + ["trajectory", "make", "--out", str(folder), *quick], check=True)
print(subprocess.run(bench + ["list", "checkpoints", "tiny-dino"], capture_output=True, text=True).stdout)

# %% [markdown]
# `tiny-dino@all` scores every checkpoint (step 0 is the initialisation) with the half-time's
# base metrics — encoding and spatial on synthetic fMRI, encoding and temporal on synthetic MEG —
# and then computes the half-times. The per-checkpoint rows are stored too.

# %%
halftimes = brainbench.score("tiny-dino@all", None, "halftime", dataset_options=DATA,
                             metric_options={"bootstrap": 100} if QUICK else {})
halftimes[halftimes.subject == "all"][["dataset", "base", "score", "error"]]

# %% [markdown]
# One row per half-time target: the score's, each region's (fMRI) and each MEG window's.

# %%
targets = brainbench.results(model="tiny-dino", detail="halftimes", subject="all")
targets[["dataset", "base", "target_kind", "target", "half_time_step", "half_time_percent", "used", "reason"]]

# %% [markdown]
# The scores along training, read from the stored per-checkpoint rows.

# %%
curves = brainbench.results(model="tiny-dino", subject="all")
curves = curves[curves.metric != "halftime"][["checkpoint", "dataset", "metric", "score"]]
curves.pivot_table(index="checkpoint", columns=["dataset", "metric"], values="score")

# %% [markdown]
# ## The report
#
# `bench report -m tiny-dino --out report/` does the same from the command line. Figures that
# cannot be drawn from what is stored are listed with the command that would compute them: here
# the synthetic regions are not Glasser parcels, so the cortex shows V1 only and the cortical-map
# correlations need NSD (`-d nsd`).

# %%
from brainbench.leaderboard.report import write_report

out = Path(tempfile.mkdtemp(prefix="report-"))
report = write_report(["tiny-dino"], out, config.db_path)
(model,) = report.models
print("drawn:", sorted({f.number for f in model.figures}))
for missing in model.missing:
    print(f"not drawn: {missing.number}. {missing.what} ({missing.why}): {missing.command}")

# %%
from IPython.display import Image, display

for figure in model.figures:
    if figure.number in (3, 4):
        display(Image(filename=str(out / f"{figure.stem}.png")))

# %%
import pandas as pd

pd.DataFrame(model.numbers, columns=["quantity", "this run", "Raugel et al. 2026"])

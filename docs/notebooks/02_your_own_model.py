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
# # Bring your own model
#
# A torch module written in a notebook cell becomes a brainbench model with one class and one
# hook, registered for this session with `brainbench.api.use_plugin` (no package needed; to share
# it, `bench new model NAME` makes the package). Then it is scored beside DINOv3 ViT-S/16.
#
# The test suite runs this with `BRAINBENCH_NOTEBOOK_QUICK=1` (the test-sized DINOv3 and 40
# images at 64 px).

# %%
# %matplotlib inline
import os

import torch

import brainbench
from brainbench.api import use_plugin

QUICK = os.environ.get("BRAINBENCH_NOTEBOOK_QUICK") == "1"
REFERENCE = "dinov3-tiny@init" if QUICK else "dinov3-small@init"
DATA = {"reference": "dinov3-tiny@init", "n_images": 40, "image_size": 64} if QUICK else {}

# %% [markdown]
# A model is a `brainbench.VisionModel`: its layers' names, a fingerprint of its weights (it
# keys the activation cache), `load(device)` and `forward_layers(pixels)`, one tensor per layer.
# Resizing, normalisation, batching, pooling and caching are brainbench's.

# %%
class SmallCNN(brainbench.VisionModel):
    image_size = 64
    layer_names = ["conv1", "conv2", "conv3", "pooled"]

    def fingerprint(self):
        return {"seed": 0, "architecture": "conv16-conv32-conv64"}

    def load(self, device):
        torch.manual_seed(0)
        self.net = torch.nn.ModuleList([torch.nn.Conv2d(3, 16, 3, stride=2), torch.nn.Conv2d(16, 32, 3, stride=2),
                                        torch.nn.Conv2d(32, 64, 3, stride=2)]).to(device).eval()

    def forward_layers(self, pixels):
        outputs, x = [], pixels
        for conv in self.net:
            x = conv(x).relu()
            outputs.append(x)
        return outputs + [x.mean(dim=(2, 3))]


class NotebookPlugin:
    @staticmethod
    @brainbench.hookimpl
    def register_models(register):
        register("small-cnn", lambda checkpoint=None, **options: SmallCNN("small-cnn", checkpoint or "init"),
                 description="A three-layer CNN written in a notebook", family="cnn", parameters=23_584, layers=4,
                 training_data="none", objective="none", source="docs/notebooks/02_your_own_model.py")


use_plugin(NotebookPlugin, name="notebook")

# %%
scores = brainbench.score(["small-cnn@init", REFERENCE], "synthetic-fmri", "encoding", dataset_options=DATA)
scores[scores.subject == "all"][["model", "score", "error", "layer", "ceiled_score"]]

# %% [markdown]
# ## Region by region
#
# The two models' encoding r per region, against each other: points above the diagonal are
# regions the reference model predicts better.

# %%
regions = brainbench.results(detail="regions", metric="encoding", subject="all", dataset="synthetic-fmri")
wide = regions.pivot_table(index="region", columns="model", values="r")
wide

# %%
from brainbench.leaderboard import plots

mine, reference = "small-cnn", REFERENCE.split("@")[0]
plots.labelled_scatter({region: (row[mine], row[reference]) for region, row in wide.iterrows()},
                       f"{mine} encoding r", f"{reference} encoding r", "encoding r per region", identity=True)

# %% [markdown]
# ## Layer by layer

# %%
layers = brainbench.results(detail="layers", metric="encoding", subject="all", dataset="synthetic-fmri")
layers[layers.model == mine][["layer", "depth", "r", "chosen"]]

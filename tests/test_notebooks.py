"""The notebooks in docs/notebooks/ execute top to bottom in a real Jupyter kernel, and show their figures inline.

They are jupytext percent-format ``.py`` files (reviewable diffs), run with nbclient in quick mode
(``BRAINBENCH_NOTEBOOK_QUICK=1``: the test-sized model, 40 images at 64 px, a 12-step trajectory).
"""
from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "docs" / "notebooks").glob("*.py"))
#: notebook → the fewest inline PNG figures it must show
FIGURES = {"01_quickstart.py": 5, "02_your_own_model.py": 1, "03_trajectory.py": 1}


def test_every_notebook_is_listed():
    assert [p.name for p in NOTEBOOKS] == sorted(FIGURES)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_notebook_runs_and_shows_its_figures(path, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("BRAINBENCH_NOTEBOOK_QUICK", "1")
    notebook = jupytext.read(path)
    assert notebook.metadata["jupytext"]["formats"] == "py:percent"
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= FIGURES[path.name], f"{path.name} showed {len(images)} figures inline"

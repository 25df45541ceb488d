"""BibTeX for a benchmark page: the dataset's reference and the metric's.

A plugin can give its own entry as the ``bibtex`` metadata field (``register(..., bibtex="@article{…}")``);
otherwise the built-in datasets and metrics have theirs below, and any other dataset with a
``citation`` string gets a ``@misc`` entry holding that string (so a page never invents authors).
"""
from __future__ import annotations

import re

RAUGEL_2026 = """@inproceedings{raugel2026disentangling,
  title     = {Disentangling the Factors of Convergence between Brains and Computer Vision Models},
  author    = {Raugel, Jos{\\'e}phine and others},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2026},
  eprint    = {2508.18226},
  archivePrefix = {arXiv}
}"""

DATASETS = {
    "nsd": """@article{allen2022massive,
  title   = {A massive {7T} {fMRI} dataset to bridge cognitive neuroscience and artificial intelligence},
  author  = {Allen, Emily J. and St-Yves, Ghislain and Wu, Yihan and Breedlove, Jesse L. and Prince, Jacob S. and Dowdle, Logan T. and Nau, Matthias and Caron, Brad and Pestilli, Franco and Charest, Ian and Hutchinson, J. Benjamin and Naselaris, Thomas and Kay, Kendrick},
  journal = {Nature Neuroscience},
  volume  = {25},
  pages   = {116--126},
  year    = {2022},
  doi     = {10.1038/s41593-021-00962-x}
}""",
    "things-meg": """@article{hebart2023things,
  title   = {{THINGS-data}, a multimodal collection of large-scale datasets for investigating object representations in human brain and behavior},
  author  = {Hebart, Martin N. and Contier, Oliver and Teichmann, Lina and Rockter, Adam H. and Zheng, Charles Y. and Kidder, Alexis and Corriveau, Anna and Vaziri-Pashkam, Maryam and Baker, Chris I.},
  journal = {eLife},
  volume  = {12},
  pages   = {e82580},
  year    = {2023},
  doi     = {10.7554/eLife.82580}
}""",
}
#: metrics defined by the paper
METRICS = {"encoding": RAUGEL_2026, "spatial": RAUGEL_2026, "temporal": RAUGEL_2026, "halftime": RAUGEL_2026}


def _escape(text: str) -> str:
    return re.sub(r"([{}%&$#_])", r"\\\1", text)


def bibtex(dataset: str, metric: str, dataset_metadata: dict | None = None,
           metric_metadata: dict | None = None) -> list[str]:
    """BibTeX entries to cite for a (dataset, metric) benchmark, dataset first; duplicates once."""
    entries = []
    dataset_metadata, metric_metadata = dataset_metadata or {}, metric_metadata or {}
    given = dataset_metadata.get("bibtex")
    if isinstance(given, str) and given.strip():
        entries.append(given.strip())
    elif dataset in DATASETS:
        entries.append(DATASETS[dataset])
    elif dataset_metadata.get("citation"):
        key = re.sub(r"[^a-z0-9]+", "", dataset.lower()) or "dataset"
        entries.append(f"@misc{{{key},\n  title = {{{_escape(dataset)}}},\n"
                       f"  note  = {{{_escape(str(dataset_metadata['citation']))}}}\n}}")
    given = metric_metadata.get("bibtex")
    metric_entry = given.strip() if isinstance(given, str) and given.strip() else METRICS.get(metric)
    if metric_entry and metric_entry not in entries:
        entries.append(metric_entry)
    return entries

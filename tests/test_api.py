"""The notebook API: brainbench.score()/results() return the stored rows as documented DataFrames."""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import brainbench
from brainbench.cli import main
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Score
from brainbench.core.store.results import ResultRow, ResultStore
from brainbench.core.store.tables import COLUMNS, RESULT_COLUMNS, frame

from conftest import TINY_DATASET, TINY_MODEL

DOCS = Path(__file__).resolve().parents[1] / "docs" / "notebook-api.md"


@pytest.fixture(scope="module")
def scored(tmp_path_factory, session_home):
    """One tiny run of encoding and spatial, stored in its own database."""
    db = tmp_path_factory.mktemp("api") / "results.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BRAINBENCH_HOME", str(session_home))
        patch.setenv("BRAINBENCH_LOAD_PLUGINS", "")
        df = brainbench.score(TINY_MODEL, "synthetic-fmri", ["encoding", "spatial"], db=str(db),
                              dataset_options=TINY_DATASET)
    with ResultStore(db) as store:
        rows = store.query()
    return df, rows, db


def documented_columns() -> dict:
    """``detail`` → the column names listed under its heading in docs/notebook-api.md."""
    out, current = {}, None
    for line in DOCS.read_text().splitlines():
        heading = re.match(r'^### `detail=(None|"(\w+)")`', line)
        if heading:
            current = heading.group(2)
            out[current] = []
        elif line.startswith("## "):
            current = "done"  # the tables end with their section
        elif current in out and line.startswith("| `"):
            out[current].append(re.match(r"^\| `(\w+)`", line).group(1))
    return out


def test_the_documented_columns_are_the_columns():
    assert documented_columns() == {k: list(v) for k, v in COLUMNS.items()}


def test_score_returns_what_it_stored_with_the_aggregate_filled_in(scored):
    df, rows, db = scored
    assert list(df.columns) == list(RESULT_COLUMNS)
    assert len(df) == len(rows) == 2 * (3 + 1)  # two metrics × (three subjects + the aggregate)
    stored = {(r.metric, r.subject): r.score for r in rows}
    assert {(m, s): v for m, s, v in zip(df.metric, df.subject, df.score)} == stored
    enc = df[df.metric == "encoding"].set_index("subject")
    subjects = enc.drop(index="all")
    aggregate = enc.loc["all"]
    assert aggregate.score == pytest.approx(subjects.score.mean())
    assert aggregate.noise_ceiling == pytest.approx(subjects.noise_ceiling.mean())
    assert aggregate.ceiled_score == pytest.approx(subjects.ceiled_score.mean())
    assert subjects.ceiled_score.tolist() == pytest.approx((subjects.score / subjects.noise_ceiling).tolist())
    assert aggregate.layer == subjects.layer.mode().iloc[0] and aggregate.n_subjects == 3
    assert df[df.metric == "spatial"].layer.isna().all()  # no value is None, never a made-up layer
    again = brainbench.results(db=str(db), model=f"{TINY_MODEL}")
    def same_order(table):
        return table.drop(columns=["created_at", "updated_at"]).sort_values(["metric", "subject"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(same_order(again), same_order(df))


def test_layer_and_region_tables_unfold_the_detail(scored):
    _, rows, db = scored
    layers = brainbench.results(db=str(db), detail="layers", metric="encoding")
    assert list(layers.columns) == list(COLUMNS["layers"])
    for row in rows:
        if row.metric != "encoding":
            continue
        mine = layers[layers.subject == row.subject]
        assert dict(zip(mine.layer, mine.r)) == pytest.approx(row.detail["per_layer"])
        assert mine[mine.chosen].layer.tolist() == [row.detail["layer"]]
        # under `best` a subject's chosen layer is its best one (`nested` chooses per fold, on training data)
        if row.subject != "all" and row.detail.get("layer_selection") == "best":
            assert mine.loc[mine.r.idxmax(), "layer"] == row.detail["layer"]
    regions = brainbench.results(db=str(db), detail="regions", subject="all")
    assert list(regions.columns) == list(COLUMNS["regions"])
    enc = regions[regions.metric == "encoding"].set_index("region")
    spa = regions[regions.metric == "spatial"].set_index("region")
    aggregate = {(r.metric, r.subject): r for r in rows}
    assert enc.r.to_dict() == pytest.approx(aggregate["encoding", "all"].detail["per_region"])
    assert (enc.noise_ceiling > 0).all() and enc.best_layer.isna().all()
    assert spa.loc["V1", "distance_mm"] == 0 and spa.distance_mm.drop("V1").gt(0).all()
    assert spa.parcel.loc["V1"] == "V1" and spa.hemisphere.isna().all()
    # planted truth: deeper regions lie farther from V1, so depth rises with distance
    assert np.corrcoef(spa.depth, spa.distance_mm)[0, 1] > 0.5


def test_bench_results_exports_each_detail_as_csv_and_json(scored):
    _, rows, db = scored
    runner = CliRunner()
    out = runner.invoke(main, ["results", "--db", str(db), "--detail", "regions", "--format", "csv"])
    assert out.exit_code == 0, out.output
    table = pd.read_csv(io.StringIO(out.output))
    assert list(table.columns) == list(COLUMNS["regions"]) and len(table) == 2 * 4 * 12
    out = runner.invoke(main, ["results", "--db", str(db), "--detail", "layers", "--format", "json", "-s", "all"])
    assert out.exit_code == 0, out.output
    records = json.loads(out.output)
    assert set(records[0]) == set(COLUMNS["layers"]) and all(r["subject"] == "all" for r in records)
    out = runner.invoke(main, ["results", "--db", str(db), "--detail", "voxels"])
    assert out.exit_code == 2 and "'voxels' is not one of" in out.output


def test_bad_input_is_one_sentence(tmp_path):
    with pytest.raises(BrainbenchError, match="detail must be one of layers, regions, times, halftimes"):
        brainbench.results(detail="voxels")
    with pytest.raises(BrainbenchError, match="no results database at"):
        brainbench.results(db=str(tmp_path / "none.db"))
    with pytest.raises(BrainbenchError, match="score\\(\\) has no option 'folds'"):
        brainbench.score(TINY_MODEL, folds=3)
    from brainbench.api import use_plugin

    with pytest.raises(BrainbenchError, match="'nothing' implements none of register_models"):
        use_plugin(object(), name="nothing")


def _row(metric: str, subject: str, detail: dict, options: dict | None = None) -> ResultRow:
    return ResultRow(model="m", checkpoint="all", dataset="d", subject=subject, metric=metric,
                     options=json.dumps(options or {"metric": {}}), score=1.0, error=math.nan, n_units=1,
                     detail=detail)


def test_times_and_halftimes_tables_from_real_metric_outputs(tiny_meg):
    from brainbench.plugins.metrics.halftime import Halftime

    steps = [0, 10, 100, 1000]
    scores = {s: [Score(v * k, math.nan, 4, {"per_time": {"0.0": v * k, "50.0": v * k / 2}}) for v in
                  (0.0, 0.2, 0.5, 0.6)] for s, k in (("a", 1.0), ("b", 1.2))}
    scores["all"] = [Score(0.5 * (a.value + b.value), math.nan, 8,
                           {"per_time": {t: 0.5 * (a.detail["per_time"][t] + b.detail["per_time"][t])
                                         for t in a.detail["per_time"]}}) for a, b in zip(scores["a"], scores["b"])]
    found = Halftime(bootstrap=20, n_permutations=10, window_ms=0).score_trajectory("encoding", steps, scores, tiny_meg)
    row = _row("halftime", "all", found["all"].detail, {"metric": {"base": "encoding"}})
    table = frame([row], "halftimes")
    assert list(table.columns) == list(COLUMNS["halftimes"])
    score = table[table.target_kind == "score"].iloc[0]
    assert score.base == "encoding" and score.half_time_step == pytest.approx(found["all"].detail["half_time_step"])
    windows = table[table.target_kind == "window"].set_index("target")
    assert sorted(windows.time_ms) == [0.0, 50.0]
    subject = frame([_row("halftime", "a", found["a"].detail, {"metric": {"base": "encoding"}})], "halftimes")
    assert subject.half_time_percent.tolist() == pytest.approx([found["a"].value])

    r_time = {"l0": [0.1, 0.3, None], "l1": [0.0, 0.2, 0.4]}
    times = frame([_row("temporal", "all", {"layers": ["l0", "l1"], "times": [0, 50, 100], "r_time": r_time,
                                             "t_max": {"l0": 50.0, "l1": 100.0}})], "times")
    assert list(times.columns) == list(COLUMNS["times"]) and len(times) == 6
    assert times.set_index(["layer", "time_ms"]).r.loc["l1"].tolist() == [0.0, 0.2, 0.4]
    assert math.isnan(times.set_index(["layer", "time_ms"]).r.loc[("l0", 100.0)])  # missing stays missing
    assert times.groupby("layer").t_max_ms.first().to_dict() == {"l0": 50.0, "l1": 100.0}

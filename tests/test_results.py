"""The SQLite results store: upserts, NaN handling, globs, migrations, canonical options."""
from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from brainbench.core.store import results
from brainbench.core.store.formatting import render
from brainbench.core.store.results import ResultRow, ResultStore, canonical_options


def make_row(**changes) -> ResultRow:
    values = dict(model="dinov3-small", checkpoint="init", dataset="synthetic-fmri", subject="sub-01",
                  metric="encoding", options=canonical_options({"metric": {"folds": 5}}), score=0.25,
                  error=0.01, n_units=480, detail={"layer": "layer03", "per_layer": {"layer03": 0.25}},
                  brainbench_version="0.1.0", plugin_versions={"brainbench.plugins.models.dinov3": "built-in"},
                  data_hash="abc123", activations_key="key1", seed=0, elapsed_s=1.5)
    values.update(changes)
    return ResultRow(**values)


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "results.db") as opened:
        yield opened


def test_creates_file_and_folder_in_wal_mode(tmp_path):
    path = tmp_path / "deep" / "er" / "results.db"
    with ResultStore(path) as store:
        assert path.is_file()
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.count() == 0
    other = sqlite3.connect(path)  # WAL is a property of the file: a plain connection sees it too
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()


def test_round_trip_keeps_every_field(store):
    row = make_row()
    store.save(row)
    (back,) = store.query()
    for name in ("model", "checkpoint", "dataset", "subject", "metric", "options", "score", "error", "n_units",
                 "detail", "brainbench_version", "plugin_versions", "data_hash", "activations_key", "seed",
                 "elapsed_s"):
        assert getattr(back, name) == getattr(row, name), name
    assert back.created_at == back.updated_at != ""
    assert back.created_at.endswith("+00:00")  # ISO 8601, UTC


def test_saving_the_same_key_updates_in_place(store):
    store.save(make_row(score=0.25))
    # make the first save look old, so that "kept" and "updated" are distinguishable
    with store.db:
        store.db.execute("UPDATE results SET created_at = '2000-01-01T00:00:00+00:00', "
                         "updated_at = '2000-01-01T00:00:00+00:00'")
    store.save(make_row(score=0.5, error=0.02, n_units=470, detail={"layer": "layer04"}, elapsed_s=2.0))
    assert store.count() == 1
    (row,) = store.query()
    assert (row.score, row.error, row.n_units, row.detail, row.elapsed_s) == (0.5, 0.02, 470, {"layer": "layer04"}, 2.0)
    assert row.created_at == "2000-01-01T00:00:00+00:00"
    assert row.updated_at > "2000-01-01T00:00:00+00:00"


@pytest.mark.parametrize("field, value", [
    ("model", "dinov3-base"), ("checkpoint", "pretrained"), ("dataset", "synthetic-meg"),
    ("subject", "all"), ("metric", "spatial"), ("options", canonical_options({"metric": {"folds": 3}})),
])
def test_each_key_field_makes_its_own_row(store, field, value):
    store.save(make_row())
    store.save(make_row(**{field: value}))
    assert store.count() == 2
    assert {getattr(r, field) for r in store.query()} == {getattr(make_row(), field), value}


def test_non_key_fields_do_not_make_new_rows(store):
    store.save(make_row())
    store.save(make_row(data_hash="other", seed=3, brainbench_version="9.9"))
    assert store.count() == 1
    assert store.query()[0].data_hash == "other"


def test_nan_score_and_error_round_trip(store):
    store.save(make_row(score=float("nan"), error=float("nan")))
    raw = store.db.execute("SELECT score, error FROM results").fetchone()
    assert (raw[0], raw[1]) == (None, None)  # stored as NULL
    (row,) = store.query()
    assert math.isnan(row.score) and math.isnan(row.error)
    as_json = row.to_json()
    assert as_json["score"] is None and as_json["error"] is None
    assert json.loads(json.dumps(as_json, allow_nan=False))["score"] is None


def test_to_json_parses_options_and_keeps_numbers(store):
    store.save(make_row())
    as_json = store.query()[0].to_json()
    assert as_json["options"] == {"metric": {"folds": 5}}
    assert as_json["score"] == 0.25 and as_json["error"] == 0.01
    assert as_json["plugin_versions"] == {"brainbench.plugins.models.dinov3": "built-in"}


def test_json_output_is_strict_json_when_detail_has_nan(store):
    store.save(make_row(detail={"per_layer": {"layer00": float("nan"), "layer01": 0.2}}))
    text = render(store.query(), "json")

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    json.loads(text, parse_constant=reject)


def test_query_filters_with_globs(store):
    for model in ("dinov3-small", "dinov3-large", "convnext-tiny"):
        for subject in ("sub-01", "sub-02", "all"):
            store.save(make_row(model=model, subject=subject))
    assert store.count() == 9
    assert {r.model for r in store.query(model="dinov3-*")} == {"dinov3-small", "dinov3-large"}
    assert len(store.query(model="dinov3-*")) == 6
    assert [(r.model, r.subject) for r in store.query(subject="all")] == [
        ("convnext-tiny", "all"), ("dinov3-large", "all"), ("dinov3-small", "all")]  # ordered by model
    assert [r.subject for r in store.query(model="dinov3-small", subject="sub-0?")] == ["sub-01", "sub-02"]
    assert store.query(model="DINOV3-*") == []  # globs are case-sensitive, like the names
    assert len(store.query(model=None, subject=None)) == 9
    with pytest.raises(ValueError, match="cannot filter on 'score'"):
        store.query(score="0.5")


def test_migrations_run_once(tmp_path, monkeypatch):
    calls = []

    def _m999_extra(db):
        calls.append(1)
        db.execute("CREATE TABLE extra (x INTEGER)")  # would fail if run twice

    monkeypatch.setattr(results, "MIGRATIONS", [*results.MIGRATIONS, _m999_extra])
    path = tmp_path / "results.db"
    with ResultStore(path) as store:
        store.save(make_row())
        first = store.db.execute("SELECT name, applied_at FROM _migrations ORDER BY name").fetchall()
    with ResultStore(path) as store:
        again = store.db.execute("SELECT name, applied_at FROM _migrations ORDER BY name").fetchall()
        assert store.count() == 1  # the data survived reopening
    assert calls == [1]
    assert [tuple(r) for r in again] == [tuple(r) for r in first]
    assert [r[0] for r in first] == ["_m001_results", "_m002_failures", "_m003_provenance", "_m999_extra"]


def test_canonical_options_are_order_independent():
    a = canonical_options({"metric": {"folds": 5, "alphas": [1.0, 10.0]}, "pooling": "mean"})
    b = canonical_options({"pooling": "mean", "metric": {"alphas": [1.0, 10.0], "folds": 5}})
    assert a == b == '{"metric":{"alphas":[1.0,10.0],"folds":5},"pooling":"mean"}'
    assert canonical_options({"metric": {"folds": 3}}) != canonical_options({"metric": {"folds": 5}})
    assert canonical_options({"x": (1, 2)}) == canonical_options({"x": [1, 2]}) == '{"x":[1,2]}'
    assert canonical_options({"x": np.array([1.5, 2.5])}) == '{"x":[1.5,2.5]}'
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        canonical_options({"x": object()})

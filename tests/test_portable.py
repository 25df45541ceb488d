"""Portable result files: lossless round trips, the published schema, and files that must be refused."""
from __future__ import annotations

import copy
import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import brainbench
from brainbench.core.store import benchmarks, results
from brainbench.core.store.benchmarks import benchmark_id, current_version
from brainbench.core.contract.data import ArrayStimulusSet, Dataset
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.exchange import export_results, import_files
from brainbench.core.registry.discovery import get_plugin_manager
from brainbench.core.store.portable import (InvalidResultFile, check_document, content_hash, document_rows, dumps, load,
                                      read_document)
from brainbench.core.store.provenance import machine_summary, scoring_provenance
from brainbench.core.registry.specs import reset_registry
from brainbench.core.store.results import ResultRow, ResultStore, canonical_options
from brainbench.core.store.schema import DRAFT_2020_12, first_problem, load_schema, unsupported_keywords

OPTIONS = {"metric": {"folds": 5, "alphas": [1.0, 10.0]}, "pooling": "mean", "model": {}, "dataset": {"n_images": 40}}
TIMES = {"created_at": "2026-01-02T03:04:05+00:00", "updated_at": "2026-01-02T03:04:06+00:00"}


def make_rows(model="dinov3-small", checkpoint="init", dataset="synthetic-fmri", metric="encoding", score=0.3,
              subjects=("sub-01", "sub-02"), data_hash="d" * 64, options=None, **changes) -> list[ResultRow]:
    """The rows of one score: each subject and the aggregate, with a detail holding NaN, infinities and None."""
    rows = []
    for i, subject in enumerate([*subjects, "all"]):
        value = score + 0.01 * i if subject != "all" else score
        detail = {"layer": "layer03", "per_layer": {"layer02": value / 2, "layer03": value, "layer04": math.nan},
                  "n_dropped": 0, "onset": None, "profile": [[1.0, math.inf], [-math.inf, 0.5]],
                  "odd/key~name": math.nan}
        values = dict(options=canonical_options(options or OPTIONS), score=value, error=0.01 + 0.001 * i,
                      n_units=480, detail=detail, brainbench_version="0.1.0",
                      plugin_versions={"brainbench.plugins.models.dinov3": "built-in"}, data_hash=data_hash,
                      activations_key=f"key-{model}", seed=0, elapsed_s=1.5 + i, **TIMES)
        rows.append(ResultRow(model=model, checkpoint=checkpoint, dataset=dataset, subject=subject, metric=metric,
                              **{**values, **changes}))
    return rows


def fill(path: Path, *groups: list[ResultRow]) -> Path:
    """A real results database holding the rows as if they had been imported (timestamps kept)."""
    with ResultStore(path) as store:
        for rows in groups:
            report = store.merge(rows)
            assert not report.conflicts
    return path


def exported(tmp_path: Path, *groups, name="lab-a", **kwargs) -> list[Path]:
    with ResultStore(fill(tmp_path / f"{name}.db", *groups)) as store:
        report = export_results(store, tmp_path / name, contributor="Ada Lovelace", lab="Engines", **kwargs)
    assert not report.problems, report.problems
    return report.written


def comparable(row: ResultRow) -> str:
    """Every field of a row, as text in which NaN equals NaN."""
    return json.dumps(vars(row), sort_keys=True, allow_nan=True)


def test_export_import_round_trip_is_lossless(tmp_path):
    undefined = make_rows(model="convnet-b", score=0.2)
    undefined[-1].score = undefined[-1].error = math.nan  # computed, but undefined
    original = make_rows() + undefined
    files = exported(tmp_path, original[:3], original[3:])
    assert len(files) == 2 and all(f.suffix == ".json" for f in files)
    for file in files:
        json.loads(file.read_text(), parse_constant=lambda c: pytest.fail(f"{file} holds {c}"))  # strict JSON
    with ResultStore(tmp_path / "other.db") as store:
        report = import_files(store, [tmp_path / "lab-a"])
        assert (report.added, report.identical, report.rejected, report.conflicts) == (6, 0, [], [])
        back = {r.key: r for r in store.query()}
    document = read_document(files[0])
    for row in original:
        copy_ = back[row.key]
        assert copy_.provenance["contributor"] == "Ada Lovelace" and copy_.benchmark_version == 1
        assert comparable(copy_) == comparable(ResultRow(**{**vars(row), "provenance": copy_.provenance,
                                                            "benchmark_version": 1}))
    assert math.isnan(back[original[-1].key].score)
    assert document["provenance"]["machine"] == machine_summary()
    # and back out again: byte for byte the same files
    with ResultStore(tmp_path / "other.db") as store:
        again = export_results(store, tmp_path / "again")
    assert sorted(p.relative_to(tmp_path / "again") for p in again.written) == sorted(
        p.relative_to(tmp_path / "lab-a") for p in files)
    for file in files:
        assert (tmp_path / "again" / file.relative_to(tmp_path / "lab-a")).read_text() == file.read_text()


def test_the_file_holds_what_the_issue_lists(tmp_path):
    (file,) = exported(tmp_path, make_rows())
    document = read_document(file)
    assert file.relative_to(tmp_path / "lab-a").parts[:2] == ("synthetic-fmri", "encoding")
    assert document["schema_version"] == 1 and document["subjects"] == ["sub-01", "sub-02"]
    assert document["score"] == 0.3 and document["error"] == pytest.approx(0.012)
    assert document["benchmark"] == {"id": benchmark_id("synthetic-fmri", "encoding", OPTIONS), "version": 1}
    assert document["options"] == OPTIONS
    provenance = document["provenance"]
    assert provenance["contributor"] == "Ada Lovelace" and provenance["lab"] == "Engines"
    assert provenance["exported_with"] == brainbench.__version__
    assert provenance["data_fingerprints"] == {"data_hash": "d" * 64}
    assert set(provenance["machine"]) == {"platform", "python", "torch", "cuda_device", "cpu_count"}
    aggregate = next(r for r in document["rows"] if r["subject"] == "all")
    assert aggregate["seed"] == 0 and aggregate["plugin_versions"] and aggregate["brainbench_version"] == "0.1.0"
    assert aggregate["detail"]["per_layer"]["layer04"] is None
    assert aggregate["non_finite"] == {"/detail/per_layer/layer04": "NaN", "/detail/profile/0/1": "Infinity",
                                       "/detail/profile/1/0": "-Infinity", "/detail/odd~1key~0name": "NaN"}
    assert document["content_sha256"] == content_hash(document)


def rewrite(file: Path, change, *, rehash: bool = True) -> Path:
    """Apply ``change`` to the parsed file; with ``rehash`` recompute content_sha256 as a careful forger would."""
    document = json.loads(file.read_text())
    change(document)
    if rehash:
        document["content_sha256"] = content_hash(document)
    file.write_text(json.dumps(document, indent=1))
    return file


def set_aggregate_score(value):
    def change(document):
        next(r for r in document["rows"] if r["subject"] == "all")["score"] = value
        document["score"] = value
    return change


TAMPERED = {
    "changed score, unchanged fingerprint": (
        lambda f: rewrite(f, set_aggregate_score(0.9), rehash=False),
        "was changed after export: its content_sha256 fingerprint does not match its content"),
    "wrong schema version": (
        lambda f: rewrite(f, lambda d: d.update(schema_version=2)),
        "has schema_version 2, but this brainbench reads schema version 1 only"),
    "NaN score": (
        lambda f: f.write_text(f.read_text().replace('"score": 0.3,', '"score": NaN,', 1)),
        "is not strict JSON: it holds NaN, which JSON does not allow"),
    "missing provenance": (
        lambda f: rewrite(f, lambda d: d["provenance"].pop("contributor")),
        "does not follow result schema 1: required provenance: provenance lacks 'contributor' (who produced"),
    "huge number": (
        lambda f: f.write_text(f.read_text().replace('"score": 0.3,', '"score": 1e400,', 1)),
        "it holds the number 1e400, too large to be a finite number"),
    "score out of range": (
        lambda f: rewrite(f, set_aggregate_score(1.5)),
        "has rows[0].score = 1.5, outside the range [-1, 1] of metric encoding"),
    "negative error": (
        lambda f: rewrite(f, lambda d: d["rows"][0].update(error=-0.1)),
        "does not follow result schema 1: rows[0].error is -0.1, below the minimum 0"),
    "other benchmark version": (
        lambda f: rewrite(f, lambda d: d["benchmark"].update(version=2)),
        "was scored under version 2 of benchmark synthetic-fmri/encoding, but this brainbench scores version 1"),
    "benchmark id of other options": (
        lambda f: rewrite(f, lambda d: d["options"]["metric"].update(folds=10)),
        "names benchmark synthetic-fmri/encoding@"),
    "rows of other data": (
        lambda f: rewrite(f, lambda d: d["rows"][1].update(data_hash="e" * 64)),
        "has rows[1].data_hash eeeeeeeeeeee…, not the file's data fingerprint"),
    "aggregate summary disagrees": (
        lambda f: rewrite(f, lambda d: d.update(score=0.31)),
        "gives score 0.31 but its aggregate row ('all') has 0.3"),
    "subject listed without a row": (
        lambda f: rewrite(f, lambda d: d["subjects"].append("sub-09")),
        "lists subjects ['sub-01', 'sub-02', 'sub-09'] but has rows for ['sub-01', 'sub-02']"),
    "bogus non_finite pointer": (
        lambda f: rewrite(f, lambda d: d["rows"][0]["non_finite"].update({"/score": "NaN"})),
        "has rows[0].non_finite naming '/score', which is not a null of the row"),
    "unknown key": (
        lambda f: rewrite(f, lambda d: d.update(signature="trust me")),
        "does not follow result schema 1: the file has an unknown key 'signature'"),
    "not a result file": (
        lambda f: f.write_text('{"name": "package.json"}'),
        "is not a brainbench result file: it has no schema_version"),
}


@pytest.mark.parametrize("case", TAMPERED, ids=list(TAMPERED))
def test_tampered_files_are_rejected_with_one_sentence(tmp_path, case):
    (file,) = exported(tmp_path, make_rows())
    load(file)  # valid before
    tamper, expected = TAMPERED[case]
    tamper(file)
    with pytest.raises(InvalidResultFile) as caught:
        load(file, "results/x.json")
    message = str(caught.value)
    assert message.startswith("results/x.json ") and expected in message, message
    assert "\n" not in message and "Traceback" not in message
    with ResultStore(tmp_path / "target.db") as store:  # and nothing of it is imported
        report = import_files(store, [file])
        assert report.rejected and store.count() == 0


def test_other_versions_are_accepted_only_when_asked(tmp_path):
    (file,) = exported(tmp_path, make_rows())
    rewrite(file, lambda d: d["benchmark"].update(version=2))
    document, rows = load(file, strict_version=False)
    assert {r.benchmark_version for r in rows} == {2}


def test_the_published_schema_is_draft_2020_12_and_fully_enforced(tmp_path):
    schema = load_schema("result-v1")
    assert schema["$schema"] == DRAFT_2020_12 and schema["type"] == "object"
    assert unsupported_keywords(schema) == set()  # every keyword it uses is checked here
    assert set(schema["required"]) <= set(schema["properties"])
    for name, definition in schema["$defs"].items():
        assert set(definition.get("required", [])) <= set(definition.get("properties", {})), name
    packaged = Path(brainbench.__file__).parent / "core" / "store" / "schemas" / "result-v1.schema.json"
    assert json.loads(packaged.read_text()) == schema
    (file,) = exported(tmp_path, make_rows())
    document = read_document(file)
    assert first_problem(document, schema) is None
    broken = copy.deepcopy(document)
    broken["rows"][0]["n_units"] = -1
    assert first_problem(broken, schema) == "rows[0].n_units is -1, below the minimum 0"
    jsonschema = pytest.importorskip("jsonschema")  # an independent implementation agrees, where installed
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(document) and not validator.is_valid(broken)
    for bad in ({**document, "schema_version": 2}, {**document, "score": "high"},
                {**document, "provenance": {k: v for k, v in document["provenance"].items() if k != "machine"}}):
        assert not validator.is_valid(bad) and first_problem(bad, schema) is not None


def test_benchmark_ids_depend_on_what_is_measured_only():
    reordered = {"pooling": "cls", "dataset": {"n_images": 40}, "metric": {"alphas": [1.0, 10.0], "folds": 5}}
    assert benchmark_id("nsd", "encoding", OPTIONS) == benchmark_id("nsd", "encoding", reordered)
    assert benchmark_id("nsd", "encoding", OPTIONS) == benchmark_id("nsd", "encoding", canonical_options(OPTIONS))
    assert benchmark_id("nsd", "encoding", OPTIONS) != benchmark_id(
        "nsd", "encoding", {**OPTIONS, "metric": {"folds": 10, "alphas": [1.0, 10.0]}})
    assert benchmark_id("nsd", "encoding", OPTIONS).startswith("nsd/encoding@")


class VersionedPlugin:
    """A metric and a dataset that declare benchmark versions, and a dataset with data fingerprints."""

    @staticmethod
    @brainbench.hookimpl
    def register_metrics(register):
        register("scored-v3", lambda **options: None, description="version 3", modality="fmri", benchmark_version=3,
                 score_range=[0, 100])
        register("broken-version", lambda **options: None, description="bad", modality="fmri", benchmark_version=0)

    @staticmethod
    @brainbench.hookimpl
    def register_datasets(register):
        register("fingerprinted", Fingerprinted, description="tiny", modality="fmri", citation="none")


class Fingerprinted(Dataset):
    name, modality, subjects = "fingerprinted", "fmri", ["sub-01", "sub-02"]

    def __init__(self, variant: str = "a"):
        self.variant = variant
        self.stimuli = ArrayStimulusSet(np.zeros((2, 4, 4, 3), dtype=np.uint8))

    def responses(self, subject):
        raise NotImplementedError

    def fingerprint(self):
        return f"data-{self.variant}"

    def fingerprints(self):
        return {"design": "sha256-of-design", "atlas": "sha256-of-atlas", "response_headers": f"h-{self.variant}"}


@pytest.fixture
def versioned_plugin():
    get_plugin_manager().register(VersionedPlugin, name="versioned-plugin")
    reset_registry()
    yield
    get_plugin_manager().unregister(name="versioned-plugin")
    reset_registry()


def test_versions_come_from_the_table_and_the_plugins(versioned_plugin, monkeypatch):
    assert current_version("nsd", "encoding") == 1
    assert current_version("synthetic-fmri", "scored-v3") == 3
    monkeypatch.setitem(benchmarks.BENCHMARK_VERSIONS, ("synthetic-fmri", "scored-v3"), 2)
    assert current_version("synthetic-fmri", "scored-v3") == 4  # bumping either one bumps the version
    assert benchmarks.score_range("scored-v3") == (0.0, 100.0)
    with pytest.raises(BrainbenchError, match="declares benchmark_version=0, which should be a positive integer"):
        current_version("nsd", "broken-version")


def test_saved_rows_are_stamped_with_the_current_version(versioned_plugin, tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        store.save(make_rows(metric="scored-v3")[0])
        store.save(make_rows(metric="encoding")[0])
        assert sorted(r.benchmark_version for r in store.query()) == [1, 3]


def test_export_records_the_data_fingerprints_a_dataset_exposes(versioned_plugin, tmp_path):
    options = {**OPTIONS, "dataset": {"variant": "b"}}
    (file,) = exported(tmp_path, make_rows(dataset="fingerprinted", data_hash="data-b", options=options))
    assert read_document(file)["provenance"]["data_fingerprints"] == {
        "data_hash": "data-b", "design": "sha256-of-design", "atlas": "sha256-of-atlas", "response_headers": "h-b"}
    changed = make_rows(dataset="fingerprinted", data_hash="old", options={**OPTIONS, "dataset": {}})
    with ResultStore(fill(tmp_path / "changed.db", changed)) as store:
        report = export_results(store, tmp_path / "changed", contributor="Ada")
    assert read_document(report.written[0])["provenance"]["data_fingerprints"] == {"data_hash": "old"}
    assert report.notes == ["dinov3-small@init × fingerprinted × encoding: only the data hash is recorded, because "
                            "the fingerprinted data here differ from the data the rows were scored on"]


def test_export_uses_the_provenance_recorded_when_the_rows_were_scored(tmp_path):
    dataset = Fingerprinted("c")
    recorded = scoring_provenance(dataset)  # what a runner stores with each row it scores
    assert recorded["data_fingerprints"]["data_hash"] == "data-c"
    on_the_gpu = {**recorded, "machine": {**recorded["machine"], "cuda_device": "NVIDIA H100 80GB HBM3"}}
    (file,) = exported(tmp_path, make_rows(dataset="fingerprinted", data_hash="data-c", provenance=on_the_gpu))
    provenance = read_document(file)["provenance"]
    assert provenance["machine"]["cuda_device"] == "NVIDIA H100 80GB HBM3"
    assert provenance["data_fingerprints"] == {"data_hash": "data-c", "design": "sha256-of-design",
                                               "atlas": "sha256-of-atlas", "response_headers": "h-c"}
    assert provenance["contributor"] == "Ada Lovelace"


def test_export_needs_a_contributor_and_refuses_rows_it_cannot_vouch_for(tmp_path, monkeypatch):
    db = fill(tmp_path / "r.db", make_rows(), make_rows(model="no-hash", data_hash=""))
    with ResultStore(db) as store:
        with pytest.raises(BrainbenchError, match="must say who produced them: give --contributor NAME or set "
                                                  "BRAINBENCH_CONTRIBUTOR"):
            export_results(store, tmp_path / "out")
        monkeypatch.setenv("BRAINBENCH_CONTRIBUTOR", "Grace Hopper")
        report = export_results(store, tmp_path / "out")
    assert len(report.written) == 1
    assert read_document(report.written[0])["provenance"]["contributor"] == "Grace Hopper"
    assert report.problems == ["no-hash@init × synthetic-fmri × encoding: its rows have no data hash, so nobody could "
                               "check which data they come from; rescore them with `bench run`"]


def test_re_exporting_unchanged_scores_leaves_the_files_alone(tmp_path):
    (file,) = exported(tmp_path, make_rows())
    before = file.read_text()
    with ResultStore(tmp_path / "lab-a.db") as store:
        report = export_results(store, tmp_path / "lab-a", contributor="Ada Lovelace", lab="Engines")
        assert (report.written, report.unchanged) == ([], [file])
        store.save(make_rows(score=0.35)[-1])  # rescored here: a new score
        report = export_results(store, tmp_path / "lab-a", contributor="Ada Lovelace", lab="Engines")
    assert report.written == [file] and file.read_text() != before
    assert read_document(file)["score"] == 0.35


def test_merging_reports_conflicts_and_ignores_identical_rows(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        assert store.merge(make_rows()).added == 3
        same = store.merge(make_rows(elapsed_s=99.0, activations_key="elsewhere"))  # timing and cache differ only
        assert (same.added, same.identical, same.conflicts) == (0, 3, [])
        other = make_rows(score=0.31) + make_rows(model="new-model")
        clash = store.merge(other)
        assert len(clash.conflicts) == 3 and clash.added == 0
        assert store.count() == 3 and store.query(subject="all")[0].score == 0.3  # nothing was written
        forced = store.merge(other, replace=True)
        assert (forced.replaced, forced.added) == (3, 3)
        assert store.count() == 6 and store.query(model="dinov3-small", subject="all")[0].score == 0.31


def test_an_old_database_is_migrated_to_version_1_rows(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for migration in (results._m001_results, results._m002_failures):
        migration(db)
        db.execute("INSERT INTO _migrations VALUES (?, '2025-01-01T00:00:00+00:00')", (migration.__name__,))
    db.execute("INSERT INTO results (model, checkpoint, dataset, subject, metric, options, score, error, n_units, "
               "detail, brainbench_version, plugin_versions, data_hash, activations_key, seed, elapsed_s, created_at, "
               "updated_at) VALUES ('m', 'init', 'nsd', 'all', 'encoding', '{}', 0.2, 0.01, 5, '{}', '0.0.9', '{}', "
               "'h', 'k', 0, 1.0, 't', 't')")
    db.commit()
    db.close()
    with ResultStore(path) as store:
        (row,) = store.query()
    assert (row.benchmark_version, row.provenance, row.score) == (1, {}, 0.2)


def test_documents_convert_to_the_rows_they_hold(tmp_path):
    (file,) = exported(tmp_path, make_rows())
    document = read_document(file)
    check_document(document, str(file))
    rows = document_rows(document)
    assert [r.subject for r in rows] == [r["subject"] for r in document["rows"]]
    assert dumps(document) == file.read_text()

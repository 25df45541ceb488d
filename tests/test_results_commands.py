"""``bench results`` and its subcommands ``export``, ``import`` and ``validate``, end to end through the CLI."""
from __future__ import annotations

import json
import os
import shlex

import pytest
from click.testing import CliRunner

from brainbench.cli import main
from brainbench.core.store.portable import content_hash
from brainbench.core.store.results import Failure, ResultStore

from test_portable import fill, make_rows, rewrite, set_aggregate_score


def invoke(*args, **env):
    return CliRunner().invoke(main, [str(a) for a in args], env=env or None)


def one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_the_query_works_as_before_and_lists_failures():
    db = fill(os.environ["BRAINBENCH_DB"], make_rows(), make_rows(model="convnext-tiny"))
    table = invoke("results", "--subject", "all")
    assert table.exit_code == 0, table.output
    assert [line.split()[0] for line in table.stdout.splitlines()[2:]] == ["convnext-tiny@init", "dinov3-small@init"]
    rows = json.loads(invoke("results", "-m", "dinov3-*", "--format", "json").stdout)
    assert [r["subject"] for r in rows] == ["all", "sub-01", "sub-02"]
    assert rows[0]["benchmark_version"] == 1 and rows[0]["provenance"] == {}
    assert len(invoke("results", "--format", "csv").stdout.splitlines()) == 1 + 6
    with ResultStore(db) as store:
        store.record_failure(Failure("resnet-50", "init", "nsd", "subj01", "encoding", "{}", "out of memory"))
    failed = invoke("results", "--failed")
    assert failed.exit_code == 0 and "out of memory" in failed.stdout
    misplaced = invoke("results", "--model", "x", "export", "--out", "somewhere")
    assert misplaced.exit_code == 2 and "give options after the subcommand" in misplaced.stderr


def test_export_validate_import(tmp_path):
    fill(os.environ["BRAINBENCH_DB"], make_rows(), make_rows(model="convnext-tiny"))
    out = tmp_path / "results"
    missing = invoke("results", "export", "--out", out)
    one_line_error(missing, "give --contributor NAME or set BRAINBENCH_CONTRIBUTOR")
    exported = invoke("results", "export", "--out", out, "--lab", "Engines", BRAINBENCH_CONTRIBUTOR="Ada Lovelace")
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.strip() == f"wrote 2 result files to {out}"
    files = sorted(out.rglob("*.json"))
    assert len(files) == 2
    assert json.loads(files[0].read_text())["provenance"]["lab"] == "Engines"
    again = invoke("results", "export", "--out", out, "--contributor", "Ada Lovelace", "--lab", "Engines")
    assert again.stdout.strip() == f"wrote 0 result files to {out} (2 more unchanged)"
    only = invoke("results", "export", "--out", tmp_path / "only", "-m", "convnext-*", "--contributor", "Ada")
    assert only.exit_code == 0 and len(list((tmp_path / "only").rglob("*.json"))) == 1

    valid = invoke("results", "validate", out)
    assert valid.exit_code == 0, valid.output
    assert valid.stdout.strip() == "2 valid files, 0 invalid, 0 conflicts"
    report = json.loads(invoke("results", "validate", out, "--format", "json").stdout)
    assert len(report["valid"]) == 2 and report["invalid"] == [] == report["conflicts"]

    target = tmp_path / "community.db"
    first = invoke("results", "import", out, "--db", target)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"imported 2 files into {target}: 6 rows added, 0 identical ignored"
    second = invoke("results", "import", *files, "--db", target)
    assert second.stdout.strip() == f"imported 2 files into {target}: 0 rows added, 6 identical ignored"
    with ResultStore(target) as store:
        assert store.count() == 6
        assert {r.provenance["contributor"] for r in store.query()} == {"Ada Lovelace"}


def test_a_conflicting_file_is_reported_not_imported_unless_replaced(tmp_path):
    target = fill(tmp_path / "community.db", make_rows())
    fill(os.environ["BRAINBENCH_DB"], make_rows(score=0.35))
    invoke("results", "export", "--out", tmp_path / "lab-b", "--contributor", "Grace Hopper")
    (file,) = (tmp_path / "lab-b").rglob("*.json")
    label = str(tmp_path / "lab-b" / file.relative_to(tmp_path / "lab-b"))
    clash = invoke("results", "import", tmp_path / "lab-b", "--db", target)
    one_line_error(clash, "0 files rejected and 1 file in conflict")
    assert (f"not imported: {label} conflicts with the stored score of dinov3-small@init × synthetic-fmri × "
            "encoding: score 0.3 vs 0.35, different detail (and 2 more rows); nothing from it was imported (--replace overwrites)"
            ) in clash.stdout
    with ResultStore(target) as store:
        assert store.query(subject="all")[0].score == 0.3
    forced = invoke("results", "import", file, "--db", target, "--replace")
    assert forced.exit_code == 0 and "0 rows added, 0 identical ignored, 3 replaced" in forced.stdout
    with ResultStore(target) as store:
        (row,) = store.query(subject="all")
        assert row.score == 0.35 and row.provenance["contributor"] == "Grace Hopper"


def test_tampered_and_conflicting_files_fail_validation(tmp_path):
    fill(os.environ["BRAINBENCH_DB"], make_rows())
    invoke("results", "export", "--out", tmp_path / "a", "--contributor", "Ada")
    (good,) = (tmp_path / "a").rglob("*.json")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(good.read_text())
    rewrite(tampered, set_aggregate_score(0.9), rehash=False)
    result = invoke("results", "validate", tmp_path / "a", tampered)
    one_line_error(result, "1 invalid file and 0 conflicts")
    assert (f"invalid: {tampered} was changed after export: its content_sha256 fingerprint does not match its "
            "content (export it again instead of editing it)") in result.stdout
    rejected = invoke("results", "import", tampered, "--db", tmp_path / "x.db")
    one_line_error(rejected, "1 file rejected and 0 files in conflict")
    # another lab's file for the same key with a different score: each file is valid, together they conflict
    rival = tmp_path / "rival.json"
    rival.write_text(good.read_text())
    rewrite(rival, set_aggregate_score(0.4))
    both = invoke("results", "validate", tmp_path / "a", rival)
    one_line_error(both, "0 invalid files and 1 conflict")
    assert f"and {rival} give different results for dinov3-small@init × synthetic-fmri × encoding" in both.stdout
    assert "score 0.3 vs 0.4" in both.stdout
    identical = tmp_path / "copy.json"
    identical.write_text(good.read_text())
    assert invoke("results", "validate", tmp_path / "a", identical).exit_code == 0


def test_versions_other_than_this_brainbench_need_any_version(tmp_path):
    fill(os.environ["BRAINBENCH_DB"], make_rows())
    invoke("results", "export", "--out", tmp_path / "a", "--contributor", "Ada")
    (file,) = (tmp_path / "a").rglob("*.json")
    rewrite(file, lambda d: d["benchmark"].update(version=2))
    strict = invoke("results", "validate", file)
    one_line_error(strict, "1 invalid file")
    assert "scores of different versions are not comparable" in strict.stdout
    assert invoke("results", "validate", "--any-version", file).exit_code == 0
    imported = invoke("results", "import", "--any-version", file, "--db", tmp_path / "v2.db")
    assert imported.exit_code == 0, imported.output
    with ResultStore(tmp_path / "v2.db") as store:
        assert {r.benchmark_version for r in store.query()} == {2}


def test_missing_paths_and_databases_are_one_sentence(tmp_path):
    one_line_error(invoke("results", "validate", tmp_path / "nowhere"), "nowhere does not exist; give result files")
    one_line_error(invoke("results", "export", "--out", tmp_path / "o"), "no results database at")
    assert content_hash({"a": 1}) == content_hash({"a": 1, "content_sha256": "ignored"})


DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")


def test_the_documented_command_lines_parse():
    text = open(os.path.join(DOCS, "community.md")).read()
    lines = [line.strip().split("  #")[0] for line in text.splitlines() if line.strip().startswith("bench ")]
    assert len(lines) >= 5
    for line in lines:
        result = invoke(*shlex.split(line)[1:], "--help")  # unknown options fail before --help is reached
        assert result.exit_code == 0, (line, result.output)


def test_the_workflow_example_runs_its_bench_steps(tmp_path, monkeypatch):
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(open(os.path.join(DOCS, "results-repo-workflow.yml")))
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    commands = [line.strip() for s in steps for line in s.get("run", "").splitlines()
                if line.strip().startswith("bench ")]
    assert any("validate --any-version results/" in c for c in commands)
    assert any(c.startswith("bench leaderboard build --from results/") for c in commands)
    fill(os.environ["BRAINBENCH_DB"], make_rows())
    monkeypatch.chdir(tmp_path)
    assert invoke("results", "export", "--out", "results/lab-a", "--contributor", "Ada").exit_code == 0
    for command in commands:
        result = invoke(*shlex.split(command)[1:])
        assert result.exit_code == 0, (command, result.output)
    assert (tmp_path / "site" / "index.html").is_file()

"""Which files each job finds in mlci-out/ on GitLab, where jobs share nothing but artifacts.

gitlab-ci-local (tests/e2e) runs every job in one work tree, so a missing
`needs:` or two jobs writing the same file name go unnoticed there. This
models GitLab instead: a job starts with the archives of the jobs it `needs:`
with `artifacts: true` unpacked into its directory, adds what its own `mlci`
command writes (the table in docs/ARCHITECTURE.md), and uploads `mlci-out/`
again, downloads included. A file name must then reach each job from one
producing job only, or one download silently overwrites another.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

ARCHITECTURE = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


@cache
def files_by_command() -> dict[tuple[str, ...], list[str]]:
    """`mlci data check` -> ["data-check.junit.xml", ...], from the "Commands and artifacts" table."""
    section = ARCHITECTURE.read_text(encoding="utf-8").split("## Commands and artifacts", 1)[1].split("\n## ", 1)[0]
    table: dict[tuple[str, ...], list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `mlci "):
            continue
        command_cell, writes_cell = re.split(r"(?<!\\)\|", line.strip().strip("|"))[:2]
        for usage in re.findall(r"`mlci ([^`]*)`", command_cell):
            words = tuple(itertools.takewhile(lambda w: re.fullmatch(r"[a-z][a-z-]*", w), usage.split()))
            table[words] = re.findall(r"`([^`]+)`", writes_cell)
    return table


def own_files(script: list[str]) -> set[str]:
    """What the job's `mlci` command writes into mlci-out/, with ENV filled in from --to/--env."""
    written: set[str] = set()
    for line in script:
        argv = shlex.split(line)
        if argv[:1] != ["mlci"]:
            continue
        matches = [words for words in files_by_command() if tuple(argv[1 : 1 + len(words)]) == words]
        assert matches, f"{line!r}: no such command in docs/ARCHITECTURE.md"
        names = files_by_command()[max(matches, key=len)]
        env = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("--to", "--env")), "ENV")
        written |= {name.replace("ENV", env) for name in names}
    return written


def mlci_out_of(jobs: dict[str, dict]) -> dict[str, dict[str, set[str]]]:
    """job -> file name in its mlci-out/ when it finishes -> the jobs that wrote that file.

    A need on a parallel:matrix job downloads the archive of every job of the
    matrix, each with its own copy of the files that job wrote.
    """
    done: dict[str, dict[str, set[str]]] = {}

    def downloaded(need: str) -> dict[str, set[str]]:
        parallel = jobs[need].get("parallel")
        copies = ("#1", "#2") if isinstance(parallel, dict) or (parallel or 1) > 1 else ("",)
        return {file: {f"{w} {c}".strip() if w == need else w for w in writers for c in copies}
                for file, writers in visit(need).items()}

    def visit(name: str) -> dict[str, set[str]]:
        if name not in done:
            job = jobs[name]
            assert "needs" in job, f"{name}: without needs: it would download every earlier stage"
            found: dict[str, set[str]] = defaultdict(set)
            for need in job["needs"]:
                need = {"job": need} if isinstance(need, str) else need
                if need["job"] not in jobs:
                    assert need.get("optional"), f"{name} needs {need['job']}, which does not exist"
                    continue
                if need.get("artifacts", True) and "mlci-out/" in jobs[need["job"]]["artifacts"]["paths"]:
                    for file, writers in downloaded(need["job"]).items():
                        found[file] |= writers
            for file in own_files(job.get("script") or []):
                found[file].add(name)
            done[name] = dict(found)
        return done[name]

    for name in jobs:
        visit(name)
    return done


def all_in_one(tmp_path: Path, rendered: dict[str, str], inputs: dict) -> dict[str, dict]:
    import yaml

    from mlci.lint.resolve import load_pipeline

    (tmp_path / "ci_templates").mkdir()
    for name, text in rendered.items():
        (tmp_path / "ci_templates" / name).write_text(text)
    include = {"include": [{"local": "ci_templates/mlci-all.yml", "inputs": inputs}]}
    (tmp_path / ".gitlab-ci.yml").write_text(yaml.safe_dump(include))
    pipeline = load_pipeline(tmp_path / ".gitlab-ci.yml", root=tmp_path)
    assert not [f for f in pipeline.findings if f.severity == "error"], pipeline.findings
    return {name: job for name, job in pipeline.jobs.items() if "trigger" not in job}


def clashes(out: dict[str, dict[str, set[str]]]) -> dict[str, dict[str, set[str]]]:
    return {job: {f: w for f, w in files.items() if len(w) > 1} for job, files in out.items()
            if any(len(w) > 1 for w in files.values())}


def test_the_command_table_is_parsed():
    table = files_by_command()
    assert table[("train",)] == ["train.json", "train.env"]
    assert table[("train-select",)] == ["train-select.json", "train.json", "train.env"]
    assert "drift.json" in table[("data", "drift")] and "gate.json" in table[("gate",)]


SINGLE_RUN = {"data-drift-reference": "champion"}
SWEEP = {**SINGLE_RUN, "train-sweep": True, "gate-train-job": "mlci-train-select",
         "report-train-job": "mlci-train-select", "optimize-train-job": "mlci-train-select"}


TUNE = {**SINGLE_RUN, "train-tune": True, "gate-train-job": "mlci-train-select",
        "report-train-job": "mlci-train-select", "optimize-train-job": "mlci-train-select"}
TUNE_SERVICE = {**TUNE, "train-tune-postgres-service": True, "train-tune-jobs": 1}


@pytest.mark.parametrize("inputs", [SINGLE_RUN, SWEEP, TUNE, TUNE_SERVICE],
                         ids=["single-run", "sweep", "tune", "tune-service"])
def test_no_job_receives_one_file_name_from_two_jobs(tmp_path, rendered, inputs):
    assert clashes(mlci_out_of(all_in_one(tmp_path, rendered, inputs))) == {}


def test_the_report_gets_gate_data_drift_and_training_files(tmp_path, rendered):
    out = mlci_out_of(all_in_one(tmp_path, rendered, SINGLE_RUN))["mlci-report"]
    for name, writer in [("gate.json", "mlci-gate"), ("data-check.json", "mlci-data-check"),
                         ("drift.json", "mlci-data-drift"), ("drift-plots/*.png", "mlci-data-drift"),
                         ("train.json", "mlci-train"), ("optimize.json", "mlci-optimize")]:
        assert out.get(name) == {writer}, name


def test_the_report_needs_the_training_job_itself(tmp_path, rendered):
    """Not only through the gate's re-upload: the gate job may be missing from the pipeline."""
    jobs = all_in_one(tmp_path, rendered, SINGLE_RUN)
    del jobs["mlci-gate"]
    assert mlci_out_of(jobs)["mlci-report"].get("train.json") == {"mlci-train"}


def test_a_sweep_with_the_report_left_on_the_matrix_jobs_would_clash(tmp_path, rendered):
    """Why the report's train-job input must name the same job as the gate's."""
    found = clashes(mlci_out_of(all_in_one(tmp_path, rendered, {**SWEEP, "report-train-job": "mlci-train"})))
    assert set(found) == {"mlci-report"}
    assert set(found["mlci-report"]) == {"train.json", "train.env"}


def test_in_a_sweep_the_report_gets_train_json_from_train_select(tmp_path, rendered):
    out = mlci_out_of(all_in_one(tmp_path, rendered, SWEEP))["mlci-report"]
    assert out.get("train.json") == {"mlci-train-select"}


def test_after_tuning_the_report_gets_the_study_and_its_best_trial_from_the_selection_job(tmp_path, rendered):
    out = mlci_out_of(all_in_one(tmp_path, rendered, TUNE))["mlci-report"]
    for name in ("train.json", "tune.json", "tune-plots/*.png"):
        assert out.get(name) == {"mlci-train-select"}, name

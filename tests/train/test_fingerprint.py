"""The run-cache fingerprint and the code/data hashing it is built from."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from mlci.train.fingerprint import DataFile, FingerprintInputs, cache_key, fingerprint
from mlci.train.sources import describe_data_file, expand_data_patterns, hash_code_paths

BASE = FingerprintInputs(
    code={"train.py": "c" * 40},
    data=[DataFile("data/a.csv", "a" * 64, 10, 2), DataFile("data/b.csv", "b" * 64, 20, 3)],
    params={"lr": 0.1, "depth": 3},
    image="python:3.11",
    command=["python", "train.py"],
)


def test_fingerprint_ignores_declaration_order_but_not_content():
    reordered = replace(BASE, data=list(reversed(BASE.data)), params={"depth": 3, "lr": 0.1})
    assert fingerprint(reordered) == fingerprint(BASE)
    assert len(fingerprint(BASE)) == 64


@pytest.mark.parametrize("changed", [
    replace(BASE, code={"train.py": "d" * 40}),
    replace(BASE, code={"train.py": "c" * 40, "model.py": "e" * 40}),
    replace(BASE, data=[DataFile("data/a.csv", "e" * 64, 10, 2), BASE.data[1]]),
    replace(BASE, data=[BASE.data[0]]),
    replace(BASE, params={"lr": 0.2, "depth": 3}),
    replace(BASE, params={"lr": "0.1", "depth": 3}),  # a string is not the number
    replace(BASE, image="python:3.12"),
    replace(BASE, command=["python", "train.py", "--epochs", "2"]),
    replace(BASE, command="python train.py"),  # shell string vs argv list
    replace(BASE, env={"ALPHA": "0123456789abcdef"}),
], ids=["code", "code-file-added", "data-content", "data-file-removed", "param-value", "param-type", "image",
        "command", "shell", "environment"])
def test_every_input_changes_the_fingerprint(changed):
    assert fingerprint(changed) != fingerprint(BASE)


def test_the_base_fingerprint_differs_only_when_something_but_the_environment_does():
    with_env = replace(BASE, env={"ALPHA": "0123456789abcdef"})
    assert cache_key(with_env).base == cache_key(BASE).base
    assert cache_key(with_env).fingerprint != cache_key(BASE).fingerprint
    assert cache_key(replace(BASE, image="x")).base != cache_key(BASE).base


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "src").mkdir()
    (root / "src" / "model.py").write_text("W = 1\n")
    (root / "train.py").write_text("print('train')\n")
    (root / ".gitignore").write_text("ignored/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    return root


def digest(root: Path, paths=(".",), exclude=()) -> str:
    result = hash_code_paths(list(paths), root, exclude=list(exclude))
    assert result.missing == []
    return result.digest


def test_git_code_hash_follows_edits_and_reverts_of_tracked_files_and_ignores_ignored(tmp_path):
    repo = make_repo(tmp_path / "repo")
    clean = digest(repo)
    assert hash_code_paths(["."], repo).mode == "git"

    (repo / "src" / "model.py").write_text("W = 2\n")  # uncommitted edit
    edited = digest(repo)
    assert edited != clean
    (repo / "src" / "model.py").write_text("W = 1\n")  # reverted: same as the commit again
    assert digest(repo) == clean

    (repo / "ignored").mkdir()
    (repo / "ignored" / "big.bin").write_bytes(b"\0" * 100)
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "lib" / "site.py").write_text("x = 1\n")  # an un-ignored virtualenv is not code
    assert digest(repo) == clean

    (repo / "train.py").unlink()  # deleted in the work tree
    assert digest(repo) != clean


def test_git_code_hash_is_independent_of_the_checkout_location_and_of_mlci_outputs(tmp_path):
    repo = make_repo(tmp_path / "repo")
    clean = digest(repo, exclude=[repo / "mlci-out", repo / ".mlci"])
    (repo / "mlci-out").mkdir()
    (repo / "mlci-out" / "train.json").write_text("{}")
    (repo / "results").mkdir()
    (repo / "results" / "mlflow.db").write_text("store")  # a tracking store configured elsewhere
    assert digest(repo, exclude=[repo / "mlci-out", repo / "results" / "mlflow.db"]) == clean

    moved = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(repo, moved)
    assert digest(moved, exclude=[moved / "mlci-out", moved / "results" / "mlflow.db"]) == clean


def test_only_declared_code_paths_count(tmp_path):
    repo = make_repo(tmp_path / "repo")
    before = digest(repo, paths=["src"])
    (repo / "train.py").write_text("print('changed')\n")
    assert digest(repo, paths=["src"]) == before
    (repo / "src" / "model.py").write_text("W = 3\n")
    assert digest(repo, paths=["src"]) != before


def test_outside_git_files_are_hashed_by_content(tmp_path):
    root = tmp_path / "plain"
    (root / "src" / "__pycache__").mkdir(parents=True)
    (root / "src" / "model.py").write_text("W = 1\n")
    result = hash_code_paths(["src"], root)
    assert result.mode == "files"
    before = result.digest
    (root / "src" / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"junk")
    assert digest(root, ["src"]) == before
    (root / "src" / "model.py").write_text("W = 2\n")
    assert digest(root, ["src"]) != before
    assert hash_code_paths(["src", "nope"], root).missing == ["nope"]


def test_data_files_are_hashed_sized_and_row_counted(tmp_path):
    csv = tmp_path / "data" / "train.csv"
    csv.parent.mkdir()
    csv.write_text("a,b\n1,2\n3,4\n5,6")  # no trailing newline: still 3 rows
    described = describe_data_file(csv, tmp_path)
    assert described == DataFile("data/train.csv", hashlib.sha256(csv.read_bytes()).hexdigest(), 15, 3)

    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text("\n".join(json.dumps({"i": i}) for i in range(4)) + "\n")
    assert describe_data_file(jsonl, tmp_path).rows == 4
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert describe_data_file(empty, tmp_path).rows == 0
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"\x00\n" * 10)
    assert describe_data_file(blob, tmp_path).rows is None  # unknown format: no guess

    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "table.parquet"
    pq.write_table(pa.table({"x": list(range(7))}), parquet)
    assert describe_data_file(parquet, tmp_path).rows == 7
    outside = describe_data_file(csv, tmp_path / "data" / "sub")
    assert outside.path == csv.as_posix()  # outside the project: absolute


def test_data_patterns_expand_globs_and_directories_and_report_misses(tmp_path):
    for name in ("data/a.csv", "data/b.csv", "data/nested/c.csv", "other.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    files, unmatched = expand_data_patterns(
        ["data/*.csv", "data", "missing/*.csv", "other.txt", "nope.csv"], tmp_path,
    )
    names = [p.relative_to(tmp_path).as_posix() for p in files]
    assert names == ["data/a.csv", "data/b.csv", "data/nested/c.csv", "other.txt"]  # no duplicates
    assert unmatched == [2, 4]

"""Hashing the code and data a training run depends on (local filesystem, git, object stores, tables).

Code inside a git work tree is hashed by git blob ids, so the cost is a
couple of `git ls-files` calls instead of reading every file; uncommitted
edits (and untracked files under a declared code path) are hashed with
`git hash-object`, which gives the same id a commit would, so "edited then
reverted" matches the clean tree again. Files that cannot change a model
(documentation, CI configuration, tests) are left out. Outside git every
file is read and sha256-hashed.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mlci.train.fingerprint import DataFile

CHUNK = 1 << 20
# Directories that never hold code that decides a result, and that mlci or
# tools write to while training (hashing them would make every run a miss).
SKIP_DIR_NAMES = frozenset({"__pycache__", "node_modules", "mlruns", "mlartifacts", "mlci-out"})
LINE_COUNTED_SUFFIXES = frozenset({".jsonl", ".ndjson", ".txt"})
HEADER_SUFFIXES = frozenset({".csv", ".tsv"})


# Tracked files that cannot change what training produces: documentation, CI configuration, tests
# and repository metadata. A pattern ending in "/" is a directory at any depth, one with another "/"
# a path from the project root, anything else a file name. train.cache-exclude adds more; a file
# named in train.code-paths always counts.
IRRELEVANT_PATTERNS = (
    "*.md", "*.markdown", "*.rst", "*.adoc", "docs/", "doc/",
    "LICENSE", "LICENSE.*", "LICENCE", "LICENCE.*", "COPYING", "COPYING.*", "NOTICE", "NOTICE.*",
    "CHANGELOG", "CHANGELOG.*", "CHANGES", "CHANGES.*", "AUTHORS", "AUTHORS.*", "CONTRIBUTING", "CONTRIBUTING.*",
    "CODEOWNERS", ".gitignore", ".gitattributes", ".gitlab-ci.yml", ".gitlab/", ".github/", "ci_templates/",
    "tests/", "test/", "test_*.py", "*_test.py", "conftest.py",
    ".pre-commit-config.yaml", ".editorconfig", "mkdocs.yml", ".readthedocs.yml", ".readthedocs.yaml",
)


@dataclass(frozen=True)
class CodeHashes:
    files: dict[str, str]  # every code file that counts (relative posix path) -> blob id or sha256
    mode: str  # "git" or "files"
    missing: list[str]  # declared paths that do not exist
    untracked_skipped: list[str] = field(default_factory=list)  # untracked, not ignored, not declared
    irrelevant: list[str] = field(default_factory=list)  # tracked files left out by IRRELEVANT_PATTERNS

    @property
    def digest(self) -> str:
        return _digest(self.files.items())


def is_irrelevant(path: str, patterns: Sequence[str]) -> bool:
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        if pattern.endswith("/"):
            name = pattern.rstrip("/")
            if "/" in name:
                if path.startswith(name + "/"):
                    return True
            elif any(fnmatch.fnmatchcase(part, name) for part in parts[:-1]):
                return True
        elif "/" in pattern:
            if fnmatch.fnmatchcase(path, pattern):
                return True
        elif parts and fnmatch.fnmatchcase(parts[-1], pattern):
            return True
    return False


def _is_under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _digest(entries: Iterable[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, value in sorted(entries):
        h.update(f"{name}\0{value}\n".encode())
    return h.hexdigest()


def _git(base: Path, *args: str, stdin: str | None = None) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(base), *args],
            input=stdin, capture_output=True, text=True, check=False,
        )
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def _in_skipped_dir(dir_parts: Sequence[str]) -> bool:
    return any(part.startswith(".") or part in SKIP_DIR_NAMES for part in dir_parts)


def _is_root(spec: str) -> bool:
    return os.path.normpath(spec) in (".", "")


def _git_entries(base: Path, spec: str, excluded: list[Path],
                 with_untracked: bool) -> tuple[dict[str, str], list[str]] | None:
    """(tracked files with work-tree content, untracked files left out), or None when git fails."""
    staged = _git(base, "ls-files", "--stage", "-z", "--", spec)
    modified = _git(base, "ls-files", "--modified", "-z", "--", spec)
    # --directory reports a wholly untracked directory once instead of listing
    # (say) an un-ignored virtualenv file by file; we walk the ones we keep.
    untracked = _git(
        base, "ls-files", "--others", "--exclude-standard", "--directory", "--no-empty-directory", "-z", "--", spec,
    )
    if staged is None or modified is None or untracked is None:
        return None
    entries: dict[str, str] = {}
    for record in filter(None, staged.split("\0")):
        meta, _, name = record.partition("\t")
        entries[name] = meta.split()[1]
    changed: set[str] = set()
    for name in filter(None, modified.split("\0")):
        if (base / name).is_file():
            changed.add(name)
        else:
            entries.pop(name, None)  # deleted in the work tree
    others: set[str] = set()
    for name in filter(None, untracked.split("\0")):
        if name.endswith("/"):
            if not _in_skipped_dir(Path(name).parts):
                others.update(os.path.relpath(p, base) for p in _walk_files(base / name, excluded))
        elif not _in_skipped_dir(Path(name).parts[:-1]):
            others.add(name)
    others = {name for name in others if not _is_under((base / name).absolute(), excluded)}
    skipped: list[str] = []
    if with_untracked:
        changed |= others
    else:
        skipped = sorted(others)
    changed = {name for name in changed if not _is_under((base / name).absolute(), excluded)}
    # hash-object reads one path per line; a name with a newline is hashed by content instead.
    simple = sorted(name for name in changed if "\n" not in name)
    if simple:
        ids = _git(base, "hash-object", "--stdin-paths", stdin="\n".join(simple) + "\n")
        if ids is None:
            return None
        entries.update(zip(simple, ids.split(), strict=True))
    for name in changed - set(simple):
        entries[name] = file_sha256(base / name)
    kept = {name: blob for name, blob in entries.items() if not _is_under((base / name).absolute(), excluded)}
    return kept, skipped


def _walk_files(root: Path, excluded: list[Path]) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for current, dirs, files in os.walk(root):
        here = Path(current)
        dirs[:] = sorted(
            d for d in dirs
            if not d.startswith(".") and d not in SKIP_DIR_NAMES and not _is_under((here / d).absolute(), excluded)
        )
        for name in sorted(files):
            if not name.endswith((".pyc", ".pyo")):
                yield here / name


def hash_code_paths(paths: Sequence[str], base: Path, exclude: Sequence[Path] = (), *,
                    irrelevant: Sequence[str] = IRRELEVANT_PATTERNS) -> CodeHashes:
    """Every code file that counts, independent of where the checkout lives.

    In git: tracked files (with uncommitted edits), minus files matching `irrelevant` unless the path
    is named in `paths`; untracked files only under a declared path other than the project root (an
    output file or a log written next to the code is not code). Outside git: every file under the paths.
    """
    base = base.absolute()
    excluded = [Path(os.path.abspath(p)) for p in exclude]
    missing = [p for p in paths if not (base / p).exists()]
    in_git = _git(base, "rev-parse", "--is-inside-work-tree") is not None
    files: dict[str, str] = {}
    skipped: set[str] = set()
    dropped: set[str] = set()
    mode = "git" if in_git else "files"
    for spec in paths:
        if spec in missing:
            continue
        named_file = (base / spec).is_file()
        found = _git_entries(base, spec, excluded, with_untracked=not _is_root(spec)) if in_git else None
        if found is None:
            mode = "files"
            entries = {
                Path(os.path.relpath(path, base)).as_posix(): file_sha256(path)
                for path in _walk_files(base / spec, excluded)
                if not _is_under(path.absolute(), excluded)
            }
        else:
            entries, untracked = found
            entries = {Path(name).as_posix(): blob for name, blob in entries.items()}
            skipped.update(Path(name).as_posix() for name in untracked)
        for name, blob in entries.items():
            if not named_file and is_irrelevant(name, irrelevant):
                dropped.add(name)
            else:
                files[name] = blob
    dropped -= set(files)  # named elsewhere in paths: it counts
    return CodeHashes(files=files, mode=mode, missing=missing, untracked_skipped=sorted(skipped - set(files)),
                      irrelevant=sorted(dropped))


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class RemoteData:
    """A declared input that stays where it lives: an object-store object or a pinned table version.

    Its digest comes from the store's metadata (ETag, version id) or the table's version, never
    from downloading the data.
    """

    uri: str  # s3://... or delta:...@vN / iceberg:...@SNAPSHOT
    digest: str
    size_bytes: int
    rows: int | None = None


def _metadata_digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


def _remote_entries(pattern: str) -> list[RemoteData]:
    """Object-store objects (by ETag/version id) or one table version (by its pin) for a declared entry."""
    from mlci.data.location import parse

    location = parse(pattern)
    if location.is_table:
        from mlci.adapters.tables import snapshot

        snap = snapshot(location, with_files=False)
        uri = snap.location.canonical()
        return [RemoteData(uri=uri, digest=_metadata_digest(uri), size_bytes=snap.size_bytes or 0, rows=snap.rows)]
    from mlci.adapters.object_store import list_objects

    return [
        RemoteData(uri=o.url, digest=_metadata_digest("etag", o.etag, "version", o.version, "size", o.size,
                                                      "modified" if not o.etag else "", o.last_modified or ""),
                   size_bytes=o.size)
        for o in list_objects(pattern)
    ]


def _is_remote_pattern(pattern: str) -> bool:
    from mlci.data.location import TABLE_FORMATS, is_remote

    return is_remote(pattern) or pattern.split(":", 1)[0].lower() in TABLE_FORMATS


def expand_data_patterns(patterns: Sequence[str], base: Path) -> tuple[list[Path | RemoteData], list[int]]:
    """Files (and remote objects or tables) named by the declared data entries, and the indexes of
    entries that matched nothing."""
    from mlci.errors import ConfigError

    files: list[Path | RemoteData] = []
    unmatched: list[int] = []
    seen: set[Path | str] = set()
    for index, pattern in enumerate(patterns):
        if _is_remote_pattern(pattern):
            try:
                entries = _remote_entries(pattern)
            except (ConfigError, ValueError):
                unmatched.append(index)
                continue
            for entry in entries:
                if entry.uri not in seen:
                    seen.add(entry.uri)
                    files.append(entry)
            continue
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        candidates = [Path(full)] if Path(full).exists() else [Path(p) for p in sorted(glob.glob(full, recursive=True))]
        found = [f for c in candidates for f in ([c] if c.is_file() else sorted(_all_files(c)))]
        if not found:
            unmatched.append(index)
        for path in found:
            key = path.absolute()
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, unmatched


def _all_files(root: Path) -> Iterable[Path]:
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(current) / name


def display_path(path: Path, base: Path) -> str:
    absolute, root = path.absolute(), base.absolute()
    if root in absolute.parents:
        return absolute.relative_to(root).as_posix()
    return absolute.as_posix()


def describe_data_file(path: Path | RemoteData, base: Path) -> DataFile:
    """Content hash, size and row count, reading a local file once (streamed, any size); a remote
    entry is described by its metadata."""
    if isinstance(path, RemoteData):
        return DataFile(path=path.uri, sha256=path.digest, size_bytes=path.size_bytes, rows=path.rows)
    h = hashlib.sha256()
    newlines = 0
    size = 0
    last = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            h.update(chunk)
            newlines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    lines = newlines + (1 if size and last != b"\n" else 0)
    suffix = path.suffix.lower()
    rows: int | None = None
    if suffix in HEADER_SUFFIXES:
        rows = max(lines - 1, 0)  # physical lines minus the header row
    elif suffix in LINE_COUNTED_SUFFIXES:
        rows = lines
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    return DataFile(path=display_path(path, base), sha256=h.hexdigest(), size_bytes=size, rows=rows)


def _parquet_rows(path: Path) -> int | None:
    try:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # an unreadable footer only costs the row count, not the run
        return None

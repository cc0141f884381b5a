"""Which files to check against which contract: CLI paths, globs and mlci.yml sources.

Paths in mlci.yml (source paths, contract files) are relative to the mlci.yml
directory; paths on the command line are relative to the working directory.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.data.contract import Contract, load_contract_file, parse_contract
from mlci.errors import ConfigError, ConfigErrors, UsageError

FORMATS_BY_SUFFIX = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
    ".json": "ndjson", ".jsonl": "ndjson", ".ndjson": "ndjson",
}
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Source:
    name: str
    pattern: str  # as written, for messages
    path: Path  # resolved against the base directory
    format: str | None
    contract: Any  # dict (inline), str (file) or None
    where: str  # mlci.yml location of the source


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in _GLOB_CHARS)


def detect_format(path: Path, declared: str | None, *, location: str | None = None) -> str:
    if declared:
        return declared
    fmt = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {path} from its extension",
            location=location or str(path),
            hint="use .parquet, .csv or .ndjson/.jsonl, or set `format:` (or pass --format)",
        )
    return fmt


def expand(pattern: str | Path, *, location: str | None = None) -> list[Path]:
    """The files a path or glob names, sorted; a miss is an error naming the path."""
    text = str(pattern)
    if is_glob(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not matches:
            raise ConfigError(f"no data file matches {text!r}", location=location or text)
        return matches
    path = Path(text)
    if path.is_dir():
        raise ConfigError("is a directory, not a data file (use a glob such as dir/*.parquet)",
                          location=location or text)
    if not path.exists():
        raise ConfigError("data file not found", location=location or text)
    return [path]


def configured_sources(config) -> list[Source]:
    base = config.path.parent if config.path else Path(".")
    sources = []
    for name, spec in (config.get("data", "sources") or {}).items():
        pattern = spec["path"]
        sources.append(Source(
            name=name, pattern=pattern, path=base / pattern, format=spec.get("format"),
            contract=spec.get("contract"), where=config.where(("data", "sources", name, "path")),
        ))
    return sources


class ContractLoader:
    """Loads each contract once, whether inline in mlci.yml or in its own file."""

    def __init__(self, config):
        self.config = config
        self.base = config.path.parent if config.path else Path(".")
        self._cache: dict[str, Contract] = {}

    def for_source(self, source: Source) -> Contract | None:
        if source.contract is None:
            return None
        if isinstance(source.contract, str):
            return self.from_file(self.base / source.contract)
        key = f"inline:{source.name}"
        if key not in self._cache:
            prefix = ("data", "sources", source.name, "contract")
            self._cache[key] = parse_contract(
                source.contract, lambda p: self.config.where((*prefix, *p)), origin=str(self.config.path),
            )
        return self._cache[key]

    def from_file(self, path: Path) -> Contract:
        key = str(path.resolve())
        if key not in self._cache:
            self._cache[key] = load_contract_file(path)
        return self._cache[key]


def _matches(source: Source, path: Path) -> bool:
    try:
        if not is_glob(source.pattern):
            return path.resolve() == source.path.resolve()
    except OSError:
        return False
    candidates = {os.path.normpath(str(path)), os.path.normpath(str(path.resolve()))}
    patterns = {os.path.normpath(source.pattern), os.path.normpath(str(source.path.resolve()))}
    return any(fnmatch.fnmatch(c, p) for c in candidates for p in patterns)


def check_targets(config, paths: list[str], *, contract_file: str | None, fmt: str | None):
    """[(path, format, source name, contract)] for `mlci data check`, or every problem at once."""
    from mlci.data.check import DataFile

    loader = ContractLoader(config)
    sources = configured_sources(config)
    problems: list[ConfigError] = []
    targets: list[DataFile] = []

    def add(path: Path, declared_fmt: str | None, source: str, contract: Contract, location: str | None) -> None:
        try:
            targets.append(DataFile(path=path, format=detect_format(path, declared_fmt, location=location),
                                    source=source, contract=contract))
        except ConfigError as exc:
            problems.append(exc)

    explicit = loader.from_file(Path(contract_file)) if contract_file else None
    if paths:
        for pattern in paths:
            try:
                files = expand(pattern)
            except ConfigError as exc:
                problems.append(exc)
                continue
            for path in files:
                if explicit is not None:
                    add(path, fmt, Path(contract_file).stem, explicit, None)
                    continue
                owner = next((s for s in sources if _matches(s, path)), None)
                with_contract = [s for s in sources if s.contract is not None]
                if owner is None and len(with_contract) == 1:
                    owner = with_contract[0]
                if owner is None or owner.contract is None:
                    problems.append(ConfigError(
                        "no contract for this file", location=str(path),
                        hint="pass --contract FILE, or declare a data.sources entry whose path matches it",
                    ))
                    continue
                add(path, fmt or owner.format, owner.name, loader.for_source(owner), None)
    else:
        chosen = [s for s in sources if explicit is not None or s.contract is not None]
        if not chosen:
            raise UsageError(
                "nothing to check: no data files given and no data.sources with a contract in mlci.yml",
                hint="run `mlci data check PATH... --contract FILE`, or declare data.sources in mlci.yml",
            )
        for source in chosen:
            contract = explicit if explicit is not None else loader.for_source(source)
            try:
                files = expand(source.path, location=source.where)
            except ConfigError as exc:
                problems.append(ConfigError(f"{exc.detail} (source {source.name!r}: {source.pattern})",
                                            location=exc.location))
                continue
            for path in files:
                add(path, fmt or source.format, source.name, contract, source.where)
    if problems:
        raise ConfigErrors(problems) if len(problems) > 1 else problems[0]
    return targets


def load_frame(files: list[Path], fmt: str | None, *, location: str | None = None,
               columns: tuple[str, ...] = (), exclude: tuple[str, ...] = ()):
    """Read files (one dataset) into one DataFrame; text formats get polars' type inference.

    Only `columns` (all when empty) minus `exclude` are read.
    """
    import polars as pl

    from mlci.data.check import _first_line

    frames = []
    for path in files:
        file_fmt = detect_format(path, fmt, location=location)
        try:
            if path.stat().st_size == 0:
                continue  # an empty file adds no rows and no columns
            if file_fmt == "parquet":
                frames.append(pl.scan_parquet(path))
            elif file_fmt == "csv":
                frames.append(pl.scan_csv(path, try_parse_dates=True, infer_schema_length=10_000))
            else:
                frames.append(pl.scan_ndjson(path, infer_schema_length=10_000))
        except OSError as exc:
            raise ConfigError(f"cannot read data file: {exc.strerror or exc}", location=str(path)) from None
    if not frames:
        return pl.DataFrame()
    try:
        combined = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        names = combined.collect_schema().names()
        keep = [c for c in names if (not columns or c in columns) and c not in exclude]
        return combined.select(keep).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        names = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise ConfigError(f"cannot read: {_first_line(exc)}", location=names) from None

"""What to check against which contract: CLI sources, globs and mlci.yml sources.

Sources use one syntax everywhere (mlci.data.location): local files, globs and
folders, object-store URLs, and Delta or Iceberg tables. Paths in mlci.yml
(source paths, contract files) are relative to the mlci.yml directory; paths
on the command line are relative to the working directory.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.data.contract import Contract, load_contract_file, parse_contract
from mlci.data.location import Location, is_glob, is_iceberg_metadata, parse, safe_url
from mlci.errors import ConfigError, ConfigErrors, UsageError

FORMATS_BY_SUFFIX = {
    ".parquet": "parquet", ".pq": "parquet",
    ".csv": "csv",
    ".json": "ndjson", ".jsonl": "ndjson", ".ndjson": "ndjson",
}
FILE_FORMATS = ("parquet", "csv", "ndjson")
ENGINES = ("polars", "duckdb", "spark", "sql")


@dataclass(frozen=True)
class Source:
    name: str
    pattern: str  # as written, for messages
    location: Location  # resolved against the base directory
    format: str | None
    contract: Any  # dict (inline), str (file) or None
    where: str  # mlci.yml location of the source
    engine: str = "polars"
    connection: str | None = None  # name of the variable holding the engine's connection string
    table: str | None = None  # a table in the engine's catalog, instead of a path

    @property
    def path(self) -> str:
        return self.table or self.location.canonical()


def resolve(text: str, base: Path, *, table_format: str | None = None, pin: int | None = None,
            catalog: str | None = None, where: str | None = None) -> Location:
    """Parse a source string; a local path is taken relative to `base` (a trailing / is kept: a folder)."""
    try:
        location = parse(text, table_format=table_format, pin=pin, catalog=catalog)
    except ValueError as exc:
        raise ConfigError(str(exc), location=where or text) from None
    local = not location.remote and location.scheme is None and not (
        location.table_format == "iceberg" and not is_iceberg_metadata(location.target))
    if local and not os.path.isabs(location.target):
        joined = str(base / location.target)
        if location.target.endswith(("/", os.sep)):
            joined += "/"
        location = Location(text=location.text, target=joined, table_format=location.table_format,
                            pin=location.pin, catalog=location.catalog)
    return location


def detect_format(path: Path | str, declared: str | None, *, location: str | None = None) -> str:
    if declared:
        return declared
    suffix = os.path.splitext(str(path).rstrip("/"))[1].lower()
    fmt = FORMATS_BY_SUFFIX.get(suffix)
    if fmt is None:
        raise ConfigError(
            f"cannot tell the format of {safe_url(str(path))} from its extension",
            location=location or safe_url(str(path)),
            hint="use .parquet, .csv or .ndjson/.jsonl, or set `format:` (or pass --format)",
        )
    return fmt


@dataclass(frozen=True)
class Found:
    """One thing to read: a file, or a folder read as one dataset. `size` in bytes when known."""

    path: Path | str
    size: int | None = None
    folder: bool = False
    format_hint: str | None = None  # a folder's format, from the files in it


def _folder_format(names: list[str]) -> str | None:
    for name in names:
        fmt = FORMATS_BY_SUFFIX.get(os.path.splitext(name)[1].lower())
        if fmt:
            return fmt
    return None


def find(location: Location, *, where: str | None = None, missing_ok: bool = False) -> list[Found]:
    """The files (or the folder) a file source names, sorted; a local miss is an error naming the source,
    or no files with `missing_ok` (data that is not written yet)."""
    text = location.target
    if location.remote:
        from mlci.adapters.object_store import list_objects

        objects = list_objects(text, location=where)
        if location.is_folder or (len(objects) > 1 and not location.is_glob) or (
                not location.is_glob and objects[0].url != text):
            folder = text if text.endswith("/") else text + "/"
            return [Found(folder, size=sum(o.size for o in objects), folder=True,
                          format_hint=_folder_format([o.url for o in objects]))]
        return [Found(o.url, size=o.size) for o in objects]
    if is_glob(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not matches and not missing_ok:
            raise ConfigError(f"no data file matches {location.text!r}", location=where or location.text)
        return [Found(p) for p in matches]
    path = Path(text)
    if path.is_dir():
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        if not files:
            if missing_ok:
                return []
            raise ConfigError("folder holds no data files", location=where or location.text)
        return [Found(path, size=sum(os.path.getsize(f) for f in files), folder=True,
                      format_hint=_folder_format(files))]
    if not path.exists():
        if missing_ok:
            return []
        raise ConfigError("data file not found", location=where or location.text)
    return [Found(path)]


def expand(pattern: str | Path, *, location: str | None = None, base: Path = Path("."),
           missing_ok: bool = False) -> list[Path | str]:
    """The files a source string names (a folder or a table stays one entry), relative to `base`."""
    loc = resolve(str(pattern), base, where=location)
    if loc.is_table:
        return [loc.canonical()]
    return [found.path for found in find(loc, where=location, missing_ok=missing_ok)]


def configured_sources(config) -> list[Source]:
    base = config.path.parent if config.path else Path(".")
    sources = []
    for name, spec in (config.get("data", "sources") or {}).items():
        where = config.where(("data", "sources", name, "path" if "path" in spec else "table"))
        pattern = spec.get("path") or spec.get("table")
        fmt = spec.get("format")
        if spec.get("table"):
            if spec.get("engine", "polars") == "polars":
                raise ConfigError("a `table:` lives in an engine's catalog: set `engine:` to duckdb, spark or sql",
                                  location=where, hint="or give a `path:` for the polars engine to read")
            location = Location(text=spec["table"], target=spec["table"])
        else:
            location = resolve(pattern, base, table_format=fmt, pin=spec.get("version"),
                               catalog=spec.get("catalog"), where=where)
        sources.append(Source(
            name=name, pattern=pattern, location=location, format=fmt, contract=spec.get("contract"), where=where,
            engine=spec.get("engine", "polars"), connection=spec.get("connection"), table=spec.get("table"),
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


def _matches(source: Source, found: Found) -> bool:
    if source.table or source.location.is_table:
        return False
    if isinstance(found.path, str) or source.location.remote:
        text = str(found.path)
        target = source.location.target
        return text == target or text.rstrip("/") == target.rstrip("/") or (
            source.location.is_glob and fnmatch.fnmatch(text, target))
    path = found.path
    try:
        if not source.location.is_glob:
            return path.resolve() == Path(source.location.target).resolve()
    except OSError:
        return False
    candidates = {os.path.normpath(str(path)), os.path.normpath(str(path.resolve()))}
    patterns = {os.path.normpath(source.pattern), os.path.normpath(str(Path(source.location.target).resolve()))}
    return any(fnmatch.fnmatch(c, p) for c in candidates for p in patterns)


def _table_owner(sources: list[Source], location: Location) -> Source | None:
    for source in sources:
        if source.location.is_table and source.location.table_format == location.table_format and (
                source.location.target == location.target and source.location.catalog == location.catalog):
            return source
    return None


def check_targets(config, paths: list[str], *, contract_file: str | None, fmt: str | None,
                  engine: str | None = None, connection: str | None = None):
    """The DataFiles for `mlci data check`, or every problem at once.

    `engine`/`connection` (flags) override each source's own.
    """
    from mlci.data.check import DataFile

    loader = ContractLoader(config)
    sources = configured_sources(config)
    problems: list[ConfigError] = []
    targets: list[DataFile] = []

    def add(found: Found | None, location: Location | None, declared_fmt: str | None, source: str,
            contract: Contract, where: str | None, owner: Source | None) -> None:
        run_engine = engine or (owner.engine if owner else "polars")
        run_connection = connection or (owner.connection if owner else None)
        table = owner.table if owner else None
        try:
            if table:
                targets.append(DataFile(path=table, format="table", source=source, contract=contract,
                                        engine=run_engine, connection=run_connection, table=table, where=where))
                return
            if location is not None and location.is_table:
                targets.append(DataFile(path=location.canonical(), format=location.table_format, source=source,
                                        contract=contract, location=location, engine=run_engine,
                                        connection=run_connection, where=where))
                return
            assert found is not None
            file_fmt = detect_format(found.path, declared_fmt or found.format_hint, location=where)
            if file_fmt not in FILE_FORMATS:
                raise ConfigError(f"format {file_fmt} is a table format; write the source as {file_fmt}:PATH",
                                  location=where or str(found.path))
            targets.append(DataFile(path=found.path, format=file_fmt, source=source, contract=contract,
                                    size=found.size, folder=found.folder, engine=run_engine,
                                    connection=run_connection, where=where))
        except ConfigError as exc:
            problems.append(exc)

    explicit = loader.from_file(Path(contract_file)) if contract_file else None
    if paths:
        for pattern in paths:
            try:
                location = resolve(pattern, Path("."), table_format=fmt)
                found_all = [None] if location.is_table else find(location)
            except ConfigError as exc:
                problems.append(exc)
                continue
            for found in found_all:
                if explicit is not None:
                    add(found, location, fmt, Path(contract_file).stem, explicit, None, None)
                    continue
                if found is None:
                    owner = _table_owner(sources, location)
                else:
                    owner = next((s for s in sources if _matches(s, found)), None)
                with_contract = [s for s in sources if s.contract is not None]
                if owner is None and len(with_contract) == 1:
                    owner = with_contract[0]
                if owner is None or owner.contract is None:
                    shown = safe_url(str(found.path)) if found is not None else location.text
                    problems.append(ConfigError(
                        "no contract for this data", location=shown,
                        hint="pass --contract FILE, or declare a data.sources entry whose path matches it",
                    ))
                    continue
                add(found, location, fmt or owner.format, owner.name, loader.for_source(owner), None, owner)
    else:
        chosen = [s for s in sources if explicit is not None or s.contract is not None]
        if not chosen:
            raise UsageError(
                "nothing to check: no data files given and no data.sources with a contract in mlci.yml",
                hint="run `mlci data check PATH... --contract FILE`, or declare data.sources in mlci.yml",
            )
        for source in chosen:
            contract = explicit if explicit is not None else loader.for_source(source)
            if source.table or source.location.is_table:
                add(None, source.location, fmt or source.format, source.name, contract, source.where, source)
                continue
            try:
                found_all = find(source.location, where=source.where)
            except ConfigError as exc:
                problems.append(ConfigError(f"{exc.detail} (source {source.name!r}: {source.pattern})",
                                            location=exc.location))
                continue
            for found in found_all:
                add(found, source.location, fmt or source.format, source.name, contract, source.where, source)
    if problems:
        raise ConfigErrors(problems) if len(problems) > 1 else problems[0]
    return targets


def load_frame(files: list[Path | str], fmt: str | None, *, location: str | None = None,
               columns: tuple[str, ...] = (), exclude: tuple[str, ...] = ()):
    """Read one dataset (files, a folder, object-store URLs or a table) into one DataFrame.

    Text formats get polars' type inference. Only `columns` (all when empty) minus `exclude` are read.
    """
    import polars as pl

    from mlci.data.readers import first_line, open_table, scan_path

    frames = []
    for entry in files:
        text = str(entry)
        loc = resolve(text, Path("."), where=location)
        if loc.is_table:
            frames.append(open_table(loc, where=location).frame)
            continue
        is_folder = loc.is_folder or (not loc.remote and Path(text).is_dir())
        file_fmt = fmt
        if file_fmt is None and is_folder:
            file_fmt = next((f.format_hint for f in find(loc, where=location) if f.format_hint), None)
        file_fmt = detect_format(text, file_fmt, location=location)
        try:
            if not loc.remote and not is_folder and Path(text).stat().st_size == 0:
                continue  # an empty file adds no rows and no columns
            frames.append(scan_path(text, file_fmt, folder=is_folder))
        except OSError as exc:
            raise ConfigError(f"cannot read data file: {exc.strerror or exc}", location=text) from None
    if not frames:
        return pl.DataFrame()
    try:
        combined = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
        names = combined.collect_schema().names()
        keep = [c for c in names if (not columns or c in columns) and c not in exclude]
        return combined.select(keep).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        names = ", ".join(safe_url(str(p)) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise ConfigError(f"cannot read: {first_line(exc)}", location=names) from None
    except OSError as exc:  # an object store that fails mid-read
        from mlci.adapters.object_store import scrub

        raise ConfigError(f"cannot read: {scrub(first_line(exc))}", location=safe_url(str(files[0]))) from None

"""The source syntax shared by `mlci data check`, `mlci data drift` and `train.data`.

A source is written as one string:

    data/train.parquet, data/*.csv         local files or globs (each file on its own)
    data/events/                           a folder: one dataset, hive partitions (day=.../) as columns
    s3://lake/events/*.parquet             object storage (s3://, gs://, az://, abfss://): the same rules
    s3://lake/events/
    delta:s3://lake/orders                 a Delta Lake table (local path or object-store URL)
    delta:s3://lake/orders@v12             ... pinned to version 12
    iceberg:sales.orders                   an Iceberg table from pyiceberg's `default` catalog
    iceberg:lake/sales.orders@5170...      ... from the catalog named `lake`, pinned to a snapshot id
    iceberg:s3://wh/orders/metadata/v3.metadata.json   ... straight from a metadata file

Credentials never appear here: object stores and catalogs read them from the
environment (AWS_*, GOOGLE_*, AZURE_*, PYICEBERG_CATALOG__*) or instance roles.
Pure parsing, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

# Schemes polars, delta-rs and obstore all read natively.
CLOUD_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl"})
TABLE_FORMATS = ("delta", "iceberg")
_PIN = re.compile(r"@(v?)(\d+)$")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Location:
    text: str  # as written, for messages
    target: str  # path, URL or catalog identifier, without prefix and pin
    table_format: str | None = None  # delta | iceberg | None (files)
    pin: int | None = None  # Delta version or Iceberg snapshot id
    catalog: str | None = None  # Iceberg catalog name

    @property
    def scheme(self) -> str | None:
        return url_scheme(self.target)

    @property
    def remote(self) -> bool:
        return self.scheme in CLOUD_SCHEMES

    @property
    def is_table(self) -> bool:
        return self.table_format is not None

    @property
    def is_glob(self) -> bool:
        return self.table_format is None and is_glob(self.target)

    @property
    def is_folder(self) -> bool:
        return self.table_format is None and self.target.endswith("/")

    def pinned(self, pin: int) -> Location:
        return replace(self, pin=pin)

    def canonical(self) -> str:
        """The source as one string with its pin: what lineage records and the fingerprint hashes."""
        if self.table_format is None:
            return self.target
        if self.table_format == "delta":
            return f"delta:{self.target}" + (f"@v{self.pin}" if self.pin is not None else "")
        name = f"{self.catalog}/{self.target}" if self.catalog else self.target
        return f"iceberg:{name}" + (f"@{self.pin}" if self.pin is not None else "")


def url_scheme(text: str) -> str | None:
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    return match.group(1).lower() if match else None


def is_remote(text: str) -> bool:
    return url_scheme(text) in CLOUD_SCHEMES


def is_glob(text: str) -> bool:
    return any(ch in text for ch in _GLOB_CHARS)


def is_iceberg_metadata(target: str) -> bool:
    return target.endswith(".metadata.json")


def parse(text: str, *, table_format: str | None = None, pin: int | None = None,
          catalog: str | None = None) -> Location:
    """A Location from the source string; `table_format`/`pin`/`catalog` come from mlci.yml keys or flags.

    Raises ValueError (the caller adds the location) for a pin on plain files or two disagreeing pins.
    """
    body = text.strip()
    prefix, sep, rest = body.partition(":")
    if sep and prefix.lower() in TABLE_FORMATS and not rest.startswith("//"):
        if table_format and table_format != prefix.lower():
            raise ValueError(f"{text!r} is a {prefix.lower()} source but format says {table_format}")
        table_format, body = prefix.lower(), rest
    if table_format not in (None, *TABLE_FORMATS):
        table_format = None  # a file format (parquet, csv, ndjson): not a table
    written_pin = None
    if table_format:
        match = _PIN.search(body)
        if match and not (table_format == "iceberg" and is_iceberg_metadata(body)):
            written_pin = int(match.group(2))
            body = body[: match.start()]
    if written_pin is not None and pin is not None and written_pin != pin:
        raise ValueError(f"{text!r} pins version {written_pin} but version says {pin}")
    pin = written_pin if written_pin is not None else pin
    if pin is not None and not table_format:
        raise ValueError("a version pin needs a table format (delta: or iceberg:)")
    if table_format == "iceberg" and not is_iceberg_metadata(body) and url_scheme(body) is None:
        head, slash, ident = body.rpartition("/")
        if slash:
            if catalog and catalog != head:
                raise ValueError(f"{text!r} names catalog {head!r} but catalog says {catalog}")
            catalog, body = head, ident
        if "." not in body:
            raise ValueError(f"{text!r}: an Iceberg table is NAMESPACE.TABLE (or a .metadata.json location)")
    if not body:
        raise ValueError("empty source")
    return Location(text=text, target=body, table_format=table_format, pin=pin,
                    catalog=catalog if table_format == "iceberg" else None)


def safe_url(text: str) -> str:
    """The URL without user:password@ and query string, for messages (a presigned URL carries its key there)."""
    scheme = url_scheme(text)
    if scheme is None:
        return text
    parts = urlsplit(text)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))

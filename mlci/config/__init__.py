"""mlci.yml: schema, located loading and the effective (layered) config."""

from mlci.config.effective import Config, load_effective
from mlci.config.schema import full_schema, section_schema, validate_document
from mlci.config.yamlmarks import LocatedDocument, load_located, load_located_file

__all__ = [
    "Config",
    "LocatedDocument",
    "full_schema",
    "load_effective",
    "load_located",
    "load_located_file",
    "section_schema",
    "validate_document",
]

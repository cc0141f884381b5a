"""mlci.yml: schema, located loading and the effective (layered) config.

The names below load on first use, so `mlci.config.yamlload` (which `mlci lint`
needs for every file) does not pull in the layered config and its schema.
"""

_EXPORTS = {
    "Config": "mlci.config.effective",
    "load_effective": "mlci.config.effective",
    "full_schema": "mlci.config.schema",
    "section_schema": "mlci.config.schema",
    "validate_document": "mlci.config.schema",
    "LocatedDocument": "mlci.config.yamlmarks",
    "load_located": "mlci.config.yamlmarks",
    "load_located_file": "mlci.config.yamlmarks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlci.config' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

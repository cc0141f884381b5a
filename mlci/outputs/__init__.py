"""Artifact writers. Every file mlci writes goes through `atomic_write`."""

from mlci.outputs.atomic import atomic_write, write_json

__all__ = ["atomic_write", "write_json"]

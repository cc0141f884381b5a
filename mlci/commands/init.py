"""`mlci init` (not implemented yet)."""

from __future__ import annotations

from mlci.errors import UsageError


def configure(parser) -> None:
    parser.add_argument("rest", nargs="*")


def run(args, ctx) -> int:
    raise UsageError("mlci init is not implemented yet")

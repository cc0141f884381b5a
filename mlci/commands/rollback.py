"""`mlci rollback` (not implemented yet)."""

from __future__ import annotations

from mlci.errors import UsageError


def configure(parser) -> None:
    parser.add_argument("rest", nargs="*")


def run(args, ctx) -> int:
    raise UsageError("mlci rollback is not implemented yet")

"""`mlci config show`: the effective config and the layer each value came from."""

from __future__ import annotations

import json


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    show = sub.add_parser("show", help="print the effective config with the source of each value")
    show.add_argument("--format", choices=["text", "json", "yaml"], default="text")
    sub.add_parser("schema", help="print the JSON Schema of mlci.yml")


def _flatten(node, path=()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _flatten(value, (*path, key))
    else:
        yield path, node


def run(args, ctx) -> int:
    from mlci.config import full_schema

    if args.action == "schema":
        ctx.info(json.dumps(full_schema(), indent=2))
        return 0
    if args.action != "show":
        ctx.error("usage: mlci config {show,schema}")
        return 2
    config = ctx.config()
    if args.format == "json":
        rows = {".".join(map(str, p)): {"value": v, "source": config.source_of(*p)} for p, v in _flatten(config.data)}
        ctx.info(json.dumps({"version": 1, "file": str(config.path or ""), "values": rows}, indent=2, default=str))
        return 0
    if args.format == "yaml":
        import yaml

        ctx.info(yaml.safe_dump(config.data, sort_keys=False).rstrip())
        return 0
    ctx.info(f"# config file: {config.path or '(none, defaults only)'}")
    ctx.info("# precedence: flags > MLCI_* env > mlci.yml > CI_* predefined > defaults")
    rows = [(".".join(map(str, p)), json.dumps(v, default=str), config.source_of(*p)) for p, v in _flatten(config.data)]
    width = max((len(r[0]) for r in rows), default=10)
    value_width = min(max((len(r[1]) for r in rows), default=10), 48)
    for key, value, source in rows:
        ctx.info(f"{key:<{width}}  {value:<{value_width}}  {source}")
    return 0

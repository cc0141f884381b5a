"""Texts about the run cache: what the key is made of, and why a run was (not) re-used. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlci.train.fingerprint import MAX_LISTED, differences, environment_changes, similarity
from mlci.train.lineage import CACHE_INPUTS_TAG, command_text


def cached_record(tags: Mapping[str, str]) -> dict[str, Any] | None:
    try:
        value = json.loads(tags.get(CACHE_INPUTS_TAG) or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def environment_miss(current: Mapping[str, Any], run_id: str, tags: Mapping[str, str]) -> str:
    """The message for a run that would have been re-used but for its environment."""
    cached = cached_record(tags) or {}
    changes = environment_changes(current.get("env") or {}, cached.get("env") or {})
    named = ", ".join(changes[:MAX_LISTED]) + (f" and {len(changes) - MAX_LISTED} more"
                                               if len(changes) > MAX_LISTED else "")
    return (f"cache miss: run {run_id} has the same code, data, params, image and command, but the environment "
            f"differs ({named or 'its variables'}); training again (set train.cache-env-ignore for variables that "
            "cannot change the model)")


def nearest(current: Mapping[str, Any], runs) -> tuple[Any, dict[str, Any]] | None:
    """The run whose recorded inputs share the most with `current` (newest first on ties)."""
    best = None
    for run in runs:
        record = cached_record(run.tags)
        if record is None:
            continue
        score = similarity(current, record)
        if best is None or score > best[0]:
            best = (score, run, record)
    return (best[1], best[2]) if best else None


def key_lines(prepared, settings) -> list[str]:
    """Every input of the cache key, one line each."""
    record = prepared.key.record()
    code = prepared.code
    lines = [
        f"run-cache key {prepared.fingerprint} (scheme {record['scheme']})",
        f"  code: {len(code.files)} file(s) from {', '.join(settings.code_paths)} ({code.mode}), "
        f"digest {record['code']}",
    ]
    if code.irrelevant:
        lines.append(f"    left out, cannot change the model: {_few(code.irrelevant)}")
    if code.untracked_skipped:
        lines.append(f"    left out, untracked (name them in train.code-paths to count them): "
                     f"{_few(code.untracked_skipped)}")
    data = record["data"]
    lines.append(f"  data: {len(data)} file(s)")
    lines += [f"    {path} sha256 {sha}..." for path, sha in data.items()]
    params = prepared.params
    lines.append("  params: " + (", ".join(f"{k}={v!r}" for k, v in sorted(params.items())) or "none"))
    lines.append(f"  image: {settings.image or '(none)'}")
    lines.append(f"  command: {command_text(prepared.command)}")
    env = record["env"]
    lines.append("  environment: " + (", ".join(sorted(env)) if env else "no user-set variables")
                 + (" (values hashed)" if env else ""))
    return lines


def comparison_lines(current: Mapping[str, Any], run, cached: Mapping[str, Any]) -> list[str]:
    found = differences(current, cached)
    origin = run.tags.get("mlci.gitlab.pipeline_url") or run.run_name or run.run_id
    if not found:
        return [f"same inputs as run {run.run_id} ({origin})"]
    return [f"nearest cached run {run.run_id} ({origin}) differs in:"] + [f"  {name}: {what}" for name, what in found]


def _few(items: list[str]) -> str:
    return ", ".join(items[:MAX_LISTED]) + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")

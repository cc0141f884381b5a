"""The run-cache key: one sha256 over everything that decides a training result, and nothing else.

Two runs with the same fingerprint are assumed to produce the same model, so the second one re-uses
the first. The inputs: the code files that count (their blob ids), the declared data (content
hashes), the params, the image, the command and the user-set environment (names and value
digests). Inputs are canonicalised (sorted keys, fixed separators) so the key does not depend on
dict order or the checkout directory.

Besides the fingerprint, a key has a `base` digest over everything but the environment: a run with
the same base and another fingerprint differs only in its environment, so a miss can say which
variable made it one. `record()` is the compact form stored on the run (tag `mlci.cache.inputs`)
and `differences()` compares two records for `mlci train --explain-cache`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# Bump when the meaning of the inputs changes, so old runs stop matching.
# 2: irrelevant files and untracked files left out, the mlci config file left out, the environment added.
FINGERPRINT_SCHEME = 2
# MLflow keeps tag values up to 8000 characters (older servers 5000); stay below both.
MAX_RECORD_CHARS = 4900
MAX_LISTED = 12


@dataclass(frozen=True)
class DataFile:
    """One declared input data file, as hashed by mlci.train.sources."""

    path: str  # relative to the working directory when inside it, else absolute
    sha256: str
    size_bytes: int
    rows: int | None = None


@dataclass(frozen=True)
class FingerprintInputs:
    code: Mapping[str, str]  # every code file that counts -> its blob id / content digest
    data: Sequence[DataFile] = ()
    params: Mapping[str, object] = field(default_factory=dict)
    image: str = ""
    command: Sequence[str] | str = ()
    env: Mapping[str, str] = field(default_factory=dict)  # user-set variable -> value digest


@dataclass(frozen=True)
class CacheKey:
    fingerprint: str
    base: str  # the fingerprint without the environment
    inputs: FingerprintInputs

    def record(self) -> dict[str, Any]:
        return record(self.inputs)


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha(value: object) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def code_digest(code: Mapping[str, str]) -> str:
    return _sha(sorted(code.items()))


def _command(inputs: FingerprintInputs) -> str | list[str]:
    return inputs.command if isinstance(inputs.command, str) else list(inputs.command)


def cache_key(inputs: FingerprintInputs) -> CacheKey:
    document = {
        "scheme": FINGERPRINT_SCHEME,
        "code": code_digest(inputs.code),
        # Order of declaration does not matter; the content and names do.
        "data": sorted([f.path, f.sha256] for f in inputs.data),
        "params": {str(k): v for k, v in inputs.params.items()},
        "image": inputs.image,
        "command": _command(inputs),
    }
    base = _sha(document)
    return CacheKey(fingerprint=_sha({**document, "env": dict(inputs.env)}), base=base, inputs=inputs)


def fingerprint(inputs: FingerprintInputs) -> str:
    return cache_key(inputs).fingerprint


def record(inputs: FingerprintInputs) -> dict[str, Any]:
    """What the run keeps of its key: per-input digests, the file list when it fits."""
    doc: dict[str, Any] = {
        "scheme": FINGERPRINT_SCHEME,
        "code": code_digest(inputs.code)[:16],
        "data": {f.path: f.sha256[:16] for f in inputs.data},
        "params": {str(k): v for k, v in inputs.params.items()},
        "image": inputs.image,
        "command": _command(inputs),
        "env": dict(inputs.env),
        "files": {path: blob[:12] for path, blob in sorted(inputs.code.items())},
    }
    if len(canonical_json(doc)) > MAX_RECORD_CHARS:
        doc["files"] = None  # too many files to list; the code digest still tells same from different
    if len(canonical_json(doc)) > MAX_RECORD_CHARS:
        doc["params"] = _sha(doc["params"])[:16]
        doc["command"] = _sha(doc["command"])[:16]
    return doc


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _map_changes(current: Mapping[str, Any], cached: Mapping[str, Any]) -> list[str]:
    added = sorted(set(current) - set(cached))
    removed = sorted(set(cached) - set(current))
    changed = sorted(k for k in set(current) & set(cached) if current[k] != cached[k])
    parts = []
    if changed:
        parts.append(f"changed: {_names(changed)}")
    if added:
        parts.append(f"new: {_names(added)}")
    if removed:
        parts.append(f"gone: {_names(removed)}")
    return parts


def environment_changes(current: Mapping[str, str], cached: Mapping[str, str]) -> list[str]:
    """Each variable that differs, as 'NAME changed|set|unset'."""
    names = sorted(set(current) | set(cached))
    out = []
    for name in names:
        if name not in cached:
            out.append(f"{name} set")
        elif name not in current:
            out.append(f"{name} unset")
        elif current[name] != cached[name]:
            out.append(f"{name} changed")
    return out


def differences(current: Mapping[str, Any], cached: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(input, what differs) for every input of two records that is not the same."""
    found: list[tuple[str, str]] = []
    if cached.get("scheme") != current.get("scheme"):
        found.append(("scheme", f"the cached run was keyed by scheme {cached.get('scheme')}, this mlci uses "
                                f"{current.get('scheme')}"))
    if cached.get("code") != current.get("code"):
        if isinstance(cached.get("files"), dict) and isinstance(current.get("files"), dict):
            found.append(("code", "; ".join(_map_changes(current["files"], cached["files"])) or "differs"))
        else:
            found.append(("code", "the code files differ"))
    for name in ("data", "params"):
        mine, theirs = current.get(name), cached.get(name)
        if mine != theirs:
            both_maps = isinstance(mine, Mapping) and isinstance(theirs, Mapping)
            found.append((name, "; ".join(_map_changes(mine, theirs)) if both_maps else "differs"))
    for name in ("image", "command"):
        if current.get(name) != cached.get(name):
            found.append((name, f"{cached.get(name)!r} -> {current.get(name)!r}"))
    env_changes = environment_changes(current.get("env") or {}, cached.get("env") or {})
    if env_changes:
        found.append(("env", _names(env_changes)))
    return found


def similarity(current: Mapping[str, Any], cached: Mapping[str, Any]) -> int:
    """How many inputs two records share; the nearest cached run has the most."""
    return sum(current.get(name) == cached.get(name)
               for name in ("code", "data", "params", "image", "command", "env"))

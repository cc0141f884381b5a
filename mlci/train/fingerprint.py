"""The run-cache key: one sha256 over everything that decides a training result.

Two runs with the same fingerprint are assumed to produce the same model, so
the second one can re-use the first. Inputs are canonicalised (sorted keys,
fixed separators) so the key does not depend on dict order or the checkout
directory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Bump when the meaning of the inputs changes, so old runs stop matching.
FINGERPRINT_SCHEME = 1


@dataclass(frozen=True)
class DataFile:
    """One declared input data file, as hashed by mlci.train.sources."""

    path: str  # relative to the working directory when inside it, else absolute
    sha256: str
    size_bytes: int
    rows: int | None = None


@dataclass(frozen=True)
class FingerprintInputs:
    code: Mapping[str, str]  # code path as declared -> content digest
    data: Sequence[DataFile] = ()
    params: Mapping[str, object] = field(default_factory=dict)
    image: str = ""
    command: Sequence[str] | str = ()


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(inputs: FingerprintInputs) -> str:
    document = {
        "scheme": FINGERPRINT_SCHEME,
        "code": dict(inputs.code),
        # Order of declaration does not matter; the content and names do.
        "data": sorted([f.path, f.sha256] for f in inputs.data),
        "params": {str(k): v for k, v in inputs.params.items()},
        "image": inputs.image,
        "command": inputs.command if isinstance(inputs.command, str) else list(inputs.command),
    }
    return hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()

"""Which model an environment serves: the registered version's original, or its optimized (ONNX) model.

Pure: the version's tags in, the model URI to serve out. `mlci optimize`
logs the ONNX model in the candidate run and the gate copies its
`mlci.optimize.*` tags onto the registered version, so the version itself
says whether it has an optimized model and where.
"""

from __future__ import annotations

from dataclasses import dataclass

ORIGINAL, OPTIMIZED = "original", "optimized"
SERVED_TAG_PREFIX = "mlci.served."  # + environment: which artifact the version was last deployed as


@dataclass(frozen=True)
class Served:
    artifact: str  # original | optimized: what actually runs
    model_uri: str  # pinned: models:/NAME/VERSION, or the ONNX logged model's models:/m-... URI
    requested: str
    note: str = ""  # why the requested artifact is not the one served

    @property
    def fallback(self) -> bool:
        return self.artifact != self.requested


def served_artifact(requested: str, model: str, version: str, tags: dict[str, str]) -> Served:
    pinned = f"models:/{model}/{version}"
    if requested != OPTIMIZED:
        return Served(ORIGINAL, pinned, requested)
    status = tags.get("mlci.optimize.status", "")
    uri = tags.get("mlci.optimize.model_uri", "")
    if status == "passed" and uri:
        return Served(OPTIMIZED, uri, requested)
    why = (f"mlci optimize could not export it ({tags.get('mlci.optimize.reason') or status})"
           if status == "unsupported" else
           f"mlci optimize ended {status}" if status else "mlci optimize did not run for its training run")
    return Served(ORIGINAL, pinned, requested,
                  note=f"version {version} has no optimized model ({why}); serving the original model")

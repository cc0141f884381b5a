"""`--reference champion`: the training-data snapshot of the champion model's run.

`mlci train` logs the declared data files as run artifacts under `mlci-data/`,
mirroring their project-relative paths (data/train.parquet ->
mlci-data/data/train.parquet). We resolve the champion through the registry
adapter (alias, or version tag on GitLab's MLflow), download that folder, and
pair each current dataset with its snapshot file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlci.data.sources import FORMATS_BY_SUFFIX
from mlci.errors import ConfigError, ExternalServiceError

CHAMPION = "champion"


@dataclass
class Snapshot:
    """A downloaded snapshot, or why there is none (no champion yet, nothing logged)."""

    label: str
    root: Path | None
    files: list[Path]
    unavailable: str = ""
    model: str = ""
    version: str = ""
    run_id: str = ""


def champion_snapshot(config, dest: Path, *, artifact_path: str) -> Snapshot:
    from mlci.adapters.mlflow import SOURCE_RUN_TAG, Registry

    model = config.get("model", "name")
    if not model:
        raise ConfigError("--reference champion needs the registered model's name",
                          hint="set model.name (or project.name) in mlci.yml")
    registry = Registry.from_config(config)
    champion = registry.get_marker(model, CHAMPION)
    if champion is None:
        return Snapshot(label=f"champion of {model}", root=None, files=[],
                        unavailable=f"model {model!r} has no champion yet (first run?), so there is no reference",
                        model=model)
    run_id = champion.run_id or champion.tags.get(SOURCE_RUN_TAG, "")
    label = f"champion {model} v{champion.version}"
    if not run_id:
        return Snapshot(label=label, root=None, files=[], model=model, version=champion.version,
                        unavailable=f"version {champion.version} of {model!r} names no source run")
    try:
        listed = registry.client.list_artifacts(run_id, artifact_path)
    except Exception as exc:  # MLflow raises many types; all mean the store refused or failed
        raise ExternalServiceError(
            "MLflow", registry.url, f"could not list {artifact_path}/ of the champion's run {run_id}: {exc}",
            hint="check mlflow.tracking-uri and that the runner can reach the artifact store",
        ) from exc
    if not listed:
        return Snapshot(label=label, root=None, files=[], model=model, version=champion.version, run_id=run_id,
                        unavailable=f"the champion's run {run_id} has no {artifact_path}/ snapshot "
                                    "(train.log-data-artifacts was off, or the data exceeded "
                                    "train.data-artifacts-max-mb)")
    root = registry.download_run_artifacts(run_id, artifact_path, dest)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS_BY_SUFFIX)
    return Snapshot(label=f"{label} (run {run_id})", root=root, files=files, model=model,
                    version=champion.version, run_id=run_id,
                    unavailable="" if files else f"the champion's {artifact_path}/ snapshot holds no data files")


def pair(snapshot: Snapshot, current_files: list[Path], base: Path) -> list[Path]:
    """The snapshot files that correspond to one current dataset."""
    assert snapshot.root is not None
    by_relative = {p.relative_to(snapshot.root).as_posix(): p for p in snapshot.files}
    by_name: dict[str, list[Path]] = {}
    for p in snapshot.files:
        by_name.setdefault(p.name, []).append(p)
    chosen: list[Path] = []
    for path in current_files:
        relative = _relative(path, base)
        if relative in by_relative:
            chosen.append(by_relative[relative])
        elif len(by_name.get(path.name, [])) == 1:
            chosen.append(by_name[path.name][0])
    if len(chosen) == len(current_files):
        return sorted(set(chosen))
    if len(snapshot.files) == 1:
        return list(snapshot.files)
    listing = ", ".join(p.relative_to(snapshot.root).as_posix() for p in snapshot.files[:10])
    raise ConfigError(
        f"cannot tell which file of the champion's snapshot matches {', '.join(map(str, current_files[:3]))}; "
        f"the snapshot holds: {listing}",
        hint="give the current data the same path as the training data, or pass --reference PATH",
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.name

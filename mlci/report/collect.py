"""The report's I/O edge: gathers runs, the champion and the upstream jobs' artifacts.

Everything else in mlci.report is pure; this module reads the output
directory and talks to MLflow (through the registry adapter for markers and
versions, and a small read-only tracking reader for run search, datasets and
artifacts). An absent input yields None so the report leaves that part out;
an unreachable or refusing MLflow raises ExternalServiceError.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.adapters.ci_env import CiEnv
from mlci.errors import ConfigError
from mlci.report.build import REF_TAG, RunData

# Artifacts of earlier jobs in the same pipeline, found in the out dir through `needs:`.
UPSTREAM_ARTIFACTS = {
    "gate": "gate.json",
    "data_check": "data-check.json",
    "drift": "drift.json",
    "train": "train.json",
    "runners": "runners-plan.json",  # mlci runners render (mlci-runners-render)
    "tune": "tune.json",
    "optimize": "optimize.json",
}
DRIFT_PLOTS_DIR = "drift-plots"
TUNE_PLOTS_DIR = "tune-plots"
MAX_PREDICTION_ROWS = 200_000


@dataclass
class Gathered:
    """Raw inputs for the report, plus warnings about inputs that could not be used."""

    artifacts: dict[str, dict] = field(default_factory=dict)
    candidate: RunData | None = None
    champion: RunData | None = None
    champion_version: str = ""
    target: RunData | None = None
    history: list[RunData] = field(default_factory=list)  # target-branch runs, oldest first
    predictions: tuple[list, list] | None = None
    drift_pngs: list[Path] = field(default_factory=list)
    tune_pngs: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    scratch: Any = None  # a TemporaryDirectory holding files fetched from MLflow, removed with this object


def read_artifacts(out_dir: Path) -> tuple[dict[str, dict], list[str]]:
    """The upstream JSON artifacts present in out_dir; an unreadable one is skipped with a warning."""
    found: dict[str, dict] = {}
    warnings: list[str] = []
    for key, name in UPSTREAM_ARTIFACTS.items():
        path = out_dir / name
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            warnings.append(f"{path}: not readable JSON ({exc}); its part of the report is left out")
            continue
        if not isinstance(doc, dict):
            warnings.append(f"{path}: expected a JSON object; its part of the report is left out")
            continue
        found[key] = doc
    return found, warnings


def candidate_run_id(flag: str | None, env: Mapping[str, str], artifacts: Mapping[str, dict]) -> str:
    """--run, else MLCI_RUN_ID (train/gate dotenv), else the run named in gate.json or train.json."""
    if flag:
        return flag
    if env.get("MLCI_RUN_ID"):
        return env["MLCI_RUN_ID"]
    for key in ("gate", "train"):
        doc = artifacts.get(key) or {}
        for field_name in ("run_id", "run-id", "candidate_run_id"):
            value = doc.get(field_name)
            if isinstance(value, str) and value:
                return value
        candidate = doc.get("candidate")
        if isinstance(candidate, dict) and isinstance(candidate.get("run_id"), str):
            return candidate["run_id"]
    return ""


def model_version_of(env: Mapping[str, str], artifacts: Mapping[str, dict]) -> str:
    if env.get("MLCI_MODEL_VERSION"):
        return env["MLCI_MODEL_VERSION"]
    gate = artifacts.get("gate") or {}
    for key in ("registered_version", "model_version", "model-version"):
        if gate.get(key) not in (None, ""):
            return str(gate[key])
    return ""


class TrackingReader:
    """Read-only access to runs: details, search by branch, dataset inputs and small artifacts."""

    def __init__(self, tracking_uri: str, client: Any = None):
        self.tracking_uri = tracking_uri
        self._client = client

    @property
    def url(self) -> str:
        from mlci.adapters.mlflow import redact_uri

        return redact_uri(self.tracking_uri)

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient

            from mlci.adapters.mlflow import fail_fast_requests

            fail_fast_requests()
            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def errors(self, action: str):
        from mlci.adapters.mlflow import mlflow_errors

        return mlflow_errors(self.tracking_uri, action)

    def run(self, run_id: str) -> RunData:
        with self.errors(f"read run {run_id}"):
            return _run_data(self.client.get_run(run_id))

    def raw_run(self, run_id: str):
        with self.errors(f"read run {run_id}"):
            return self.client.get_run(run_id)

    def finished_runs_on_ref(
        self, experiment_id: str, ref: str, *, limit: int, exclude: str = ""
    ) -> list[RunData]:
        """FINISHED runs trained on `ref` (lineage tag mlci.gitlab.ref), newest first."""
        if not experiment_id or not ref or limit <= 0:
            return []
        if "'" not in ref:
            value = f"'{ref}'"
        elif '"' not in ref:
            value = f'"{ref}"'
        else:
            return []  # MLflow's filter grammar cannot quote a value with both quote kinds
        query = f"tags.`{REF_TAG}` = {value} and attributes.status = 'FINISHED'"
        with self.errors(f"search runs of branch {ref!r}"):
            runs = self.client.search_runs(
                experiment_ids=[experiment_id],
                filter_string=query,
                order_by=["attributes.start_time DESC"],
                max_results=limit + 1,
            )
        return [_run_data(r) for r in runs if r.info.run_id != exclude][:limit]

    def artifact_names(self, run_id: str, path: str = "") -> set[str]:
        with self.errors(f"list artifacts of run {run_id}"):
            return {a.path for a in self.client.list_artifacts(run_id, path or None)}

    def download(self, run_id: str, path: str, dst: Path) -> Path:
        with self.errors(f"download artifact {path!r} of run {run_id}"):
            return Path(self.client.download_artifacts(run_id, path, str(dst)))


def _run_data(run) -> RunData:
    return RunData(
        run_id=run.info.run_id,
        name=run.info.run_name or "",
        experiment_id=str(run.info.experiment_id or ""),
        start_ms=int(run.info.start_time or 0),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        params={k: str(v) for k, v in run.data.params.items()},
        tags={k: str(v) for k, v in run.data.tags.items()},
    )


def read_predictions(path: Path) -> tuple[list, list]:
    """(y_true, y_pred) from a CSV or Parquet table; ConfigError when the columns are missing."""
    import polars as pl

    try:
        frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema_length=10_000)
    except Exception as exc:  # polars raises several unrelated types for unreadable files
        raise ConfigError(f"{path.name}: cannot read predictions ({exc})") from exc
    missing = [c for c in ("y_true", "y_pred") if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{path.name}: predictions need columns y_true and y_pred; missing {', '.join(missing)}",
            hint="log a table with y_true,y_pred columns as the run artifact predictions.csv or .parquet",
        )
    frame = frame.head(MAX_PREDICTION_ROWS)
    return frame["y_true"].to_list(), frame["y_pred"].to_list()


def candidate_predictions(
    reader: TrackingReader, run_id: str, names: list[str], warnings: list[str]
) -> tuple[list, list] | None:
    present = reader.artifact_names(run_id)
    for name in names:
        if name not in present:
            continue
        with tempfile.TemporaryDirectory(prefix="mlci-report-") as tmp:
            local = reader.download(run_id, name, Path(tmp))
            try:
                return read_predictions(local)
            except ConfigError as exc:
                warnings.append(f"run {run_id}: {exc.message}; no predictions plot")
                return None
    return None


def gather(
    config,
    env: Mapping[str, str],
    ci: CiEnv,
    out_dir: Path,
    *,
    run_id: str | None = None,
    registry: Any = None,
    reader: TrackingReader | None = None,
) -> Gathered:
    """Everything the report shows, read from out_dir and MLflow."""
    artifacts, warnings = read_artifacts(out_dir)
    gathered = Gathered(artifacts=artifacts, warnings=warnings)
    drift_dir = out_dir / DRIFT_PLOTS_DIR
    if drift_dir.is_dir():
        gathered.drift_pngs = sorted(p for p in drift_dir.glob("*.png") if p.is_file())
    cand_id = candidate_run_id(run_id, env, artifacts)
    if not cand_id:
        return gathered  # no run: nothing to compare, so MLflow is not contacted at all
    model_name = config.get("model", "name")
    reader = reader or TrackingReader(config.get("mlflow", "tracking-uri") or "sqlite:///.mlci/mlflow.db")
    gathered.candidate = reader.run(cand_id)
    if model_name:
        if registry is None:
            from mlci.adapters.mlflow import Registry

            registry = Registry.from_config(config, ci)
        # The same marker the gate compares against (gate.champion-marker).
        marker = config.get("gate", "champion-marker", default="champion") or "champion"
        champion = registry.get_marker(model_name, marker)
        if champion is not None and champion.run_id:
            gathered.champion = reader.run(champion.run_id)
            gathered.champion_version = champion.version
    history_runs = int(config.get("report", "history-runs", default=10))
    if ci.mr_target_branch:
        runs = reader.finished_runs_on_ref(
            gathered.candidate.experiment_id, ci.mr_target_branch, limit=max(history_runs, 1), exclude=cand_id
        )
        gathered.target = runs[0] if runs else None
        gathered.history = list(reversed(runs[:history_runs]))
    if config.get("report", "plots", default=True):
        names = list(config.get("report", "predictions-artifacts", default=["predictions.parquet", "predictions.csv"]))
        gathered.predictions = candidate_predictions(reader, cand_id, names, gathered.warnings)
    tune_dir = out_dir / TUNE_PLOTS_DIR
    if tune_dir.is_dir():
        gathered.tune_pngs = sorted(p for p in tune_dir.glob("*.png") if p.is_file())
    if "tune" not in gathered.artifacts:
        _study_from_parent_run(gathered, reader, plots=bool(config.get("report", "plots", default=True)))
    return gathered


def _study_from_parent_run(gathered: Gathered, reader: TrackingReader, *, plots: bool) -> None:
    """A tuning trial's study summary and plots, from its parent run, when no job handed them over."""
    candidate = gathered.candidate
    if candidate is None or candidate.tags.get("mlci.tune.role") != "trial":
        return
    parent = candidate.tags.get("mlflow.parentRunId")
    if not parent:
        return
    present = reader.artifact_names(parent)
    if "tune.json" not in present:
        return  # the study's last job has not closed the parent run yet
    gathered.scratch = tempfile.TemporaryDirectory(prefix="mlci-report-tune-")
    scratch = Path(gathered.scratch.name)
    try:
        doc = json.loads(reader.download(parent, "tune.json", scratch).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        gathered.warnings.append(f"run {parent}: tune.json not readable ({exc}); no tuning section")
        return
    if isinstance(doc, dict):
        gathered.artifacts["tune"] = doc
    if plots and TUNE_PLOTS_DIR in present:
        folder = reader.download(parent, TUNE_PLOTS_DIR, scratch)
        gathered.tune_pngs = sorted(p for p in folder.glob("*.png") if p.is_file())


def dataset_inputs(run) -> list[dict]:
    """MLflow dataset inputs of a run as plain dicts (name, digest, source, profile, context)."""
    inputs = getattr(run, "inputs", None)
    found = []
    for item in getattr(inputs, "dataset_inputs", None) or []:
        dataset = getattr(item, "dataset", None)
        if dataset is None:
            continue
        tags = {t.key: t.value for t in (getattr(item, "tags", None) or [])}
        found.append({
            "name": getattr(dataset, "name", "") or "",
            "digest": getattr(dataset, "digest", "") or "",
            "source": getattr(dataset, "source", "") or "",
            "profile": getattr(dataset, "profile", "") or "",
            "context": tags.get("mlflow.data.context", ""),
        })
    return found


def resolve_version(registry: Any, model: str, version: str):
    """A version number, or a marker name (champion, production, ...) resolved to its holder."""
    if version.startswith("@") or not any(ch.isdigit() for ch in version):
        marker = version.lstrip("@")
        info = registry.get_marker(model, marker)
        if info is None:
            raise ConfigError(f"no version of model {model!r} holds the marker {marker!r}",
                              hint="pass a version number with --version")
        return info
    return registry.get_version(model, version)


def gather_card(config, registry: Any, reader: TrackingReader, version: str, out_dir: Path, warnings: list[str]):
    """CardInputs for one registered version, from the registry, its source run and gate.json."""
    from mlci.report.card import CardInputs, datasets_from_run

    model_name = config.get("model", "name")
    if not model_name:
        raise ConfigError("model.name is not set", hint="set model.name (or project.name) in mlci.yml")
    info = resolve_version(registry, model_name, version)
    run = None
    datasets: list = []
    if info.run_id:
        raw = reader.raw_run(info.run_id)
        run = _run_data(raw)
        datasets = datasets_from_run(run.tags, dataset_inputs(raw))
    artifacts, problems = read_artifacts(out_dir)
    warnings.extend(problems)
    gate = artifacts.get("gate")
    if gate is not None and not _gate_is_about(gate, info.version, info.run_id):
        gate = None  # a gate.json of another version would misreport this one
    return CardInputs(
        model_name=model_name,
        version=info.version,
        version_tags=dict(info.tags),
        markers=tuple(info.aliases),
        created_ms=info.created_ms,
        source=info.source,
        run=run,
        datasets=tuple(datasets),
        audit=tuple(registry.audit_trail(model_name, info.version)),
        gate=gate,
        owner=config.get("project", "owner") or "",
        intended_use=config.get("project", "intended-use") or "",
        directions=dict(config.get("model", "metrics-direction", default={}) or {}),
        include_metrics=tuple(config.get("report", "metrics", default=["*"])),
        exclude_metrics=tuple(config.get("report", "exclude-metrics", default=["system/*"])),
    )


def _gate_is_about(gate: Mapping[str, Any], version: str, run_id: str) -> bool:
    version_keys = ("registered_version", "model_version", "model-version")
    named_version = next((str(gate[k]) for k in version_keys if gate.get(k) not in (None, "")), "")
    candidate = gate.get("candidate") if isinstance(gate.get("candidate"), Mapping) else {}
    named_run = next((str(d[k]) for d in (gate, candidate) for k in ("run_id", "run-id") if d.get(k)), "")
    if named_version:
        return named_version == version
    return bool(named_run) and named_run == run_id

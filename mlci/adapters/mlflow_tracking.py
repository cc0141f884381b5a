"""MLflow tracking for `mlci train` / `mlci train-select`: runs, not the registry.

Two speeds on purpose:
- The run-cache lookup (`find_cached_run`, `mark_reused`) never imports
  mlflow (≈1.5 s plus store start-up): for sqlite:// URIs it reads the
  store's tables directly (runs, tags, experiments), for http(s) it calls the
  REST API with requests. Only other schemes fall back to MlflowClient.
- A real training run uses `MlflowTracking`, a thin MlflowClient wrapper that
  turns every failure into ExternalServiceError naming the URL, through the
  registry's translation (`mlci.adapters.mlflow.mlflow_errors`: same wording,
  GitLab hints, credentials stripped).
Neither path ever prints user:password from the tracking URI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# mlci.adapters.mlflow imports mlflow only inside its functions: the cache lookup stays mlflow-free.
from mlci.adapters.mlflow import fail_fast_requests, mlflow_errors, redact_uri, strip_url_credentials
from mlci.errors import ExternalServiceError, UsageError
from mlci.extras import check_tracking_store
from mlci.redact import redact_value

SERVICE = "MLflow"
FINGERPRINT_TAG = "mlci.fingerprint"
PIPELINE_TAG = "mlci.gitlab.pipeline_id"
# Set on a run that a cache hit re-used, so `train-select` in that later
# pipeline still finds it: mlci.reused_in_pipeline.<pipeline id> = <job id>.
REUSED_TAG_PREFIX = "mlci.reused_in_pipeline."
REST_TIMEOUT = (5, 30)  # connect, read seconds
SEARCH_PAGE = 1000
MAX_SEARCH_PAGES = 20
UNREACHABLE_HINT = "check mlflow.tracking-uri (or MLFLOW_TRACKING_URI) and that the tracking server is up"


@dataclass(frozen=True)
class TrackingTarget:
    uri: str  # as configured
    kind: str  # sqlite | http | other
    db_path: Path | None = None  # absolute path of the sqlite file
    base_url: str | None = None  # http(s) server root, without credentials

    @property
    def child_uri(self) -> str:
        """The URI handed to the training command: sqlite paths made absolute."""
        if self.kind == "sqlite" and self.db_path is not None:
            return f"sqlite:///{self.db_path.as_posix()}"  # db_path is absolute: sqlite:////abs/path.db
        return self.uri

    @property
    def display(self) -> str:
        """The URI without user:password, safe to print and write into artifacts."""
        return redact_uri(self.uri)

    @property
    def artifact_root(self) -> Path | None:
        """Where experiments created in a local sqlite store keep their artifacts."""
        return self.db_path.parent / "mlartifacts" if self.db_path is not None else None

    def local_files(self) -> list[Path]:
        """Files mlci writes next to a local store (never part of a code fingerprint)."""
        if self.db_path is None:
            return []
        db = self.db_path
        return [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal"), self.artifact_root]


def resolve_target(uri: str, cwd: Path | None = None) -> TrackingTarget:
    cwd = (cwd or Path.cwd()).absolute()
    if uri.startswith("sqlite:"):
        rest = uri[len("sqlite:"):]
        if not rest.startswith("///") or rest in ("///", "///:memory:"):
            raise UsageError(
                f"tracking URI {uri!r} is not a sqlite file",
                hint="use sqlite:///relative/path.db or sqlite:////absolute/path.db",
            )
        raw = rest[3:].split("?", 1)[0]
        path = Path(raw)
        return TrackingTarget(uri=uri, kind="sqlite", db_path=path if path.is_absolute() else cwd / path)
    if uri.startswith(("http://", "https://")):
        parts = urlsplit(uri)
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        return TrackingTarget(uri=uri, kind="http", base_url=base)
    if "://" not in uri and not uri.startswith(("file:", "databricks")):
        # A bare path is MLflow's file store; keep it working, through MlflowClient.
        return TrackingTarget(uri=str((cwd / uri) if not Path(uri).is_absolute() else Path(uri)), kind="other")
    return TrackingTarget(uri=uri, kind="other")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    experiment_id: str
    status: str
    start_time_ms: int | None = None
    end_time_ms: int | None = None
    run_name: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------
# Fast path: the cache lookup without importing mlflow.
# --------------------------------------------------------------------------

def find_cached_run(target: TrackingTarget, experiment: str, fingerprint: str, *,
                    env: Mapping[str, str] | None = None, tag: str = FINGERPRINT_TAG) -> RunRecord | None:
    """The newest FINISHED, not deleted run of `experiment` whose `tag` is `fingerprint`."""
    env = os.environ if env is None else env
    if target.kind == "sqlite":
        return _sqlite_find(target, experiment, fingerprint, env, tag)
    if target.kind == "http":
        return _RestClient(target, env).find_by_fingerprint(experiment, fingerprint, tag)
    return MlflowTracking(target).find_by_fingerprint(experiment, fingerprint, tag)


def recent_tagged_runs(target: TrackingTarget, experiment: str, tag: str, *, limit: int = 50,
                       env: Mapping[str, str] | None = None) -> list[RunRecord]:
    """The newest FINISHED runs of `experiment` that carry `tag` (for explaining a cache miss)."""
    env = os.environ if env is None else env
    if target.kind == "sqlite":
        return _sqlite_recent(target, experiment, tag, limit, env)
    if target.kind == "http":
        return _RestClient(target, env).recent_with_tag(experiment, tag, limit)
    return MlflowTracking(target).recent_with_tag(experiment, tag, limit)


def mark_reused(target: TrackingTarget, run_id: str, pipeline_id: str, job_id: str, *,
                env: Mapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    key, value = REUSED_TAG_PREFIX + pipeline_id, job_id or "true"
    if target.kind == "sqlite":
        _sqlite_set_tag(target, run_id, key, value)
    elif target.kind == "http":
        _RestClient(target, env).set_tag(run_id, key, value)
    else:
        MlflowTracking(target).set_tags(run_id, {key: value})


@contextlib.contextmanager
def _sqlite(target: TrackingTarget, *, write: bool) -> Iterator[sqlite3.Connection]:
    mode = "rw" if write else "ro"
    try:
        conn = sqlite3.connect(f"{target.db_path.as_uri()}?mode={mode}", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise ExternalServiceError(SERVICE, target.display,
                                   f"cannot open the sqlite store: {strip_url_credentials(str(exc))}",
                                   hint="check the path in mlflow.tracking-uri") from exc
    try:
        yield conn
        if write:
            conn.commit()
    except sqlite3.Error as exc:
        raise ExternalServiceError(
            SERVICE, target.display, f"reading the sqlite store failed: {strip_url_credentials(str(exc))}",
            hint="the file may not be an MLflow store, or another process holds a lock",
        ) from exc
    finally:
        conn.close()


def _sqlite_experiment(conn: sqlite3.Connection, experiment: str, env: Mapping[str, str]) -> Any:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not {"experiments", "runs", "tags"} <= tables:
        return None  # created but never initialised by MLflow
    columns = {row[1] for row in conn.execute("PRAGMA table_info(experiments)")}
    query = "SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'"
    args: list[Any] = [experiment]
    if "workspace" in columns:  # MLflow 3 workspaces; the default one unless MLFLOW_WORKSPACE says otherwise
        query += " AND workspace = ?"
        args.append(env.get("MLFLOW_WORKSPACE") or "default")
    row = conn.execute(query, args).fetchone()
    return None if row is None else row[0]


def _sqlite_records(conn: sqlite3.Connection, experiment_id: Any, rows) -> list[RunRecord]:
    return [
        RunRecord(run_id=run[0], experiment_id=str(experiment_id), status=run[1], start_time_ms=run[2],
                  end_time_ms=run[3], run_name=run[4] or "",
                  tags=dict(conn.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run[0],)).fetchall()))
        for run in rows
    ]


def _sqlite_find(target: TrackingTarget, experiment: str, fingerprint: str,
                 env: Mapping[str, str], tag: str = FINGERPRINT_TAG) -> RunRecord | None:
    if target.db_path is None or not target.db_path.is_file():
        return None  # no store yet: nothing was ever trained here
    with _sqlite(target, write=False) as conn:
        experiment_id = _sqlite_experiment(conn, experiment, env)
        if experiment_id is None:
            return None
        rows = conn.execute(
            """
            SELECT r.run_uuid, r.status, r.start_time, r.end_time, r.name
            FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ?
            WHERE r.experiment_id = ? AND t.value = ? AND r.status = 'FINISHED'
              AND r.lifecycle_stage = 'active'
            ORDER BY r.end_time DESC LIMIT 1
            """,
            (tag, experiment_id, fingerprint),
        ).fetchall()
        found = _sqlite_records(conn, experiment_id, rows)
    return found[0] if found else None


def _sqlite_recent(target: TrackingTarget, experiment: str, tag: str, limit: int,
                   env: Mapping[str, str]) -> list[RunRecord]:
    if target.db_path is None or not target.db_path.is_file():
        return []
    with _sqlite(target, write=False) as conn:
        experiment_id = _sqlite_experiment(conn, experiment, env)
        if experiment_id is None:
            return []
        rows = conn.execute(
            """
            SELECT r.run_uuid, r.status, r.start_time, r.end_time, r.name
            FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid AND t.key = ?
            WHERE r.experiment_id = ? AND r.status = 'FINISHED' AND r.lifecycle_stage = 'active'
            ORDER BY r.end_time DESC LIMIT ?
            """,
            (tag, experiment_id, limit),
        ).fetchall()
        return _sqlite_records(conn, experiment_id, rows)


def _sqlite_set_tag(target: TrackingTarget, run_id: str, key: str, value: str) -> None:
    with _sqlite(target, write=True) as conn:
        conn.execute("INSERT OR REPLACE INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", (key, value, run_id))


class _RestClient:
    """The few MLflow REST calls the cache needs, with MLflow's own auth variables."""

    def __init__(self, target: TrackingTarget, env: Mapping[str, str]):
        import requests

        self._requests = requests
        self.target = target
        self.session = requests.Session()
        parts = urlsplit(target.uri)
        if env.get("MLFLOW_TRACKING_TOKEN"):
            self.session.headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        elif env.get("MLFLOW_TRACKING_USERNAME"):
            self.session.auth = (env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", ""))
        elif parts.username:
            self.session.auth = (parts.username, parts.password or "")
        if (env.get("MLFLOW_TRACKING_INSECURE_TLS") or "").lower() == "true":
            self.session.verify = False
        elif env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"):
            self.session.verify = env["MLFLOW_TRACKING_SERVER_CERT_PATH"]

    def _call(self, method: str, endpoint: str, *, params=None, body=None, missing_ok: bool = False):
        url = f"{self.target.base_url}/api/2.0/mlflow/{endpoint}"
        try:
            response = self.session.request(method, url, params=params, json=body, timeout=REST_TIMEOUT)
        except self._requests.RequestException as exc:
            raise ExternalServiceError(SERVICE, url, f"cannot connect: {type(exc).__name__}",
                                       hint=UNREACHABLE_HINT) from exc
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code >= 400:
            raise ExternalServiceError(SERVICE, url, _rest_error_text(response), status=response.status_code,
                                       hint=_status_hint(response.status_code))
        try:
            return response.json()
        except ValueError as exc:
            raise ExternalServiceError(SERVICE, url, "answered with something that is not JSON",
                                       status=response.status_code,
                                       hint="is mlflow.tracking-uri the MLflow server root (for GitLab: "
                                            ".../api/v4/projects/<id>/ml/mlflow)?") from exc

    def experiment_id(self, name: str) -> str | None:
        found = self._call("GET", "experiments/get-by-name", params={"experiment_name": name}, missing_ok=True)
        if not found or "experiment" not in found:
            return None
        return str(found["experiment"]["experiment_id"])

    def recent_with_tag(self, experiment: str, tag: str, limit: int) -> list[RunRecord]:
        experiment_id = self.experiment_id(experiment)
        if experiment_id is None:
            return []
        body = {"experiment_ids": [experiment_id], "filter": "attributes.status = 'FINISHED'",
                "run_view_type": "ACTIVE_ONLY", "max_results": min(max(limit * 4, limit), SEARCH_PAGE)}
        page = self._call("POST", "runs/search", body=body) or {}
        found = [r for r in map(_record_from_json, page.get("runs", [])) if r.status == "FINISHED" and tag in r.tags]
        return sorted(found, key=lambda r: r.end_time_ms or 0, reverse=True)[:limit]

    def find_by_fingerprint(self, experiment: str, fingerprint: str,
                            tag: str = FINGERPRINT_TAG) -> RunRecord | None:
        experiment_id = self.experiment_id(experiment)
        if experiment_id is None:
            return None
        body = {
            "experiment_ids": [experiment_id],
            "filter": f"tags.`{tag}` = '{fingerprint}' and attributes.status = 'FINISHED'",
            "run_view_type": "ACTIVE_ONLY",
            "max_results": SEARCH_PAGE,
            # No order_by: GitLab's endpoint takes it as a string, MLflow as a list; the newest match wins below.
        }
        best: RunRecord | None = None
        # Servers that ignore parts of the filter (GitLab's endpoint supports a
        # subset) still work: every page is checked here, not trusted.
        for _ in range(MAX_SEARCH_PAGES):
            page = self._call("POST", "runs/search", body=body) or {}
            for raw in page.get("runs", []):
                record = _record_from_json(raw)
                if record.status == "FINISHED" and record.tags.get(tag) == fingerprint \
                        and (best is None or (record.end_time_ms or 0) > (best.end_time_ms or 0)):
                    best = record
            token = page.get("next_page_token")
            if best is not None or not token:
                break
            body["page_token"] = token
        return best

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self._call("POST", "runs/set-tag", body={"run_id": run_id, "run_uuid": run_id, "key": key, "value": value})


def _record_from_json(raw: Mapping[str, Any]) -> RunRecord:
    raw = raw.get("run", raw)  # older GitLab releases wrap each search result in {"run": ...}
    info, data = raw.get("info", {}), raw.get("data", {})
    return RunRecord(
        run_id=info.get("run_id") or info.get("run_uuid", ""),
        experiment_id=str(info.get("experiment_id", "")),
        status=info.get("status", ""),
        start_time_ms=_int(info.get("start_time")),
        end_time_ms=_int(info.get("end_time")),
        run_name=info.get("run_name", ""),
        tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
        params={p["key"]: p.get("value", "") for p in data.get("params", [])},
        metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _rest_error_text(response) -> str:
    try:
        body = response.json()
        text = f"{body.get('error_code', 'error')}: {body.get('message', '')}".strip()
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        text = (response.text or response.reason or "error")[:300]
    # A server or proxy may quote the request URL, user:password included.
    return strip_url_credentials(text)


def _status_hint(status: int) -> str | None:
    if status in (401, 403):
        return ("the server refused our credentials: set MLFLOW_TRACKING_TOKEN (for GitLab's MLflow endpoint "
                "a project access token with api scope) or MLFLOW_TRACKING_USERNAME/PASSWORD")
    if status == 404:
        return "the MLflow API was not found at this URL: check mlflow.tracking-uri"
    if status >= 500:
        return "the tracking server failed; retry the job, or look at the server's logs"
    return None


# --------------------------------------------------------------------------
# Full path: MlflowClient for a tracked training run.
# --------------------------------------------------------------------------

def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "experiment"


class MlflowTracking:
    """What `mlci train` does to a run, over MlflowClient, with located errors."""

    BATCH_METRICS = 1000
    BATCH_TAGS_PARAMS = 100

    def __init__(self, target: TrackingTarget):
        # Fail in seconds, not MLflow's default minutes of backoff, when the
        # server is down; the process's own environment only (the child's is built separately).
        fail_fast_requests()
        if target.kind == "sqlite" and target.db_path is not None:
            target.db_path.parent.mkdir(parents=True, exist_ok=True)
        check_tracking_store(target.child_uri)
        from mlflow import MlflowClient

        self.target = target
        with self._calling("connect to the tracking store"):
            self.client = MlflowClient(tracking_uri=target.child_uri)

    def _calling(self, action: str) -> contextlib.AbstractContextManager[None]:
        """MLflow failures -> ExternalServiceError("could not <action>: ...") on the redacted URI."""
        return mlflow_errors(self.target.uri, action, every_failure=True)

    def experiment_id(self, name: str, *, create: bool = True) -> str | None:
        with self._calling(f"look up experiment {name!r}"):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                if found.lifecycle_stage != "active":
                    raise UsageError(f"MLflow experiment {name!r} is deleted",
                                     hint="restore it, or choose another with --experiment / mlflow.experiment")
                return found.experiment_id
            if not create:
                return None
            location = None
            if self.target.artifact_root is not None:
                location = str(self.target.artifact_root / _slug(name))
            return self.client.create_experiment(name, artifact_location=location)

    def start_run(self, experiment_id: str, *, run_name: str | None, tags: Mapping[str, str]) -> str:
        with self._calling("create the run"):
            run = self.client.create_run(experiment_id, run_name=redact_value(run_name), tags=redact_value(dict(tags)))
        return run.info.run_id

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, redact_value(str(v))) for k, v in tags.items()]
        with self._calling("set tags"):
            for start in range(0, len(items), self.BATCH_TAGS_PARAMS):
                self.client.log_batch(run_id, tags=items[start:start + self.BATCH_TAGS_PARAMS])

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, redact_value(v)) for k, v in params.items()]
        with self._calling("log params"):
            for start in range(0, len(items), self.BATCH_TAGS_PARAMS):
                self.client.log_batch(run_id, params=items[start:start + self.BATCH_TAGS_PARAMS])

    def log_metrics(self, run_id: str, rows: Sequence[tuple[str, float, int, int]]) -> None:
        """rows: (key, value, timestamp_ms, step)."""
        from mlflow.entities import Metric

        items = [Metric(key, float(value), int(ts), int(step)) for key, value, ts, step in rows]
        with self._calling("log metrics"):
            for start in range(0, len(items), self.BATCH_METRICS):
                self.client.log_batch(run_id, metrics=items[start:start + self.BATCH_METRICS])

    def log_datasets(self, run_id: str, files: Sequence[tuple[Path, Any]], *, context: str = "training") -> None:
        """Each declared data file as an MLflow dataset input (name, digest, local source, profile)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs = []
        for path, described in files:
            if isinstance(path, Path):
                source_type, uri = "local", path.absolute().as_uri()
            else:  # an object-store object or a table version, named by its URI
                source_type, uri = _remote_source_type(described.path), described.path
            dataset = Dataset(
                name=described.path,
                digest=described.sha256[:32],  # MLflow stores at most 36 characters
                source_type=source_type,
                source=json.dumps({"uri": uri}),
                profile=json.dumps({"sha256": described.sha256, "size_bytes": described.size_bytes,
                                    "num_rows": described.rows}),
            )
            inputs.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)]))
        if inputs:
            with self._calling("log dataset inputs"):
                self.client.log_inputs(run_id, datasets=inputs)

    def log_artifact(self, run_id: str, local_path: Path, artifact_path: str | None) -> None:
        with self._calling(f"upload {local_path.name}"):
            self.client.log_artifact(run_id, str(local_path), artifact_path=artifact_path)

    def terminate(self, run_id: str, status: str) -> None:
        with self._calling(f"mark the run {status}"):
            self.client.set_terminated(run_id, status=status, end_time=int(time.time() * 1000))

    def get_run(self, run_id: str) -> RunRecord:
        with self._calling(f"read run {run_id}"):
            run = self.client.get_run(run_id)
        return _record_from_run(run)

    def find_by_fingerprint(self, experiment: str, fingerprint: str,
                            tag: str = FINGERPRINT_TAG) -> RunRecord | None:
        experiment_id = self.experiment_id(experiment, create=False)
        if experiment_id is None:
            return None
        with self._calling("search the run cache"):
            runs = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{tag}` = '{fingerprint}' and attributes.status = 'FINISHED'",
                max_results=1, order_by=["attributes.end_time DESC"],
            )
        return _record_from_run(runs[0]) if runs else None

    def recent_with_tag(self, experiment: str, tag: str, limit: int) -> list[RunRecord]:
        experiment_id = self.experiment_id(experiment, create=False)
        if experiment_id is None:
            return []
        with self._calling("search recent runs"):
            runs = self.client.search_runs([experiment_id], filter_string="attributes.status = 'FINISHED'",
                                           max_results=limit * 4, order_by=["attributes.end_time DESC"])
        return [r for r in map(_record_from_run, runs) if tag in r.tags][:limit]

    def pipeline_runs(self, experiment_id: str, pipeline_id: str) -> list[RunRecord]:
        """FINISHED runs of one pipeline: trained in it, or re-used by one of its cache hits."""
        if not pipeline_id.isdigit():
            raise UsageError(f"pipeline id must be a number, got {pipeline_id!r}")
        reused_key = REUSED_TAG_PREFIX + pipeline_id
        filters = (
            f"tags.`{PIPELINE_TAG}` = '{pipeline_id}' and attributes.status = 'FINISHED'",
            f"tags.`{reused_key}` LIKE '%' and attributes.status = 'FINISHED'",
        )
        found: dict[str, RunRecord] = {}
        with self._calling(f"search the runs of pipeline {pipeline_id}"):
            for filter_string in filters:
                token = None
                for _ in range(MAX_SEARCH_PAGES):
                    page = self.client.search_runs([experiment_id], filter_string=filter_string,
                                                   max_results=SEARCH_PAGE, page_token=token)
                    for run in page:
                        record = _record_from_run(run)
                        # Checked here too: not every server honours every filter.
                        belongs = record.tags.get(PIPELINE_TAG) == pipeline_id or reused_key in record.tags
                        if record.status == "FINISHED" and belongs:
                            found[record.run_id] = record
                    token = page.token
                    if not token:
                        break
        return sorted(found.values(), key=lambda r: (r.start_time_ms or 0, r.run_id))


def _record_from_run(run) -> RunRecord:
    return RunRecord(
        run_id=run.info.run_id,
        experiment_id=str(run.info.experiment_id),
        status=run.info.status,
        start_time_ms=run.info.start_time,
        end_time_ms=run.info.end_time,
        run_name=run.info.run_name or "",
        tags=dict(run.data.tags),
        params=dict(run.data.params),
        metrics=dict(run.data.metrics),
    )


def _remote_source_type(uri: str) -> str:
    """MLflow's dataset source type for a remote input: the store's scheme, or the table format."""
    head = uri.split(":", 1)[0].lower()
    return {"delta": "delta_table", "iceberg": "iceberg"}.get(head, head)

"""The MLflow registry adapter: model versions, markers and their audit trail.

Markers (`candidate`, one per environment, `champion`) name which version
holds a role. Two storage modes, chosen once per Registry:

- alias: MLflow registered-model aliases (MLflow >= 2.3 servers, sqlite/file
  stores). The server keeps one holder per alias.
- tag: version tags `mlci.marker.<marker>=true`, for servers without aliases
  (GitLab's built-in MLflow endpoint). One tag per marker, because one version
  can hold several markers (production and champion). Moving a marker scans
  every version and removes the tag from all other holders.

Every marker move appends an audit record, a JSON version tag
`mlci.audit.NNNN` on the version that received the marker, enriched with who,
when, pipeline, job and commit from the CI environment. Deploy and rollback
read the same trail.

Every MLflow failure leaves this module as ExternalServiceError naming the
tracking URI, the HTTP status and a hint; mlflow itself is imported lazily.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci.adapters.ci_env import CiEnv, read_ci_env
from mlci.errors import ConfigError, ExternalServiceError
from mlci.extras import check_tracking_store
from mlci.redact import credential_free_url, redact_patterns, redact_value

if TYPE_CHECKING:
    from mlci.config import Config

MARKER_TAG_PREFIX = "mlci.marker."
AUDIT_TAG_PREFIX = "mlci.audit."
VALIDATED_TAG = "mlci.validated"
SOURCE_RUN_TAG = "mlci.source_run"
MODES = ("alias", "tag")

# Run tags copied onto a registered version so it points back to its pipeline (and to its optimized model).
_LINEAGE_PREFIXES = ("mlci.gitlab.", "mlci.fingerprint", "gitlab.", "mlci.optimize.")
_MARKER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_RESERVED_MARKER = re.compile(r"^(latest|[vV]\d+)$")
_AUDIT_KEY = re.compile(r"^mlci\.audit\.(\d+)$")
# A reason is free text from a user; keep the tag well under MLflow's limits.
_MAX_REASON = 2000
_PAGE_SIZE = 200


@contextlib.contextmanager
def tracking_uri_scope(uri: str) -> Iterator[None]:
    """Point MLflow's process-wide tracking URI at `uri` for one block, then restore it exactly.

    MLflow's local (sqlite/file) registry resolves `models:/<model_id>` sources,
    and the client resolves a run's logged models when downloading, through the
    global tracking URI instead of the client's own; tests use it for MLflow's
    fluent API. Restoring means the raw setting, not `get_tracking_uri()` (that
    returns the resolved default, ./mlflow.db, which would then be created in
    the current directory), and `MLFLOW_TRACKING_URI`, which
    `mlflow.set_tracking_uri` exports and mlci reads with precedence over mlci.yml.
    """
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    saved_uri = getattr(tracking_utils, "_tracking_uri", None)
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        tracking_utils._tracking_uri = saved_uri
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env


def fail_fast_requests() -> None:
    """Make MLflow give up on an unreachable server in seconds instead of minutes.

    MLflow retries every request 7 times with exponential backoff by default, so a
    wrong or down MLFLOW_TRACKING_URI looked like a hang for about four minutes
    before exit 3. Values the user set in the environment win.
    """
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


@contextlib.contextmanager
def mlflow_errors(uri: str, action: str, *, not_found_hint: str | None = None,
                  every_failure: bool = False) -> Iterator[None]:
    """Turn MLflow's failures into ExternalServiceError("MLflow", redacted uri, status, hint).

    MLflow's own exceptions and connection failures become exit code 3 with
    "could not <action>: <message>" (credentials stripped from the message);
    anything else is a bug and propagates unchanged, unless `every_failure`
    (a training run's store calls, where a failing store must not read as a crash).
    """
    try:
        yield
    except (ConfigError, ExternalServiceError):
        raise
    except Exception as exc:
        status = _status_of(exc)
        if status is None and not every_failure and not _is_connection_failure(exc) \
                and not _is_mlflow_exception(exc):
            raise
        hint = not_found_hint if (status == 404 and not_found_hint) else _hint_for(status, uri)
        raise ExternalServiceError("MLflow", redact_uri(uri), f"could not {action}: {_short_message(exc)}",
                                   status=status, hint=hint) from exc


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str
    source: str
    tags: dict[str, str]
    aliases: tuple[str, ...]  # markers held by this version, in both modes
    created_ms: int
    description: str

    @property
    def validated(self) -> bool:
        return self.tags.get(VALIDATED_TAG) == "true"


def redact_uri(uri: str) -> str:
    """The URI without user:password or credential query parameters, safe to print."""
    return credential_free_url(uri)


def is_gitlab_mlflow(uri: str) -> bool:
    """GitLab's built-in endpoint: <gitlab>/api/v4/projects/<id>/ml/mlflow (no aliases)."""
    return bool(re.search(r"/api/v4/projects/[^/]+/ml/mlflow/?$", uri or ""))


def _version_key(version: str) -> tuple:
    # MLflow numbers versions 1, 2, ...; GitLab uses SemVer strings.
    parts = re.split(r"[.+-]", version)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _hint_for(status: int | None, uri: str) -> str:
    if status in (401, 403):
        if is_gitlab_mlflow(uri):
            return (
                "set MLFLOW_TRACKING_TOKEN to a project access token with the api scope and at least the "
                "Developer role (a masked CI/CD variable)"
            )
        return "check MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD for this server"
    if status == 404:
        return "check mlflow.tracking-uri (MLFLOW_TRACKING_URI) and that the run, model or version exists there"
    if status is None:
        return "is the tracking server running and reachable from the runner? check mlflow.tracking-uri"
    return "see the MLflow server's log for details"


class Registry:
    """Registered models and markers on one MLflow tracking/registry server."""

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        mode: str = "auto",
        ci: CiEnv | None = None,
        client: Any = None,
    ):
        if mode not in (*MODES, "auto"):
            raise ConfigError(f"mlflow.registry-mode must be auto, alias or tag, got {mode!r}")
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.requested_mode = mode
        self.ci = ci if ci is not None else read_ci_env()
        self._client = client
        self._mode: str | None = mode if mode in MODES else None
        self.mode_reason = f"forced by mlflow.registry-mode={mode}" if mode in MODES else ""

    @classmethod
    def from_config(cls, config: Config, ci: CiEnv | None = None) -> Registry:
        tracking_uri = config.get("mlflow", "tracking-uri") or "sqlite:///.mlci/mlflow.db"
        registry_uri = config.get("mlflow", "registry-uri") or None
        mode = config.get("mlflow", "registry-mode") or "auto"
        return cls(tracking_uri, registry_uri, mode=mode, ci=ci)

    # -- plumbing -------------------------------------------------------------

    @property
    def url(self) -> str:
        return redact_uri(self.registry_uri)

    @property
    def client(self):
        if self._client is None:
            with self._errors("connect to the tracking store"):
                check_tracking_store(self.tracking_uri)
                check_tracking_store(self.registry_uri)
                from mlflow import MlflowClient

                fail_fast_requests()

                _ensure_sqlite_dir(self.tracking_uri)
                _ensure_sqlite_dir(self.registry_uri)
                self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)
        return self._client

    def _errors(self, action: str, *, not_found_hint: str | None = None):
        return mlflow_errors(self.registry_uri, action, not_found_hint=not_found_hint)

    @property
    def mode(self) -> str:
        """'alias' or 'tag'. With registry-mode auto, probed once on first use."""
        if self._mode is None:
            self._mode, self.mode_reason = self._probe_mode()
        return self._mode

    def _probe_mode(self) -> tuple[str, str]:
        uri = self.registry_uri
        if is_gitlab_mlflow(uri):
            return "tag", "GitLab's built-in MLflow endpoint has no registered-model aliases"
        if not uri.startswith(("http://", "https://")):
            return "alias", "local MLflow store supports registered-model aliases"
        # Ask for an alias of a model that cannot exist: an MLflow server answers
        # with its own RESOURCE_DOES_NOT_EXIST; a server without the endpoint
        # answers 404/405/501 without an MLflow error code.
        from mlflow.exceptions import MlflowException, RestException

        try:
            self.client.get_model_version_by_alias("mlci-capability-probe", "mlci-probe")
        except RestException as exc:
            status = _status_of(exc)
            if status in (401, 403):
                with self._errors("probe registry capabilities"):
                    raise
            if "error_code" in (exc.json or {}) and exc.error_code != "ENDPOINT_NOT_FOUND":
                return "alias", "probed: the server answers the registered-model alias API"
            return "tag", f"probed: the server has no registered-model alias API (HTTP {status})"
        except MlflowException as exc:
            status = _status_of(exc)
            if status in (404, 405, 501):
                return "tag", f"probed: the server has no registered-model alias API (HTTP {status})"
            with self._errors("probe registry capabilities"):
                raise
        return "alias", "probed: the server answers the registered-model alias API"

    # -- versions -------------------------------------------------------------

    def _alias_map(self, model: str) -> dict[str, list[str]]:
        """version -> aliases, from the registered model (search results omit aliases)."""
        if self.mode != "alias":
            return {}
        from mlflow.exceptions import MlflowException

        try:
            registered = self.client.get_registered_model(model)
        except MlflowException as exc:
            if _status_of(exc) == 404:
                return {}
            raise
        by_version: dict[str, list[str]] = {}
        for alias, version in (registered.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    def _info(self, mv, alias_map: dict[str, list[str]] | None = None) -> VersionInfo:
        tags = {str(k): str(v) for k, v in (mv.tags or {}).items()}
        version = str(mv.version)
        if self.mode == "tag":
            markers = sorted(k[len(MARKER_TAG_PREFIX):] for k, v in tags.items()
                             if k.startswith(MARKER_TAG_PREFIX) and v == "true")
        elif alias_map is not None:
            markers = sorted(alias_map.get(version, []))
        else:
            markers = sorted(mv.aliases or [])
        return VersionInfo(
            name=mv.name,
            version=version,
            run_id=mv.run_id or "",
            source=mv.source or "",
            tags=tags,
            aliases=tuple(markers),
            created_ms=int(mv.creation_timestamp or 0),
            description=mv.description or "",
        )

    def get_version(self, model: str, version: str) -> VersionInfo:
        with self._errors(f"read version {version} of model {model!r}"):
            mv = self.client.get_model_version(model, str(version))
            return self._info(mv, self._alias_map(model) if self.mode == "alias" else None)

    def latest_versions(self, model: str) -> list[VersionInfo]:
        """Every version of `model`, newest first (all pages); [] when the model does not exist."""
        with self._errors(f"list versions of model {model!r}"):
            found = []
            token = None
            while True:
                page = self.client.search_model_versions(
                    filter_string=_name_filter(model), max_results=_PAGE_SIZE, page_token=token
                )
                found.extend(mv for mv in page if mv.name == model)
                token = page.token
                if not token:
                    break
            alias_map = self._alias_map(model)
            infos = [self._info(mv, alias_map) for mv in found]
        infos.sort(key=lambda v: (v.created_ms, _version_key(v.version)), reverse=True)
        return infos

    def register(
        self, model: str, run_id: str, artifact_path: str = "model", *, tags: dict[str, str] | None = None
    ) -> VersionInfo:
        """A new version of `model` from the model logged by `run_id` at `artifact_path`.

        The version carries the run's lineage tags (pipeline, job, commit,
        fingerprint), `mlci.source_run`, and `tags`.
        """
        from mlflow.exceptions import MlflowException

        with self._errors(f"register run {run_id} as model {model!r}"):
            run = self.client.get_run(run_id)
            source, model_id = self._model_source(run, artifact_path)
            lineage = dict(self.ci.lineage_tags())
            lineage.pop("mlflow.source.git.commit", None)
            lineage.update({k: v for k, v in run.data.tags.items() if k.startswith(_LINEAGE_PREFIXES)})
            lineage[SOURCE_RUN_TAG] = run_id
            lineage.update(tags or {})
            try:
                self.client.create_registered_model(model)
            except MlflowException as exc:
                if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                    raise
            kwargs = {"model_id": model_id} if model_id else {}
            with tracking_uri_scope(self.tracking_uri):
                mv = self.client.create_model_version(
                    model, source, run_id=run_id, tags=redact_value({k: str(v) for k, v in lineage.items()}),
                    **kwargs,
                )
        return self.get_version(model, str(mv.version))

    def _model_source(self, run, artifact_path: str) -> tuple[str, str | None]:
        """(source URI, logged model id) of the model a run logged at artifact_path.

        MLflow 3 keeps models as LoggedModels outside the run's artifacts; older
        clients and servers store them under the run's artifact root.
        """
        from mlflow.exceptions import MlflowException

        run_id = run.info.run_id
        try:
            token = None
            while True:
                page = self.client.search_logged_models(
                    experiment_ids=[run.info.experiment_id],
                    filter_string=f"name = '{artifact_path}'" if "'" not in artifact_path else None,
                    page_token=token,
                )
                matches = [m for m in page if m.source_run_id == run_id and m.name == artifact_path]
                if matches:
                    newest = max(matches, key=lambda m: m.creation_timestamp or 0)
                    return f"models:/{newest.model_id}", newest.model_id
                token = page.token
                if not token:
                    break
        except MlflowException as exc:
            if _status_of(exc) not in (404, 405, 501):  # servers without the LoggedModel API
                raise
        with tracking_uri_scope(self.tracking_uri):
            names = {a.path for a in self.client.list_artifacts(run_id, artifact_path)}
        if f"{artifact_path}/MLmodel" in names:
            return f"{run.info.artifact_uri.rstrip('/')}/{artifact_path}", None
        raise ConfigError(
            f"run {run_id} has no MLflow model at artifact path {artifact_path!r}",
            hint=f"log it with mlflow.<flavor>.log_model(model, name={artifact_path!r}) in the training script, "
            "or set model.artifact-path",
        )

    def set_version_tag(self, model: str, version: str, key: str, value: str) -> None:
        with self._errors(f"tag version {version} of model {model!r}"):
            self.client.set_model_version_tag(model, str(version), key, redact_value(str(value)))

    def set_description(self, model: str, version: str, text: str) -> None:
        with self._errors(f"describe version {version} of model {model!r}"):
            self.client.update_model_version(model, str(version), description=redact_value(text))

    # -- markers --------------------------------------------------------------

    def get_marker(self, model: str, marker: str) -> VersionInfo | None:
        """The version holding `marker`, or None (no such model, or nobody holds it)."""
        _check_marker(marker)
        if self.mode == "tag":
            holders = [v for v in self.latest_versions(model) if marker in v.aliases]
            return holders[0] if holders else None
        from mlflow.exceptions import MlflowException

        with self._errors(f"resolve {model}@{marker}"):
            try:
                mv = self.client.get_model_version_by_alias(model, marker)
            except MlflowException as exc:
                # A missing model is 404; a missing alias is 400 INVALID_PARAMETER_VALUE.
                if _status_of(exc) in (400, 404):
                    return None
                raise
            return self._info(mv, self._alias_map(model))

    def move_marker(self, model: str, marker: str, version: str, *, reason: str = "") -> str | None:
        """Give `marker` to `version`, taking it from any other holder.

        Returns the previous holder's version (None when nobody held it) and
        appends an audit record to `version`.
        """
        _check_marker(marker)
        version = str(version)
        target = self.get_version(model, version)  # fails early, before anything moves
        if self.mode == "alias":
            previous = self.get_marker(model, marker)
            with self._errors(f"set {model}@{marker} to version {version}"):
                self.client.set_registered_model_alias(model, marker, version)
        else:
            versions = self.latest_versions(model)
            holders = [v for v in versions if marker in v.aliases]
            previous = holders[0] if holders else None
            key = MARKER_TAG_PREFIX + marker
            with self._errors(f"set marker tag {key} on version {version} of {model!r}"):
                # Tag the new holder first: a job killed halfway leaves two
                # holders (newest wins, the next move repairs) rather than none.
                if marker not in target.aliases:
                    self.client.set_model_version_tag(model, version, key, "true")
                for other in versions:
                    if other.version != version and key in other.tags:
                        self.client.delete_model_version_tag(model, other.version, key)
        from_version = previous.version if previous else None
        self.append_audit(model, version, {
            "action": "move-marker",
            "marker": marker,
            "from-version": from_version,
            "to-version": version,
            "reason": (reason or "")[:_MAX_REASON],
            "registry-mode": self.mode,
        })
        return from_version

    # -- audit trail ----------------------------------------------------------

    def append_audit(self, model: str, version: str, record: dict) -> None:
        """Add `record` as the next `mlci.audit.NNNN` tag of the version.

        Fills who (GITLAB_USER_LOGIN), when (UTC ISO 8601), pipeline, job,
        commit and environment from the CI environment unless the record sets them.
        """
        version = str(version)
        ci = self.ci
        full = {
            "model": model,
            "version": version,
            "who": ci.user_login or _local_user(),
            "when": datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "pipeline": ci.pipeline_id,
            "pipeline-url": ci.pipeline_url,
            "job": ci.job_id,
            "job-name": ci.job_name,
            "job-url": ci.job_url,
            "commit": ci.commit_sha,
            "ref": ci.commit_ref,
            "environment": ci.environment_name,
        }
        full.update(record)
        existing = self.get_version(model, version).tags
        numbers = [int(m.group(1)) for key in existing if (m := _AUDIT_KEY.match(key))]
        key = f"{AUDIT_TAG_PREFIX}{(max(numbers) + 1) if numbers else 1:04d}"
        full["seq"] = key[len(AUDIT_TAG_PREFIX):]
        self.set_version_tag(model, version, key, json.dumps(full, sort_keys=True, default=str))

    def audit_trail(self, model: str, version: str | None = None) -> list[dict]:
        """Audit records, oldest first; of one version, or of every version."""
        versions = [self.get_version(model, version)] if version is not None else self.latest_versions(model)
        records = []
        for info in versions:
            for key, value in info.tags.items():
                if match := _AUDIT_KEY.match(key):
                    try:
                        record = json.loads(value)
                    except ValueError:
                        record = {"unparsed": value}
                    record.setdefault("version", info.version)
                    records.append((record.get("when", ""), _version_key(info.version), int(match.group(1)),
                                    record))
        records.sort(key=lambda item: item[:3])
        return [record for *_, record in records]

    # -- runs -----------------------------------------------------------------

    def _run(self, run_id: str):
        with self._errors(
            f"read run {run_id}",
            not_found_hint="the run id (MLCI_RUN_ID or --run) must come from this tracking server; "
            "check mlflow.tracking-uri",
        ):
            return self.client.get_run(run_id)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return {k: float(v) for k, v in self._run(run_id).data.metrics.items()}

    def run_params(self, run_id: str) -> dict[str, str]:
        return {k: str(v) for k, v in self._run(run_id).data.params.items()}

    def run_tags(self, run_id: str) -> dict[str, str]:
        return {k: str(v) for k, v in self._run(run_id).data.tags.items()}

    def download_run_artifacts(self, run_id: str, artifact_path: str, dst: Path) -> Path:
        """Download `artifact_path` of the run (a logged model resolves too) into dst; returns the local path."""
        dst = Path(dst)
        dst.mkdir(parents=True, exist_ok=True)
        with (self._errors(f"download artifact {artifact_path!r} of run {run_id}"),
              tracking_uri_scope(self.tracking_uri)):
            return Path(self.client.download_artifacts(run_id, artifact_path, str(dst)))

    def download_version_artifacts(self, model: str, version: str, dst: Path) -> Path:
        """Download the model files of a registered version into dst."""
        info = self.get_version(model, version)
        dst = Path(dst)
        dst.mkdir(parents=True, exist_ok=True)
        with (self._errors(f"download version {version} of model {model!r}"),
              tracking_uri_scope(self.tracking_uri)):
            from mlflow.artifacts import download_artifacts

            logged = re.match(r"^models:/(m-[0-9a-f]+)/?$", info.source)
            if logged:  # an MLflow 3 LoggedModel: fetch its own artifact location
                uri = self.client.get_logged_model(logged.group(1)).artifact_location
            else:
                uri = self.client.get_model_version_download_uri(model, str(version))
            return Path(download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=self.tracking_uri,
                                           registry_uri=self.registry_uri))


def _check_marker(marker: str) -> None:
    if not _MARKER_NAME.match(marker or "") or _RESERVED_MARKER.match(marker):
        raise ConfigError(
            f"invalid registry marker {marker!r}",
            hint="markers (environment names) may use letters, digits, '_' and '-'; 'latest' and v<N> are reserved",
        )


def _name_filter(model: str) -> str:
    if "'" not in model:
        return f"name = '{model}'"
    if '"' not in model:
        return f'name = "{model}"'
    raise ConfigError(f"model name {model!r} mixes single and double quotes, which MLflow cannot search for")


def _status_of(exc: BaseException) -> int | None:
    getter = getattr(exc, "get_http_status_code", None)
    if getter is None:
        return None
    if _is_connection_failure(exc):
        return None
    json_body = getattr(exc, "json", None)
    if isinstance(json_body, dict) and "error_code" not in json_body:
        # A proxy or non-MLflow route answered: the real status is in the body if anywhere.
        for key in ("status", "status_code", "code"):
            value = json_body.get(key)
            if isinstance(value, int):
                return value
        text = str(json_body.get("error") or json_body.get("message") or "")
        if match := re.match(r"\s*(\d{3})\b", text):
            return int(match.group(1))
    try:
        return int(getter())
    except (TypeError, ValueError):
        return None


def _is_mlflow_exception(exc: BaseException) -> bool:
    return any(cls.__name__ == "MlflowException" for cls in type(exc).__mro__)


def _is_connection_failure(exc: BaseException) -> bool:
    text = str(exc)
    if "failed with exception" in text or "Max retries exceeded" in text or isinstance(exc, ConnectionError):
        return True
    return any(cls.__name__ == "RequestException" for cls in type(exc).__mro__)  # requests, not imported here


_URL_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def strip_url_credentials(text: str) -> str:
    """Free text (a server's or MLflow's message) without any scheme://user:password@ or other secret form."""
    return redact_patterns(_URL_CREDENTIALS.sub(r"\1", text))


def _short_message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    # MLflow repeats the request URL, user:password included, in its messages.
    text = strip_url_credentials(" ".join(str(text).split()))
    return text if len(text) <= 400 else text[:400] + "..."


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def _ensure_sqlite_dir(uri: str) -> None:
    # MLflow creates the database file but not its directory (.mlci/ by default).
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)

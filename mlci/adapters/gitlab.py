"""Everything mlci asks of the GitLab REST API, through python-gitlab.

One boundary turns every HTTP or connection failure into ExternalServiceError
(exit 3) naming the request URL, the status and the likely fix. Retries for
429 and 5xx live in the HTTP session, bounded and honouring Retry-After, so
python-gitlab's own unbounded-wait retry is switched off. The token travels
only in the PRIVATE-TOKEN header and is scrubbed from every message.

python-gitlab and requests are imported lazily: `mlci --help` must not pay for them.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from mlci.errors import ConfigError, ExternalServiceError
from mlci.redact import Redactor, register_secret

SERVICE = "GitLab"
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_WAIT = 60.0  # a server asking for longer than this gets our cap, not a stalled job
DEFAULT_TOKEN_VARIABLE = "MLCI_GITLAB_TOKEN"
DEFAULT_TRIGGER_TOKEN_VARIABLE = "MLCI_TRIGGER_TOKEN"
PAGE_SIZE = 100  # GitLab's maximum per_page

TOKEN_HINT = (
    "create a project access token with the `api` scope (role Developer or higher) under "
    "Settings > Access tokens, and store it as a masked CI/CD variable named {variable}; "
    "CI_JOB_TOKEN cannot write merge request notes, merge requests or pipeline schedules"
)


def note_marker(key: str) -> str:
    """The hidden line that identifies mlci's note for `key` on a merge request."""
    return f"<!-- mlci-report:{_checked_key(key)} -->"


def merge_request_marker(key: str) -> str:
    """The hidden line that identifies mlci's merge request for `key`."""
    return f"<!-- mlci-mr:{_checked_key(key)} -->"


def incident_marker(key: str) -> str:
    """The hidden line that identifies mlci's open incident for `key` (model:environment)."""
    return f"<!-- mlci-incident:{_checked_key(key)} -->"


def _checked_key(key: str) -> str:
    key = str(key).strip()
    if not key or "-->" in key or "\n" in key:
        raise ConfigError(f"invalid marker key {key!r}: it must be non-empty, one line, without '-->'")
    return key


@dataclass(frozen=True)
class Upload:
    url: str  # absolute, including the server's sub-path
    markdown: str  # ![alt](absolute url)
    full_path: str  # as GitLab returned it


@dataclass(frozen=True)
class NoteResult:
    note_id: int
    action: str  # "created" | "updated" | "unchanged" | "newer-shown"
    url: str
    pipeline_id: int | None = None  # the pipeline the note shows now


_NOTE_META = re.compile(r"^<!-- mlci-report-meta (\{.*\}) -->$")


@dataclass(frozen=True)
class ReportNote:
    """mlci's note as GitLab holds it: the marker line, a hidden meta line, the report."""

    note_id: int
    body: str
    pipeline_id: int | None = None
    uploads: dict[str, str] = field(default_factory=dict)  # content digest -> upload URL

    @classmethod
    def parse(cls, note_id: int, body: str) -> ReportNote:
        lines = body.split("\n", 2)
        meta: dict = {}
        if len(lines) > 1 and (found := _NOTE_META.match(lines[1].strip())):
            try:
                meta = json.loads(found.group(1))
            except ValueError:
                meta = {}
        pipeline = meta.get("pipeline")
        uploads = meta.get("uploads")
        return cls(int(note_id), body, int(pipeline) if isinstance(pipeline, int) else None,
                   {str(k): str(v) for k, v in uploads.items()} if isinstance(uploads, dict) else {})

    @staticmethod
    def compose(marker: str, body: str, pipeline_id: int | None, uploads: Mapping[str, str]) -> str:
        if body.startswith(marker):
            body = body[len(marker):].lstrip("\n")
        meta = json.dumps({"pipeline": pipeline_id, "uploads": dict(sorted(uploads.items()))},
                          separators=(",", ":")).replace(">", "\\u003e")  # never closes the comment early
        return f"{marker}\n<!-- mlci-report-meta {meta} -->\n{body}"

    def newer_than(self, pipeline_id: int | None) -> bool:
        """The note shows a later pipeline than `pipeline_id` (GitLab numbers pipelines in creation order)."""
        return self.pipeline_id is not None and pipeline_id is not None and self.pipeline_id > pipeline_id


def _checked_iid(mr_iid: int | str) -> int:
    if not str(mr_iid).strip().isdigit():
        raise ConfigError(f"merge request iid must be a number, got {mr_iid!r}")
    return int(mr_iid)


@dataclass(frozen=True)
class MergeRequestResult:
    iid: int
    action: str  # "created" | "updated" | "unchanged"
    web_url: str


@dataclass(frozen=True)
class IncidentResult:
    iid: int
    action: str  # "created" | "commented" | "unchanged"
    web_url: str


@dataclass(frozen=True)
class PipelineRef:
    id: int
    web_url: str


@dataclass(frozen=True)
class RemoteSchedule:
    """A pipeline schedule as GitLab holds it. `variables` is None until fetched (the list API omits them)."""

    id: int
    description: str
    ref: str
    cron: str
    cron_timezone: str
    active: bool
    next_run_at: str | None = None
    owner: str | None = None
    variables: dict[str, str] | None = None


@dataclass
class _Attempts:
    """What the session last did, for error messages (URL without query) and retry counts."""

    method: str = ""
    url: str = ""
    retries: int = 0


def _retry_wait(headers: Mapping[str, str], fallback: float) -> float:
    value = headers.get("Retry-After")
    if value is not None:
        try:
            return min(max(float(value), 0.0), MAX_RETRY_WAIT)
        except ValueError:
            pass  # an HTTP-date; the computed backoff is good enough
    return min(fallback, MAX_RETRY_WAIT)


def _make_session(*, max_retries: int, backoff: float, sleep: Callable[[float], None], attempts: _Attempts):
    import requests

    class RetryingSession(requests.Session):
        def request(self, method, url, *args, **kwargs):
            data = kwargs.get("data")
            if hasattr(data, "to_string"):
                # A multipart encoder is a one-shot stream; materialise it so a retry resends the file.
                kwargs["data"] = data.to_string()
            attempt = 0
            while True:
                attempts.method, attempts.url = method.upper(), url.split("?", 1)[0]
                try:
                    response = super().request(method, url, *args, **kwargs)
                except (requests.ConnectionError, requests.Timeout):
                    if attempt >= max_retries:
                        raise
                    sleep(min(backoff * 2**attempt, MAX_RETRY_WAIT))
                    attempt += 1
                    attempts.retries += 1
                    continue
                if response.status_code in TRANSIENT_STATUSES and attempt < max_retries:
                    wait = _retry_wait(response.headers, backoff * 2**attempt)
                    response.close()
                    sleep(wait)
                    attempt += 1
                    attempts.retries += 1
                    continue
                return response

    return RetryingSession()


def _gitlab_class():
    import gitlab

    class Gitlab(gitlab.Gitlab):
        def http_request(self, *args, **kwargs):
            # Our session already retried, bounded; python-gitlab's loop would sleep on Retry-After unbounded.
            kwargs["obey_rate_limit"] = False
            kwargs["retry_transient_errors"] = False
            return super().http_request(*args, **kwargs)

    return Gitlab


def _server_detail(exc: Exception) -> str:
    message = getattr(exc, "error_message", None)
    body = getattr(exc, "response_body", None)
    if body:
        # python-gitlab keeps only "error" of an OAuth-style body; the description is what helps.
        import json

        try:
            parsed = json.loads(body)
        except (TypeError, ValueError):
            parsed = None
        if isinstance(parsed, dict) and parsed.get("error_description"):
            message = f"{parsed.get('error', 'error')}: {parsed['error_description']}"
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    if isinstance(message, dict):
        message = "; ".join(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                                for k, v in message.items())
    elif isinstance(message, list):
        message = "; ".join(map(str, message))
    text = " ".join(str(message or exc).split())
    if text.lstrip().startswith("<"):
        return "the server answered with an HTML page, not the API"
    return text[:300]


class GitLabClient:
    """A project on a GitLab instance. Construct with from_config() in commands."""

    def __init__(
        self,
        *,
        url: str,
        project: str | int,
        token: str | None,
        token_variable: str = DEFAULT_TOKEN_VARIABLE,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        secrets: tuple[str, ...] = (),
    ):
        self.server_url = url.rstrip("/")
        self.project_ref = str(project)
        self.token_variable = token_variable
        self._token = token
        self._secrets = [s for s in (token, *secrets) if s]
        # Whatever variable the token came from, it is masked in everything this process writes.
        register_secret(*self._secrets)
        self._timeout = timeout
        self._max_retries = max(0, int(max_retries))
        self._backoff = float(backoff)
        self._sleep = sleep
        self._attempts = _Attempts()
        self._gl = None
        self._project = None
        self._project_info: dict | None = None
        self._user: dict | None = None

    # ------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config, env: Mapping[str, str], *, require_token: bool = True) -> GitLabClient:
        """The client for the configured project; the token comes only from the environment.

        `require_token=False` is for the trigger API, which authenticates with a trigger token instead.
        """

        def setting(key: str, default: Any = None) -> Any:
            value = config.get("gitlab", key) if config is not None else None
            return default if value in (None, "") else value

        url = setting("url") or env.get("CI_SERVER_URL", "")
        if not url:
            raise ConfigError(
                "no GitLab URL: set gitlab.url in mlci.yml (or MLCI_GITLAB_URL); in a pipeline CI_SERVER_URL is used",
            )
        if not urlsplit(url).scheme or not urlsplit(url).netloc:
            raise ConfigError(f"gitlab.url {url!r} is not an absolute http(s) URL, e.g. https://gitlab.example.com")
        project = setting("project") or env.get("CI_PROJECT_ID", "")
        if not project:
            raise ConfigError("no GitLab project: set gitlab.project (id or full path); in a pipeline CI_PROJECT_ID "
                              "is used")
        variable = setting("token-variable", DEFAULT_TOKEN_VARIABLE)
        token = env.get(variable) or None
        job_token = env.get("CI_JOB_TOKEN") or None
        if require_token:
            if not token:
                raise ExternalServiceError(
                    SERVICE, url.rstrip("/"), f"no API token: the variable {variable} is not set",
                    hint=TOKEN_HINT.format(variable=variable),
                )
            if variable == "CI_JOB_TOKEN" or (job_token and token == job_token):
                raise ExternalServiceError(
                    SERVICE, url.rstrip("/"),
                    f"{variable} holds the CI job token, which cannot post notes or manage merge requests "
                    "and schedules",
                    hint=TOKEN_HINT.format(variable=DEFAULT_TOKEN_VARIABLE),
                )
        secrets = tuple(v for v in (job_token, env.get(setting("trigger-token-variable",
                                                                  DEFAULT_TRIGGER_TOKEN_VARIABLE))) if v)
        return cls(
            url=url,
            project=project,
            token=token,
            token_variable=variable,
            timeout=float(setting("timeout", 30)),
            max_retries=int(setting("max-retries", 3)),
            backoff=float(setting("retry-backoff", 1.0)),
            secrets=secrets,
        )

    # ------------------------------------------------------------ plumbing
    @property
    def api_url(self) -> str:
        return f"{self.server_url}/api/v4"

    @property
    def project_api_path(self) -> str:
        return f"/projects/{quote(self.project_ref, safe='')}"

    def _client(self):
        if self._gl is None:
            session = _make_session(max_retries=self._max_retries, backoff=self._backoff, sleep=self._sleep,
                                    attempts=self._attempts)
            from mlci import __version__

            self._gl = _gitlab_class()(
                self.server_url,
                private_token=self._token,
                timeout=self._timeout,
                session=session,
                keep_base_url=True,
                user_agent=f"mlci/{__version__}",
            )
        return self._gl

    def _project_api(self):
        if self._project is None:
            self._project = self._client().projects.get(self.project_ref, lazy=True)
        return self._project

    def _scrub(self, text: str) -> str:
        return Redactor.from_env(extra=self._secrets)(text)

    def _hint_for(self, status: int, action: str) -> str:
        if status == 401:
            return (f"the token in {self.token_variable} was rejected: it is expired, revoked or not a GitLab token "
                    f"(check the variable name and that it is available to this branch). "
                    + TOKEN_HINT.format(variable=self.token_variable))
        if status == 403:
            return ("the token lacks the `api` scope (read_api is not enough) or its role is too low: posting notes "
                    "needs Reporter, merge requests, branches, pipelines and schedules need Developer or higher; "
                    "a protected branch or an archived project also refuses writes")
        if status == 404:
            return (f"check the project (gitlab.project / CI_PROJECT_ID = {self.project_ref!r}) and {action}; "
                    f"if GitLab lives under a sub-path, gitlab.url / CI_SERVER_URL must include it "
                    f"(now {self.server_url!r}); GitLab also answers 404 when the token cannot see the project")
        if status == 409:
            return "another object already holds this name; see the message"
        if status in TRANSIENT_STATUSES:
            return "GitLab is overloaded or unavailable; re-run the job later or raise gitlab.max-retries"
        return "see the message from GitLab"

    @contextlib.contextmanager
    def _api(self, action: str, hints: Mapping[int, str] | None = None) -> Iterator[None]:
        """The one place GitLab failures become ExternalServiceError."""
        import gitlab
        import requests

        try:
            yield
        except gitlab.exceptions.GitlabError as exc:
            status = getattr(exc, "response_code", None)
            url = self._scrub(self._attempts.url or self.api_url)
            method = self._attempts.method
            detail = self._scrub(_server_detail(exc))
            if isinstance(exc, gitlab.exceptions.RedirectError):
                raise ExternalServiceError(
                    SERVICE, url, f"{action}: the server redirected a {method} request",
                    hint="use the final URL in gitlab.url / CI_SERVER_URL (usually https:// instead of http://)",
                ) from None
            if isinstance(exc, gitlab.exceptions.GitlabParsingError) or status is None:
                raise ExternalServiceError(
                    SERVICE, url, f"{action}: unexpected answer ({detail})", status=status,
                    hint="gitlab.url / CI_SERVER_URL should be the instance root including any sub-path, "
                         "e.g. https://host/gitlab, not a project or API URL",
                ) from None
            if status in TRANSIENT_STATUSES:
                message = f"{action}: {method} still failing after {self._max_retries} retries ({detail})"
            else:
                message = f"{action}: {method} failed: {detail}"
            hint = (hints or {}).get(status) or self._hint_for(status, action)
            raise ExternalServiceError(SERVICE, url, message, status=status, hint=self._scrub(hint)) from None
        except requests.Timeout:
            url = self._scrub(self._attempts.url or self.api_url)
            raise ExternalServiceError(
                SERVICE, url, f"{action}: no answer within {self._timeout:g}s (after {self._max_retries} retries)",
                hint="check that the runner can reach GitLab, or raise gitlab.timeout",
            ) from None
        except requests.ConnectionError as exc:
            url = self._scrub(self._attempts.url or self.api_url)
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise ExternalServiceError(
                SERVICE, url, f"{action}: {reason} (after {self._max_retries} retries)",
                hint="check gitlab.url / CI_SERVER_URL and that the runner can reach the instance",
            ) from None

    def _absolute(self, link: str) -> str:
        """A server-relative link made absolute; the sub-path is added once, never twice."""
        if link.startswith(("http://", "https://")):
            return link
        parts = urlsplit(self.server_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        sub_path = parts.path.rstrip("/")
        link = "/" + link.lstrip("/")
        if sub_path and (link == sub_path or link.startswith(sub_path + "/")):
            return origin + link
        return self.server_url + link

    def project_info(self) -> dict:
        """GET /projects/:id once (web_url, path_with_namespace, default_branch)."""
        if self._project_info is None:
            with self._api(f"read project {self.project_ref}"):
                self._project_info = dict(self._client().projects.get(self.project_ref).attributes)
        return self._project_info

    # ------------------------------------------------------------ uploads and notes
    def upload(self, path: Path) -> Upload:
        """Upload a file to the project (it stays inside the instance) and return absolute links to it."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"cannot upload {path}: not a readable file")
        with self._api(f"upload {path.name}"):
            data = self._project_api().upload(path.name, filedata=path.read_bytes())
        full_path = str(data.get("full_path") or "")
        if full_path:
            url = self._absolute(full_path)
        else:
            # Old GitLab: `url` is relative to the project page.
            url = self.project_info()["web_url"].rstrip("/") + "/" + str(data["url"]).lstrip("/")
        alt = str(data.get("alt") or path.stem).replace("[", "").replace("]", "")
        return Upload(url=url, markdown=f"![{alt}]({url})", full_path=full_path)

    def current_user(self) -> dict:
        """GET /user: who the token acts as (a project access token has a bot user of its own)."""
        if self._user is None:
            with self._api("read the token's user (GET /user)"):
                gl = self._client()
                gl.auth()
                self._user = dict(gl.user.attributes)
        return self._user

    def _owned(self, note, marker: str) -> bool:
        """mlci's note: not a system note, the marker on its first line, written by the token's user.

        A person quoting the marker, or pasting a whole report, is never taken for mlci (and GitLab
        would refuse the edit anyway, 403)."""
        attrs = note.attributes
        body = attrs.get("body") or ""
        if attrs.get("system") or body.split("\n", 1)[0].strip() != marker:
            return False
        author = attrs.get("author") or {}
        return author.get("id") == self.current_user().get("id")  # asked only once a marker shows up

    def report_notes(self, mr, key: str) -> list[ReportNote]:
        """mlci's notes for `key` on a merge request (normally one), oldest first, every page."""
        marker = note_marker(key)
        return [ReportNote.parse(note.id, note.attributes.get("body") or "")
                for note in mr.notes.list(iterator=True, per_page=PAGE_SIZE, sort="asc", order_by="created_at")
                if self._owned(note, marker)]

    def find_report_note(self, mr_iid: int | str, key: str) -> ReportNote | None:
        iid = _checked_iid(mr_iid)
        with self._api(f"merge request !{iid} note", hints={404: self._hint_for(404, f"the merge request iid !{iid}")}):
            notes = self.report_notes(self._project_api().mergerequests.get(iid, lazy=True), key)
        return notes[0] if notes else None

    def upsert_mr_note(self, mr_iid: int | str, key: str, body: str, *, pipeline_id: int | None = None,
                       uploads: Mapping[str, str] | None = None) -> NoteResult:
        """Create mlci's note for `key` on the merge request, or update it in place.

        The note records the pipeline it came from (`pipeline_id`) and the uploads it links
        (content digest -> URL). A report from an older pipeline than the one the note shows leaves
        it alone (action "newer-shown"); an identical body is not written again ("unchanged").
        Concurrent first posts are settled to one note, holding the newest pipeline's report.
        """
        iid = _checked_iid(mr_iid)
        marker = note_marker(key)
        full_body = ReportNote.compose(marker, self._scrub(body), pipeline_id, uploads or {})
        with self._api(f"merge request !{iid} note", hints={404: self._hint_for(404, f"the merge request iid !{iid}")}):
            mr = self._project_api().mergerequests.get(iid)
            existing = self.report_notes(mr, key)
            shown = existing[0] if existing else None
            if shown is not None and shown.newer_than(pipeline_id):
                return NoteResult(shown.note_id, "newer-shown", f"{mr.web_url}#note_{shown.note_id}",
                                  shown.pipeline_id)
            if shown is not None and shown.body == full_body:
                return NoteResult(shown.note_id, "unchanged", f"{mr.web_url}#note_{shown.note_id}", pipeline_id)
            if shown is None:
                created = mr.notes.create({"body": full_body})
                note_id, action = int(created.id), "created"
            else:
                mr.notes.update(shown.note_id, {"body": full_body})
                note_id, action = shown.note_id, "updated"
            # Another job may have written at the same time (a retried POST, two pipelines at once).
            settled = self._settle(mr, key, note_id, full_body, pipeline_id)
        if settled.newer_than(pipeline_id):
            action = "newer-shown"  # a newer pipeline's report arrived meanwhile and stays
        return NoteResult(settled.note_id, action, f"{mr.web_url}#note_{settled.note_id}", settled.pipeline_id)

    def _settle(self, mr, key: str, note_id: int, full_body: str, pipeline_id: int | None) -> ReportNote:
        """Leave exactly one note, the first one, showing the newest pipeline's report."""
        import gitlab

        ours = ReportNote.parse(note_id, full_body)
        notes = self.report_notes(mr, key)
        if not notes:
            return ours
        keeper = notes[0]
        # Ours as written counts too: an older pipeline's write may have landed on top of it.
        newest = max([*notes, ours], key=lambda n: (n.pipeline_id or 0, n.body == full_body))
        if newest.body != keeper.body:
            mr.notes.update(keeper.note_id, {"body": newest.body})
            keeper = ReportNote.parse(keeper.note_id, newest.body)
        for extra in notes[1:]:
            try:
                mr.notes.delete(extra.note_id)
            except gitlab.exceptions.GitlabDeleteError as exc:
                if exc.response_code != 404:  # the other job deleted it first
                    raise
        return keeper

    # ------------------------------------------------------------ branches and merge requests
    def create_branch(self, branch: str, ref: str) -> None:
        """Create `branch` from `ref`; nothing happens when it already exists."""
        import gitlab

        branches = self._project_api().branches
        with self._api(f"create branch {branch!r} from {ref!r}",
                       hints={400: f"check that the ref {ref!r} exists"}):
            try:
                branches.get(branch)
                return
            except gitlab.exceptions.GitlabGetError as exc:
                if exc.response_code != 404:
                    raise
            try:
                branches.create({"branch": branch, "ref": ref})
            except gitlab.exceptions.GitlabCreateError as exc:
                if exc.response_code == 400 and "already exists" in str(exc.error_message):
                    return  # created concurrently by another job
                raise

    def upsert_merge_request(
        self, *, source_branch: str, target_branch: str, title: str, description: str, key: str
    ) -> MergeRequestResult:
        """One open merge request per key: open it once, then keep its title and description current."""
        import gitlab

        marker = merge_request_marker(key)
        title, description = self._scrub(title), self._scrub(description)
        full_description = description if marker in description else f"{description.rstrip()}\n\n{marker}\n"
        with self._api(f"merge request {source_branch} -> {target_branch}", hints={
            409: "an open merge request without mlci's marker already uses this source branch; close it or "
                 "let mlci use another branch",
        }):
            mergerequests = self._project_api().mergerequests

            def find():
                for mr in mergerequests.list(state="opened", iterator=True, per_page=PAGE_SIZE):
                    if marker in (mr.attributes.get("description") or ""):
                        return mr
                return None

            mr = find()
            if mr is not None:
                if mr.title == title and mr.description == full_description:
                    return MergeRequestResult(int(mr.iid), "unchanged", mr.web_url)
                mergerequests.update(mr.iid, {"title": title, "description": full_description})
                return MergeRequestResult(int(mr.iid), "updated", mr.web_url)
            try:
                created = mergerequests.create({
                    "source_branch": source_branch,
                    "target_branch": target_branch,
                    "title": title,
                    "description": full_description,
                    "remove_source_branch": True,
                })
            except gitlab.exceptions.GitlabCreateError as exc:
                # A retried POST whose first attempt landed answers 409; that MR is ours.
                mr = find() if exc.response_code == 409 else None
                if mr is None:
                    raise
                return MergeRequestResult(int(mr.iid), "created", mr.web_url)
            return MergeRequestResult(int(created.iid), "created", created.web_url)

    # ------------------------------------------------------------ incidents
    def upsert_incident(
        self, *, key: str, title: str, description: str, labels: list[str], note: str, note_key: str,
    ) -> IncidentResult:
        """One open incident per key (an episode): open it, or comment on the open one.

        An incident is an issue with issue_type=incident. Closing it (a human resolving the
        episode) ends the episode; the next bad verdict opens a new one. A note is added once
        per `note_key` (a pipeline job), so a retried job does not comment twice.
        """
        marker = incident_marker(key)
        note_marker_line = f"<!-- mlci-incident-note:{_checked_key(note_key)} -->"
        full_description = f"{description.rstrip()}\n\n{marker}\n{note_marker_line}\n"
        with self._api(f"incident {key}", hints={
            403: "opening incidents needs the Reporter role or higher, and a token with the `api` scope",
        }):
            issues = self._project_api().issues
            existing = None
            for issue in issues.list(state="opened", issue_type="incident", iterator=True, per_page=PAGE_SIZE):
                if marker in (issue.attributes.get("description") or ""):
                    existing = issue
                    break
            if existing is None:
                created = issues.create({
                    "title": title[:255], "description": full_description, "issue_type": "incident",
                    "labels": ",".join(labels),
                })
                return IncidentResult(int(created.iid), "created", str(created.attributes.get("web_url") or ""))
            web_url = str(existing.attributes.get("web_url") or "")
            if note_marker_line in (existing.attributes.get("description") or ""):
                return IncidentResult(int(existing.iid), "unchanged", web_url)
            for old in existing.notes.list(iterator=True, per_page=PAGE_SIZE):
                if note_marker_line in (old.attributes.get("body") or ""):
                    return IncidentResult(int(existing.iid), "unchanged", web_url)
            existing.notes.create({"body": f"{note.rstrip()}\n\n{note_marker_line}\n"})
            return IncidentResult(int(existing.iid), "commented", web_url)

    # ------------------------------------------------------------ pipelines
    def trigger_pipeline(self, ref: str, variables: dict[str, str], trigger_token: str,
                         token_variable: str = DEFAULT_TRIGGER_TOKEN_VARIABLE) -> PipelineRef:
        """POST /projects/:id/trigger/pipeline with form fields token, ref and variables[KEY]=VALUE."""
        if not trigger_token:
            raise ExternalServiceError(
                SERVICE, f"{self.api_url}{self.project_api_path}/trigger/pipeline", "no pipeline trigger token",
                hint=f"create one under Settings > CI/CD > Pipeline trigger tokens and pass it in "
                     f"{DEFAULT_TRIGGER_TOKEN_VARIABLE}",
            )
        self._secrets.append(trigger_token)
        register_secret(trigger_token)
        form = [("token", trigger_token), ("ref", ref)]
        form += [(f"variables[{key}]", self._scrub(str(value))) for key, value in variables.items()]
        rejected = (f"the pipeline trigger token in {token_variable} was rejected: it is wrong, revoked or not a "
                    "trigger token (create one under Settings > CI/CD > Pipeline trigger tokens and store it as "
                    f"a masked CI/CD variable {token_variable})")
        with self._api(f"trigger a pipeline on {ref!r}", hints={
            401: rejected,
            403: f"{rejected}; or its owner may not run pipelines on {ref!r} (a protected ref)",
            404: f"the trigger token is wrong or revoked (check {token_variable} and Settings > CI/CD > Pipeline "
                 f"trigger tokens), or the project {self.project_ref!r} does not exist on {self.server_url}",
            400: f"check that the ref {ref!r} exists and the pipeline has jobs for a trigger source",
        }):
            # Sent with the bare session: the trigger token authenticates, so the API token stays home.
            import gitlab

            response = self._client().session.post(
                f"{self.api_url}{self.project_api_path}/trigger/pipeline", data=form, timeout=self._timeout,
                headers={"User-Agent": self._client().headers.get("User-Agent", "mlci")},
            )
            if not 200 <= response.status_code < 300:
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                message = (body.get("message") or body.get("error")) if isinstance(body, dict) else body
                raise gitlab.exceptions.GitlabHttpError(
                    error_message=message, response_code=response.status_code, response_body=response.content)
            payload = response.json()
        return PipelineRef(int(payload["id"]), str(payload.get("web_url") or ""))

    def create_pipeline(self, ref: str, variables: dict[str, str]) -> PipelineRef:
        """POST /projects/:id/pipeline with the API token (Developer role)."""
        with self._api(f"create a pipeline on {ref!r}", hints={
            400: f"check that the ref {ref!r} exists and that the pipeline has jobs for an api source",
        }):
            pipeline = self._project_api().pipelines.create({
                "ref": ref,
                "variables": [{"key": k, "value": self._scrub(str(v)), "variable_type": "env_var"}
                              for k, v in variables.items()],
            })
        return PipelineRef(int(pipeline.id), str(pipeline.attributes.get("web_url") or ""))

    def ci_lint(self, content: str) -> dict:
        """Validate CI YAML with the project's /ci/lint (includes resolved in the project's context)."""
        with self._api("CI lint"):
            result = self._project_api().ci_lint.create({"content": self._scrub(content)})
        attrs = result.attributes
        return {
            "valid": bool(attrs.get("valid")),
            "errors": list(attrs.get("errors") or []),
            "warnings": list(attrs.get("warnings") or []),
            "merged_yaml": str(attrs.get("merged_yaml") or ""),
        }

    # ------------------------------------------------------------ pipeline schedules
    @staticmethod
    def _schedule(attrs: Mapping[str, Any], variables: dict[str, str] | None = None) -> RemoteSchedule:
        owner = attrs.get("owner") or {}
        return RemoteSchedule(
            id=int(attrs["id"]),
            description=str(attrs.get("description") or ""),
            ref=str(attrs.get("ref") or ""),
            cron=str(attrs.get("cron") or ""),
            cron_timezone=str(attrs.get("cron_timezone") or "UTC"),
            active=bool(attrs.get("active")),
            next_run_at=attrs.get("next_run_at"),
            owner=owner.get("username") if isinstance(owner, dict) else None,
            variables=variables,
        )

    def list_schedules(self) -> list[RemoteSchedule]:
        """Every pipeline schedule of the project, all pages; variables are not included (see schedule())."""
        with self._api("list pipeline schedules"):
            items = self._project_api().pipelineschedules.list(iterator=True, per_page=PAGE_SIZE)
            return [self._schedule(item.attributes) for item in items]

    def schedule(self, schedule_id: int) -> RemoteSchedule:
        """One schedule with its variables."""
        with self._api(f"read pipeline schedule {schedule_id}"):
            attrs = self._project_api().pipelineschedules.get(schedule_id).attributes
        variables = {str(v["key"]): str(v.get("value", "")) for v in attrs.get("variables") or []}
        return self._schedule(attrs, variables)

    def create_schedule(
        self, *, description: str, ref: str, cron: str, cron_timezone: str, active: bool
    ) -> RemoteSchedule:
        with self._api(f"create pipeline schedule {description!r}", hints={
            400: f"GitLab rejected the schedule; check that ref {ref!r} exists and the cron/time zone are valid",
        }):
            created = self._project_api().pipelineschedules.create({
                "description": self._scrub(description), "ref": ref, "cron": cron, "cron_timezone": cron_timezone,
                "active": active,
            })
        return self._schedule(created.attributes, {})

    def update_schedule(self, schedule_id: int, changes: Mapping[str, Any]) -> None:
        with self._api(f"update pipeline schedule {schedule_id}"):
            self._project_api().pipelineschedules.update(schedule_id, dict(changes))

    def delete_schedule(self, schedule_id: int) -> None:
        with self._api(f"delete pipeline schedule {schedule_id}"):
            self._project_api().pipelineschedules.delete(schedule_id)

    def set_schedule_variable(self, schedule_id: int, key: str, value: str, *, exists: bool) -> None:
        with self._api(f"set variable {key} of pipeline schedule {schedule_id}"):
            variables = self._project_api().pipelineschedules.get(schedule_id, lazy=True).variables
            value = self._scrub(value)
            if exists:
                variables.update(key, {"value": value, "variable_type": "env_var"})
            else:
                variables.create({"key": key, "value": value, "variable_type": "env_var"})

    def delete_schedule_variable(self, schedule_id: int, key: str) -> None:
        with self._api(f"delete variable {key} of pipeline schedule {schedule_id}"):
            self._project_api().pipelineschedules.get(schedule_id, lazy=True).variables.delete(key)

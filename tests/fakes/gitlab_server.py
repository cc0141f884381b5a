"""A loopback GitLab that speaks the REST API v4 payloads mlci uses.

It serves from a pytest_httpserver.HTTPServer bound to 127.0.0.1 and follows
GitLab's documented shapes: JSON bodies, status codes (201 on create, 204 on
delete, 401/403/404/409 error bodies) and offset pagination headers
(x-page, x-per-page, x-next-page, x-prev-page, x-total, x-total-pages, Link).

Covered endpoints (all under <base-path>/api/v4):
  GET  /user, GET /projects/:id
  GET|POST /projects/:id/merge_requests, GET|PUT /projects/:id/merge_requests/:iid
  GET|POST /projects/:id/merge_requests/:iid/notes, GET|PUT|DELETE .../notes/:note_id
  POST /projects/:id/uploads (multipart `file`); the file is served back at its full_path
  GET|POST /projects/:id/repository/branches, GET /projects/:id/repository/branches/:branch
  GET|POST /projects/:id/pipeline_schedules, GET|PUT|DELETE /projects/:id/pipeline_schedules/:id
  POST /projects/:id/pipeline_schedules/:id/variables, PUT|DELETE .../variables/:key
  POST /projects/:id/trigger/pipeline (form: token, ref, variables[K]=V)
  POST /projects/:id/pipeline, GET /projects/:id/pipelines/:id
  POST /projects/:id/ci/lint
  GET|POST /projects/:id/issues (issue_type incident), GET|PUT /projects/:id/issues/:iid,
  GET|POST /projects/:id/issues/:iid/notes
Test hooks (outside the API): GET /__fake__/state, POST /__fake__/reset, POST /__fake__/fault.

Use it in tests through the `fake_gitlab` fixture (tests/fakes/plugin.py), or
standalone: python -m tests.fakes.gitlab_server --host 127.0.0.1 --port N [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import itertools
import json
import logging
import re
import secrets
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

DEFAULT_TOKEN = "glpat-fakeFakeFake0123456789"
DEFAULT_TRIGGER_TOKEN = "glptt-fakeTrigger0123456789"
DEFAULT_PROJECT_ID = 42
DEFAULT_PROJECT_PATH = "ml-group/churn-model"

GUEST, REPORTER, DEVELOPER, MAINTAINER = 10, 20, 30, 40
_ROLE_NAMES = {GUEST: "Guest", REPORTER: "Reporter", DEVELOPER: "Developer", MAINTAINER: "Maintainer"}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class TokenInfo:
    user: dict
    scopes: tuple[str, ...] = ("api",)
    access_level: int = MAINTAINER


@dataclass
class Fault:
    """Answer the next `times` matching requests with `status` instead of serving them."""

    pattern: re.Pattern
    status: int
    times: int = 1
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    after: bool = False  # serve the request first, then answer with the fault (a proxy timing out late)


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to <base>/api/v4, e.g. /projects/42/merge_requests/1/notes
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    form: dict[str, str]
    files: dict[str, bytes]
    status: int = 0


class ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _not_found(what: str = "Not found") -> ApiError:
    return ApiError(404, {"message": f"404 {what}"})


class _QuickStopServer(HTTPServer):
    def thread_target(self) -> None:
        # werkzeug polls for shutdown every 0.5 s by default; tests start many fakes.
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


class FakeGitLab:
    """One GitLab instance with one project; state lives in plain dicts guarded by a lock."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base_path: str = "",
        project_id: int = DEFAULT_PROJECT_ID,
        project_path: str = DEFAULT_PROJECT_PATH,
        token: str = DEFAULT_TOKEN,
        trigger_token: str = DEFAULT_TRIGGER_TOKEN,
        default_branch: str = "main",
        max_per_page: int = 100,
        upload_style: str = "modern",
        state_dir: str | Path | None = None,
        access_log: bool = False,
    ):
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.project_id = project_id
        self.project_path = project_path
        self.token = token
        self.trigger_token = trigger_token
        self.default_branch = default_branch
        self.max_per_page = max_per_page
        # "modern": full_path /-/project/<id>/uploads/... (GitLab >= 17.1);
        # "legacy": full_path /<namespace>/<project>/uploads/...;
        # "url-only": no full_path at all (very old GitLab).
        self.upload_style = upload_style
        self.state_dir = Path(state_dir) if state_dir else None
        self.access_log = access_log
        self.lint_result: dict | None = None  # set to force the /ci/lint answer
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._server = _QuickStopServer(host=host, port=port)
        self._ids = itertools.count(1000)
        self._reset_state()
        self.add_token(token, username=f"project_{project_id}_bot", bot=True)
        if self.state_dir:
            self._load_state()

    # ----------------------------------------------------------- lifecycle
    def start(self) -> FakeGitLab:
        self._server.expect_request(re.compile(r".*")).respond_with_handler(self._handle)
        if not self.access_log:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        with self._lock:
            for user in self.users.values():  # the port is known only now
                user["web_url"] = f"{self.url}/{user['username']}"
        return self

    def stop(self) -> None:
        if self._server.is_running():
            self._server.stop()

    def __enter__(self) -> FakeGitLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        """What CI_SERVER_URL would be: scheme, host, port and sub-path."""
        return f"http://{self.host}:{self.port}{self.base_path}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    @property
    def project_web_url(self) -> str:
        return f"{self.url}/{self.project_path}"

    def env(self, **extra: str) -> dict[str, str]:
        """The predefined variables a job on this instance would see, plus the API token."""
        values = {
            "CI_SERVER_URL": self.url,
            "CI_PROJECT_ID": str(self.project_id),
            "CI_PROJECT_PATH": self.project_path,
            "CI_PROJECT_URL": self.project_web_url,
            "CI_DEFAULT_BRANCH": self.default_branch,
            "MLCI_GITLAB_TOKEN": self.token,
        }
        values.update(extra)
        return values

    # ----------------------------------------------------------- seeding
    def _reset_state(self) -> None:
        self.users: dict[int, dict] = {}
        self.tokens: dict[str, TokenInfo] = {}
        self.branches: dict[str, dict] = {}
        self.merge_requests: dict[int, dict] = {}
        self.notes: dict[int, list[dict]] = {}
        self.uploads: list[dict] = []
        self.upload_files: dict[str, bytes] = {}
        self.schedules: dict[int, dict] = {}
        self.pipelines: dict[int, dict] = {}
        self.lint_requests: list[dict] = []
        self.issues: dict[int, dict] = {}
        self.issue_notes: dict[int, list[dict]] = {}
        self.add_branch(self.default_branch)

    def reset(self) -> None:
        with self._lock:
            tokens = dict(self.tokens)
            users = dict(self.users)
            self._reset_state()
            self.tokens, self.users = tokens, users
            self._faults.clear()
            self.requests.clear()
            self._persist()

    def _user(self, username: str, *, bot: bool = False) -> dict:
        for user in self.users.values():
            if user["username"] == username:
                return user
        user_id = next(self._ids)
        user = {
            "id": user_id,
            "username": username,
            "name": username.replace("_", " ").title(),
            "state": "active",
            "bot": bot,
            "avatar_url": None,
            "web_url": f"{self.url}/{username}",
        }
        self.users[user_id] = user
        return user

    def add_token(
        self, token: str, *, username: str = "alice", scopes: tuple[str, ...] = ("api",),
        access_level: int = MAINTAINER, bot: bool = False,
    ) -> str:
        with self._lock:
            self.tokens[token] = TokenInfo(user=self._user(username, bot=bot), scopes=tuple(scopes),
                                           access_level=access_level)
        return token

    def add_branch(self, name: str) -> dict:
        with self._lock:
            branch = {
                "name": name,
                "merged": False,
                "protected": name == self.default_branch,
                "default": name == self.default_branch,
                "commit": {"id": secrets.token_hex(20), "title": "commit"},
                "web_url": f"{self.project_web_url}/-/tree/{name}",
            }
            self.branches[name] = branch
            return branch

    def add_merge_request(
        self, *, source_branch: str = "feature", target_branch: str | None = None, title: str = "A change",
        description: str = "", state: str = "opened", author: str = "alice",
    ) -> dict:
        with self._lock:
            if source_branch not in self.branches:
                self.add_branch(source_branch)
            return self._new_mr(source_branch, target_branch or self.default_branch, title, description,
                                self._user(author), state=state)

    def add_note(self, mr_iid: int, body: str, *, author: str = "alice", system: bool = False) -> dict:
        with self._lock:
            mr = self.merge_requests[mr_iid]
            return self._new_note(mr, body, self._user(author), system=system)

    def add_schedule(
        self, description: str, cron: str, *, ref: str | None = None, cron_timezone: str = "UTC",
        active: bool = True, variables: dict[str, str] | None = None, owner: str = "alice",
    ) -> dict:
        with self._lock:
            schedule = self._new_schedule(
                {"description": description, "cron": cron, "ref": ref or self.default_branch,
                 "cron_timezone": cron_timezone, "active": active},
                self._user(owner),
            )
            for key, value in (variables or {}).items():
                schedule["variables"].append({"key": key, "value": value, "variable_type": "env_var", "raw": False})
            return copy.deepcopy(schedule)

    def fail_next(
        self, pattern: str, status: int, *, times: int = 1, method: str | None = None,
        retry_after: int | None = None, body: Any = None, headers: dict[str, str] | None = None,
        after: bool = False,
    ) -> None:
        """Answer the next `times` requests whose API path matches the regex `pattern` with `status`.

        For example fail_next("/notes", 429, retry_after=0) makes the next notes request rate-limited.
        With after=True the request is carried out first and only the answer is lost, like a 502
        from a proxy whose upstream finished the work.
        """
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        default_bodies = {429: {"message": "429 Too Many Requests"}, 500: {"message": "500 Internal Server Error"},
                          502: "<html>502 Bad Gateway</html>", 503: "<html>503 Service Unavailable</html>"}
        with self._lock:
            self._faults.append(Fault(
                pattern=re.compile(pattern), status=status, times=times, method=method.upper() if method else None,
                headers=hdrs, body=body if body is not None else default_bodies.get(status, {"message": str(status)}),
                after=after,
            ))

    # ----------------------------------------------------------- inspection
    def note_list(self, mr_iid: int) -> list[dict]:
        with self._lock:
            return copy.deepcopy(self.notes.get(mr_iid, []))

    def requests_to(self, method: str, pattern: str) -> list[RecordedRequest]:
        regex = re.compile(pattern)
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and regex.search(r.path)]

    def state(self) -> dict:
        with self._lock:
            return {
                "project": self._project_payload(),
                "branches": sorted(self.branches),
                "merge_requests": [copy.deepcopy(mr) for mr in self.merge_requests.values()],
                "notes": {str(iid): copy.deepcopy(notes) for iid, notes in self.notes.items()},
                "uploads": copy.deepcopy(self.uploads),
                "schedules": [copy.deepcopy(s) for s in self.schedules.values()],
                "pipelines": [copy.deepcopy(p) for p in self.pipelines.values()],
                "lint_requests": copy.deepcopy(self.lint_requests),
                "issues": [copy.deepcopy(i) for i in self.issues.values()],
                "issue_notes": {str(iid): copy.deepcopy(notes) for iid, notes in self.issue_notes.items()},
            }

    # ----------------------------------------------------------- persistence (standalone mode)
    def _persist(self) -> None:
        if not self.state_dir:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
        tmp.replace(self.state_dir / "state.json")

    def _load_state(self) -> None:
        path = self.state_dir / "state.json" if self.state_dir else None
        if not path or not path.exists():
            return
        saved = json.loads(path.read_text(encoding="utf-8"))
        for name in saved.get("branches", []):
            self.add_branch(name)
        self.merge_requests = {mr["iid"]: mr for mr in saved.get("merge_requests", [])}
        self.notes = {int(iid): notes for iid, notes in saved.get("notes", {}).items()}
        self.uploads = saved.get("uploads", [])
        for upload in self.uploads:
            stored = self.state_dir / "uploads" / upload["secret"] / upload["alt_filename"]
            if stored.exists():
                self.upload_files[upload["full_path"]] = stored.read_bytes()
                self.upload_files[upload["legacy_path"]] = stored.read_bytes()
        self.schedules = {s["id"]: s for s in saved.get("schedules", [])}
        self.pipelines = {p["id"]: p for p in saved.get("pipelines", [])}
        self.issues = {i["iid"]: i for i in saved.get("issues", [])}
        self.issue_notes = {int(iid): notes for iid, notes in saved.get("issue_notes", {}).items()}
        ids = [*(i["id"] for i in self.issues.values()), *(n["id"] for ns in self.issue_notes.values() for n in ns),
               *self.merge_requests, *(n["id"] for ns in self.notes.values() for n in ns), *self.schedules,
               *self.pipelines]
        self._ids = itertools.count(max([1000, *ids]) + 1)

    # ----------------------------------------------------------- HTTP plumbing
    def _handle(self, request: Request) -> Response:
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        raw_path = raw_uri.split("?", 1)[0]
        with self._lock:
            try:
                return self._route(request, raw_path)
            except ApiError as err:
                return self._json(err.body, err.status, err.headers)
            finally:
                if request.method != "GET":
                    self._persist()

    def _json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        if isinstance(body, str):
            return Response(body, status=status, headers=headers or {}, content_type="text/html")
        return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")

    def _route(self, request: Request, raw_path: str) -> Response:
        if raw_path.startswith("/__fake__/") or raw_path.startswith(f"{self.base_path}/__fake__/"):
            return self._control(request, raw_path.rsplit("/__fake__/", 1)[1])
        if not raw_path.startswith(self.base_path + "/") and self.base_path:
            # A client that forgot the sub-path hits the instance's front door, which does not know the route.
            raise ApiError(404, "<html><body>404 page not found</body></html>")
        local = raw_path[len(self.base_path):]
        if local in self.upload_files:
            return Response(self.upload_files[local], status=200, content_type="application/octet-stream")
        if not local.startswith("/api/v4/"):
            raise ApiError(404, "<html><body>404 page not found</body></html>")
        api_path = local[len("/api/v4"):]
        record = RecordedRequest(
            method=request.method,
            path=unquote(api_path),
            query=dict(request.args),
            headers=dict(request.headers),
            json=request.get_json(silent=True) if request.is_json else None,
            form={k: v for k, v in request.form.items()},
            files={name: f.read() for name, f in request.files.items()},
        )
        self.requests.append(record)
        response = self._serve_api(request, api_path, record)
        record.status = response.status_code
        return response

    def _serve_api(self, request: Request, api_path: str, record: RecordedRequest) -> Response:
        for fault in list(self._faults):
            if fault.method and fault.method != request.method:
                continue
            if fault.pattern.search(record.path):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                if fault.after:
                    with contextlib.suppress(ApiError):  # the work happens; only the answer is lost
                        self._dispatch(request, api_path, record)
                return self._json(fault.body, fault.status, fault.headers)
        try:
            return self._dispatch(request, api_path, record)
        except ApiError as err:
            record.status = err.status
            raise

    def _control(self, request: Request, action: str) -> Response:
        if action == "state" and request.method == "GET":
            return self._json(self.state())
        if action == "reset" and request.method == "POST":
            self.reset()
            return self._json({"reset": True})
        if action == "fault" and request.method == "POST":
            spec = request.get_json(force=True)
            self.fail_next(spec["pattern"], int(spec["status"]), times=int(spec.get("times", 1)),
                           method=spec.get("method"), retry_after=spec.get("retry_after"))
            return self._json({"queued": True}, 201)
        raise ApiError(404, {"error": "404 Not Found"})

    # ----------------------------------------------------------- auth
    def _auth(self, request: Request, *, write: bool, min_level: int = GUEST) -> TokenInfo:
        token = request.headers.get("PRIVATE-TOKEN")
        auth = request.headers.get("Authorization", "")
        if not token and auth.lower().startswith("bearer "):
            token = auth[7:]
        if not token and request.headers.get("JOB-TOKEN"):
            # A CI job token cannot use these endpoints; GitLab answers 401 here.
            raise ApiError(401, {"message": "401 Unauthorized"})
        info = self.tokens.get(token or "")
        if info is None:
            raise ApiError(401, {"message": "401 Unauthorized"})
        if write and "api" not in info.scopes:
            raise ApiError(403, {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            })
        if not write and not {"api", "read_api"} & set(info.scopes):
            raise ApiError(403, {"error": "insufficient_scope", "scope": "api read_api"})
        if info.access_level < min_level:
            raise ApiError(403, {"message": "403 Forbidden"})
        return info

    # ----------------------------------------------------------- routing
    _PROJECT = re.compile(r"^/projects/(?P<project>[^/]+)(?P<rest>/.*)?$")

    def _dispatch(self, request: Request, api_path: str, record: RecordedRequest) -> Response:
        method = request.method
        if api_path == "/user" and method == "GET":
            return self._json(self._auth(request, write=False).user)
        match = self._PROJECT.match(api_path)
        if not match:
            raise ApiError(404, {"error": "404 Not Found"})
        project_ref = unquote(match.group("project"))
        rest = match.group("rest") or ""
        if project_ref not in (str(self.project_id), self.project_path):
            if rest == "/trigger/pipeline":
                raise _not_found()
            self._auth(request, write=False)
            raise _not_found("Project Not Found")
        if rest == "/trigger/pipeline" and method == "POST":
            return self._trigger_pipeline(request)
        write = method != "GET"
        segments = [unquote(s) for s in rest.split("/")[1:]] if rest else []

        if not segments:
            self._auth(request, write=False)
            if method == "GET":
                return self._json(self._project_payload())
        head = segments[0] if segments else ""
        if head == "merge_requests":
            return self._merge_requests(request, segments[1:], method)
        if head == "uploads" and method == "POST" and len(segments) == 1:
            self._auth(request, write=True, min_level=GUEST)
            return self._upload(request, record)
        if head == "repository" and len(segments) >= 2 and segments[1] == "branches":
            # The branch name may contain '/', URL-encoded as %2F in one segment.
            return self._branches(request, segments[2:], method)
        if head == "pipeline_schedules":
            self._auth(request, write=write, min_level=DEVELOPER if write else REPORTER)
            return self._schedules(request, segments[1:], method)
        if head == "pipeline" and method == "POST" and len(segments) == 1:
            info = self._auth(request, write=True, min_level=DEVELOPER)
            return self._create_pipeline(request, info)
        if head == "pipelines" and method == "GET" and len(segments) == 2:
            self._auth(request, write=False)
            pipeline = self.pipelines.get(int(segments[1])) if segments[1].isdigit() else None
            if not pipeline:
                raise _not_found()
            return self._json(pipeline)
        if head == "issues":
            return self._issues(request, segments[1:], method)
        if segments == ["ci", "lint"] and method == "POST":
            self._auth(request, write=False, min_level=DEVELOPER)
            return self._ci_lint(request)
        self._auth(request, write=write)
        raise ApiError(404, {"error": "404 Not Found"})

    # ----------------------------------------------------------- payload helpers
    def _project_payload(self) -> dict:
        name = self.project_path.rsplit("/", 1)[-1]
        return {
            "id": self.project_id,
            "name": name,
            "path": name,
            "path_with_namespace": self.project_path,
            "default_branch": self.default_branch,
            "web_url": self.project_web_url,
        }

    def _body(self, request: Request) -> dict:
        """python-gitlab sends JSON; curl users send form fields or query strings. Accept all three."""
        data: dict[str, Any] = dict(request.args)
        data.update(request.form.to_dict())
        if request.is_json:
            data.update(request.get_json(silent=True) or {})
        return data

    def _page(self, request: Request, items: list[dict]) -> Response:
        try:
            page = max(1, int(request.args.get("page", 1)))
            per_page = int(request.args.get("per_page", 20))
        except ValueError:
            raise ApiError(400, {"error": "page is invalid"}) from None
        per_page = max(1, min(per_page, self.max_per_page))
        total = len(items)
        total_pages = max(1, -(-total // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
        base = f"{request.host_url.rstrip('/')}{raw_uri.split('?', 1)[0]}"

        def link(to_page: int) -> str:
            params = {k: v for k, v in request.args.items() if k != "page"}
            params.update({"page": str(to_page), "per_page": str(per_page)})
            return f"{base}?{urlencode(params)}"

        headers = {
            "x-page": str(page),
            "x-per-page": str(per_page),
            "x-total": str(total),
            "x-total-pages": str(total_pages),
            "x-next-page": str(page + 1) if page < total_pages else "",
            "x-prev-page": str(page - 1) if page > 1 else "",
        }
        links = []
        if page > 1:
            links.append(f'<{link(page - 1)}>; rel="prev"')
        if page < total_pages:
            links.append(f'<{link(page + 1)}>; rel="next"')
        links.append(f'<{link(1)}>; rel="first"')
        links.append(f'<{link(total_pages)}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return self._json(chunk, 200, headers)

    # ----------------------------------------------------------- merge requests and notes
    def _new_mr(self, source: str, target: str, title: str, description: str, author: dict,
                *, state: str = "opened") -> dict:
        iid = max(self.merge_requests, default=0) + 1
        mr = {
            "id": next(self._ids),
            "iid": iid,
            "project_id": self.project_id,
            "title": title,
            "description": description,
            "state": state,
            "created_at": _now(),
            "updated_at": _now(),
            "source_branch": source,
            "target_branch": target,
            "source_project_id": self.project_id,
            "target_project_id": self.project_id,
            "author": author,
            "labels": [],
            "draft": False,
            "sha": self.branches.get(source, {}).get("commit", {}).get("id"),
            "merge_status": "can_be_merged",
            "detailed_merge_status": "mergeable",
            "references": {"short": f"!{iid}", "relative": f"!{iid}", "full": f"{self.project_path}!{iid}"},
            "web_url": f"{self.project_web_url}/-/merge_requests/{iid}",
        }
        self.merge_requests[iid] = mr
        self.notes.setdefault(iid, [])
        return mr

    def _new_note(self, mr: dict, body: str, author: dict, *, system: bool = False) -> dict:
        note = {
            "id": next(self._ids),
            "type": None,
            "body": body,
            "attachment": None,
            "author": author,
            "created_at": _now(),
            "updated_at": _now(),
            "system": system,
            "noteable_id": mr["id"],
            "noteable_type": "MergeRequest",
            "project_id": self.project_id,
            "resolvable": False,
            "confidential": False,
            "internal": False,
            "noteable_iid": mr["iid"],
            "commands_changes": {},
        }
        self.notes.setdefault(mr["iid"], []).append(note)
        return note

    def _merge_requests(self, request: Request, segments: list[str], method: str) -> Response:
        if not segments:
            if method == "GET":
                self._auth(request, write=False)
                items = list(self.merge_requests.values())
                args = request.args
                state = args.get("state", "all")
                if state != "all":
                    items = [mr for mr in items if mr["state"] == state]
                for key in ("source_branch", "target_branch"):
                    if args.get(key):
                        items = [mr for mr in items if mr[key] == args[key]]
                if args.get("search"):
                    needle = args["search"].lower()
                    items = [mr for mr in items if needle in (mr["title"] + mr["description"]).lower()]
                items.sort(key=lambda mr: mr["id"], reverse=args.get("sort", "desc") == "desc")
                return self._page(request, items)
            if method == "POST":
                info = self._auth(request, write=True, min_level=DEVELOPER)
                data = self._body(request)
                missing = [k for k in ("source_branch", "target_branch", "title") if not data.get(k)]
                if missing:
                    raise ApiError(400, {"error": f"{', '.join(missing)} is missing"})
                if data["source_branch"] not in self.branches:
                    raise ApiError(400, {"message": ["Source branch does not exist"]})
                if data["target_branch"] not in self.branches:
                    raise ApiError(400, {"message": ["Target branch does not exist"]})
                for mr in self.merge_requests.values():
                    if (mr["state"] == "opened" and mr["source_branch"] == data["source_branch"]
                            and mr["target_branch"] == data["target_branch"]):
                        raise ApiError(409, {"message": [
                            f"Another open merge request already exists for this source branch: !{mr['iid']}"]})
                mr = self._new_mr(data["source_branch"], data["target_branch"], data["title"],
                                  data.get("description") or "", info.user)
                return self._json(mr, 201)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        if not segments[0].isdigit():
            raise ApiError(404, {"error": "404 Not Found"})
        iid = int(segments[0])
        info = self._auth(request, write=method != "GET")
        mr = self.merge_requests.get(iid)
        if mr is None:
            raise _not_found()
        if len(segments) == 1:
            if method == "GET":
                return self._json(mr)
            if method == "PUT":
                if info.access_level < DEVELOPER:
                    raise ApiError(403, {"message": "403 Forbidden"})
                data = self._body(request)
                for key in ("title", "description", "target_branch", "labels"):
                    if key in data:
                        mr[key] = data[key]
                if data.get("state_event") == "close":
                    mr["state"] = "closed"
                elif data.get("state_event") == "reopen":
                    mr["state"] = "opened"
                mr["updated_at"] = _now()
                return self._json(mr)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        if segments[1] != "notes":
            raise ApiError(404, {"error": "404 Not Found"})
        notes = self.notes.setdefault(iid, [])
        if len(segments) == 2:
            if method == "GET":
                # GitLab lists MR notes newest first unless told otherwise.
                order_by = request.args.get("order_by", "created_at")
                key = "updated_at" if order_by == "updated_at" else "id"
                ordered = sorted(notes, key=lambda n: n[key], reverse=request.args.get("sort", "desc") == "desc")
                return self._page(request, ordered)
            if method == "POST":
                body = self._body(request).get("body")
                self._check_note_body(body)
                return self._json(self._new_note(mr, body, info.user), 201)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        note = next((n for n in notes if str(n["id"]) == segments[2]), None)
        if note is None:
            raise _not_found("Note Not Found")
        if method == "GET":
            return self._json(note)
        if method == "PUT":
            if note["author"]["id"] != info.user["id"]:
                raise ApiError(403, {"message": "403 Forbidden"})
            body = self._body(request).get("body")
            self._check_note_body(body)
            note["body"] = body
            note["updated_at"] = _now()
            return self._json(note)
        if method == "DELETE":
            if note["author"]["id"] != info.user["id"] and info.access_level < MAINTAINER:
                raise ApiError(403, {"message": "403 Forbidden"})
            notes.remove(note)
            return Response(status=204)
        raise ApiError(405, {"error": "405 Method Not Allowed"})

    @staticmethod
    def _check_note_body(body: Any) -> None:
        if not isinstance(body, str) or not body.strip():
            raise ApiError(400, {"message": {"note": ["can't be blank"]}})
        if len(body) > 1_000_000:
            raise ApiError(400, {"message": {"note": ["is too long (maximum is 1000000 characters)"]}})

    # ----------------------------------------------------------- uploads
    def _upload(self, request: Request, record: RecordedRequest) -> Response:
        if "file" not in record.files:
            raise ApiError(400, {"error": "file is missing"})
        storage = request.files["file"]
        filename = Path(storage.filename or "file").name
        content = record.files["file"]
        secret = secrets.token_hex(16)
        relative = f"/uploads/{secret}/{quote(filename)}"
        modern = f"/-/project/{self.project_id}{relative}"
        legacy = f"/{self.project_path}{relative}"
        alt = filename.rsplit(".", 1)[0]
        payload: dict[str, Any] = {
            "id": next(self._ids),
            "alt": alt,
            "url": relative,
            "markdown": f"![{alt}]({relative})",
        }
        if self.upload_style == "modern":
            payload["full_path"] = modern
        elif self.upload_style == "legacy":
            payload["full_path"] = legacy
        self.upload_files[modern] = content
        self.upload_files[legacy] = content
        self.uploads.append({**payload, "full_path": payload.get("full_path", legacy), "secret": secret,
                             "alt_filename": filename, "legacy_path": legacy, "size": len(content)})
        if self.state_dir:
            target = self.state_dir / "uploads" / secret / filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return self._json(payload, 201)

    # ----------------------------------------------------------- branches
    def _branches(self, request: Request, segments: list[str], method: str) -> Response:
        if not segments:
            if method == "GET":
                self._auth(request, write=False)
                return self._page(request, sorted(self.branches.values(), key=lambda b: b["name"]))
            if method == "POST":
                self._auth(request, write=True, min_level=DEVELOPER)
                data = self._body(request)
                name, ref = data.get("branch"), data.get("ref")
                if not name or not ref:
                    raise ApiError(400, {"error": "branch is missing" if not name else "ref is missing"})
                if name in self.branches:
                    raise ApiError(400, {"message": "Branch already exists"})
                # A branch name or a commit SHA (jobs branch off CI_COMMIT_SHA).
                if ref not in self.branches and not re.fullmatch(r"[0-9a-f]{7,40}", ref):
                    raise ApiError(400, {"message": "Invalid reference name: " + ref})
                return self._json(self.add_branch(name), 201)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        self._auth(request, write=method != "GET")
        name = "/".join(segments)
        if name not in self.branches:
            raise _not_found("Branch Not Found")
        if method == "GET":
            return self._json(self.branches[name])
        raise ApiError(405, {"error": "405 Method Not Allowed"})

    # ----------------------------------------------------------- pipeline schedules
    def _full_ref(self, ref: str) -> str:
        # GitLab (16.9+) stores schedule refs as full refs and expands a short branch name.
        if ref.startswith("refs/"):
            short = ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
            if short not in self.branches:
                raise ApiError(400, {"message": {"ref": ["is ambiguous or does not exist"]}})
            return ref
        if ref not in self.branches:
            raise ApiError(400, {"message": {"ref": ["is ambiguous or does not exist"]}})
        return f"refs/heads/{ref}"

    @staticmethod
    def _check_cron(cron: str, timezone: str) -> None:
        from croniter import croniter

        problems: dict[str, list[str]] = {}
        if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
            problems["cron"] = ["is invalid syntax"]
        try:
            import zoneinfo

            zoneinfo.ZoneInfo(timezone)
        except Exception:
            problems["cron_timezone"] = ["is invalid syntax"]
        if problems:
            raise ApiError(400, {"message": problems})

    def _next_run(self, schedule: dict) -> str | None:
        if not schedule["active"]:
            return None
        import zoneinfo

        from croniter import croniter

        now = dt.datetime.now(zoneinfo.ZoneInfo(schedule["cron_timezone"]))
        nxt = croniter(schedule["cron"], now).get_next(dt.datetime)
        return nxt.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def _new_schedule(self, data: dict, owner: dict) -> dict:
        cron_timezone = data.get("cron_timezone") or "UTC"
        self._check_cron(data.get("cron"), cron_timezone)
        schedule = {
            "id": next(self._ids),
            "description": data["description"],
            "ref": self._full_ref(data["ref"]),
            "cron": data["cron"],
            "cron_timezone": cron_timezone,
            "next_run_at": None,
            "active": _as_bool(data.get("active", True)),
            "created_at": _now(),
            "updated_at": _now(),
            "owner": owner,
            "last_pipeline": None,
            "variables": [],
        }
        schedule["next_run_at"] = self._next_run(schedule)
        self.schedules[schedule["id"]] = schedule
        return schedule

    @staticmethod
    def _schedule_summary(schedule: dict) -> dict:
        # The list endpoint does not include variables or the last pipeline.
        return {k: v for k, v in schedule.items() if k not in ("variables", "last_pipeline")}

    def _schedules(self, request: Request, segments: list[str], method: str) -> Response:
        info = self._auth(request, write=method != "GET")
        if not segments:
            if method == "GET":
                items = sorted(self.schedules.values(), key=lambda s: s["id"])
                scope = request.args.get("scope")
                if scope == "active":
                    items = [s for s in items if s["active"]]
                elif scope == "inactive":
                    items = [s for s in items if not s["active"]]
                return self._page(request, [self._schedule_summary(s) for s in items])
            if method == "POST":
                data = self._body(request)
                missing = [k for k in ("description", "ref", "cron") if not data.get(k)]
                if missing:
                    raise ApiError(400, {"error": f"{', '.join(missing)} is missing"})
                return self._json(self._new_schedule(data, info.user), 201)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        schedule = self.schedules.get(int(segments[0])) if segments[0].isdigit() else None
        if schedule is None:
            raise _not_found()
        if len(segments) == 1:
            if method == "GET":
                return self._json(schedule)
            if method == "PUT":
                data = self._body(request)
                cron = data.get("cron", schedule["cron"])
                tz = data.get("cron_timezone", schedule["cron_timezone"])
                self._check_cron(cron, tz)
                if "ref" in data:
                    schedule["ref"] = self._full_ref(data["ref"])
                if "description" in data:
                    schedule["description"] = data["description"]
                if "active" in data:
                    schedule["active"] = _as_bool(data["active"])
                schedule["cron"], schedule["cron_timezone"] = cron, tz
                schedule["updated_at"] = _now()
                schedule["next_run_at"] = self._next_run(schedule)
                return self._json(schedule)
            if method == "DELETE":
                del self.schedules[schedule["id"]]
                return Response(status=204)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        if segments[1] != "variables":
            raise ApiError(404, {"error": "404 Not Found"})
        variables = schedule["variables"]
        if len(segments) == 2 and method == "POST":
            data = self._body(request)
            key = data.get("key")
            if not key or "value" not in data:
                raise ApiError(400, {"error": "key is missing" if not key else "value is missing"})
            if not re.fullmatch(r"[A-Za-z0-9_]+", key):
                raise ApiError(400, {"message": {"key": ["can contain only letters, digits and '_'."]}})
            if any(v["key"] == key for v in variables):
                raise ApiError(400, {"message": {"key": [f"({key}) has already been taken"]}})
            variable = {"key": key, "value": str(data["value"]), "variable_type": data.get("variable_type", "env_var"),
                        "raw": False}
            variables.append(variable)
            schedule["updated_at"] = _now()
            return self._json(variable, 201)
        if len(segments) == 3:
            variable = next((v for v in variables if v["key"] == segments[2]), None)
            if variable is None:
                raise _not_found("Variable Not Found")
            if method == "PUT":
                data = self._body(request)
                if "value" in data:
                    variable["value"] = str(data["value"])
                if "variable_type" in data:
                    variable["variable_type"] = data["variable_type"]
                return self._json(variable)
            if method == "DELETE":
                variables.remove(variable)
                return self._json(variable, 202)
        raise ApiError(405, {"error": "405 Method Not Allowed"})

    # ----------------------------------------------------------- pipelines
    def _new_pipeline(self, ref: str, source: str, variables: dict[str, str], user: dict | None) -> dict:
        if ref not in self.branches:
            raise ApiError(400, {"message": {"base": ["Reference not found"]}})
        pipeline_id = next(self._ids)
        pipeline = {
            "id": pipeline_id,
            "iid": len(self.pipelines) + 1,
            "project_id": self.project_id,
            "sha": self.branches[ref]["commit"]["id"],
            "ref": ref,
            "status": "created",
            "source": source,
            "created_at": _now(),
            "updated_at": _now(),
            "web_url": f"{self.project_web_url}/-/pipelines/{pipeline_id}",
            "user": user,
            "variables": dict(variables),  # not part of GitLab's payload; kept so tests can inspect it
        }
        self.pipelines[pipeline_id] = pipeline
        return pipeline

    def _trigger_pipeline(self, request: Request) -> Response:
        data: dict[str, Any] = {}
        variables: dict[str, str] = {}
        for source in (request.args, request.form):
            for key, value in source.items():
                found = re.fullmatch(r"variables\[(.+)\]", key)
                if found:
                    variables[found.group(1)] = value
                else:
                    data[key] = value
        if request.is_json:
            body = request.get_json(silent=True) or {}
            variables.update({str(k): str(v) for k, v in (body.pop("variables", None) or {}).items()})
            data.update(body)
        if not data.get("token") or data["token"] != self.trigger_token:
            raise _not_found()
        if not data.get("ref"):
            raise ApiError(400, {"error": "ref is missing"})
        pipeline = self._new_pipeline(data["ref"], "trigger", variables, None)
        return self._json({k: v for k, v in pipeline.items() if k != "variables"}, 201)

    def _create_pipeline(self, request: Request, info: TokenInfo) -> Response:
        data = self._body(request)
        if not data.get("ref"):
            raise ApiError(400, {"error": "ref is missing"})
        raw_vars = data.get("variables") or []
        if not isinstance(raw_vars, list):
            raise ApiError(400, {"error": "variables is invalid"})
        variables = {str(v["key"]): str(v["value"]) for v in raw_vars}
        pipeline = self._new_pipeline(data["ref"], "api", variables, info.user)
        return self._json({k: v for k, v in pipeline.items() if k != "variables"}, 201)

    # ----------------------------------------------------------- issues and incidents
    ISSUE_TYPES = ("issue", "incident", "test_case", "task")

    def add_issue(self, title: str, *, description: str = "", issue_type: str = "issue", state: str = "opened",
                  labels: list[str] | None = None, author: str = "alice") -> dict:
        with self._lock:
            issue = self._new_issue({"title": title, "description": description, "issue_type": issue_type,
                                     "labels": labels or []}, self._user(author))
            if state == "closed":
                issue["state"], issue["closed_at"] = "closed", _now()
            return copy.deepcopy(issue)

    def _new_issue(self, data: dict, author: dict) -> dict:
        iid = max([0, *self.issues]) + 1
        labels = data.get("labels") or []
        if isinstance(labels, str):
            labels = [label.strip() for label in labels.split(",") if label.strip()]
        issue_type = data.get("issue_type") or "issue"
        issue = {
            "id": next(self._ids), "iid": iid, "project_id": self.project_id, "title": data["title"],
            "description": data.get("description") or "", "state": "opened", "created_at": _now(),
            "updated_at": _now(), "closed_at": None, "labels": sorted(set(labels)), "author": author,
            "assignees": [], "issue_type": issue_type, "type": issue_type.upper(), "confidential": False,
            "user_notes_count": 0, "web_url": f"{self.project_web_url}/-/issues/{iid}",
        }
        self.issues[iid] = issue
        self.issue_notes[iid] = []
        return issue

    def _issues(self, request: Request, segments: list[str], method: str) -> Response:
        if not segments:
            if method == "GET":
                self._auth(request, write=False)
                items = sorted(self.issues.values(), key=lambda i: i["iid"], reverse=True)  # created_at desc
                state = request.args.get("state")
                if state in ("opened", "closed"):
                    items = [i for i in items if i["state"] == state]
                if request.args.get("issue_type"):
                    items = [i for i in items if i["issue_type"] == request.args["issue_type"]]
                if request.args.get("labels"):
                    wanted = {label.strip() for label in request.args["labels"].split(",")}
                    items = [i for i in items if wanted <= set(i["labels"])]
                if request.args.get("search"):
                    needle = request.args["search"].lower()
                    fields = (request.args.get("in") or "title,description").split(",")
                    items = [i for i in items if any(needle in (i.get(f) or "").lower() for f in fields)]
                return self._page(request, items)
            if method == "POST":
                data = self._body(request)
                issue_type = data.get("issue_type") or "issue"
                # Incidents need Reporter or higher; plain issues only Guest.
                info = self._auth(request, write=True, min_level=REPORTER if issue_type == "incident" else GUEST)
                if not data.get("title"):
                    raise ApiError(400, {"error": "title is missing"})
                if issue_type not in self.ISSUE_TYPES:
                    raise ApiError(400, {"error": "issue_type does not have a valid value"})
                return self._json(self._new_issue(data, info.user), 201)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        issue = self.issues.get(int(segments[0])) if segments[0].isdigit() else None
        info = self._auth(request, write=method != "GET")
        if issue is None:
            raise _not_found()
        if len(segments) == 1:
            if method == "GET":
                return self._json(issue)
            if method == "PUT":
                data = self._body(request)
                for key in ("title", "description"):
                    if key in data:
                        issue[key] = data[key]
                if "labels" in data:
                    labels = data["labels"]
                    issue["labels"] = sorted({x.strip() for x in labels.split(",") if x.strip()}) \
                        if isinstance(labels, str) else sorted(set(labels))
                if data.get("state_event") == "close" and issue["state"] == "opened":
                    issue["state"], issue["closed_at"] = "closed", _now()
                elif data.get("state_event") == "reopen" and issue["state"] == "closed":
                    issue["state"], issue["closed_at"] = "opened", None
                issue["updated_at"] = _now()
                return self._json(issue)
            raise ApiError(405, {"error": "405 Method Not Allowed"})
        if segments[1] != "notes" or len(segments) != 2:
            raise ApiError(404, {"error": "404 Not Found"})
        notes = self.issue_notes.setdefault(issue["iid"], [])
        if method == "GET":
            return self._page(request, sorted(notes, key=lambda n: n["id"],
                                              reverse=request.args.get("sort", "desc") == "desc"))
        if method == "POST":
            body = self._body(request).get("body")
            if not body:
                raise ApiError(400, {"error": "body is missing"})
            note = {"id": next(self._ids), "body": body, "author": info.user, "created_at": _now(),
                    "updated_at": _now(), "system": False, "noteable_id": issue["id"], "noteable_type": "Issue",
                    "noteable_iid": issue["iid"], "internal": False}
            notes.append(note)
            issue["user_notes_count"] = len([n for n in notes if not n["system"]])
            return self._json(note, 201)
        raise ApiError(405, {"error": "405 Method Not Allowed"})

    # ----------------------------------------------------------- CI lint
    def _ci_lint(self, request: Request) -> Response:
        import yaml

        data = self._body(request)
        content = data.get("content")
        if content is None:
            raise ApiError(400, {"error": "content is missing"})
        self.lint_requests.append(dict(data))
        if self.lint_result is not None:
            return self._json(self.lint_result)
        errors: list[str] = []
        merged = ""
        try:
            docs = [d for d in yaml.safe_load_all(content) if d is not None]
            config = docs[-1] if docs else {}
            if not isinstance(config, dict):
                errors.append("Invalid configuration format")
            else:
                reserved = {"stages", "variables", "default", "include", "workflow", "spec", "image", "services",
                            "before_script", "after_script", "cache"}
                for name, job in config.items():
                    if name in reserved or str(name).startswith("."):
                        continue
                    if not isinstance(job, dict):
                        errors.append(f"jobs:{name} config should be a hash")
                    elif not {"script", "trigger", "extends", "run"} & set(job):
                        errors.append(f"jobs:{name} config should implement the script:, run:, or trigger: keyword")
                merged = yaml.safe_dump(config, sort_keys=False)
        except yaml.YAMLError as exc:
            errors.append(f"(<unknown>): {exc}")
        return self._json({"valid": not errors, "errors": errors, "warnings": [], "merged_yaml": merged,
                           "includes": []})


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.gitlab_server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--base-path", default="", help="sub-path such as /gitlab")
    parser.add_argument("--state-dir", help="persist state (state.json, uploads/) here and reload it on start")
    parser.add_argument("--project-id", type=int, default=DEFAULT_PROJECT_ID)
    parser.add_argument("--project-path", default=DEFAULT_PROJECT_PATH)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--trigger-token", default=DEFAULT_TRIGGER_TOKEN)
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    parser.add_argument("--branch", action="append", default=[], help="extra branch that exists (repeatable)")
    args = parser.parse_args(argv)
    fake = FakeGitLab(host=args.host, port=args.port, base_path=args.base_path, state_dir=args.state_dir,
                      project_id=args.project_id, project_path=args.project_path, token=args.token,
                      trigger_token=args.trigger_token, access_log=args.access_log)
    for branch in args.branch:
        fake.add_branch(branch)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake.start()
    # One line a harness can wait for and parse.
    print(json.dumps({"url": fake.url, "api_url": fake.api_url, "port": fake.port,
                      "project_id": fake.project_id}), flush=True)
    try:
        stop.wait()
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A loopback stand-in for GitLab's PyPI package registry API (projects/:id/packages/pypi).

It follows GitLab's documented endpoints, which pip, uv and twine use:

- `POST /api/v4/projects/:id/packages/pypi`: twine's upload (multipart `content` plus
  metadata fields); 201, 400 when that file already exists, 401/403 without a valid token.
- `GET  /api/v4/projects/:id/packages/pypi/simple/` and `/simple/<name>/`: the PEP 503
  index (names normalised as PEP 503 says), links to `../../files/<sha256>/<file>#sha256=...`.
- `GET  /api/v4/projects/:id/packages/pypi/files/<sha256>/<file>`: the file itself.

`:id` is the numeric project id or the URL-encoded path (`mlci%2Fmlci`), as in GitLab.
Credentials are HTTP Basic: `gitlab-ci-token` + a CI job token, or any user name with a
deploy/personal token. A private project answers 401 without them (GitLab's answer
to pip, which then retries with the credentials from the URL); a public one reads anonymously.
Every request is recorded with the user name it authenticated as (never the secret).

    python -m tests.fakes.pypi_registry --project mlci/mlci --project-id 77 --job-token T
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import json
import re
import signal
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class StoredFile:
    project: str
    name: str
    version: str
    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class Request:
    method: str
    path: str
    status: int
    user: str | None  # who the credentials belonged to; None: anonymous
    fields: dict[str, str] = field(default_factory=dict)


class FakePyPIRegistry:
    """GitLab's PyPI registry of one or more projects, on 127.0.0.1 and a free port."""

    def __init__(self, *, projects: dict[str, str] | None = None, job_tokens: tuple[str, ...] = (),
                 public: bool = False, host: str = "127.0.0.1", port: int = 0):
        # project id -> path; both spellings address the project, as in GitLab
        self.projects = dict(projects or {"77": "mlci/mlci"})
        self.job_tokens = set(job_tokens)
        self.public = public
        self.files: list[StoredFile] = []
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the request list is the log
                pass

            def do_GET(self):
                registry._handle(self, "GET")

            def do_POST(self):
                registry._handle(self, "POST")

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakePyPIRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakePyPIRegistry:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def server_fqdn(self) -> str:
        """What GitLab calls CI_SERVER_FQDN: host and port."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.server_fqdn}"

    def api_url(self) -> str:
        return f"{self.url}/api/v4"

    def simple_url(self, project: str) -> str:
        return f"{self.api_url()}/projects/{quote(project, safe='')}/packages/pypi/simple"

    def add_file(self, project: str, path: Path) -> None:
        name, version = _name_version(path.name)
        with self._lock:
            self.files.append(StoredFile(self._project_path(project), name, version, path.name, path.read_bytes()))

    # ------------------------------------------------------------------ HTTP
    _ROUTE = re.compile(r"^/api/v4/projects/(?P<project>[^/]+)/packages/pypi(?P<rest>/.*)?$")

    def _project_path(self, ref: str) -> str | None:
        ref = unquote(ref)
        if ref in self.projects:
            return self.projects[ref]
        return ref if ref in self.projects.values() else None

    def _user(self, handler) -> str | None:
        header = handler.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        with contextlib.suppress(ValueError):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if password in self.job_tokens:
                return user
        return ""  # credentials that GitLab would refuse

    def _handle(self, handler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        match = self._ROUTE.match(path)
        user = self._user(handler)
        record = Request(method, path, 0, user or None)
        try:
            status, headers, body = self._dispatch(handler, method, match, user, record)
        except Exception as exc:  # pragma: no cover - a fake's bug must show, not hang the client
            status, headers, body = 500, {"Content-Type": "text/plain"}, str(exc).encode()
        record.status = status
        with self._lock:
            self.requests.append(record)
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if method != "HEAD":
            handler.wfile.write(body)

    def _dispatch(self, handler, method, match, user, record):
        if not match:
            return 404, {"Content-Type": "application/json"}, b'{"error":"404 Not Found"}'
        project = self._project_path(match["project"])
        rest = match["rest"] or ""
        if user == "":
            return 401, {"Content-Type": "application/json"}, b'{"message":"401 Unauthorized"}'
        if project is None:
            return 404, {"Content-Type": "application/json"}, b'{"message":"404 Project Not Found"}'
        if method == "POST" and rest in ("", "/"):
            if user is None:
                return 401, {"Content-Type": "application/json", "WWW-Authenticate": 'Basic realm="GitLab"'}, \
                    b'{"message":"401 Unauthorized"}'
            return self._upload(handler, project, record)
        if method != "GET":
            return 405, {}, b""
        if user is None and not self.public:
            # pip and uv send the URL's credentials only after this challenge
            return 401, {"WWW-Authenticate": 'Basic realm="GitLab Package Registry"'}, b""
        if rest in ("/simple", "/simple/"):
            names = sorted({normalize(f.name) for f in self.files if f.project == project})
            links = "".join(f'<a href="{n}/">{n}</a><br>\n' for n in names)
            return 200, {"Content-Type": "text/html"}, _page("Simple index", links)
        simple = re.fullmatch(r"/simple/(?P<name>[^/]+)/?", rest)
        if simple:
            wanted = normalize(unquote(simple["name"]))
            found = [f for f in self.files if f.project == project and normalize(f.name) == wanted]
            if not found:
                return 404, {"Content-Type": "application/json"}, b'{"message":"404 Package Not Found"}'
            links = "".join(
                f'<a href="../../files/{f.sha256}/{quote(f.filename)}#sha256={f.sha256}" '
                f'data-requires-python="&gt;=3.10">{html.escape(f.filename)}</a><br>\n' for f in found)
            return 200, {"Content-Type": "text/html"}, _page(f"Links for {wanted}", links)
        download = re.fullmatch(r"/files/(?P<sha>[0-9a-f]{64})/(?P<file>[^/]+)", rest)
        if download:
            for f in self.files:
                if f.project == project and f.sha256 == download["sha"] and f.filename == unquote(download["file"]):
                    return 200, {"Content-Type": "application/octet-stream"}, f.content
        return 404, {"Content-Type": "application/json"}, b'{"message":"404 Not Found"}'

    def _upload(self, handler, project: str, record: Request):
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + handler.headers.get("Content-Type", "").encode() + b"\r\n\r\n" + raw)
        fields: dict[str, str] = {}
        content: tuple[str, bytes] | None = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "content":
                content = (part.get_filename(), part.get_payload(decode=True))
            elif name:
                fields[name] = part.get_content().strip()
        record.fields = fields
        if content is None or not fields.get("name") or not fields.get("version"):
            return 400, {"Content-Type": "application/json"}, b'{"message":"400 Bad request - content is missing"}'
        filename, data = content
        if fields.get("sha256_digest") and fields["sha256_digest"] != hashlib.sha256(data).hexdigest():
            return 400, {"Content-Type": "application/json"}, b'{"message":"400 Bad request - sha256 mismatch"}'
        with self._lock:
            if any(f.project == project and f.filename == filename for f in self.files):
                return 400, {"Content-Type": "application/json"}, \
                    b'{"message":"400 Bad request - File name has already been taken"}'
            self.files.append(StoredFile(project, fields["name"], fields["version"], filename, data))
        return 201, {"Content-Type": "application/json"}, b'{"message":"201 Created"}'


def _page(title: str, links: str) -> bytes:
    return (f"<!DOCTYPE html>\n<html><head><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>\n{links}</body></html>\n").encode()


def _name_version(filename: str) -> tuple[str, str]:
    if filename.endswith(".whl"):
        name, version = filename.split("-")[:2]
        return name, version
    stem = filename.removesuffix(".tar.gz").removesuffix(".zip")
    name, _, version = stem.rpartition("-")
    return name, version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.pypi_registry", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default="mlci/mlci", help="path of the project whose registry this is")
    parser.add_argument("--project-id", default="77")
    parser.add_argument("--job-token", action="append", default=[], help="a token that authenticates (repeatable)")
    parser.add_argument("--public", action="store_true", help="anonymous reads, as for a public project")
    parser.add_argument("--file", action="append", default=[], help="a wheel or sdist to serve from the start")
    args = parser.parse_args(argv)
    registry = FakePyPIRegistry(projects={args.project_id: args.project}, job_tokens=tuple(args.job_token),
                                public=args.public, host=args.host, port=args.port)
    for path in args.file:
        registry.add_file(args.project, Path(path))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    registry.start()
    print(json.dumps({"url": registry.url, "server_fqdn": registry.server_fqdn,
                      "simple": registry.simple_url(args.project)}), flush=True)
    try:
        stop.wait()
    finally:
        registry.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The one place that knows what a secret looks like, and masks it in everything mlci writes.

Secret forms, whatever the text around them:
- userinfo in any URL (`https://user:pass@host` keeps `user`, `https://token@host` loses it all);
- query parameters that carry credentials (`token=`, `private_token=`, `access_token=`, `*_key=`,
  `signature=`, `X-Amz-*=`, ...);
- credential headers written out (`Authorization: Bearer ...`, `PRIVATE-TOKEN: ...`, `JOB-TOKEN`,
  also as a Python or JSON mapping) and bare `Bearer ...` values;
- GitLab token shapes (`glpat-...`, `glptt-...`, ...);
- the values of secret variables: names ending in `_TOKEN`, `_PASSWORD`, `_SECRET`, `_KEY` (and a few
  more), well-known ones such as `CI_JOB_JWT`, the names listed in `MLCI_MASKED_VARIABLES` (GitLab
  does not tell a job which of its variables are masked), and values registered at run time (a token
  read from a configurable variable). Each value is also masked JSON-escaped and percent-encoded.

The sinks apply it, so no caller can forget: `Context.info/warn/error`, the streams `mlci.cli.main`
installs, `mlci.outputs.atomic_write` (every file in mlci-out/), the training command's passthrough
and `train.log`, MLflow tags/params/descriptions, GitLab notes and merge requests, webhooks.
Importing this module stays cheap: the run-cache hit path uses it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

MASK = "[MASKED]"
# Shorter values would blank out ordinary words; GitLab itself only masks values of 8+ characters.
MIN_SECRET_LENGTH = 6
MASKED_VARIABLES = "MLCI_MASKED_VARIABLES"

# Secret whatever their name says.
SECRET_ENV_VARS = frozenset({
    "MLCI_GITLAB_TOKEN",
    "MLCI_TRIGGER_TOKEN",
    "CI_JOB_TOKEN",
    "GITLAB_TOKEN",
    "CI_JOB_JWT",
    "CI_JOB_JWT_V1",
    "CI_JOB_JWT_V2",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_PASSWORD",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
    "MLCI_TUNE_STORAGE",  # a database URL with its password (mlci tune)
    "CI_DEPENDENCY_PROXY_PASSWORD",
    "MLCI_DEPLOY_CREDENTIALS",
})
SECRET_NAME_SUFFIXES = ("_TOKEN", "_PASSWORD", "_PASSWD", "_SECRET", "_KEY", "_JWT", "_CREDENTIALS")
# Names that end like a secret but hold none; mlci's own config variables among them.
NOT_SECRET_ENV_VARS = frozenset({"MLCI_REPORT_KEY"})

_SECRET_PARAM = (
    r"(?:[A-Za-z0-9_.\-]*[_.\-])?(?:token|key|apikey|secret|password|passwd|pwd|signature|sig|credential|"
    r"credentials|auth)|x-amz-[A-Za-z\-]+"
)
_QUERY_SECRET = re.compile(rf"(?i)((?:[?&;]|&amp;)(?:{_SECRET_PARAM})=)([^&#\s\"'<>;)\]]+)")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/?#\"'<>\[\]@]*(?:@[^\s/?#\"'<>\[\]@]*)*)@")
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|private-token|job-token|deploy-token|x-gitlab-token|"
    r"x-api-key|api-key)([\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token|digest)\s+)?([^\s\"',}]+)"
)
# A bare credential; it must hold a digit so that prose ("basic authentication") stays.
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)(?=[A-Za-z\-._~+/]*[0-9])([A-Za-z0-9\-._~+/]{8,}=*)")
_TOKEN_SHAPES = re.compile(
    r"\b(glpat|glptt|gldt|glrt|glrtr|glcbt|glft|glimt|glagent|gloas|glsoat|glffct|glwt)-[A-Za-z0-9_\-.]{8,}"
)

_registered: set[str] = set()
_registered_lock = threading.Lock()
_generation = 0  # bumped on every registration, so cached redactors notice


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper in NOT_SECRET_ENV_VARS:
        return False
    return upper in SECRET_ENV_VARS or upper.endswith(SECRET_NAME_SUFFIXES)


def masked_variable_names(env: Mapping[str, str]) -> set[str]:
    """Names listed in MLCI_MASKED_VARIABLES (comma or space separated)."""
    return {part for part in re.split(r"[\s,]+", env.get(MASKED_VARIABLES, "")) if part}


def secret_names(env: Mapping[str, str]) -> list[str]:
    listed = masked_variable_names(env)
    return sorted(name for name in env if name in listed or is_secret_name(name))


def register_secret(*values: str | None) -> None:
    """Mask these values from now on in this process (a token read from a configurable variable)."""
    global _generation
    new = {v for v in values if v and len(v) >= MIN_SECRET_LENGTH} - _registered
    if new:
        with _registered_lock:
            _registered.update(new)
            _generation += 1


def register_secret_variables(names: Iterable[str], env: Mapping[str, str] | None = None) -> None:
    """Mask the values of these variables, whatever they are called (e.g. named by mlci.yml as a credential)."""
    env = os.environ if env is None else env
    for name in names:
        if name and env.get(name):
            register_secret(*_pieces(env[name]))


_current: tuple[tuple, Redactor] | None = None


def current_redactor() -> Redactor:
    """The redactor for this process's environment and every value registered so far (cached)."""
    global _current
    key = (_generation, hash(frozenset(os.environ.items())))
    if _current is None or _current[0] != key:
        _current = (key, Redactor.from_env())
    return _current[1]


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    values: set[str] = set()
    for name in secret_names(env):
        values.update(_pieces(env.get(name, "")))
    with _registered_lock:
        values.update(_registered)
    return sorted(values, key=len, reverse=True)


def _pieces(value: str) -> set[str]:
    """A value, and each line of a multi-line one (a PEM key streamed line by line)."""
    found = {value} if len(value) >= MIN_SECRET_LENGTH else set()
    if "\n" in value:
        found.update(line.strip() for line in value.splitlines() if len(line.strip()) >= MIN_SECRET_LENGTH)
    return found


def _encodings(value: str) -> set[str]:
    """The value as text, inside JSON, and percent-encoded in a URL."""
    forms = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value, safe="")}
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


@lru_cache(maxsize=64)
def _value_pattern(values: tuple[str, ...]) -> re.Pattern | None:
    forms = sorted({form for value in values for form in _encodings(value)}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile("|".join(re.escape(form) for form in forms))


_VARIABLE_REFERENCE = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def _mask_userinfo(match: re.Match) -> str:
    userinfo = match.group(2)
    if not userinfo:
        return match.group(0)
    user, colon, password = userinfo.partition(":")
    if _VARIABLE_REFERENCE.fullmatch(password if colon else user):
        return match.group(0)  # `${CI_JOB_TOKEN}` names a secret the job expands; the text holds none
    return f"{match.group(1)}{user}:{MASK}@" if colon and user else f"{match.group(1)}{MASK}@"


def redact_patterns(text: str) -> str:
    """Mask every secret form that is recognisable without knowing the value."""
    if "://" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _TOKEN_SHAPES.sub(lambda m: f"{m.group(1)}-{MASK}", text)


class Redactor:
    """Masks a fixed set of secret values plus every recognisable secret form."""

    def __init__(self, values: Iterable[str] = ()):
        self.values = tuple(sorted({v for v in values if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True))
        self._pattern = _value_pattern(self.values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Redactor:
        return cls([*extra, *secret_values(env)])

    def __call__(self, text: str) -> str:
        if not text:
            return text
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return redact_patterns(text)

    def data(self, data: str | bytes) -> str | bytes:
        """Text is redacted; bytes only when they are UTF-8 text (a PNG stays byte for byte)."""
        if isinstance(data, str):
            return self(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return data
        return self(text).encode("utf-8")


def redact(text: str, extra: list[str] | None = None, env: Mapping[str, str] | None = None) -> str:
    return Redactor.from_env(env, extra or ())(text)


def redact_value(value):
    """A JSON-like structure with every string redacted (tags, payloads, audit records)."""
    return _walk(value, current_redactor())


def _walk(value, redactor: Redactor):
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {_walk(k, redactor): _walk(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_walk(v, redactor) for v in value)
    return value


def credential_free_url(url: str) -> str:
    """A URL safe to show and link: no userinfo, no credential query parameters (dropped, not masked)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_patterns(url)
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    kept = [item for item in parts.query.split("&")
            if item and not re.fullmatch(rf"(?i)(?:{_SECRET_PARAM})", item.partition("=")[0])]
    if netloc == parts.netloc and len(kept) == len([item for item in parts.query.split("&") if item]):
        return url  # nothing to remove; urlunsplit would also rewrite sqlite:////abs paths
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(kept), parts.fragment))


class LineRedactor:
    """Redacts a byte stream line by line (a secret is never cut in two), for child-process passthrough.

    Complete lines (ending in \\n or \\r, so progress bars keep moving) go to `sink` at once; a partial
    line waits for its end, `flush()`, or `max_pending` bytes.
    """

    def __init__(self, sink: Callable[[bytes], None], redactor: Callable[[str], str] | None = None, *,
                 max_pending: int = 64 * 1024):
        self.sink = sink
        self.redactor = redactor or _Current()
        self.max_pending = max_pending
        self._pending = b""
        self._lock = threading.Lock()

    def _clean(self, data: bytes) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        return self.redactor(text).encode("utf-8", "surrogateescape")

    def write(self, chunk: bytes) -> None:
        with self._lock:
            data = self._pending + chunk
            cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
            if cut == 0 and len(data) >= self.max_pending:
                cut = len(data)
            self._pending = data[cut:]
            if cut:
                self.sink(self._clean(data[:cut]))

    __call__ = write

    def flush(self) -> None:
        with self._lock:
            data, self._pending = self._pending, b""
            if data:
                self.sink(self._clean(data))


class _Current:
    """Stands for current_redactor(), looked up at each use: secrets registered later count too."""

    def __call__(self, text: str) -> str:
        return current_redactor()(text)


class RedactingTextStream:
    """A text stream (sys.stdout/sys.stderr) that redacts whole lines before they reach `wrapped`.

    `.buffer` takes bytes the same way (the training passthrough writes there). Without a fixed
    `redactor`, it follows current_redactor().
    """

    def __init__(self, wrapped, redactor: Redactor | None = None):
        redactor = redactor or _Current()
        self._wrapped = wrapped
        self._redactor = redactor
        self._pending = ""
        self._lock = threading.RLock()
        raw = getattr(wrapped, "buffer", None)
        self.buffer = _RedactingBuffer(raw, redactor, self) if raw is not None else None

    def write(self, text: str) -> int:
        with self._lock:
            data = self._pending + text
            cut = max(data.rfind("\n"), data.rfind("\r")) + 1
            self._pending = data[cut:]
            if cut:
                self._wrapped.write(self._redactor(data[:cut]))
            if len(self._pending) > 64 * 1024:
                self._wrapped.write(self._redactor(self._pending))
                self._pending = ""
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._wrapped.write(self._redactor(self._pending))
                self._pending = ""
            self._wrapped.flush()

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


class _RedactingBuffer:
    def __init__(self, raw, redactor, text_stream: RedactingTextStream):
        self._raw = raw
        self._text = text_stream
        self._lines = LineRedactor(raw.write, redactor)

    def write(self, data: bytes) -> int:
        self._lines.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        self._lines.flush()
        self._raw.flush()

    def __getattr__(self, name):
        return getattr(self._raw, name)

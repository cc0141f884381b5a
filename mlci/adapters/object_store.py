"""Listing objects in S3, GCS and Azure Blob storage (obstore: the Rust object_store crate polars uses).

Only metadata is read: names, sizes, ETags and version ids. That is what the
run-cache fingerprint needs, and what `mlci data check` needs to expand a
glob. Credentials come from the environment (AWS_*, GOOGLE_*, AZURE_*) or the
instance role, exactly as polars and delta-rs find them; they are never
passed in, and never appear in a message.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from mlci.data.location import is_glob, safe_url
from mlci.errors import ConfigError, ExternalServiceError

# Env vars whose values are credentials: scrubbed from any error text we pass on.
CREDENTIAL_ENV_VARS = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
    "GOOGLE_SERVICE_ACCOUNT_KEY", "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY", "AZURE_CLIENT_SECRET",
)
CREDENTIAL_HINT = {
    "s3": "credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or the runner's "
          "instance role); set AWS_ENDPOINT_URL for an S3-compatible store",
    "gs": "credentials come from GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) or the runner's "
          "service account",
    "az": "credentials come from AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, a SAS token or "
          "AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID",
}
_SCHEME_FAMILY = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "az", "azure": "az", "abfs": "az",
                  "abfss": "az", "adl": "az"}


@dataclass(frozen=True)
class ObjectInfo:
    url: str
    size: int
    etag: str | None
    version: str | None
    last_modified: datetime | None


def credential_hint(scheme: str | None) -> str | None:
    """Where credentials for this URL scheme come from, for an error's hint."""
    return CREDENTIAL_HINT.get(_SCHEME_FAMILY.get((scheme or "").lower(), ""))


def looks_unreachable(text: str) -> bool:
    """Does a reader's error say the store could not be reached or refused us (exit 3), not bad data (exit 2)?"""
    lowered = text.lower()
    return any(word in lowered for word in (
        "connect", "timed out", "timeout", "dns error", "unauthorized", "forbidden", "access denied",
        "invalidaccesskeyid", "signaturedoesnotmatch", "credential", "permission denied", "status 403",
        "status 401", "status 5", " 403", " 401", " 503",
    ))


def scrub(text: str, env: dict[str, str] | None = None) -> str:
    """`text` with the values of credential variables masked."""
    env = os.environ if env is None else env
    for name in CREDENTIAL_ENV_VARS:
        value = env.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "[MASKED]")
    return text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _store(root: str):
    from obstore.store import from_url

    # A wrong endpoint must fail in seconds, not after minutes of retries. Client options given
    # here replace the ones read from the environment, so plain-http permission is carried over.
    options: dict = {"connect_timeout": "5s", "timeout": "60s"}
    if os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true", "yes"):
        options["allow_http"] = True
    return from_url(root, client_options=options,
                    retry_config={"max_retries": 2, "retry_timeout": timedelta(seconds=15),
                                  "backoff": {"init_backoff": timedelta(milliseconds=200),
                                              "max_backoff": timedelta(seconds=2), "base": 2}})


def _split(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")


def _glob_regex(pattern: str) -> re.Pattern:
    """`**` crosses folders, `*` and `?` do not, as in a shell with globstar."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape("["))
                i += 1
            else:
                out.append(fnmatch.translate(pattern[i:end + 1])[4:-3])
                i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _fail(url: str, exc: BaseException, family: str) -> ExternalServiceError:
    return ExternalServiceError("object storage", safe_url(url), scrub(_first_line(exc)),
                                hint=CREDENTIAL_HINT.get(family))


def list_objects(url: str, *, location: str | None = None) -> list[ObjectInfo]:
    """The objects a URL names: one object, everything under a folder URL (ending in /), or a glob's matches.

    A URL that names nothing is a ConfigError (exit 2); a store that refuses or cannot
    be reached is an ExternalServiceError (exit 3) naming the URL, without credentials.
    """
    import obstore
    from obstore.exceptions import NotFoundError

    scheme, root, key = _split(url)
    family = _SCHEME_FAMILY.get(scheme, scheme)
    try:
        store = _store(root)
        if not is_glob(key) and not key.endswith("/") and key:
            try:
                meta = obstore.head(store, key)
            except NotFoundError:
                # Not an object: maybe a folder written without its trailing slash.
                return list_objects(url + "/", location=location)
            return [_info(root, meta)]
        if is_glob(key):
            first = min(key.index(ch) for ch in "*?[" if ch in key)
            prefix = key[:first].rpartition("/")[0]
            pattern = _glob_regex(key)
        else:
            prefix, pattern = key.rstrip("/"), None
        found = []
        for batch in obstore.list(store, prefix=prefix or None, chunk_size=1000):
            for meta in batch:
                path = meta["path"]
                if path.endswith("/") or (pattern is not None and not pattern.match(path)):
                    continue
                found.append(_info(root, meta))
    except ConfigError:
        raise
    except Exception as exc:  # obstore raises one type per store error; all mean the same to a user
        raise _fail(url, exc, family) from None
    if not found:
        raise ConfigError(f"no object matches {safe_url(url)!r}", location=location or safe_url(url))
    return sorted(found, key=lambda o: o.url)


def _info(root: str, meta) -> ObjectInfo:
    return ObjectInfo(url=f"{root}/{meta['path']}", size=int(meta["size"]), etag=meta.get("e_tag"),
                      version=meta.get("version"), last_modified=meta.get("last_modified"))

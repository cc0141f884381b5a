"""Prometheus's HTTP query API (/api/v1/query, /api/v1/query_range), as plain values.

One boundary turns every connection failure, HTTP error and `"status":
"error"` answer into ExternalServiceError (exit 3) naming the URL (without
credentials), the status and the likely fix. Results come back as Sample
lists: label sets and floats, NaN kept as NaN, so callers decide what "no
data" means. Credentials: a bearer token from an environment variable, or
basic auth in the URL (kept out of every message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mlci.errors import ConfigError, ExternalServiceError
from mlci.redact import redact

SERVICE = "Prometheus"


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]] = field(default_factory=list)


def _strip_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def _as_float(text: Any) -> float:
    try:
        return float(text)  # Prometheus sends "NaN", "+Inf", "-Inf" as strings; float() reads them
    except (TypeError, ValueError):
        return math.nan


def to_unix(when: datetime | float | None) -> float | None:
    if when is None:
        return None
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()
    return float(when)


class PrometheusClient:
    """A Prometheus (or a compatible API: Thanos, Mimir, VictoriaMetrics) at `url`."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0,
                 headers: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None):
        if not url or not urlsplit(url).scheme or not urlsplit(url).netloc:
            raise ConfigError(f"Prometheus URL {url!r} is not an absolute http(s) URL, e.g. http://prometheus:9090",
                              hint="set monitor.prometheus.url in mlci.yml or MLCI_MONITOR_PROMETHEUS_URL")
        self.url = url.rstrip("/")
        self.display_url = _strip_credentials(self.url)
        self.timeout = float(timeout)
        self._token = token
        self._headers = dict(headers or {})
        self._env = dict(env or {})
        self._session = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], env: Mapping[str, str]) -> PrometheusClient:
        url = settings.get("url") or ""
        if not url:
            raise ConfigError("no Prometheus URL: set monitor.prometheus.url in mlci.yml (or "
                              "MLCI_MONITOR_PROMETHEUS_URL)")
        variable = settings.get("token-variable")
        token = env.get(variable) if variable else None
        return cls(url, token=token or None, timeout=float(settings.get("timeout", 10)), env=env)

    def _http(self):
        if self._session is None:
            import requests

            from mlci import __version__

            session = requests.Session()
            session.headers["User-Agent"] = f"mlci/{__version__}"
            if self._token:
                session.headers["Authorization"] = f"Bearer {self._token}"
            session.headers.update(self._headers)
            self._session = session
        return self._session

    def _scrub(self, text: str) -> str:
        return redact(text.replace(self.url, self.display_url), extra=[self._token] if self._token else [],
                      env=self._env)

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        import requests

        url = f"{self.url}{path}"
        shown = f"{self.display_url}{path}"
        try:
            # POST with a form body: long PromQL does not fit every proxy's URL limit.
            response = self._http().post(url, data=params, timeout=self.timeout, allow_redirects=False)
        except requests.Timeout:
            raise ExternalServiceError(SERVICE, shown, f"no answer within {self.timeout:g} s",
                                       hint="check that the runner can reach Prometheus, or raise "
                                            "monitor.prometheus.timeout") from None
        except requests.RequestException as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise ExternalServiceError(SERVICE, shown, reason,
                                       hint="check monitor.prometheus.url (MLCI_MONITOR_PROMETHEUS_URL) and that "
                                            "the runner can reach Prometheus on that address") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code in (401, 403):
            raise ExternalServiceError(SERVICE, shown, "the server refused the credentials",
                                       status=response.status_code,
                                       hint="set monitor.prometheus.token-variable to a variable that holds a bearer "
                                            "token, or put user:password in the URL through a masked variable")
        if 300 <= response.status_code < 400:
            raise ExternalServiceError(SERVICE, shown, "the server answered with a redirect",
                                       status=response.status_code,
                                       hint="use the final URL (often https://, or with the path prefix of "
                                            "--web.route-prefix)")
        if not isinstance(body, dict) or "status" not in body:
            raise ExternalServiceError(SERVICE, shown, "the answer is not Prometheus's query API",
                                       status=response.status_code,
                                       hint="monitor.prometheus.url is the server root (http://host:9090), "
                                            "not a Grafana or /graph URL")
        if body["status"] != "success":
            detail = self._scrub(f"{body.get('errorType', 'error')}: {body.get('error', '')}")
            if body.get("errorType") == "bad_data":
                raise ConfigError(f"Prometheus rejected the query: {detail}\nquery: {params.get('query', '')}",
                                  hint="check the PromQL of the rule in monitor.rules")
            raise ExternalServiceError(SERVICE, shown, detail, status=response.status_code,
                                       hint="Prometheus failed to evaluate the query; see its log")
        return body["data"]

    def query(self, expr: str, *, at: datetime | float | None = None) -> list[Sample]:
        """An instant query; a scalar result comes back as one Sample without labels."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{to_unix(at):.3f}"
        data = self._get("/api/v1/query", params)
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [Sample(dict(item.get("metric") or {}), _as_float(item["value"][1]), float(item["value"][0]))
                    for item in result or []]
        if kind == "scalar":
            return [Sample({}, _as_float(result[1]), float(result[0]))]
        raise ConfigError(f"the query returns a {kind}, not a number per series: {expr}",
                          hint="rules need an instant vector or scalar, e.g. wrap a range selector in rate()")

    def query_value(self, expr: str, *, at: datetime | float | None = None) -> float | None:
        """The query's single value; None when it returned nothing (no data)."""
        samples = self.query(expr, at=at)
        if not samples:
            return None
        if len(samples) > 1:
            labels = ", ".join(str(sample.labels) for sample in samples[:3])
            raise ConfigError(f"the query returns {len(samples)} series, expected one: {expr} ({labels} ...)",
                              hint="aggregate it, e.g. sum(...) or sum by () (...)")
        return samples[0].value

    def query_range(self, expr: str, *, start: datetime | float, end: datetime | float,
                    step: float) -> list[Series]:
        params = {"query": expr, "start": f"{to_unix(start):.3f}", "end": f"{to_unix(end):.3f}", "step": f"{step:g}"}
        data = self._get("/api/v1/query_range", params)
        return [Series(dict(item.get("metric") or {}), [(float(t), _as_float(v)) for t, v in item.get("values", [])])
                for item in data.get("result") or []]

    def ready(self) -> bool:
        """True when /-/ready answers 200 (no exception: used for waiting)."""
        import requests

        try:
            return self._http().get(f"{self.url}/-/ready", timeout=self.timeout).status_code == 200
        except requests.RequestException:
            return False

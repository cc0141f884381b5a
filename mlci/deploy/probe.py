"""HTTP side of the smoke test: wait for /ping, POST /invocations N times; load payload files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlci.deploy.smoke import Observation, dataframe_split
from mlci.errors import ConfigError, ExternalServiceError

MODEL_SERVER = "model server"


def wait_for_ping(url: str, *, wait: float, interval: float = 0.5, on_wait=None) -> float:
    """Seconds until GET /ping answered 200; ExternalServiceError (exit 3) after `wait` seconds.

    `on_wait(message)` hears when the first ping is not answered, then every 10 s how long it has been
    waiting and why, so a long wait is not silent.
    """
    import requests

    from mlci.progress import Progress

    ping = f"{url.rstrip('/')}/ping"
    progress = Progress(on_wait, f"waiting for {ping}")
    announced = False
    started = time.monotonic()
    last_status: int | None = None
    last_error = "no answer"
    while True:
        try:
            response = requests.get(ping, timeout=min(5.0, max(wait, 1.0)))
            if response.status_code == 200:
                return time.monotonic() - started
            last_status, last_error = response.status_code, f"answered HTTP {response.status_code}"
        except requests.RequestException as exc:
            last_error = f"{type(exc).__name__}: {_reason(exc)}"
        if not announced and time.monotonic() - started < wait:
            progress.start(f"not answering yet: {last_error}; up to {wait:g} s (--wait)")
            announced = True
        else:
            progress.tick(last_error)
        if time.monotonic() - started >= wait:
            raise ExternalServiceError(
                MODEL_SERVER,
                ping,
                f"not ready after {wait:g} s ({last_error})",
                status=last_status,
                hint="check that the deploy job started the server and that this job can reach its URL; "
                "raise the wait (--wait) for models that load slowly",
            )
        time.sleep(interval)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "…"


def post_invocations(url: str, payload: Any, *, count: int, timeout: float) -> list[Observation]:
    """POST the same payload `count` times on one keep-alive session; one Observation each."""
    import requests

    endpoint = f"{url.rstrip('/')}/invocations"
    body = json.dumps(payload, default=str).encode("utf-8")
    observations = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            try:
                response = session.post(
                    endpoint, data=body, headers={"Content-Type": "application/json"}, timeout=timeout
                )
            except requests.RequestException as exc:
                elapsed = (time.perf_counter() - started) * 1000
                observations.append(Observation(None, elapsed, error=f"{type(exc).__name__}: {_reason(exc)}"))
                continue
            elapsed = (time.perf_counter() - started) * 1000
            try:
                parsed = response.json()
            except ValueError:
                parsed = None
            observations.append(Observation(response.status_code, elapsed, body=parsed, text=response.text[:4000]))
    return observations


def load_json_file(path: Path, what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}: {exc.strerror or exc}", location=str(path)) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        location = f"{path}:{exc.lineno}:{exc.colno}"
        raise ConfigError(f"the {what} is not valid JSON: {exc.msg}", location=location) from exc


def load_expected(path: Path) -> list[Any]:
    data = load_json_file(path, "expected predictions")
    if isinstance(data, dict) and isinstance(data.get("predictions"), list):
        data = data["predictions"]
    if not isinstance(data, list):
        raise ConfigError('expected predictions must be a JSON list or {"predictions": [...]}', location=str(path))
    return data


SERVING_EXAMPLE = "serving_input_example.json"  # written by MLflow when a model is logged with an input_example


def model_input_example(registry, model: str, version: str) -> dict[str, Any] | None:
    """The request MLflow stored with the model version (from its input_example), or None."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlci-smoke-") as tmp:
        local = registry.download_version_artifacts(model, version, Path(tmp))
        candidates = [local / SERVING_EXAMPLE, *Path(local).rglob(SERVING_EXAMPLE)]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            return None
        payload = load_json_file(path, "model's serving input example")
    return payload if isinstance(payload, dict) else None


def rows_payload(path: Path, *, rows: int, drop_columns: list[str]) -> dict[str, Any]:
    """The first `rows` rows of a CSV/Parquet/JSON-lines file as a dataframe_split request."""
    import polars as pl

    path = Path(path)
    readers = {".csv": pl.scan_csv, ".parquet": pl.scan_parquet, ".jsonl": pl.scan_ndjson, ".ndjson": pl.scan_ndjson}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(
            f"cannot read smoke-test rows from a '{path.suffix}' file; use .csv, .parquet or .jsonl",
            location=str(path),
        )
    if not path.exists():
        raise ConfigError("smoke-test data file not found", location=str(path))
    try:
        frame = reader(path).head(rows).collect()
    except Exception as exc:  # polars raises many types for unreadable files
        raise ConfigError(f"cannot read smoke-test rows: {exc}", location=str(path)) from exc
    missing = [c for c in drop_columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"drop-columns names columns the data does not have: {', '.join(missing)}", location=str(path)
        )
    frame = frame.drop(drop_columns)
    if frame.height == 0:
        raise ConfigError("the smoke-test data file has no rows", location=str(path))
    return dataframe_split(frame.columns, frame.rows())

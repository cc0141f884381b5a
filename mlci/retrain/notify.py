"""Retrain notifications: JSON POSTs to the webhooks in retrain.notify.

A notification is a courtesy, never a gate: every failure comes back as a
NotifyResult for the command to print as a warning. Attempts are bounded
(1 + max-retries, each with its own timeout, backoff capped) so a dead
endpoint cannot hold a runner. Secret parts (a URL kept in a variable, header
values) never appear in results or logs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlci import __version__
from mlci.retrain.settings import Webhook

MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class NotifyResult:
    webhook: str          # Webhook.label: safe to print
    event: str
    delivered: bool
    attempts: int = 0
    status: int | None = None
    error: str = ""


def build_payload(event: str, *, model: str, text: str, details: Mapping[str, Any], ci=None) -> dict[str, Any]:
    """The JSON body. `text` makes it readable as-is by Slack/Mattermost-style incoming webhooks."""
    payload: dict[str, Any] = {"version": 1, "source": "mlci", "event": event, "model": model, "text": text}
    payload.update(details)
    if ci is not None:
        payload["gitlab"] = {
            k: v
            for k, v in {
                "project": ci.project_path,
                "pipeline_url": ci.pipeline_url,
                "job_url": ci.job_url,
                "commit": ci.commit_sha,
                "ref": ci.commit_ref,
            }.items()
            if v
        }
    return payload


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _resolve(webhook: Webhook, env: Mapping[str, str]) -> tuple[str, dict[str, str], str]:
    """(url, headers, problem). A problem means: do not send."""
    url = env.get(webhook.url_variable, "") if webhook.url_variable else webhook.url
    if not url:
        return "", {}, f"variable {webhook.url_variable} (the webhook URL) is not set"
    if not url.startswith(("http://", "https://")):
        return "", {}, "the webhook URL must start with http:// or https://"
    headers = {"Content-Type": "application/json", "User-Agent": f"mlci/{__version__}"}
    for header, variable in webhook.headers.items():
        value = env.get(variable)
        if not value:
            return "", {}, f"header {header} needs variable {variable}, which is not set"
        headers[header] = value
    return url, headers, ""


def send_event(
    webhooks: list[Webhook] | tuple[Webhook, ...],
    event: str,
    payload: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    backoff: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[NotifyResult]:
    """POST `payload` to every webhook subscribed to `event`; one result per webhook."""
    subscribed = [w for w in webhooks if event in w.events]
    if not subscribed:
        return []
    import requests

    from mlci.redact import Redactor

    body = Redactor.from_env(env)(json.dumps(payload, default=str))
    results = []
    with requests.Session() as session:
        for webhook in subscribed:
            url, headers, problem = _resolve(webhook, env)
            if problem:
                results.append(NotifyResult(webhook.label, event, False, 0, None, f"not sent: {problem}"))
                continue
            results.append(_post(session, webhook, event, url, headers, body, backoff, sleep))
    return results


def _post(session, webhook: Webhook, event: str, url: str, headers, body: str, backoff: float, sleep) -> NotifyResult:
    import requests

    attempts = 1 + webhook.max_retries
    status: int | None = None
    error = ""
    for attempt in range(1, attempts + 1):
        wait: float | None = None
        try:
            response = session.post(url, data=body, headers=headers, timeout=webhook.timeout, allow_redirects=False)
        except requests.Timeout:
            status, error = None, f"no answer within {webhook.timeout:g}s"
        except requests.RequestException as exc:
            # The exception text repeats the URL, which may be secret; keep only its kind.
            status, error = None, f"connection failed ({type(exc).__name__})"
        else:
            status = response.status_code
            if 200 <= status < 300:
                return NotifyResult(webhook.label, event, True, attempt, status)
            if 300 <= status < 400:
                return NotifyResult(
                    webhook.label, event, False, attempt, status,
                    "the webhook answered with a redirect; configure the final URL",
                )
            error = f"HTTP {status}"
            if status != 429 and status < 500:
                # 4xx other than 429 will not heal by retrying (wrong URL or credentials).
                return NotifyResult(webhook.label, event, False, attempt, status, error)
            wait = _retry_after(response.headers.get("Retry-After"))
        if attempt < attempts:
            delay = wait if wait is not None else backoff * (2 ** (attempt - 1))
            sleep(min(delay, MAX_BACKOFF_SECONDS))
    return NotifyResult(webhook.label, event, False, attempts, status, f"{error} after {attempts} attempt(s)")

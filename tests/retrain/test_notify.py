"""Webhooks: retried and bounded, secrets kept out of logs, failures never fail the job."""

from __future__ import annotations

import json
import time

import pytest
from werkzeug import Response

from mlci.retrain.notify import MAX_BACKOFF_SECONDS, build_payload, send_event
from mlci.retrain.settings import Webhook

PAYLOAD = build_payload("gate", model="churn", text="gate passed", details={"gate": "passed"})


def _sequence(*responses):
    """A handler answering with the given (status, headers) in turn, then 200."""
    queue = list(responses)

    def handler(request):
        status, headers = queue.pop(0) if queue else (200, {})
        return Response("x", status=status, headers=headers)

    return handler


def test_transient_failures_are_retried_until_delivered(httpserver):
    httpserver.expect_request("/hook").respond_with_handler(_sequence((500, {}), (503, {})))
    sleeps: list[float] = []

    [result] = send_event([Webhook(url=httpserver.url_for("/hook"))], "gate", PAYLOAD, env={}, sleep=sleeps.append)

    assert result.delivered and result.attempts == 3 and result.status == 200
    assert sleeps == [1.0, 2.0]  # exponential backoff between attempts
    body = json.loads(httpserver.log[-1][0].data)
    assert body["event"] == "gate" and body["version"] == 1 and body["text"] == "gate passed"
    assert httpserver.log[-1][0].headers["Content-Type"] == "application/json"


def test_a_dead_endpoint_costs_a_bounded_number_of_attempts(httpserver):
    httpserver.expect_request("/hook").respond_with_data("down", status=503)
    webhook = Webhook(url=httpserver.url_for("/hook"), max_retries=2)

    [result] = send_event([webhook], "gate", PAYLOAD, env={}, sleep=lambda s: None)

    assert not result.delivered
    assert result.attempts == 3 and len(httpserver.log) == 3
    assert "HTTP 503 after 3 attempt(s)" in result.error


def test_client_errors_are_not_retried(httpserver):
    httpserver.expect_request("/hook").respond_with_data("no such hook", status=404)

    [result] = send_event([Webhook(url=httpserver.url_for("/hook"))], "gate", PAYLOAD, env={}, sleep=lambda s: None)

    assert not result.delivered and result.attempts == 1 and len(httpserver.log) == 1


def test_retry_after_is_honoured_but_capped(httpserver):
    httpserver.expect_request("/hook").respond_with_handler(
        _sequence((429, {"Retry-After": "7"}), (429, {"Retry-After": "86400"}))
    )
    sleeps: list[float] = []

    [result] = send_event([Webhook(url=httpserver.url_for("/hook"))], "gate", PAYLOAD, env={}, sleep=sleeps.append)

    assert result.delivered
    assert sleeps == [7.0, MAX_BACKOFF_SECONDS]


def test_a_hanging_endpoint_times_out_per_attempt(httpserver):
    def slow(request):
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/hook").respond_with_handler(slow)
    webhook = Webhook(url=httpserver.url_for("/hook"), timeout=0.2, max_retries=1)
    started = time.monotonic()

    [result] = send_event([webhook], "gate", PAYLOAD, env={}, sleep=lambda s: None)

    assert not result.delivered and result.attempts == 2
    assert "no answer within 0.2s" in result.error
    assert time.monotonic() - started < 1.4  # did not wait for the server


def test_connection_refused_is_reported_without_the_secret_url(httpserver):
    secret_url = "http://127.0.0.1:9/services/T000/B000/XXXXsecretXXXX?token=abc"
    webhook = Webhook(url_variable="SLACK_WEBHOOK", max_retries=1)

    [result] = send_event([webhook], "gate", PAYLOAD, env={"SLACK_WEBHOOK": secret_url}, sleep=lambda s: None)

    assert not result.delivered and result.attempts == 2
    assert result.webhook == "$SLACK_WEBHOOK"
    assert "secret" not in result.error and "token" not in result.error and "connection failed" in result.error


def test_header_values_come_from_environment_variables(httpserver):
    httpserver.expect_request("/hook", headers={"Authorization": "Bearer s3cret"}).respond_with_data("ok")
    webhook = Webhook(url=httpserver.url_for("/hook"), headers={"Authorization": "ALERT_AUTH"})

    [result] = send_event([webhook], "gate", PAYLOAD, env={"ALERT_AUTH": "Bearer s3cret"})

    assert result.delivered


def test_a_missing_header_variable_means_not_sent(httpserver):
    webhook = Webhook(url=httpserver.url_for("/hook"), headers={"Authorization": "ALERT_AUTH"})

    [result] = send_event([webhook], "gate", PAYLOAD, env={})

    assert not result.delivered and result.attempts == 0
    assert "ALERT_AUTH" in result.error
    assert httpserver.log == []


def test_only_subscribed_webhooks_are_called(httpserver):
    httpserver.expect_request("/a").respond_with_data("ok")
    httpserver.expect_request("/b").respond_with_data("ok")
    hooks = [Webhook(url=httpserver.url_for("/a"), events=("blocked",)), Webhook(url=httpserver.url_for("/b"))]

    results = send_event(hooks, "skipped", PAYLOAD, env={})

    assert [r.webhook for r in results] == [httpserver.url_for("/b")]
    assert [request.path for request, _ in httpserver.log] == ["/b"]


def test_redirects_are_not_followed(httpserver):
    httpserver.expect_request("/hook").respond_with_data("", status=302, headers={"Location": "http://elsewhere/"})

    [result] = send_event([Webhook(url=httpserver.url_for("/hook"))], "gate", PAYLOAD, env={})

    assert not result.delivered and result.attempts == 1 and "redirect" in result.error


@pytest.mark.parametrize("status", [500, 404])
def test_failed_notifications_warn_but_do_not_fail_the_job(project, run_cli, clean_env, httpserver, status):
    httpserver.expect_request("/hook").respond_with_data("nope", status=status)
    project.write_data({
        "model": {"name": "churn"},
        "retrain": {"notify": [{"url": httpserver.url_for("/hook"), "max-retries": 1}]},
    })
    clean_env.setenv("MLCI_RETRAIN_REASON", "no data drift")

    code, _out, err = run_cli(*project.cli("retrain", "conclude", "--skipped"))

    assert code == 0
    assert "notification skipped to" in err and f"HTTP {status}" in err
    assert len(httpserver.log) == (2 if status == 500 else 1)

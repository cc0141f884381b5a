"""Rules judged on long windows of deterministic history, backfilled into a real Prometheus with promtool.

Three versions of one model in one environment: v1 served fast and cleanly
for two hours, then v2 took over and answers slowly with 10% server errors,
and v3 (in another environment) gets almost no traffic. v2's model also raises
on 5% of the requests, which MLServer answers with 400.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from mlci.adapters.prometheus import PrometheusClient
from mlci.errors import ConfigError, ExternalServiceError
from mlci.monitor.decide import DriftResult, decide
from mlci.monitor.evaluate import Baseline, evaluate
from mlci.monitor.rules import REQUESTS_QUERY, Labels, MonitorSettings, Regression, Rule, preset_query
from mlci.monitor.rules import DriftSettings as LiveDrift
from tests.servers.prometheus import start_prometheus

pytestmark = [pytest.mark.xdist_group("prometheus-history")]

NOW = int(time.time()) // 60 * 60
SWITCH = NOW - 3600  # v2 took over production an hour ago
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
STEP = 15


def series(version: str, environment: str, start: int, end: int, *, rps: float, error_share: float,
           latency: float, raised_share: float = 0.0) -> list[str]:
    """Counter and histogram samples every STEP seconds, as MLServer with mlci's scrape labels would expose."""
    labels = f'environment="{environment}",model_name="tumor",model_version="{version}",path="/invocations"'
    lines = []
    for index, ts in enumerate(range(start, end, STEP)):
        total = rps * STEP * index
        errors, raised = total * error_share, total * raised_share
        lines.append(f'rest_server_requests_total{{{labels},status_code="200"}} {total - errors - raised} {ts}')
        lines.append(f'rest_server_requests_total{{{labels},status_code="500"}} {errors} {ts}')
        lines.append(f'rest_server_requests_total{{{labels},status_code="400"}} {raised} {ts}')
        for le in (*BUCKETS, "+Inf"):
            count = total if le == "+Inf" or latency <= le else 0
            lines.append(f'rest_server_request_duration_seconds_bucket{{{labels},le="{le}"}} {count} {ts}')
    return lines


@pytest.fixture(scope="module")
def prometheus():
    lines = ["# TYPE rest_server_requests counter", "# TYPE rest_server_request_duration_seconds histogram"]
    lines += series("1", "production", NOW - 3 * 3600, SWITCH, rps=2, error_share=0.0, latency=0.02)
    lines += series("2", "production", SWITCH, NOW - 60, rps=2, error_share=0.1, latency=0.3,
                    raised_share=0.05)
    lines += series("3", "staging", NOW - 3600, NOW - 60, rps=0.01, error_share=0.0, latency=0.02)
    # OpenMetrics wants all samples of a family together and in time order per series.
    requests = sorted((line for line in lines if line.startswith("rest_server_requests_total")),
                      key=lambda line: (line.rsplit(" ", 2)[0], int(line.rsplit(" ", 1)[1])))
    buckets = sorted((line for line in lines if line.startswith("rest_server_request_duration")),
                     key=lambda line: (line.rsplit(" ", 2)[0], int(line.rsplit(" ", 1)[1])))
    text = "\n".join([lines[0], *requests, lines[1], *buckets, "# EOF"]) + "\n"
    server = start_prometheus(backfill_text=text)
    yield server
    server.stop()


def settings(*rules: Rule, min_requests: int = 100) -> MonitorSettings:
    return MonitorSettings(
        prometheus={}, selector='model_name="$model",model_version="$version",environment="$environment"',
        window="30m", min_requests=min_requests, requests_query=REQUESTS_QUERY, rules=rules, drift=LiveDrift(),
        auto_rollback=False, retrain=True, retrain_ref=None,
    )


def preset(name: str, preset_name: str, status_codes: str = "4..|5..", **kwargs) -> Rule:
    query, unit = preset_query(preset_name, status_codes=status_codes)
    return Rule(name=name, query=query, window=kwargs.pop("window", "30m"), unit=unit, preset=preset_name, **kwargs)


AT = datetime.fromtimestamp(NOW - 120, tz=timezone.utc)


def judge(prometheus, config, labels, baseline=None):
    traffic, rules = evaluate(PrometheusClient(prometheus.url), config, labels, baseline=baseline, at=AT)
    return decide(rules, traffic, DriftResult(status="off")), {rule.name: rule for rule in rules}


def test_error_rate_and_latency_thresholds_over_a_long_window(prometheus):
    config = settings(preset("errors", "error-rate", max=0.05), preset("p95", "latency-p95", max=0.25))
    verdict, rules = judge(prometheus, config, Labels("tumor", "2", "production"))
    assert verdict.decision == "rollback"
    # the model's exceptions (400) count as errors next to the 500s
    assert rules["errors"].status == "breached" and rules["errors"].value == pytest.approx(0.15, rel=0.02)
    assert rules["p95"].status == "breached" and 0.25 < rules["p95"].value <= 0.5
    assert verdict.traffic.requests == pytest.approx(2 * 1800, rel=0.05)


def test_error_rate_can_count_server_errors_only(prometheus):
    config = settings(preset("server errors", "error-rate", status_codes="5..", max=0.12))
    verdict, rules = judge(prometheus, config, Labels("tumor", "2", "production"))
    assert rules["server errors"].value == pytest.approx(0.1, rel=0.02)
    assert rules["server errors"].status == "ok" and verdict.decision == "ok"


def test_regression_compares_with_the_previous_versions_baseline_window(prometheus):
    rule = preset("p95 regression", "latency-p95", regression=Regression(max_increase_pct=50, baseline_window="1h"))
    baseline = Baseline("1", datetime.fromtimestamp(SWITCH, tz=timezone.utc))
    verdict, rules = judge(prometheus, settings(rule), Labels("tumor", "2", "production"), baseline)
    result = rules["p95 regression"]
    assert verdict.decision == "rollback", verdict.reasons
    assert result.baseline_version == "1" and result.baseline <= 0.025 < 0.25 < result.value
    assert result.change_pct > 50 and "version 2 vs 1" in result.reason


def test_a_baseline_window_without_data_is_no_data_not_ok(prometheus):
    rule = preset("p95 regression", "latency-p95", regression=Regression(max_increase_pct=500))
    gone = Baseline("9", datetime.fromtimestamp(SWITCH, tz=timezone.utc))
    verdict, rules = judge(prometheus, settings(rule), Labels("tumor", "2", "production"), gone)
    assert rules["p95 regression"].status == "no-data"
    assert verdict.decision == "no-data"
    assert "baseline" in rules["p95 regression"].reason


def test_too_few_requests_is_its_own_outcome(prometheus):
    config = settings(preset("errors", "error-rate", max=0.05), preset("floor", "request-rate", min=1.0))
    verdict, rules = judge(prometheus, config, Labels("tumor", "3", "staging"))
    assert verdict.decision == "no-data"
    assert all(rule.status == "skipped" for rule in rules.values())
    assert any("inference requests" in reason for reason in verdict.reasons)


def test_no_series_at_all_is_no_data(prometheus):
    verdict, _ = judge(prometheus, settings(preset("errors", "error-rate", max=0.05)),
                       Labels("tumor", "1", "canary"))
    assert verdict.decision == "no-data" and verdict.traffic.status == "no-data"


def test_a_healthy_window_is_ok(prometheus):
    config = settings(preset("errors", "error-rate", max=0.05), preset("p95", "latency-p95", max=0.25),
                      preset("floor", "request-rate", min=1.0))
    at = datetime.fromtimestamp(SWITCH - 60, tz=timezone.utc)
    traffic, rules = evaluate(PrometheusClient(prometheus.url), config, Labels("tumor", "1", "production"),
                              baseline=None, at=at)
    assert decide(rules, traffic, DriftResult(status="off")).decision == "ok"


def test_a_query_that_prometheus_rejects_is_a_config_error(prometheus):
    config = settings(Rule(name="typo", query="sum(rate(x[$window]", window="5m", max=1.0))
    with pytest.raises(ConfigError, match="Prometheus rejected the query"):
        evaluate(PrometheusClient(prometheus.url), config, Labels("tumor", "2", "production"), baseline=None,
                 at=AT)


def test_prometheus_unreachable_names_the_url_without_credentials():
    from tests.servers.prometheus import free_port

    client = PrometheusClient(f"http://scraper:s3cret@127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ExternalServiceError) as caught:
        client.query_value("up")
    assert caught.value.exit_code == 3
    assert "s3cret" not in caught.value.message and "127.0.0.1" in caught.value.message
    assert "monitor.prometheus.url" in caught.value.hint

"""Smoke-test verdicts from observations (no server): status, shape, expected answers, latency."""

import math
import xml.etree.ElementTree as ET

import pytest

from mlci.deploy.smoke import (
    Observation,
    dataframe_split,
    evaluate,
    payload_rows,
    percentile,
    to_json,
    to_junit,
)
from mlci.outputs.junit import render_junit


def ok(predictions, latency=5.0):
    return Observation(200, latency, body={"predictions": predictions}, text="...")


def by_name(result):
    return {check.name: check for check in result.checks}


def test_healthy_answers_pass_every_check():
    observations = [ok([1.0, 2.0], latency=float(i)) for i in range(1, 21)]
    result = evaluate(observations, url="http://m", environment="staging", expected_rows=2,
                      expected_predictions=[1.0, 2.0 + 1e-9], p95_budget_ms=100, p50_budget_ms=50)
    assert result.passed, result.failures
    checks = by_name(result)
    assert checks["latency-p95"].passed and "19.0 ms" in checks["latency-p95"].message
    assert result.latency["p50-ms"] == 10.0 and result.latency["max-ms"] == 20.0


def test_http_error_fails_status_and_shape():
    bad = Observation(400, 3.0, body={"error_code": "BAD_REQUEST"}, text='{"error_code": "BAD_REQUEST"}')
    result = evaluate([bad] * 3, url="http://m", environment="s", expected_rows=2)
    checks = by_name(result)
    assert not result.passed
    assert checks["status"].passed is False and "3 of 3" in checks["status"].message
    assert "HTTP 400" in checks["status"].message and "BAD_REQUEST" in checks["status"].details
    assert checks["response-shape"].passed is False


def test_dropped_connection_is_reported_without_a_status():
    result = evaluate([ok([1]), Observation(None, 30000.0, error="ReadTimeout: boom")],
                      url="http://m", environment="s", expected_rows=1)
    assert "no answer (ReadTimeout: boom)" in by_name(result)["status"].message


def test_wrong_row_count_and_wrong_envelope_fail_the_shape_check():
    assert by_name(evaluate([ok([1, 2, 3])], url="u", environment="s", expected_rows=2))[
        "response-shape"].message == "3 predictions for 2 input rows"
    envelope = Observation(200, 1.0, body=[1, 2], text="[1, 2]")
    assert by_name(evaluate([envelope], url="u", environment="s", expected_rows=2))["response-shape"].passed is False
    assert by_name(evaluate([ok([])], url="u", environment="s", expected_rows=None))["response-shape"].passed is False


def test_expected_predictions_use_an_absolute_tolerance_and_point_at_the_first_difference():
    result = evaluate([ok([1.0, 2.5, 3.0])], url="u", environment="s", expected_rows=3,
                      expected_predictions=[1.0, 2.0, 3.0], tolerance=0.1)
    check = by_name(result)["expected-predictions"]
    assert check.passed is False and "row 1" in check.message
    assert evaluate([ok(["cat", {"p": 0.5}])], url="u", environment="s", expected_rows=2,
                    expected_predictions=["cat", {"p": 0.50001}], tolerance=1e-3).passed
    assert not evaluate([ok([True])], url="u", environment="s", expected_rows=1, expected_predictions=[1]).passed


def test_impossible_latency_budget_fails():
    result = evaluate([ok([1], latency=2.0)] * 5, url="u", environment="s", expected_rows=1, p95_budget_ms=0.001)
    check = by_name(result)["latency-p95"]
    assert check.passed is False and "exceeds the budget of 0.001 ms" in check.message


def test_nondeterministic_answers_for_the_same_request_fail():
    result = evaluate([ok([1.0]), ok([1.0]), ok([7.0])], url="u", environment="s", expected_rows=1)
    assert by_name(result)["stable-predictions"].passed is False


def test_nearest_rank_percentile_returns_an_observed_value():
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 95) == 19.0
    assert percentile(values, 50) == 10.0
    assert percentile([4.0], 95) == 4.0
    assert math.isnan(percentile([], 95))


@pytest.mark.parametrize(
    ("payload", "rows"),
    [
        ({"inputs": [[1], [2]]}, 2),
        ({"instances": [1, 2, 3]}, 3),
        ({"dataframe_split": {"columns": ["a"], "data": [[1]]}}, 1),
        ({"dataframe_records": [{"a": 1}, {"a": 2}]}, 2),
        ({"inputs": {"a": [1, 2, 3, 4], "b": [1, 2, 3, 4]}}, 4),
        ({"inputs": [[1]], "instances": [[1]]}, None),  # ambiguous: the server rejects it
        ({"bogus": 1}, None),
        ([1, 2], None),
    ],
)
def test_rows_in_a_scoring_request(payload, rows):
    assert payload_rows(payload) == rows


def test_junit_and_json_carry_every_check():
    result = evaluate([ok([1])], url="http://m", environment="staging", expected_rows=1, p95_budget_ms=0.0001)
    root = ET.fromstring(render_junit([to_junit(result)]))
    assert root.get("tests") == "4" and root.get("failures") == "1" and root.get("skipped") == "1"
    failed = [tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None]
    assert failed == ["latency-p95"]
    body = to_json(result, payload_source="p.json")
    assert body["status"] == "failed" and body["payload"] == "p.json"
    assert {c["name"]: c["status"] for c in body["checks"]}["expected-predictions"] == "skipped"
    assert dataframe_split(["a"], [(1,)]) == {"dataframe_split": {"columns": ["a"], "data": [[1]]}}

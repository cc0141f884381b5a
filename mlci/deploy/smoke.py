"""Smoke-test verdicts: observations of a served model in, named checks out.

Pure: no HTTP here (see mlci.deploy.probe). Checks: every request answered
200, the response has one prediction per input row, the predictions match the
expected ones (when given), and p50/p95 latency stay within budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INPUT_FIELDS = ("inputs", "instances", "dataframe_split", "dataframe_records")


@dataclass(frozen=True)
class Observation:
    """One POST /invocations."""

    status: int | None  # None: no HTTP answer (connection dropped, timeout)
    latency_ms: float
    body: Any = None  # parsed JSON, None when the body was not JSON
    text: str = ""  # the start of the raw body, for messages
    error: str = ""


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    passed: bool | None  # None: skipped (nothing configured to check)
    message: str
    details: str = ""


@dataclass
class SmokeResult:
    url: str
    environment: str
    checks: list[SmokeCheck]
    latency: dict[str, float]
    requests: int
    predictions: list[Any] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed is not False for check in self.checks)

    @property
    def failures(self) -> list[SmokeCheck]:
        return [check for check in self.checks if check.passed is False]


def payload_rows(payload: Any) -> int | None:
    """How many rows a scoring request carries, when its format says so (MLflow's four input fields)."""
    if not isinstance(payload, Mapping):
        return None
    present = [key for key in INPUT_FIELDS if key in payload]
    if len(present) != 1:
        return None
    value = payload[present[0]]
    if present[0] == "dataframe_split":
        data = value.get("data") if isinstance(value, Mapping) else None
        return len(data) if isinstance(data, list) else None
    if isinstance(value, list):
        return len(value)
    if isinstance(value, Mapping):  # named tensor inputs: {"col": [..]} -> rows of the first column
        first = next(iter(value.values()), None)
        return len(first) if isinstance(first, list) else None
    return None


def dataframe_split(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": list(columns), "data": [list(row) for row in rows]}}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(observations: Sequence[Observation]) -> dict[str, float]:
    values = [o.latency_ms for o in observations]
    if not values:
        return {}
    return {
        "p50-ms": round(percentile(values, 50), 3),
        "p95-ms": round(percentile(values, 95), 3),
        "max-ms": round(max(values), 3),
        "mean-ms": round(sum(values) / len(values), 3),
    }


def _same(expected: Any, actual: Any, tolerance: float) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual  # True is not the class 1
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return math.isclose(float(expected), float(actual), rel_tol=0.0, abs_tol=tolerance)
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return False
        return all(_same(e, a, tolerance) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return expected.keys() == actual.keys() and all(_same(expected[k], actual[k], tolerance) for k in expected)
    return expected == actual


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def evaluate(
    observations: Sequence[Observation],
    *,
    url: str,
    environment: str,
    expected_rows: int | None,
    expected_predictions: list[Any] | None = None,
    tolerance: float = 1e-6,
    p95_budget_ms: float | None = None,
    p50_budget_ms: float | None = None,
) -> SmokeResult:
    checks: list[SmokeCheck] = []
    total = len(observations)
    bad = [o for o in observations if o.status != 200]
    if bad:
        first = bad[0]
        answer = f"HTTP {first.status}" if first.status is not None else f"no answer ({first.error})"
        checks.append(
            SmokeCheck(
                "status",
                False,
                f"{len(bad)} of {total} requests to {url}/invocations failed; first: {answer}",
                _short(first.text or first.error, 2000),
            )
        )
    else:
        checks.append(SmokeCheck("status", True, f"all {total} requests answered HTTP 200"))

    answered = next((o for o in observations if o.status == 200), None)
    predictions: list[Any] = []
    if answered is None:
        checks.append(SmokeCheck("response-shape", False, "no successful response to check"))
    else:
        body = answered.body
        if not isinstance(body, Mapping) or not isinstance(body.get("predictions"), list):
            checks.append(
                SmokeCheck(
                    "response-shape", False,
                    'the response is not {"predictions": [...]}', _short(answered.text or body, 2000),
                )
            )
        else:
            predictions = list(body["predictions"])
            if expected_rows is not None and len(predictions) != expected_rows:
                checks.append(
                    SmokeCheck(
                        "response-shape", False,
                        f"{len(predictions)} predictions for {expected_rows} input rows", _short(predictions, 2000),
                    )
                )
            elif not predictions:
                checks.append(SmokeCheck("response-shape", False, "the response has no predictions"))
            else:
                rows = f" for {expected_rows} input rows" if expected_rows is not None else ""
                checks.append(SmokeCheck("response-shape", True, f"{len(predictions)} predictions{rows}"))
            # The same request must get the same answer every time.
            differing = [
                o for o in observations
                if o.status == 200 and isinstance(o.body, Mapping) and o.body.get("predictions") != body["predictions"]
            ]
            if differing:
                checks.append(
                    SmokeCheck(
                        "stable-predictions", False,
                        f"{len(differing)} of {total} responses differ from the first for the same input",
                    )
                )

    if expected_predictions is None:
        checks.append(SmokeCheck("expected-predictions", None, "no expected predictions configured"))
    elif not predictions:
        checks.append(SmokeCheck("expected-predictions", False, "no predictions to compare"))
    elif _same(expected_predictions, predictions, tolerance):
        checks.append(SmokeCheck("expected-predictions", True, f"predictions match (tolerance {tolerance:g})"))
    else:
        pairs = zip(expected_predictions, predictions, strict=False)
        mismatches = [i for i, (e, a) in enumerate(pairs) if not _same(e, a, tolerance)]
        where = f"first difference at row {mismatches[0]}" if mismatches else (
            f"{len(predictions)} predictions, {len(expected_predictions)} expected"
        )
        checks.append(
            SmokeCheck(
                "expected-predictions", False,
                f"predictions differ from the expected ones ({where})",
                f"expected: {_short(expected_predictions, 1000)}\nactual:   {_short(predictions, 1000)}",
            )
        )

    latency = latency_summary(observations)
    for name, key, budget in (("latency-p50", "p50-ms", p50_budget_ms), ("latency-p95", "p95-ms", p95_budget_ms)):
        if budget is None:
            continue
        measured = latency.get(key, math.nan)
        ok = measured <= budget
        checks.append(
            SmokeCheck(
                name, ok,
                f"{key[:3]} latency {measured:.1f} ms over {total} requests "
                f"{'within' if ok else 'exceeds'} the budget of {budget:g} ms",
            )
        )
    return SmokeResult(
        url=url, environment=environment, checks=checks, latency=latency, requests=total, predictions=predictions
    )


def to_json(result: SmokeResult, *, payload_source: str) -> dict[str, Any]:
    return {
        "status": "passed" if result.passed else "failed",
        "environment": result.environment,
        "url": result.url,
        "payload": payload_source,
        "requests": result.requests,
        "latency": result.latency,
        "checks": [
            {"name": c.name, "status": {True: "passed", False: "failed", None: "skipped"}[c.passed],
             "message": c.message, **({"details": c.details} if c.details else {})}
            for c in result.checks
        ],
        "predictions-sample": result.predictions[:10],
    }


def to_junit(result: SmokeResult):
    from mlci.outputs.junit import TestCase, TestSuite

    suite = TestSuite(name=f"smoke-test {result.environment}")
    for check in result.checks:
        status = {True: "passed", False: "failed", None: "skipped"}[check.passed]
        suite.add(
            TestCase(
                name=check.name,
                classname=f"mlci.smoke.{result.environment}",
                status=status,
                message=check.message,
                details=check.details or check.message,
                stdout=check.message if status == "passed" else "",
            )
        )
    return suite

"""Each version's outcomes since the experiment started, as counts, from Prometheus.

Counters are read twice, now and at the start, and subtracted: exact counts
for the experiment's own period, unlike increase(), which extrapolates and
misses the first increment of a series born mid-window (a canary's first
error). A counter that went down was reset by a server restart; its current
value is the count since then.

The version's series are picked by monitor.selector with $version and
$environment filled in: the stable version runs in the environment, the new
one in "<environment>-canary" (its own server, its own scrape target).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from mlci.canary.decide import Counts
from mlci.canary.settings import Metric
from mlci.monitor.rules import INFERENCE_PATHS, Labels, render_query

REQUESTS = f"sum(rest_server_requests_total{{{INFERENCE_PATHS},$selector}})"
ERRORS = f'sum(rest_server_requests_total{{{INFERENCE_PATHS},status_code=~"$codes",$selector}})'
DURATIONS = f"sum(rest_server_request_duration_seconds_count{{{INFERENCE_PATHS},$selector}})"
FAST = f'sum(rest_server_request_duration_seconds_bucket{{{INFERENCE_PATHS},le=~"$le",$selector}})'


@dataclass(frozen=True)
class Arm:
    version: str
    environment: str


def le_pattern(threshold: float) -> str:
    """A regex for the bucket boundary: client libraries write 1 as "1" or "1.0"."""
    text = f"{threshold:g}"
    return re.escape(text).replace("\\", "\\\\") + ("(\\\\.0+)?" if "." not in text and "e" not in text else "0*")


def queries(metric: Metric) -> tuple[str, str, bool]:
    """(events query, requests query, events are the complement): latency counts the fast and subtracts."""
    if metric.kind == "error-rate":
        return ERRORS.replace("$codes", metric.status_codes.replace("\\", "\\\\").replace('"', '\\"')), REQUESTS, False
    if metric.kind == "latency":
        return FAST.replace("$le", le_pattern(float(metric.threshold))), DURATIONS, True
    return metric.events_query or "", metric.requests_query or REQUESTS, False


class OutcomeReader:
    def __init__(self, client, *, model: str, selector: str):
        self.client = client
        self.model = model
        self.selector = selector

    def _render(self, query: str, arm: Arm) -> str:
        return render_query(query, Labels(self.model, arm.version, arm.environment), selector=self.selector,
                            window="1m")

    def _value(self, query: str, at: datetime | None) -> float:
        samples = self.client.query(query, at=at)
        return float(sum(sample.value for sample in samples if sample.value == sample.value))

    def _since(self, query: str, arm: Arm, started: datetime) -> int:
        text = self._render(query, arm)
        now, then = self._value(text, None), self._value(text, started)
        return max(0, round(now - then if now >= then else now))

    def counts(self, metric: Metric, stable: Arm, canary: Arm, started: datetime) -> tuple[Counts, dict[str, str]]:
        events_query, requests_query, complement = queries(metric)
        values = []
        for arm in (canary, stable):
            events = self._since(events_query, arm, started)
            requests = self._since(requests_query, arm, started)
            if complement:
                events = max(0, requests - events)
            values += [min(events, requests), requests]
        shown = {"events": self._render(events_query, canary), "requests": self._render(requests_query, canary)}
        return Counts(*values), shown

    def baseline(self, metric: Metric, stable: Arm, window_seconds: float) -> tuple[float | None, int]:
        """The stable version's rate and requests over the window before now (for the sample size)."""
        from datetime import timedelta, timezone

        events_query, requests_query, complement = queries(metric)
        now = datetime.now(timezone.utc)
        then = now - timedelta(seconds=window_seconds)

        def increase(query: str) -> float:
            text = self._render(query, stable)
            current, before = self._value(text, now), self._value(text, then)
            return current - before if current >= before else current

        requests = increase(requests_query)
        if requests <= 0:
            return None, 0
        events = increase(events_query)
        if complement:
            events = requests - events
        return min(max(events / requests, 0.0), 1.0), int(requests)

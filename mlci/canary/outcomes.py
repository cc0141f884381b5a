"""Each version's outcomes since the experiment started, as counts, from Prometheus or a file.

Counters are read twice, now and at the start, and subtracted: exact counts
for the experiment's own period, unlike increase(), which extrapolates and
misses the first increment of a series born mid-window (a canary's first
error). A counter that went down was reset by a server restart; its current
value is the count since then.

The version's series are picked by monitor.selector with $version and
$environment filled in: the stable version runs in the environment, the new
one in "<environment>-canary" (its own server, its own scrape target).

A custom metric may instead be fed back as rows (one per trial: version,
outcome, time) in a file or table that polars reads where it lives.
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
        if metric.outcomes:
            return FileOutcomes(metric.outcomes).counts(stable, canary, started)
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

        now = datetime.now(timezone.utc)
        then = now - timedelta(seconds=window_seconds)
        if metric.outcomes:
            return FileOutcomes(metric.outcomes).baseline(stable, then, now)
        events_query, requests_query, complement = queries(metric)

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


class FileOutcomes:
    """A business outcome fed back as rows: `version`, `outcome` (an event or not) and `timestamp` columns."""

    TRUE_TEXT = ("true", "1", "yes", "y", "t")

    def __init__(self, spec: dict):
        """`spec` is the metric's `outcomes` with the schema's defaults and `base`, mlci.yml's folder."""
        self.spec = spec
        self.version = spec["version-column"]
        self.outcome = spec["outcome-column"]
        self.time = spec["time-column"]

    def _rows(self):
        """(version as text, outcome as bool, time in UTC or None) for every row with an outcome."""
        from pathlib import Path

        import polars as pl

        from mlci.data.sources import expand, load_frame
        from mlci.errors import ConfigError

        path = self.spec["path"]
        where = f"deploy.canary.metrics outcomes {self.shown_path}"
        # Nothing fed back yet is no files: no trials, so the analysis continues.
        files = expand(path, location=where, base=Path(self.spec["base"]), missing_ok=True)
        wanted = tuple(c for c in (self.version, self.outcome, self.time) if c)
        frame = load_frame(files, self.spec.get("format"), location=where, columns=wanted) if files else None
        if frame is None or frame.height == 0:
            return pl.DataFrame(schema={"version": pl.String, "event": pl.Boolean,
                                        "at": pl.Datetime("us", "UTC")})
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            present = load_frame(files, self.spec.get("format"), location=where).columns
            raise ConfigError(f"no column {', '.join(repr(c) for c in missing)} in the outcomes (columns: "
                              f"{', '.join(present)}); set version-column, outcome-column and time-column",
                              location=where)
        outcome = pl.col(self.outcome)
        if frame.schema[self.outcome] == pl.String:
            event = outcome.str.strip_chars().str.to_lowercase().is_in(self.TRUE_TEXT)
            event = pl.when(outcome.str.strip_chars() == "").then(None).otherwise(event)
        else:
            event = outcome.cast(pl.Boolean, strict=False)
        columns = [pl.col(self.version).cast(pl.String).alias("version"), event.alias("event")]
        if self.time:
            columns.append(self._utc(frame, where).alias("at"))
        else:
            columns.append(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("at"))
        return frame.select(columns).filter(pl.col("event").is_not_null() & pl.col("version").is_not_null())

    @property
    def shown_path(self) -> str:
        """The path for messages and reports: without a URL's user:password@ or query (a presigned key)."""
        from mlci.data.location import safe_url

        return safe_url(self.spec["path"])

    def _utc(self, frame, where: str):
        import polars as pl

        from mlci.errors import ConfigError

        column, dtype = pl.col(self.time), frame.schema[self.time]
        if dtype == pl.String:
            parsed = frame.select(column.str.to_datetime(strict=False, time_zone="UTC")).to_series()
            if parsed.null_count() > frame[self.time].null_count():
                raise ConfigError(f"time-column '{self.time}' has values that are not timestamps (e.g. "
                                  f"{frame.filter(parsed.is_null() & column.is_not_null())[self.time][0]!r})",
                                  location=where)
            return pl.lit(parsed)
        if dtype == pl.Date:
            return column.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        if isinstance(dtype, pl.Datetime):
            return column.dt.convert_time_zone("UTC") if dtype.time_zone else column.dt.replace_time_zone("UTC")
        raise ConfigError(f"time-column '{self.time}' holds {dtype}, not timestamps", location=where)

    def _tally(self, rows, version: str) -> tuple[int, int]:
        import polars as pl

        mine = rows.filter(pl.col("version") == version)
        return int(mine["event"].sum() or 0), mine.height

    def _since(self, rows, start: datetime, end: datetime | None = None):
        import polars as pl

        if not self.time:
            return rows
        kept = pl.col("at") >= start
        if end is not None:
            kept &= pl.col("at") < end
        return rows.filter(kept)

    def counts(self, stable: Arm, canary: Arm, started: datetime) -> tuple[Counts, dict[str, str]]:
        rows = self._since(self._rows(), started)
        new_events, new_trials = self._tally(rows, canary.version)
        old_events, old_trials = self._tally(rows, stable.version)
        source = self.shown_path
        shown = {"events": f"rows of {source} where {self.outcome} is true and {self.version} = {canary.version}",
                 "requests": f"rows of {source} where {self.version} = {canary.version}"}
        return Counts(new_events, new_trials, old_events, old_trials), shown

    def baseline(self, stable: Arm, start: datetime, end: datetime) -> tuple[float | None, int]:
        events, trials = self._tally(self._since(self._rows(), start, end), stable.version)
        return (events / trials if trials else None), trials

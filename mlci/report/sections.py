"""Summaries of the upstream jobs' JSON artifacts (pure: parsed JSON in, Section out).

The gate, data check, drift and train jobs each write a `"version": 1` JSON
artifact. The report reads them defensively: a field that is absent or of an
unexpected shape leaves that detail out instead of failing the report, and
nested result lists are found by their shape, not only by one exact key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from mlci.report.model import Section, Table

PASSED, FAILED, WARNING, SKIPPED, INFO = "passed", "failed", "warning", "skipped", "info"

_STATUS_WORDS = {
    "passed": PASSED, "pass": PASSED, "ok": PASSED, "success": PASSED, "succeeded": PASSED, "green": PASSED,
    "failed": FAILED, "fail": FAILED, "failure": FAILED, "error": FAILED, "blocked": FAILED, "red": FAILED,
    "warning": WARNING, "warn": WARNING, "warned": WARNING,
    "skipped": SKIPPED, "skip": SKIPPED, "not-applicable": SKIPPED, "n/a": SKIPPED,
}
_STATUS_KEYS = ("status", "verdict", "result", "outcome", "state")
_NAME_KEYS = ("name", "rule", "id", "check", "metric", "column")
_MESSAGE_KEYS = ("message", "reason", "detail", "details", "description", "note")


def normalize_status(value: Any) -> str | None:
    if isinstance(value, bool):
        return PASSED if value else FAILED
    if isinstance(value, str):
        return _STATUS_WORDS.get(value.strip().lower())
    return None


def overall_status(doc: Mapping[str, Any]) -> str | None:
    for key in (*_STATUS_KEYS, "gate", "passed", "ok"):
        status = normalize_status(doc.get(key))
        if status:
            return status
    return None


def _first(d: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = d.get(key)
        if value not in (None, ""):
            return value
    return None


def _is_result(item: Mapping[str, Any]) -> bool:
    status = _first(item, _STATUS_KEYS)
    if status is None:
        status = item.get("passed")
    return _first(item, _NAME_KEYS) is not None and normalize_status(status) is not None


def _results(node: Any, trail: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """Dicts inside lists that look like one rule/check result (a name and a status), with the
    names of the dicts around them (e.g. the file a rule ran on). A result's own sub-results
    (a glob rule's per-metric checks) belong to it and are not counted again."""
    found: list[tuple[tuple[str, ...], dict]] = []
    if isinstance(node, dict):
        label = _first(node, ("path", "file", "name"))
        inner = (*trail, str(label)) if isinstance(label, str) else trail
        for value in node.values():
            if isinstance(value, (dict, list)):
                found += _results(value, inner)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and _is_result(item):
                found.append((trail, item))
            elif isinstance(item, (dict, list)):
                found += _results(item, trail)
    return found


def fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value[:5]) + (" …" if len(value) > 5 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in list(value.items())[:5])
    return str(value)


def _counts_headline(statuses: list[str], noun: str) -> str:
    parts = [f"{statuses.count(s)} {s}" for s in (FAILED, WARNING, PASSED, SKIPPED) if statuses.count(s)]
    return f"{len(statuses)} {noun}{'s' if len(statuses) != 1 else ''}: " + ", ".join(parts) if statuses else ""


def _severity(item: Mapping[str, Any]) -> str:
    value = item.get("severity") or item.get("level")
    return str(value) if value else ""


def _effective_status(item: Mapping[str, Any]) -> str:
    status = normalize_status(_first(item, _STATUS_KEYS))
    if status is None:
        status = normalize_status(item.get("passed")) or INFO
    # A failed rule of severity warn (or marked non-blocking) does not block: show it as a warning.
    if status == FAILED and (_severity(item).lower() in ("warn", "warning") or item.get("blocking") is False):
        return WARNING
    return status


def gate_section(doc: Mapping[str, Any] | None) -> Section | None:
    if not isinstance(doc, Mapping):
        return None
    results = _results(doc)
    statuses = [_effective_status(item) for _, item in results]
    status = overall_status(doc) or (FAILED if FAILED in statuses else PASSED if statuses else INFO)
    rows = []
    for _, item in results:
        value = _first(item, ("observed", "candidate", "actual", "value"))
        limit = _first(item, ("threshold", "expected", "limit", "bound", "champion"))
        rows.append((
            str(_first(item, _NAME_KEYS)),
            _effective_status(item),
            _severity(item),
            fmt_value(value) if value is not None else "—",
            fmt_value(limit) if limit is not None else "—",
            str(_first(item, _MESSAGE_KEYS) or ""),
        ))
    notes = []
    cold = _first(doc, ("on_no_champion", "on-no-champion"))
    cold_start = doc.get("cold_start", doc.get("cold-start"))
    if cold and (cold_start is True or (cold_start is None and not doc.get("champion"))):
        notes.append(f"No champion: cold-start policy {cold} applied.")
    headline = _counts_headline(statuses, "rule") or "no rule results in gate.json"
    table = Table(("Rule", "Result", "Severity", "Candidate", "Compared with", "Detail"), tuple(rows)) if rows else None
    return Section("gate", "Gate", status, headline, table, tuple(notes))


def data_check_section(doc: Mapping[str, Any] | None) -> Section | None:
    if not isinstance(doc, Mapping):
        return None
    results = _results(doc)
    statuses = [_effective_status(item) for _, item in results]
    status = overall_status(doc) or (FAILED if FAILED in statuses else WARNING if WARNING in statuses else PASSED)
    if status == PASSED and WARNING in statuses:
        status = WARNING
    rows = []
    for trail, item in results:
        item_status = _effective_status(item)
        if item_status in (PASSED, SKIPPED):
            continue  # the headline counts them; the table lists what needs attention
        failing = _first(item, ("failing_rows", "failing-rows", "failed_rows", "failures", "count"))
        fraction = _first(item, ("failing_fraction", "failing-fraction", "fraction"))
        where = str(_first(item, ("file", "path")) or (trail[-1] if trail else ""))
        examples = _examples(_first(item, ("examples", "sample", "samples")))
        rows.append((
            where,
            str(_first(item, _NAME_KEYS)),
            item_status,
            fmt_value(failing) + (f" ({fraction:.2%})" if isinstance(fraction, (int, float)) else ""),
            examples,
        ))
    headline = _counts_headline(statuses, "rule") or "no rule results in data-check.json"
    table = Table(("File", "Rule", "Result", "Failing rows", "Examples"), tuple(rows)) if rows else None
    return Section("data-check", "Data check", status, headline, table)


def _examples(value: Any) -> str:
    if not isinstance(value, list):
        return "" if value is None else fmt_value(value)
    shown = []
    for example in value[:3]:
        if isinstance(example, Mapping) and "value" in example:
            row = example.get("row", example.get("index"))
            text = fmt_value(example["value"])
            shown.append(f"row {row}: {text}" if row is not None else text)
        else:
            shown.append(fmt_value(example))
    return "; ".join(shown) + (" …" if len(value) > 3 else "")


_DRIFT_FLAGS = ("drift", "drifted", "is_drift", "detected")
_DRIFT_STATS = (
    "psi", "ks", "ks_statistic", "ks_pvalue", "statistic", "p_value", "pvalue", "chi2", "chi2_statistic",
    "chi2_pvalue", "unseen_fraction",
)


def _drift_columns(doc: Mapping[str, Any]) -> list[dict]:
    columns = doc.get("columns")
    if isinstance(columns, dict):  # {"age": {...}, ...}
        return [{"column": name, **v} for name, v in columns.items() if isinstance(v, dict)]
    return list(_column_results(doc))


def _column_results(node: Any) -> Iterator[dict]:
    """Per-column drift results anywhere in lists of the document (a column name plus a flag or PSI)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _column_results(value)
    elif isinstance(node, list):
        for item in node:
            is_column = isinstance(item, dict) and _first(item, ("column", "name", "feature")) is not None
            if is_column and any(k in item for k in (*_DRIFT_FLAGS, "psi")):
                yield item
            else:
                yield from _column_results(item)


def drift_section(doc: Mapping[str, Any] | None) -> Section | None:
    if not isinstance(doc, Mapping):
        return None
    columns = _drift_columns(doc)
    drifted = [c for c in columns if _is_drifted(c)]
    overall = _first(doc, ("drift", "drifted", "detected"))
    if isinstance(overall, bool):
        any_drift = overall
    else:
        any_drift = bool(drifted)
    rows = []
    for col in sorted(columns, key=lambda c: (not _is_drifted(c), str(_first(c, ("column", "name", "feature"))))):
        stats = ", ".join(f"{k}={fmt_value(col[k])}" for k in _DRIFT_STATS if k in col and col[k] is not None)
        method = _first(col, ("method", "test", "kind"))
        reasons = col.get("reasons")
        why = "; ".join(map(str, reasons)) if isinstance(reasons, list) else str(col.get("note") or "")
        status = normalize_status(col.get("status"))
        rows.append((
            str(_first(col, ("column", "name", "feature"))),
            str(method or ""),
            stats,
            "drift" if _is_drifted(col) else "skipped" if status == SKIPPED else "stable",
            why,
        ))
    reference = doc.get("reference")
    if isinstance(reference, Mapping) and reference.get("available") is False:
        reason = reference.get("reason") or "the reference data is unavailable"
        return Section("drift", "Drift", INFO, f"not measured: {reason}")
    if columns:
        headline = f"{len(drifted)} of {len(columns)} columns drifted"
    else:
        headline = "drift detected" if any_drift else "no drift detected"
    table = Table(("Column", "Method", "Statistics", "Result", "Why"), tuple(rows)) if rows else None
    return Section("drift", "Drift", WARNING if any_drift else PASSED, headline, table)


def _is_drifted(col: Mapping[str, Any]) -> bool:
    flag = _first(col, _DRIFT_FLAGS)
    if isinstance(flag, bool):
        return flag
    return normalize_status(_first(col, _STATUS_KEYS)) in (FAILED, WARNING)


# train.json: identifiers are shown in the header; the tracking URI may carry credentials.
_TRAIN_SKIP = {
    "version", "run_id", "experiment_id", "experiment", "tracking_uri", "model_uri", "command", "params", "data",
    "telemetry", "warnings", "fingerprint",
}


def _flatten(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node and all(isinstance(v, Mapping) for v in node):
        for index, value in enumerate(node):
            yield from _flatten(value, f"{prefix}[{index}]")
    else:
        yield prefix, node


def _gpu_text(gpu: Any) -> str:
    if isinstance(gpu, str):
        return gpu
    if not isinstance(gpu, Mapping):
        return ""
    names = gpu.get("names")
    if isinstance(names, list) and names:
        counts: dict[str, int] = {}
        for name in names:
            counts[str(name)] = counts.get(str(name), 0) + 1
        return ", ".join(f"{n}x {name}" if n > 1 else name for name, n in counts.items())
    if isinstance(gpu.get("name"), str):
        return gpu["name"]
    if gpu.get("available") is False:
        return "no GPU"
    return ""


def telemetry_section(doc: Mapping[str, Any] | None) -> Section | None:
    """Training summary from train.json: outcome, duration, cache, and the telemetry block."""
    if not isinstance(doc, Mapping):
        return None
    telemetry = doc.get("telemetry") if isinstance(doc.get("telemetry"), Mapping) else {}
    rows = []
    for key, value in _flatten({k: v for k, v in doc.items() if k not in _TRAIN_SKIP}):
        if value is not None and key:
            rows.append((key, fmt_value(value)))
    for key, value in _flatten(telemetry):
        if value is not None and key:
            rows.append((key, fmt_value(value)))
    if not rows:
        return None
    headline_parts = []
    duration = _first(doc, ("duration_seconds", "duration_s", "duration", "wall_time_s"))
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        headline_parts.append(f"{duration:.0f} s")
    if doc.get("cache_hit") is True:
        headline_parts.append("cache hit: an identical earlier run was re-used")
    gpu = _gpu_text(telemetry.get("gpu") if telemetry else doc.get("gpu"))
    if gpu:
        headline_parts.append(gpu)
    status = normalize_status(doc.get("status"))
    section_status = FAILED if status == FAILED else INFO
    if doc.get("killed_reason"):
        headline_parts.append(f"killed: {doc['killed_reason']}")
    headline = ", ".join(headline_parts) or f"{len(rows)} values"
    notes = tuple(str(w) for w in doc.get("warnings") or [] if isinstance(w, str))[:5]
    return Section("telemetry", "Training", section_status, headline, Table(("Measure", "Value"), tuple(rows)), notes)


MAX_TUNE_ROWS = 10


def tune_section(doc: Mapping[str, Any] | None) -> Section | None:
    """The tuning study from tune.json: outcome counts, the best trial, the best few trials."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("counts"), Mapping):
        return None
    counts, metric = doc["counts"], str(doc.get("metric") or "objective")
    trials = [t for t in doc.get("trials") or [] if isinstance(t, Mapping)]
    best = doc.get("best") if isinstance(doc.get("best"), Mapping) else None
    tally = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("complete", "pruned", "failed") if counts.get(k))
    if counts.get("retried"):
        tally += f", {counts['retried']} lost with a job and retried"
    headline = f"{counts.get('evaluations', len(trials))} of {doc.get('n_trials', '?')} trials ({tally or 'none run'})"
    if best is not None:
        headline = f"best {metric} = {fmt_value(best.get('value'))} (trial {best.get('number')}); " + headline
    if not doc.get("final", True):
        headline += "; the study had unfinished trials"
    sign = 1 if doc.get("direction") == "minimize" else -1
    complete = sorted((t for t in trials if t.get("state") == "COMPLETE" and isinstance(t.get("value"), (int, float))),
                      key=lambda t: sign * t["value"])
    rows = tuple(
        (str(t.get("number")), "best" if best is not None and t.get("number") == best.get("number") else "complete",
         fmt_value(t.get("value")), ", ".join(f"{k}={fmt_value(v)}" for k, v in (t.get("params") or {}).items()))
        for t in complete[:MAX_TUNE_ROWS]
    )
    notes = (f"study {doc.get('study')}: {doc.get('sampler', 'tpe')} sampler, {doc.get('pruner', 'median')} pruner, "
             f"{doc.get('direction', '')} {metric}",)
    status = INFO if best is not None else FAILED
    table = Table(("Trial", "Result", metric, "Params"), rows) if rows else None
    return Section("tune", "Tuning", status, headline, table, notes)
def _ratio(value: Any) -> str:
    return f"{value:.2f}x" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _ms(value: Any) -> str:
    return f"{value:.3g} ms" if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def optimize_section(doc: Mapping[str, Any] | None) -> Section | None:
    """optimize.json: size and latency before and after, and the parity figures."""
    if not isinstance(doc, Mapping):
        return None
    status = normalize_status(doc.get("status"))
    if doc.get("status") == "unsupported":
        return Section("optimize", "Optimization", WARNING,
                       f"not optimized, the original model is used: {doc.get('reason') or 'unsupported model'}")
    rows = []
    size = doc.get("size") if isinstance(doc.get("size"), Mapping) else {}
    if size:
        rows.append(("size on disk", f"{fmt_value(size.get('original-mb'))} MB",
                     f"{fmt_value(size.get('optimized-mb'))} MB", _ratio(size.get("ratio"))))
    latency = doc.get("latency") if isinstance(doc.get("latency"), Mapping) else {}
    for batch, figures in latency.items():
        if not isinstance(figures, Mapping):
            continue
        before, after = figures.get("original") or {}, figures.get("optimized") or {}
        for key in ("p50", "p95"):
            rows.append((f"latency {key}, batch {batch}", _ms(before.get(f"{key}-ms")), _ms(after.get(f"{key}-ms")),
                         _ratio(figures.get(f"{key}-ratio"))))
    parity = doc.get("parity") if isinstance(doc.get("parity"), Mapping) else {}
    notes = []
    for check in parity.get("checks") or []:
        if isinstance(check, Mapping):
            mark = "passed" if check.get("status") == "passed" else "FAILED"
            notes.append(f"Parity {check.get('name')} {mark}: {check.get('message', '')}")
    parts = [f"{doc.get('flavor', 'model')} exported with {doc.get('exporter', 'an exporter')}"]
    if doc.get("quantize") and doc.get("quantize") != "none":
        parts.append(f"quantized ({doc['quantize']})")
    parts.append("parity passed" if parity.get("status") == "passed" else "parity FAILED")
    if size.get("ratio") is not None:
        parts.append(f"size {_ratio(size.get('ratio'))}")
    table = Table(("Measure", "Original", "Optimized", "Ratio"), tuple(rows)) if rows else None
    return Section("optimize", "Optimization", FAILED if status == FAILED else PASSED, ", ".join(parts), table,
                   tuple(notes))

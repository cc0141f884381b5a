"""An optimize Outcome as artifacts: optimize.json, optimize.junit.xml, optimize.md, optimize.env. Pure."""

from __future__ import annotations

import math
from typing import Any

from mlci.optimize.runner import FAILED, PASSED, UNSUPPORTED, Outcome
from mlci.outputs.junit import TestCase, TestSuite

SUITE = "mlci-optimize"


def _number(value: float | None):
    if value is None:
        return None
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return value


def json_payload(outcome: Outcome) -> dict[str, Any]:
    parity = outcome.parity
    return {
        "version": 1,
        "status": outcome.status,
        "run_id": outcome.run_id,
        "flavor": outcome.flavor,
        "model-class": outcome.model_class,
        "exporter": outcome.exporter,
        "opset": outcome.opset,
        "quantize": outcome.quantize,
        "quantized-nodes": outcome.quantized_nodes,
        "artifact-path": outcome.artifact_path if outcome.model_uri else None,
        "model-uri": outcome.model_uri or None,
        "sample": outcome.sample,
        "reason": outcome.reason or None,
        "parity": None if parity is None else {
            "status": PASSED if parity.passed else FAILED,
            "rows": parity.rows,
            "task": parity.task,
            "checks": [{"name": c.name, "status": c.status, "observed": _number(c.observed),
                        "threshold": _number(c.threshold), "message": c.message} for c in parity.checks],
            "metric": parity.metric,
        },
        "size": {key: _number(value) for key, value in outcome.size.items()},
        "latency": {
            rows: {
                "original": {k: _number(v) for k, v in figures["original"].items()},
                "optimized": {k: _number(v) for k, v in figures["optimized"].items()},
                "p50-ratio": _number(figures["p50-ratio"]),
                "p95-ratio": _number(figures["p95-ratio"]),
            }
            for rows, figures in outcome.latency.items()
        },
        "notes": outcome.notes,
        "failed-model-file": outcome.failed_model_file or None,
    }


def junit_suites(outcome: Outcome) -> list[TestSuite]:
    suite = TestSuite(name=SUITE)
    classname = "mlci.optimize"
    if outcome.status == UNSUPPORTED or outcome.parity is None:
        status = "skipped" if outcome.status == UNSUPPORTED else "failed"
        suite.add(TestCase(name="export", classname=classname, status=status, message=outcome.reason,
                           details=outcome.reason))
        return [suite]
    suite.add(TestCase(name="export", classname=classname, status="passed",
                       stdout=f"{outcome.flavor} {outcome.model_class} exported with {outcome.exporter}"))
    for check in outcome.parity.checks:
        suite.add(TestCase(name=f"parity {check.name}", classname=classname, status=check.status,
                           message=check.message, details=check.message,
                           stdout=check.message if check.status == PASSED else ""))
    return [suite]


def _ms(value: float) -> str:
    return f"{value:.3g} ms"


def markdown(outcome: Outcome) -> str:
    lines = [f"## Model optimization: {outcome.status}", ""]
    if outcome.status == UNSUPPORTED:
        lines += [f"Not optimized, the original model is used: {outcome.reason}", ""]
        return "\n".join(lines)
    lines.append(f"{outcome.flavor} `{outcome.model_class}` exported with {outcome.exporter}, opset {outcome.opset}"
                 f", quantization: {outcome.quantize}. Sample: {outcome.sample}.")
    lines.append("")
    if outcome.size:
        lines += ["| measure | original | optimized | ratio |", "|---|---:|---:|---:|",
                  f"| size on disk | {outcome.size['original-mb']:.3g} MB | {outcome.size['optimized-mb']:.3g} MB "
                  f"| {outcome.size['ratio']:.2f}x |"]
        for rows, figures in outcome.latency.items():
            for key in ("p50", "p95"):
                lines.append(f"| latency {key}, batch {rows} | {_ms(figures['original'][f'{key}-ms'])} | "
                             f"{_ms(figures['optimized'][f'{key}-ms'])} | {figures[f'{key}-ratio']:.2f}x |")
        lines.append("")
    if outcome.parity is not None:
        lines += ["| parity check | result | detail |", "|---|---|---|"]
        lines += [f"| {c.name} | {c.status} | {c.message} |" for c in outcome.parity.checks]
        lines.append("")
    for note in outcome.notes:
        lines.append(f"- {note}")
    return "\n".join(lines).rstrip() + "\n"


def dotenv_values(outcome: Outcome) -> dict[str, str]:
    return {
        "MLCI_OPTIMIZE": outcome.status,
        "MLCI_OPTIMIZED_MODEL_URI": outcome.model_uri,
    }

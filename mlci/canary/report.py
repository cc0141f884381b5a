"""The analysis as artifacts: JSON, JUnit, markdown (environment page and MR) and dotenv."""

from __future__ import annotations

from typing import Any

from mlci.canary.decide import CONTINUE, PROMOTE, ROLLBACK, Analysis
from mlci.outputs.junit import TestCase, TestSuite

ICONS = {PROMOTE: "✅", ROLLBACK: "⏪", CONTINUE: "⏳"}


def to_json(analysis: Analysis, *, model: str, queries: dict[str, dict[str, str]], extra: dict | None = None
            ) -> dict[str, Any]:
    state = analysis.state
    return {
        "version": 1,
        "model": model,
        "environment": state["environment"],
        "mode": analysis.mode,
        "stable-version": state["stable"],
        "new-version": state["canary"],
        "percent": state["percent"],
        "started-at": state["started-at"],
        "elapsed-seconds": round(analysis.elapsed, 1),
        "decision": analysis.decision,
        "rule": analysis.rule,
        "decided-earlier": analysis.decided_before,
        "tested-this-run": analysis.looked,
        "min-p": analysis.min_p,
        "settings": state["settings"],
        "metrics": [{**metric.to_json(), "queries": queries.get(metric.name, {})} for metric in analysis.metrics],
        **(extra or {}),
    }


def _pct(value) -> str:
    return "–" if value is None else f"{value:.2%}"


def to_markdown(payload: dict[str, Any]) -> str:
    decision = payload["decision"]
    mode = "A/B test" if payload["mode"] == "ab" else "Canary"
    lines = [
        f"## {ICONS.get(decision, '')} {mode} of {payload['model']} version {payload['new-version']} in "
        f"`{payload['environment']}`: **{decision}**",
        "",
        f"Version {payload['new-version']} takes {payload['percent']:g}% of the traffic, version "
        f"{payload['stable-version']} the rest, since {payload['started-at']} "
        f"({payload['elapsed-seconds'] / 60:.0f} min).",
        "",
        f"**Rule that decided:** {payload['rule']}",
        "",
        "| metric | new version | stable | difference (CI) | test | status |",
        "|---|---|---|---|---|---|",
    ]
    for metric in payload["metrics"]:
        samples = metric["samples"] or {}
        new, old = samples.get("canary") or {}, samples.get("stable") or {}
        effect = metric["effect"]
        ci = effect.get("ci")
        interval = f" ({ci[0]:+.2%} to {ci[1]:+.2%}, {effect['ci-level']:.0%})" if ci else ""
        difference = "–" if effect.get("difference") is None else f"{effect['difference']:+.2%}{interval}"
        test = metric.get("test") or {}
        tested = (f"z = {test['z']:.2f}, p = {test['p']:.3g} vs {test.get('nominal-alpha', 0):.3g} (look "
                  f"{test['look']})" if test.get("p") is not None else "not tested yet")
        lines.append(
            f"| {metric['name']} | {_pct(new.get('rate'))} of {new.get('requests', 0)} | "
            f"{_pct(old.get('rate'))} of {old.get('requests', 0)} | {difference} | {tested} | {metric['status']} |")
    lines += ["", "Design: alpha {alpha:g} split over the metrics, power {power:g}, at most {looks} looks "
              "(O'Brien-Fleming-type alpha spending: peeking does not raise the false alarm rate).".format(
                  alpha=payload["settings"]["alpha"], power=payload["settings"]["power"],
                  looks=payload["settings"]["max-looks"])]
    for metric in payload["metrics"]:
        design = metric["design"]
        lines.append(f"- {metric['name']}: baseline {design['baseline']:.2%} ({design['baseline-source']}), "
                     f"planned {design['n-canary']} requests of the new version and {design['n-stable']} of the "
                     f"stable one; information so far {metric['information']:.0%}. {metric['reason']}")
    return "\n".join(lines) + "\n"


def to_junit(payload: dict[str, Any]) -> list[TestSuite]:
    suite = TestSuite(name=f"canary {payload['model']} {payload['environment']}")
    classname = f"canary.{payload['environment']}"
    for metric in payload["metrics"]:
        case = suite.add(TestCase(name=f"{metric['name']}: version {payload['new-version']} is not worse than "
                                       f"{payload['stable-version']}", classname=classname,
                                  stdout=metric["reason"]))
        if metric["status"] == "harm":
            case.status, case.message = "failed", metric["reason"]
        elif metric["status"] in ("running", "no-data"):
            case.status, case.message = "skipped", f"{metric['status']}: {metric['reason']}"
    decision = suite.add(TestCase(name=f"decision: {payload['decision']}", classname=classname,
                                  stdout=payload["rule"]))
    if payload["decision"] == ROLLBACK:
        decision.status, decision.message = "failed", payload["rule"]
    return [suite]


def to_dotenv(payload: dict[str, Any]) -> dict[str, str]:
    return {
        "MLCI_CANARY_DECISION": payload["decision"],
        "MLCI_CANARY_ENVIRONMENT": payload["environment"],
        "MLCI_CANARY_VERSION": payload["new-version"],
        "MLCI_CANARY_STABLE_VERSION": payload["stable-version"],
        "MLCI_CANARY_MIN_P": "" if payload["min-p"] is None else f"{payload['min-p']:.6g}",
    }

"""Gathered inputs + config -> the ReportModel and the plots to draw (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlci.adapters.ci_env import CiEnv
from mlci.report import plots
from mlci.report.build import ReportInputs, ReportOptions, RunData, build_report
from mlci.report.collect import Gathered, model_version_of
from mlci.report.metrics import direction_of, selected
from mlci.report.model import Image, ReportModel


@dataclass
class ComposedReport:
    model: ReportModel
    plots: list[plots.PlotSpec] = field(default_factory=list)  # to render into report-plots/
    copies: dict[str, Path] = field(default_factory=dict)  # report-plots/<name> <- existing PNG (drift-plots/)


def _run_label(run: RunData) -> str:
    return (run.commit[:8] if run.commit else "") or run.name[:12] or run.run_id[:8]


def _gated_metrics(gate: dict | None) -> list[str]:
    """Metric names the gate's rules looked at, in rule order (gate.json verdicts and their checks)."""
    names: list[str] = []
    for verdict in (gate or {}).get("verdicts") or []:
        if not isinstance(verdict, dict):
            continue
        checks = [c.get("metric") for c in verdict.get("checks") or [] if isinstance(c, dict)]
        for name in [verdict.get("subject"), *checks]:
            if isinstance(name, str) and name not in names:
                names.append(name)
    return names


def _history_metrics(model: ReportModel, config, gate: dict | None) -> list[tuple[str, str]]:
    """report.history-metrics when set; else the metrics the gate checks first, then the rest by name."""
    wanted = list(config.get("report", "history-metrics", default=[]) or [])
    limit = int(config.get("report", "max-history-plots", default=4))
    names = [row.name for row in model.metrics if row.candidate is not None]
    if wanted:
        names = [n for n in names if selected(n, wanted, ())]
    else:
        gated = [n for n in _gated_metrics(gate) if n in names]
        names = gated + [n for n in names if n not in gated]
    directions = {row.name: row.direction for row in model.metrics}
    return [(n, directions.get(n) or direction_of(n)) for n in names[:limit]]


def compose(gathered: Gathered, config, ci: CiEnv, env: dict[str, str]) -> ComposedReport:
    options = ReportOptions.from_config(config)
    artifacts = gathered.artifacts
    model_name = config.get("model", "name") or str((artifacts.get("gate") or {}).get("model") or "model")
    inputs = ReportInputs(
        model_name=model_name,
        ci=ci,
        candidate=gathered.candidate,
        champion=gathered.champion,
        champion_version=gathered.champion_version,
        target=gathered.target,
        model_version=model_version_of(env, artifacts),
        gate=artifacts.get("gate"),
        data_check=artifacts.get("data_check"),
        drift=artifacts.get("drift"),
        train=artifacts.get("train"),
        tune=artifacts.get("tune"),
        optimize=artifacts.get("optimize"),
    )
    model = build_report(inputs, options)
    if artifacts.get("runners"):
        from mlci.runners.plan import report_section

        model.sections.append(report_section(artifacts["runners"]))
    composed = ComposedReport(model)
    if not config.get("report", "plots", default=True):
        return composed
    specs: list[plots.PlotSpec] = []
    cand = gathered.candidate
    if cand is not None and gathered.history and int(config.get("report", "history-runs", default=10)) > 0:
        specs += plots.history_plots(
            [(_run_label(r), dict(r.metrics)) for r in gathered.history],
            dict(cand.metrics),
            _history_metrics(model, config, artifacts.get("gate")),
            dict(gathered.champion.metrics) if gathered.champion else None,
        )
    if gathered.predictions is not None:
        y_true, y_pred = gathered.predictions
        spec = plots.predictions_plot(
            y_true,
            y_pred,
            task=config.get("report", "task", default="auto"),
            max_classes=int(config.get("report", "max-classes", default=30)),
        )
        if spec is not None:
            specs.append(spec)
    if gathered.tune_pngs:
        # `mlci tune` drew them with Optuna's own plotting; re-used as they are.
        titles = {Path(str(p.get("file", ""))).name: str(p.get("title", ""))
                  for p in (artifacts.get("tune") or {}).get("plots") or [] if isinstance(p, dict)}
        for png in gathered.tune_pngs[:4]:
            name = f"tune-{plots.safe_name(png.stem)}.png"
            composed.copies[name] = png
            model.images.append(Image(name, titles.get(png.name) or f"Tuning: {png.stem}", "tune"))
    if gathered.drift_pngs:
        # The drift job already drew them; re-use its PNGs rather than redrawing.
        for png in gathered.drift_pngs[:6]:
            name = f"drift-{plots.safe_name(png.stem)}.png"
            composed.copies[name] = png
            model.images.append(Image(name, f"Drift: {png.stem}", "drift"))
    else:
        specs += plots.drift_histograms(artifacts.get("drift"))
    composed.plots = plots.unique_names(specs)
    model.images[:0] = [Image(s.name, s.title, s.kind) for s in composed.plots]
    return composed

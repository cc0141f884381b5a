"""Live data drift: what the deployment was asked (its logged requests) against the training reference.

The comparison is `mlci data drift`'s engine (mlci.data.drift.compare) with
the thresholds of data.drift, so "drift" means the same thing before training
and in production. When the logs also hold the model's answers
(`prediction-column`), they are compared with the reference's labels
(`target-column`): a shift in what the model answers is drift too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlci.monitor.decide import DriftResult
from mlci.monitor.rules import DriftSettings


def measure(config, settings: DriftSettings, *, base: Path):
    """(DriftResult, DatasetDrift | None)."""
    from mlci.data.drift import compare, settings_from_config
    from mlci.data.reference import CHAMPION, champion_snapshot
    from mlci.data.sources import expand, load_frame
    from mlci.errors import ConfigError

    if not settings.logs:
        return DriftResult(status="off", action=settings.action, reason="no monitor.drift.logs configured"), None
    if not settings.reference:
        raise ConfigError("monitor.drift.logs is set but there is no reference to compare them with",
                          location=config.where(("monitor", "drift")),
                          hint="set monitor.drift.reference (a file, or champion) or data.drift.reference")
    files: list[Path] = []
    for pattern in settings.logs:
        try:
            files += expand(str(base / pattern), location=config.where(("monitor", "drift", "logs")))
        except ConfigError:
            continue  # no logs yet is "no data", judged below
    if not files:
        return DriftResult(status="no-data", action=settings.action, min_rows=settings.min_rows,
                           reason=f"no logged requests match {', '.join(settings.logs)}"), None
    drift_cfg = dict(config.get("data", "drift") or {})
    exclude = tuple(settings.exclude or ())
    columns = settings.columns
    prediction, target = settings.prediction_column, settings.target_column
    if prediction:
        exclude = tuple(name for name in exclude if name not in (prediction, target))
        if columns:
            columns = (*columns, prediction)
    current = load_frame(files, settings.format)
    if current.height < settings.min_rows:
        return DriftResult(status="no-data", action=settings.action, rows=current.height,
                           min_rows=settings.min_rows,
                           reason=f"{current.height} logged requests, fewer than monitor.drift.min-rows "
                                  f"({settings.min_rows})"), None
    with tempfile.TemporaryDirectory(prefix="mlci-monitor-ref-") as scratch:
        if settings.reference == CHAMPION:
            snapshot = champion_snapshot(config, Path(scratch), artifact_path=drift_cfg.get("snapshot-path",
                                                                                            "mlci-data"))
            if snapshot.unavailable:
                return DriftResult(status="no-data", action=settings.action, rows=current.height,
                                   reason=f"no reference: {snapshot.unavailable}"), None
            reference_files, label = snapshot.files, snapshot.label
        else:
            reference_files = expand(str(base / settings.reference),
                                     location=config.where(("monitor", "drift", "reference")))
            label = settings.reference
        reference = load_frame(reference_files, None)
    if prediction:
        if target and target in reference.columns and target != prediction:
            reference = reference.rename({target: prediction})
        if prediction not in current.columns:
            raise ConfigError(f"the logged requests have no column {prediction!r} (monitor.drift.prediction-column)",
                              location=config.where(("monitor", "drift", "prediction-column")))
        if reference.schema.get(prediction) != current.schema.get(prediction):
            import polars as pl

            # Labels are often ints in training data and floats in a JSON log: compare them as numbers.
            reference = reference.with_columns(pl.col(prediction).cast(pl.Float64))
            current = current.with_columns(pl.col(prediction).cast(pl.Float64))
    if not columns:
        # A request log holds what the model is sent: reference columns it never gets are not drift.
        columns = tuple(name for name in reference.columns if name in current.columns and name not in exclude)
    engine = settings_from_config(drift_cfg, columns=list(columns), exclude=list(exclude))
    dataset = compare(reference, current, engine, label=", ".join(settings.logs), reference_label=label)
    drifting = [column.column for column in dataset.columns if column.drifted]
    details = {column.column: {"status": column.status, "psi": column.psi, "ks": column.ks_statistic,
                               "reasons": column.reasons} for column in dataset.columns}
    reason = (f"{len(drifting)} of {len(dataset.columns)} columns drifted "
              f"({', '.join(drifting[:8])}{', ...' if len(drifting) > 8 else ''}) in {current.height} logged "
              f"requests vs {label}") if drifting else f"no drift in {current.height} logged requests vs {label}"
    return DriftResult(status="drift" if drifting else "ok", action=settings.action, rows=current.height,
                       min_rows=settings.min_rows, columns=drifting, reason=reason, details=details), dataset

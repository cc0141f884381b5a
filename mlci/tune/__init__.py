"""Reporting a trial's intermediate values to `mlci tune`, for pruning.

Imported by training scripts, so it stays tiny: no Optuna, no MLflow.

    import mlci.tune
    for epoch in range(epochs):
        ...
        mlci.tune.report(epoch, val_accuracy)

Without mlci the same works from any language: append one line
`STEP VALUE` per report to the file named by $MLCI_TUNE_REPORT_FILE
(e.g. `echo "$epoch $acc" >> "$MLCI_TUNE_REPORT_FILE"`). Outside a tuning
trial the variable is unset and report() does nothing, so one script serves
`mlci train` and `mlci tune`. A trial the pruner stops gets SIGTERM.
"""

from __future__ import annotations

import math
import os

REPORT_FILE_ENV = "MLCI_TUNE_REPORT_FILE"
TRIAL_ENV = "MLCI_TUNE_TRIAL"
STUDY_ENV = "MLCI_TUNE_STUDY"


def report(step: int, value: float) -> None:
    """Record the objective's value at `step` (an epoch, an iteration: a whole number that grows)."""
    path = os.environ.get(REPORT_FILE_ENV)
    if not path:
        return
    step = int(step)
    value = float(value)
    if step < 0:
        raise ValueError(f"step must be 0 or more, got {step}")
    text = "nan" if math.isnan(value) else repr(value)
    # One write of one short line with O_APPEND: the reader never sees half a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{step} {text}\n".encode())
    finally:
        os.close(fd)


def trial_number() -> int | None:
    """The Optuna trial number when running as a tuning trial, else None."""
    value = os.environ.get(TRIAL_ENV, "")
    return int(value) if value.isdigit() else None

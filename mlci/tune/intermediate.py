"""Reading a trial's intermediate values (the MLCI_TUNE_REPORT_FILE protocol) and pruning on them."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path

# Between checks of the report file: fast enough to prune within a step, few storage round trips.
CHECK_SECONDS = 0.2


class ReportFile:
    """New `STEP VALUE` lines since the last read; a line still being written waits for its newline."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.bad_lines: list[str] = []

    def read_new(self) -> list[tuple[int, float]]:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size <= self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(size - self.offset)
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        found = []
        for raw in lines:
            parsed = parse_line(raw.decode("utf-8", "replace"))
            if parsed is None:
                if raw.strip():
                    self.bad_lines.append(raw.decode("utf-8", "replace")[:80])
                continue
            found.append(parsed)
        return found


def parse_line(line: str) -> tuple[int, float] | None:
    parts = line.replace(",", " ").split()
    if len(parts) != 2:
        return None
    try:
        step = int(parts[0])
        value = float(parts[1])
    except ValueError:
        return None
    if step < 0 or math.isinf(value):
        return None
    return step, value


class PruningWatch:
    """Supervisor.watch for one trial: forward new reports to Optuna, and say stop when the pruner says so."""

    def __init__(self, trial, report_file: ReportFile, pruner_name: str,
                 clock: Callable[[], float] = time.monotonic):
        self.trial = trial
        self.file = report_file
        self.pruner_name = pruner_name
        self.clock = clock
        self.last_check = float("-inf")
        self.reported: dict[int, float] = {}
        self.pruned_at: tuple[int, float] | None = None

    def __call__(self) -> str | None:
        now = self.clock()
        if now - self.last_check < CHECK_SECONDS:
            return None
        self.last_check = now
        return self.poll()

    def poll(self) -> str | None:
        latest = None
        for step, value in self.file.read_new():
            if step in self.reported:  # Optuna keeps the first value of a step
                continue
            self.reported[step] = value
            self.trial.report(value, step)
            latest = (step, value)
        if latest is None or self.pruned_at is not None:
            return None
        if self.trial.should_prune():
            self.pruned_at = latest
            return f"pruned by the {self.pruner_name} pruner at step {latest[0]} (value {latest[1]:g})"
        return None

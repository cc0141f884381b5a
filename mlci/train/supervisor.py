"""Run the training command as a supervised child process.

- Output is streamed live (stdout and stderr merged, as in a GitLab job log)
  and also kept in a log file, so a killed run still has its log.
- The child gets its own process group. SIGTERM/SIGINT sent to mlci (GitLab
  sends SIGTERM on cancel and timeout) are forwarded to the whole group; a
  child that ignores them gets SIGKILL after the grace period.
- Runaway guard: past max-runtime, or when every GPU stays idle for the
  configured window with action=kill, the group gets SIGTERM, then SIGKILL
  after the grace period. mlci then exits 124 (like coreutils `timeout`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from mlci.train.telemetry import IdleGpuDetector, Sample

GUARD_EXIT_CODE = 124
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class GuardPolicy:
    max_runtime: float | None = None
    kill_grace: float = 10.0
    idle_threshold_percent: float = 5.0
    idle_window_seconds: float = 1800.0
    idle_action: str = "off"  # off | warn | kill


@dataclass
class Outcome:
    returncode: int | None
    exit_code: int
    status: str  # FINISHED | FAILED | KILLED
    killed_reason: str | None
    duration_seconds: float
    idle_warnings: list[str] = field(default_factory=list)


def classify_exit(
    returncode: int, *, guard_reason: str | None, forwarded_signal: int | None,
) -> tuple[str, int, str | None]:
    """(MLflow run status, mlci exit code, killed reason) for a finished child."""
    if guard_reason:
        return "KILLED", GUARD_EXIT_CODE, guard_reason
    if forwarded_signal is not None:
        name = _signal_name(forwarded_signal)
        code = returncode if returncode > 0 else 128 + forwarded_signal
        return "KILLED", code, f"{name} received by mlci and forwarded to the training command"
    if returncode == 0:
        return "FINISHED", 0, None
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = " (out of memory?)" if -returncode == signal.SIGKILL else ""
        return "KILLED", 128 - returncode, f"training command terminated by {name} from outside mlci{hint}"
    return "FAILED", returncode, None


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def shell_argv(command: Sequence[str] | str) -> list[str]:
    return ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)


class _Tee(threading.Thread):
    """Copies the child's output to our stdout and the log file as it arrives."""

    def __init__(self, fd: int, sinks: Sequence[Callable[[bytes], None]]):
        super().__init__(name="mlci-train-output", daemon=True)
        self._fd = fd
        self._sinks = sinks

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            for sink in self._sinks:
                with contextlib.suppress(Exception):
                    sink(chunk)


class Supervisor:
    def __init__(
        self,
        command: Sequence[str] | str,
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        policy: GuardPolicy = GuardPolicy(),
        output: Callable[[bytes], None],
        log: BinaryIO | None = None,
        sampler=None,
        sample_interval: float = 15.0,
        on_sample: Callable[[Sample], None] | None = None,
        on_notice: Callable[[str], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        watch: Callable[[], str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.argv = shell_argv(command)
        self.env = env
        self.cwd = cwd
        self.policy = policy
        self.output = output
        self.log = log
        self.sampler = sampler
        self.sample_interval = sample_interval
        self.on_sample = on_sample or (lambda sample: None)
        self.on_notice = on_notice or (lambda text: None)
        self.on_warning = on_warning or self.on_notice
        # Called on every poll while the command runs; a returned reason stops it like the runaway guard
        # (e.g. `mlci tune` pruning a trial).
        self.watch = watch
        self.clock = clock
        self._proc: subprocess.Popen | None = None
        self._signal: int | None = None
        self._signal_count = 0
        self._guard_reason: str | None = None
        self._kill_at: float | None = None
        self._killed_hard = False
        self._handling = False

    # -- signals -----------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        self._signal = signum
        self._signal_count += 1
        if self._proc is None:
            return
        if self._signal_count > 1:
            self._send(signal.SIGKILL)  # a second Ctrl-C/TERM means now
        else:
            self._send(signum)
            self._kill_at = self.clock() + self.policy.kill_grace

    def _send(self, signum: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signum)
        if signum == signal.SIGKILL:
            self._killed_hard = True

    def _stop(self, reason: str) -> None:
        if self._guard_reason is None and self._signal is None:
            self._guard_reason = reason
            self.on_notice(f"stopping the training command: {reason}")
            self._send(signal.SIGTERM)
            self._kill_at = self.clock() + self.policy.kill_grace

    @contextlib.contextmanager
    def handling_signals(self):
        """Catch SIGTERM/SIGINT from here on (also before the child exists), restore on exit."""
        if self._handling or threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = {signum: signal.signal(signum, self._on_signal) for signum in FORWARDED_SIGNALS}
        self._handling = True
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self._handling = False

    # -- main loop ---------------------------------------------------------
    def run(self) -> Outcome:
        with self.handling_signals():
            if self._signal is not None:  # cancelled before the child even started
                name = _signal_name(self._signal)
                return Outcome(None, 128 + self._signal, "KILLED", f"{name} before the training command started", 0.0)
            return self._run_child(self.clock())

    def _run_child(self, started: float) -> Outcome:
        proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._proc = proc
        if self._signal is not None:  # arrived between the check and Popen
            self._send(self._signal)
            self._kill_at = self.clock() + self.policy.kill_grace
        sinks = [self.output] + ([self._write_log] if self.log is not None else [])
        tee = _Tee(proc.stdout.fileno(), sinks)
        tee.start()
        if self.sampler is not None:
            self.sampler.watch(proc.pid, started)
        detector = IdleGpuDetector(self.policy.idle_threshold_percent, self.policy.idle_window_seconds)
        idle_warnings: list[str] = []
        deadline = started + self.policy.max_runtime if self.policy.max_runtime else None
        next_sample = started if self.sampler is not None else None
        while True:
            try:
                returncode = proc.wait(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                pass
            now = self.clock()
            if next_sample is not None and now >= next_sample:
                next_sample = now + self.sample_interval
                self._take_sample(now, detector, idle_warnings)
            if deadline is not None and now >= deadline:
                self._stop(f"max-runtime of {self.policy.max_runtime:g}s exceeded")
            if self.watch is not None:
                self._check_watch()
            if self._kill_at is not None and now >= self._kill_at and not self._killed_hard:
                self.on_notice(f"the training command did not exit {self.policy.kill_grace:g}s after SIGTERM; "
                               "sending SIGKILL")
                self._send(signal.SIGKILL)
        if self._guard_reason or self._signal is not None:
            # Stragglers (data loader workers, a shell's children) would keep the pipe open.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        tee.join(timeout=5)
        proc.stdout.close()
        flush = getattr(self.output, "flush", None)
        if flush is not None:  # a line-buffered (redacting) sink holds the last partial line
            with contextlib.suppress(Exception):
                flush()
        duration = self.clock() - started
        status, exit_code, reason = classify_exit(
            returncode, guard_reason=self._guard_reason, forwarded_signal=self._signal,
        )
        return Outcome(returncode, exit_code, status, reason, duration, idle_warnings)

    def _check_watch(self) -> None:
        try:
            reason = self.watch()
        except Exception as exc:  # a broken watcher must not orphan the command: stop watching instead
            self.on_warning(f"stopped watching the training command: {exc}")
            self.watch = None
            return
        if reason:
            self._stop(reason)

    def _write_log(self, chunk: bytes) -> None:
        self.log.write(chunk)
        self.log.flush()

    def _take_sample(self, now: float, detector: IdleGpuDetector, idle_warnings: list[str]) -> None:
        try:
            sample = self.sampler.sample(now, time.time_ns() // 1_000_000)
        except Exception as exc:  # telemetry must never stop training
            self.on_notice(f"telemetry sample failed: {exc}")
            return
        self.on_sample(sample)
        if self.policy.idle_action == "off" or not sample.gpus:
            return
        if detector.observe(sample.elapsed_seconds, [g.utilization_percent for g in sample.gpus]):
            minutes = self.policy.idle_window_seconds / 60
            reason = (f"idle GPU: utilisation below {self.policy.idle_threshold_percent:g}% "
                      f"for {minutes:g} min")
            if self.policy.idle_action == "kill":
                self._stop(reason)
            else:
                idle_warnings.append(reason)
                self.on_warning(f"{reason} (train.idle-gpu.action=kill would stop it)")

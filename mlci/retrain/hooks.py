"""`mlci hook NAME`: run a user command with mlci's environment, streaming its output.

The hook's stdout and stderr are relayed as they arrive through mlci's
redaction, line by line; a carriage return ends a line,
so progress bars keep moving. The hook runs in its own process group, so a
timeout or a cancelled job stops the whole tree and not just the shell in front of it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from mlci.errors import ConfigError
from mlci.retrain.settings import Hook

EXIT_TIMEOUT = 124  # what coreutils `timeout` returns, so scripts can tell it apart
KILL_GRACE_SECONDS = 5.0


def find_hook(config, hooks: Mapping[str, Hook], name: str) -> Hook:
    if name in hooks:
        return hooks[name]
    known = sorted(hooks)
    close = difflib.get_close_matches(name, known, n=1)
    message = f"unknown hook '{name}'"
    if close:
        message += f"; did you mean '{close[0]}'?"
    elif known:
        message += f"; defined hooks: {', '.join(known)}"
    else:
        message += "; no hooks are defined under retrain.hooks"
    has_hooks = config.document is not None and ("retrain", "hooks") in config.document.marks
    at = ("retrain", "hooks") if has_hooks else ("retrain",)
    raise config.error(
        at,
        message,
        hint=f"define it in mlci.yml as retrain: {{hooks: {{{name}: \"your command\"}}}}, "
        f"or pass the command after --: mlci hook {name} -- CMD...",
    )


def hook_environment(
    base: Mapping[str, str],
    config,
    *,
    hook: Hook,
    config_path: Path | None,
    out_dir: Path,
) -> dict[str, str]:
    """The job's environment plus what a hook needs to find mlci's config, outputs and MLflow."""
    env = dict(base)
    env["MLCI_HOOK"] = hook.name
    env["MLCI_OUT_DIR"] = str(out_dir.resolve())
    if config_path is not None and config_path.exists():
        env["MLCI_CONFIG"] = str(config_path.resolve())
    extras = {
        "MLCI_PROJECT_NAME": config.get("project", "name"),
        "MLCI_MODEL_NAME": config.get("model", "name"),
        "MLFLOW_TRACKING_URI": config.get("mlflow", "tracking-uri"),
        "MLFLOW_REGISTRY_URI": config.get("mlflow", "registry-uri"),
        "MLFLOW_EXPERIMENT_NAME": config.get("mlflow", "experiment"),
    }
    env.update({k: str(v) for k, v in extras.items() if v})
    env.update(hook.environment)
    return env


def describe(command: str | tuple[str, ...]) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def _stop_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


@contextlib.contextmanager
def _forward_signals(process: subprocess.Popen):
    """Pass SIGTERM/SIGINT (a cancelled job) on to the hook's process group."""
    previous = {}

    def forward(signum, _frame):
        _stop_group(process, signum)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, forward)
    except ValueError:  # not the main thread: nothing to forward from
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@dataclass(frozen=True)
class HookRun:
    exit_code: int       # the hook's own code; 128+N when killed by signal N; 124 after a timeout
    timed_out: bool = False


def run_hook(
    hook: Hook,
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: timedelta | None = None,
    output: tuple[Callable[[bytes], None], Callable[[bytes], None]] | None = None,
) -> HookRun:
    """Run the hook to completion, streaming its (stdout, stderr) to `output`, else straight to ours."""
    shell = isinstance(hook.command, str)
    piped = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} if output is not None else {}
    try:
        process = subprocess.Popen(
            hook.command if shell else list(hook.command),
            shell=shell,
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
            **piped,
        )
    except FileNotFoundError as exc:
        missing = exc.filename or (hook.command[0] if not shell else "")
        if cwd is not None and not cwd.is_dir():
            raise ConfigError(f"hook '{hook.name}': working directory {cwd} does not exist",
                              location=hook.location or None) from None
        raise ConfigError(f"hook '{hook.name}': command not found: {missing}", location=hook.location or None,
                          hint="is it installed in the job's image and on PATH?") from None
    except PermissionError:
        raise ConfigError(f"hook '{hook.name}': permission denied running {describe(hook.command)}",
                          location=hook.location or None, hint="make the file executable (chmod +x)") from None
    relays = [_Relay(process.stdout, output[0]), _Relay(process.stderr, output[1])] if output is not None else []
    try:
        with _forward_signals(process):
            try:
                code = process.wait(timeout=timeout.total_seconds() if timeout else None)
            except subprocess.TimeoutExpired:
                _stop_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=KILL_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    _stop_group(process, signal.SIGKILL)
                    process.wait()
                return HookRun(EXIT_TIMEOUT, timed_out=True)
    finally:
        for relay in relays:
            relay.finish()
    return HookRun(128 - code if code < 0 else code)


class _Relay(threading.Thread):
    """Copies one of the hook's output pipes to `sink` as it arrives."""

    def __init__(self, pipe, sink: Callable[[bytes], None]):
        super().__init__(name="mlci-hook-output", daemon=True)
        self.pipe, self.sink = pipe, sink
        self.start()

    def run(self) -> None:
        fd = self.pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with contextlib.suppress(Exception):
                self.sink(chunk)

    def finish(self) -> None:
        self.join(timeout=5)  # a straggler in the killed group may still hold the pipe
        self.pipe.close()
        flush = getattr(self.sink, "flush", None)
        if flush is not None:
            flush()

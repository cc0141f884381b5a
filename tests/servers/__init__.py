"""Real servers (PostgreSQL, ...) started on 127.0.0.1 for the tests and stopped by PID."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen | None, stop_signal: int, timeout: float) -> None:
    """Ask a server to stop with its own shutdown signal; kill it when it has not exited within `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

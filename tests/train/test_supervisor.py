"""The child-process supervisor on its own: real processes, no MLflow."""

from __future__ import annotations

import io
import os
import sys
import time

from mlci.train.supervisor import GuardPolicy, Supervisor


def run(command, policy=GuardPolicy(), **kwargs):
    chunks: list[bytes] = []
    log = io.BytesIO()
    outcome = Supervisor(command, env=dict(os.environ), policy=policy, output=chunks.append, log=log, **kwargs).run()
    return outcome, b"".join(chunks).decode(), log.getvalue().decode()


def test_shell_commands_stream_stdout_and_stderr_and_keep_a_log():
    outcome, out, log = run("echo to-stdout; echo to-stderr >&2; exit 3")
    assert outcome.status == "FAILED" and outcome.exit_code == 3
    assert "to-stdout" in out and "to-stderr" in out
    assert log == out


def test_output_arrives_while_the_command_is_still_running():
    seen_at: list[float] = []
    started = time.monotonic()
    Supervisor(
        [sys.executable, "-c", "import time; print('early', flush=True); time.sleep(1.5); print('late')"],
        env=dict(os.environ), output=lambda chunk: seen_at.append(time.monotonic() - started),
    ).run()
    assert seen_at[0] < 1.2  # the first line did not wait for the command to end


def test_max_runtime_stops_the_whole_process_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    # The shell starts a background grandchild that would outlive a naive kill of the shell.
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    outcome, _, _ = run(command, GuardPolicy(max_runtime=0.5, kill_grace=1.0))
    assert outcome.status == "KILLED" and outcome.exit_code == 124
    assert outcome.killed_reason == "max-runtime of 0.5s exceeded"
    assert time.monotonic() - started < 10
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the background grandchild survived the runaway guard")


def test_a_missing_executable_fails_before_anything_runs(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError):
        run([str(tmp_path / "no-such-trainer")])

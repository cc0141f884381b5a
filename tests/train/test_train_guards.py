"""Signals, GPU telemetry (fake NVML) and the idle-GPU guard, through `mlci train`."""

from __future__ import annotations

import signal
import sys
import time

from tests.train.conftest import mlci_process_env

SLEEPER = [sys.executable, "-c", "import time; print('training', flush=True); time.sleep({seconds})"]


def sleeper(seconds: float) -> list[str]:
    return [part.format(seconds=seconds) for part in SLEEPER]


def wait_for(path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigterm_to_mlci_reaches_the_command_and_the_run_ends_killed(project, start_mlci, tmp_path):
    # GitLab sends SIGTERM to the job on cancel and timeout; the command must get
    # the chance to save a checkpoint, and the run must not stay RUNNING.
    ready, got_term = tmp_path / "ready", tmp_path / "got-term"
    child = (
        "import pathlib, signal, sys, time\n"
        "def stop(signum, frame):\n"
        f"    pathlib.Path({str(got_term)!r}).write_text(str(signum))\n"
        "    print('checkpoint saved', flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(ready)!r}).write_text('ok')\n"
        "time.sleep(120)\n"
    )
    proc = start_mlci("train", "--", sys.executable, "-c", child, cwd=project.root, env=mlci_process_env())
    wait_for(ready)

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)

    assert got_term.read_text() == str(int(signal.SIGTERM))
    assert "checkpoint saved" in out
    # The command exited 0 after being told to stop: still not a success.
    assert proc.returncode == 128 + signal.SIGTERM, err
    run = project.client().get_run(project.dotenv()["MLCI_RUN_ID"])
    assert run.info.status == "KILLED"
    assert run.data.tags["mlci.killed_reason"].startswith("SIGTERM received by mlci")


def test_fake_nvml_samples_are_logged_as_gpu_metrics(project, run_cli, fake_nvml):
    fake_nvml(util="10,80,95", memory_mb="4096", gpus="2")
    project.config("train:\n  telemetry-interval: 0.1\n")

    code, out, err = run_cli("train", "--", *sleeper(1.0))

    assert code == 0, err
    assert "GPU telemetry: 2x Fake Tesla T4" in out
    run_id = project.dotenv()["MLCI_RUN_ID"]
    client = project.client()
    assert client.get_run(run_id).data.tags["mlci.gpu"] == "2x Fake Tesla T4"
    for gpu in (0, 1):
        history = client.get_metric_history(run_id, f"system/gpu_{gpu}_utilization_percent")
        assert len(history) >= 3
        assert {m.value for m in history} <= {10.0, 80.0, 95.0}
        assert [m.step for m in history] == list(range(len(history)))
        assert {m.value for m in client.get_metric_history(run_id, f"system/gpu_{gpu}_memory_used_megabytes")} \
            == {4096.0}
        assert {m.value for m in client.get_metric_history(run_id, f"system/gpu_{gpu}_memory_percent")} == {25.0}
    gpu = project.summary()["telemetry"]["gpu"]
    assert gpu["available"] is True and gpu["count"] == 2
    assert gpu["names"] == ["Fake Tesla T4", "Fake Tesla T4"]
    assert gpu["memory_total_mb"] == [16384.0, 16384.0]
    assert gpu["peak_utilization_percent"] == 95.0
    assert gpu["peak_memory_used_mb"] == 4096.0


def test_without_nvml_the_run_is_tagged_gpu_none_and_says_so_once(project, run_cli, fake_nvml):
    fake_nvml(fail="init")
    project.config("train:\n  telemetry-interval: 0.1\n")

    code, out, err = run_cli("train", "--", *sleeper(0.5))

    assert code == 0, err
    assert out.count("no GPU telemetry") == 1
    assert "Driver Not Loaded" in out
    run_id = project.dotenv()["MLCI_RUN_ID"]
    run = project.client().get_run(run_id)
    assert run.data.tags["mlci.gpu"] == "none"
    assert not [k for k in run.data.metrics if k.startswith("system/gpu")]
    assert run.data.metrics["system/memory_used_megabytes"] > 0
    assert project.summary()["telemetry"]["gpu"] == {
        "available": False, "reason": "NVML did not initialise (Driver Not Loaded)",
    }


def test_idle_gpu_with_action_kill_stops_the_command(project, run_cli, fake_nvml):
    fake_nvml(util="0")
    project.config("""\
        train:
          telemetry-interval: 0.1
          kill-grace-seconds: 2
          idle-gpu: {threshold-percent: 5, minutes: 0.01, action: kill}
        """)

    started = time.monotonic()
    code, out, err = run_cli("train", "--", *sleeper(60))

    assert code == 124, err
    assert time.monotonic() - started < 30
    assert "stopping the training command: idle GPU" in out
    run = project.client().get_run(project.dotenv()["MLCI_RUN_ID"])
    assert run.info.status == "KILLED"
    assert run.data.tags["mlci.killed_reason"] == "idle GPU: utilisation below 5% for 0.01 min"


def test_idle_gpu_with_action_warn_warns_once_and_lets_training_finish(project, run_cli, fake_nvml):
    fake_nvml(util="0")
    project.config("""\
        train:
          telemetry-interval: 0.1
          idle-gpu: {minutes: 0.005, action: warn}
        """)

    code, out, err = run_cli("train", "--", *sleeper(1.0))

    assert code == 0, err
    assert "idle GPU" not in out  # a warning goes to stderr
    assert err.count("warning: idle GPU: utilisation below 5% for 0.005 min") == 1
    run = project.client().get_run(project.dotenv()["MLCI_RUN_ID"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlci.idle_gpu_warning"].startswith("idle GPU")
    assert any("idle GPU" in w for w in project.summary()["warnings"])
